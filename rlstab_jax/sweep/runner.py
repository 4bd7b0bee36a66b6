"""Sweep driver: ask a batch of trials, train them grouped into vmapped programs, tell results.

The sweep directory holds ``study.db`` (default SQLite storage), ``sweep.json`` (the base
config, space and settings), ``trials.jsonl`` (return, stability score and objective of every
trial at every evaluation, pruning decisions included), ``batches/`` (run directories) and
``best.json``.
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
              sampler_seed: int | None = 0, ray_address: str | None = None) -> dict[str, Any]:
    """Run ``n_trials`` trials in batches of ``batch_size`` (see the module docstring)."""
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
         "stability_weight": stability_weight}, indent=1, default=str))
    log_path = directory / "trials.jsonl"
    results: list[dict[str, Any]] = []
    seed_tuple = tuple(range(cfg.train.seed, cfg.train.seed + seeds))
    k = 0
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
            for r in group_out:
                t = by_num[r["number"]]
                if r["state"] == "pruned":
                    study.tell(t, state=optuna.trial.TrialState.PRUNED)
                else:
                    study.tell(t, r["value"])
                results.append({**r, "params": t.params})
        k += 1
    done = [r for r in results if r["state"] == "complete" and r.get("value") is not None]
    best = max(done, key=lambda r: r["value"]) if done else None
    (directory / "best.json").write_text(json.dumps({"best": best, "trials": results},
                                                    indent=1, default=str))
    return {"best": best, "trials": results, "study": study, "storage": storage}
