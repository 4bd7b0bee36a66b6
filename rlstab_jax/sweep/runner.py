"""Sweep driver: ask a batch of trials, train them grouped into vmapped programs, tell results.

The sweep directory holds ``study.db`` (default SQLite storage), ``sweep.json`` (the base
config, space and settings), ``trials.jsonl`` (return, stability score and objective of every
trial at every evaluation, pruning decisions included), ``batches/`` (run directories) and
``best.json``.

Resume (``run_sweep(..., resume=True)``, ``python -m rlstab_jax.sweep --resume DIR``): trials
already told to the study count toward ``n_trials``; a batch that finished training but was not
told yet is told from its ``group_done.json``; a batch interrupted mid-training continues from
its checkpoint with the same trials (``sweep.batch``); then new batches are asked as usual.
The sampler's random state is not checkpointed, so trials asked after a resume differ from the
ones an uninterrupted sweep would have asked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.config.loader import Config
from rlstab_jax.sweep import batch as batch_mod
from rlstab_jax.sweep.space import Param
from rlstab_jax.sweep.study import _optuna, architecture_fingerprint, default_storage, open_study


def run_sweep(cfg: Config, space: tuple[Param, ...], directory: Path, *, n_trials: int,
              batch_size: int, seeds: int = 1, study_name: str = "sweep",
              storage: str | None = None, pruner: Any = None, stability_weight: float = 0.0,
              sampler_seed: int | None = 0, ray_address: str | None = None,
              resume: bool = False, pruner_spec: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    """Run ``n_trials`` trials in batches of ``batch_size`` (see the module docstring).

    ``resume=True`` continues the sweep in ``directory`` (same study and storage);
    ``pruner_spec`` (how the CLI built ``pruner``) is recorded in ``sweep.json`` for it.
    """
    optuna = _optuna()
    directory.mkdir(parents=True, exist_ok=True)
    storage = storage or default_storage(directory)
    searched = {p.key for p in space}
    fp = architecture_fingerprint(cfg, searched)
    study = open_study(study_name, storage, fp, pruner, sampler_seed)
    base = cfg.to_dict()
    (directory / "sweep.json").write_text(json.dumps(
        {"study": study_name, "storage": storage, "base": base, "fingerprint": fp,
         "space": [p.__dict__ for p in space], "seeds": seeds, "batch": batch_size,
         "stability_weight": stability_weight, "trials": n_trials,
         "sampler_seed": sampler_seed, "pruner": pruner_spec}, indent=1, default=str))
    log_path = directory / "trials.jsonl"
    results: list[dict[str, Any]] = []
    seed_tuple = tuple(range(cfg.train.seed, cfg.train.seed + seeds))
    k = 0
    if resume:
        results, k = _resume(study, directory, base, seed_tuple, log_path, stability_weight)
    while len(results) < n_trials:
        asked = [study.ask() for _ in range(min(batch_size, n_trials - len(results)))]
        params, ok_trials = [], []
        for t in asked:
            t.set_user_attr("fingerprint", fp)
            p = {prm.key: prm.suggest(t) for prm in space}
            try:
                batch_mod.trial_config(base, p)
            except ConfigError as e:
                study.tell(t, state=optuna.trial.TrialState.FAIL)
                results.append({"number": t.number, "state": "fail", "error": str(e)})
                continue
            params.append(p)
            ok_trials.append(t)
        groups = batch_mod.group_trials(ok_trials, base, params)
        if ray_address:
            from rlstab_jax.sweep.ray_exec import run_groups_ray

            outs = run_groups_ray(ray_address, study_name, storage, groups, seed_tuple,
                                  directory, k, log_path, stability_weight)
        else:
            outs = [batch_mod.run_group(trials, cfgs, seed_tuple,
                                        directory / "batches" / f"b{k}-g{i}", log_path,
                                        stability_weight)
                    for i, (trials, cfgs) in enumerate(groups)]
        by_num = {t.number: t for trials, _ in groups for t in trials}
        for group_out in outs:
            results += _tell(study, by_num, group_out)
        k += 1
    done = [r for r in results if r["state"] == "complete" and r.get("value") is not None]
    best = max(done, key=lambda r: r["value"]) if done else None
    (directory / "best.json").write_text(json.dumps({"best": best, "trials": results},
                                                    indent=1, default=str))
    return {"best": best, "trials": results, "study": study, "storage": storage}


def _tell(study: Any, by_num: dict[int, Any], group_out: list[dict[str, Any]]
          ) -> list[dict[str, Any]]:
    optuna = _optuna()
    out = []
    for r in group_out:
        t = by_num[r["number"]]
        if r["state"] == "pruned":
            study.tell(t, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(t, r["value"])
        out.append({**r, "params": t.params})
    return out


def _resume(study: Any, directory: Path, base: dict[str, Any], seeds: tuple[int, ...],
            log_path: Path, stability_weight: float) -> tuple[list[dict[str, Any]], int]:
    """Finish the interrupted batches of a sweep; return the told trials and the next index."""
    optuna = _optuna()
    running = {t.number: t for t in study.get_trials(deepcopy=False)
               if t.state == optuna.trial.TrialState.RUNNING}
    k = 0
    mine: set[int] = set()
    bdir = directory / "batches"
    for d in sorted(bdir.glob("b*-g*"), key=lambda p: tuple(
            int(x) for x in p.name[1:].split("-g"))) if bdir.is_dir() else []:
        k = max(k, int(d.name[1:].split("-g")[0]) + 1)
        if not (d / batch_mod.GROUP).is_file():
            continue
        meta = json.loads((d / batch_mod.GROUP).read_text())
        mine.update(meta["trials"])
        if not all(n in running for n in meta["trials"]):
            continue  # told already (or failed outside this driver)
        trials = [optuna.trial.Trial(study, running[n]._trial_id) for n in meta["trials"]]
        by_num = {t.number: t for t in trials}
        if (d / batch_mod.GROUP_DONE).is_file():
            out = json.loads((d / batch_mod.GROUP_DONE).read_text())
        else:
            cfgs = [batch_mod.trial_config(base, p) for p in meta["params"]]
            out = batch_mod.run_group(trials, cfgs, tuple(meta["seeds"]), d, log_path,
                                      stability_weight)
        _tell(study, by_num, out)
    results = []
    for t in study.get_trials(deepcopy=False):
        if t.number in mine and t.state.is_finished():
            results.append({"number": t.number, "state": t.state.name.lower(),
                            "value": t.value, "stability_score": t.user_attrs.get(
                                "stability_score"), "params": t.params})
    return results, k
