"""Sweep trial batches as Ray tasks.

Each program group of a batch becomes one Ray task. The worker opens the same study (so the
storage must be reachable from the workers: an RDB URL, or SQLite on a shared filesystem),
re-attaches to its trials by id, trains the group (reporting, logging the stability score and
pruning exactly like the local path) and returns the results; the driver tells the study.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlstab_jax.ablate.ray_exec import ray_init


def remote_group(study_name: str, storage: str, trial_ids: list[int], base: dict[str, Any],
                 params: list[dict[str, Any]], seeds: tuple[int, ...], directory: str,
                 log_path: str, stability_weight: float) -> list[dict[str, Any]]:
    import optuna

    from rlstab_jax.sweep.batch import run_group, trial_config

    study = optuna.load_study(study_name=study_name, storage=storage)
    trials = [optuna.trial.Trial(study, tid) for tid in trial_ids]
    cfgs = [trial_config(base, p) for p in params]
    return run_group(trials, cfgs, seeds, Path(directory), Path(log_path), stability_weight)


def run_groups_ray(address: str, study_name: str, storage: str, groups: list, seeds: tuple,
                   directory: Path, k: int, log_path: Path, stability_weight: float) -> list:
    ray = ray_init(address)
    task = ray.remote(num_cpus=1, max_retries=0)(remote_group)
    refs = []
    for i, (trials, cfgs) in enumerate(groups):
        refs.append(task.remote(study_name, storage, [t._trial_id for t in trials],
                                cfgs[0].to_dict(), [t.params for t in trials], seeds,
                                str((directory / "batches" / f"b{k}-g{i}").resolve()),
                                str(log_path.resolve()), stability_weight))
    return ray.get(refs)
