"""Vmapped trial batches: trials that differ only in numeric values share one compiled program.

A batch of asked trials is grouped by the static part of their configs (e.g. ``agent.utd``
changes a scan length); each group trains as one batch of ``trials x seeds`` members through
the shared loop (``rlstab_jax.train.loop.run``), members labelled with their trial number.
After every evaluation each live trial gets (field report 000 step 10):

1. its mean eval return over its seeds, the stability score of its eval history
   (``stability.telemetry.stability_score``) and the objective
   ``return + stability_weight * stability_score``, appended to ``trials.jsonl`` and stored as
   trial user attributes — *before* any pruning decision;
2. ``trial.report(objective, step)``, then ``trial.should_prune()``; a pruned trial is logged
   (``"pruned": true``) and stops being reported (its members keep training inside the batch,
   which cannot shrink; the batch stops when every trial in it is pruned).

Sessions are cached per program and batch size, so later batches with the same structure reuse
the compiled chunk.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from rlstab_jax.ablate.cells import CompileCounter
from rlstab_jax.ablate.spec import _nest, _static_signature
from rlstab_jax.config.loader import Config, load_config
from rlstab_jax.config.split import extract_hparams

_SESSIONS: dict[tuple[str, int], Any] = {}


def trial_config(base: dict[str, Any], params: dict[str, Any]) -> Config:
    """The base config dict with a trial's sampled values (dotted keys) applied, validated."""
    from omegaconf import OmegaConf

    merged = OmegaConf.to_container(
        OmegaConf.merge(OmegaConf.create(base), OmegaConf.create(_nest(params))), resolve=True)
    return load_config(base=merged)


def _session(cfg: Config, hp: dict[str, Any], seeds: tuple[int, ...],
             labels: tuple[dict[str, Any], ...]) -> Any:
    import dataclasses

    from rlstab_jax.train.session import build_session, keys_for

    key = (_static_signature(cfg), len(seeds))
    sess = _SESSIONS.get(key)
    if sess is None:
        sess = build_session(cfg, hparams=hp, seeds=seeds, labels=labels)
        _SESSIONS[key] = sess
        return sess
    return dataclasses.replace(sess, cfg=cfg, hparams=hp, keys=keys_for(seeds), seed_ids=seeds,
                               labels=labels)


def run_group(trials: list[Any], cfgs: list[Config], seeds: tuple[int, ...], directory: Path,
              log_path: Path, stability_weight: float) -> list[dict[str, Any]]:
    """Train trials sharing one program as one vmapped batch; report, prune, return results.

    Args:
      trials: Optuna ``Trial`` objects (same static config).
      cfgs: their validated configs.
      seeds: seeds per trial (each trial trains every seed; its return is the mean).
      directory: the batch's run directory.
      log_path: ``trials.jsonl`` (one row per trial and evaluation, pruning rows included).
      stability_weight: objective = mean eval return + weight * stability score.

    Returns:
      per trial ``{"number", "state": "complete"|"pruned", "value", "stability_score", ...}``.
    """
    import jax.numpy as jnp

    from rlstab_jax.stability.telemetry import stability_score
    from rlstab_jax.train.loop import run

    n, S = len(trials), len(seeds)
    hps = [extract_hparams(c.agent) for c in cfgs]
    hp = {k: jnp.repeat(jnp.stack([h[k] for h in hps]), S) for k in hps[0]}
    member_seeds = tuple(s for _ in trials for s in seeds)
    labels = tuple({"trial": t.number} for t in trials for _ in seeds)
    d = cfgs[0].to_dict()
    d["train"].update(seeds=n * S, seed=seeds[0])
    d["run"]["dir"] = str(directory)
    d["log"].update(progress=False, plot=False)
    d["checkpoint"]["enabled"] = False
    cfg = load_config(base=d)
    history: dict[int, list[float]] = {t.number: [] for t in trials}
    state = {t.number: {"pruned": False, "value": None, "score": None, "step": 0}
             for t in trials}
    by_number = {t.number: t for t in trials}

    def on_chunk(steps: int, rows: list[dict[str, Any]], evaluated: bool) -> bool:
        if not evaluated:
            return False
        for number, trial in by_number.items():
            st = state[number]
            if st["pruned"]:
                continue
            vals = [r["eval/return"] for r in rows if r.get("trial") == number
                    and r.get("eval/return") is not None]
            ret = float(np.mean(vals)) if vals else float("nan")
            history[number].append(ret if np.isfinite(ret) else -1e9)
            score = float(stability_score(jnp.asarray(np.array(history[number], np.float32))))
            value = ret + stability_weight * score
            st.update(value=value, score=score, step=steps, ret=ret)
            row = {"trial": number, "step": steps, "eval_return": ret,
                   "stability_score": score, "objective": value, "pruned": False,
                   "time": time.time()}
            trial.set_user_attr("stability_score", score)
            trial.set_user_attr("eval_return", ret)
            with open(log_path, "a") as f:  # logged before the pruning decision
                f.write(json.dumps(row) + "\n")
            trial.report(value, steps)
            if trial.should_prune():
                st["pruned"] = True
                with open(log_path, "a") as f:
                    f.write(json.dumps({**row, "pruned": True}) + "\n")
        return all(s["pruned"] for s in state.values())

    t0 = time.perf_counter()
    with CompileCounter() as cc:
        sess = _session(cfg, hp, member_seeds, labels)
        run(cfg, session=sess, progress=False, on_chunk=on_chunk)
    wall = time.perf_counter() - t0
    out = []
    for number in by_number:
        st = state[number]
        out.append({"number": number, "state": "pruned" if st["pruned"] else "complete",
                    "value": st["value"], "stability_score": st["score"],
                    "eval_return": st.get("ret"), "step": st["step"],
                    "batch_members": n * S, "compiles": cc.count,
                    "compile_seconds": cc.seconds, "wall_seconds": wall})
    return out


def group_trials(trials: list[Any], base: dict[str, Any], params: list[dict[str, Any]]
                 ) -> list[tuple[list[Any], list[Config]]]:
    """Group asked trials by their config's static signature (one program per group)."""
    groups: dict[str, tuple[list[Any], list[Config]]] = {}
    for trial, p in zip(trials, params):
        cfg = trial_config(base, p)
        g = groups.setdefault(_static_signature(cfg), ([], []))
        g[0].append(trial)
        g[1].append(cfg)
    return list(groups.values())
