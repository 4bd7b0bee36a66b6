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

Checkpoints and resume: a batch directory holds ``group.json`` (its trials' numbers and
parameters, written before training), Orbax checkpoints every ``checkpoint.every`` env steps
(like any run of the shared loop) and, once trained, ``group_done.json`` (the results the driver
tells the study). ``run_group`` on a directory with ``group.json`` but no ``group_done.json``
continues from the newest checkpoint (or starts the batch over when none was written): each
trial's evaluation history and pruning state are rebuilt from ``trials.jsonl`` up to the restored
step, the rows after it are dropped and written again, and Optuna ignores the re-reported
intermediate values of steps it already has (same values: same program, seeds and state).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from rlstab_jax.ablate.cells import CompileCounter
from rlstab_jax.ablate.spec import _nest, _static_signature
from rlstab_jax.config.loader import Config, load_config
from rlstab_jax.config.split import extract_hparams

_SESSIONS: dict[tuple[str, int], Any] = {}
GROUP = "group.json"
GROUP_DONE = "group_done.json"


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
    if sess is None:  # (member seeds are the same for every batch of a sweep: gym envs too)
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
    d["checkpoint"].update(enabled=True, best=False)
    cfg = load_config(base=d)
    by_number = {t.number: t for t in trials}
    resume = _prepare_dir(directory, trials, cfgs, seeds)
    # history: trial -> {eval step: mean return}; on resume rebuilt from trials.jsonl
    history, state = _restore(log_path, list(by_number)) if resume is not None else (
        {n: {} for n in by_number},
        {n: {"pruned": False, "value": None, "score": None, "step": 0} for n in by_number})
    first = {"call": True}

    def on_chunk(steps: int, rows: list[dict[str, Any]], evaluated: bool) -> bool:
        if first["call"]:  # drop what the restored checkpoint has not seen (it is redone)
            first["call"] = False
            if resume is not None:
                _drop_rows_from(log_path, set(by_number), steps, history, state)
        if not evaluated:
            return False
        for number, trial in by_number.items():
            st = state[number]
            if st["pruned"]:
                continue
            vals = [r["eval/return"] for r in rows if r.get("trial") == number
                    and r.get("eval/return") is not None]
            ret = float(np.mean(vals)) if vals else float("nan")
            history[number][steps] = ret if np.isfinite(ret) else -1e9
            hist = [history[number][k] for k in sorted(history[number])]
            score = float(stability_score(jnp.asarray(np.array(hist, np.float32))))
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
        run(cfg, resume=resume, session=sess, progress=False, on_chunk=on_chunk)
    wall = time.perf_counter() - t0
    out = []
    for number in by_number:
        st = state[number]
        out.append({"number": number, "state": "pruned" if st["pruned"] else "complete",
                    "value": st["value"], "stability_score": st["score"],
                    "eval_return": st.get("ret"), "step": st["step"],
                    "batch_members": n * S, "compiles": cc.count,
                    "compile_seconds": cc.seconds, "wall_seconds": wall,
                    "resumed": resume is not None})
    (directory / GROUP_DONE).write_text(json.dumps(out, indent=1))
    return out


def _prepare_dir(directory: Path, trials: list[Any], cfgs: list[Config],
                 seeds: tuple[int, ...]) -> Path | None:
    """Write ``group.json``; return ``directory`` when a checkpoint to resume from exists."""
    meta = {"trials": [t.number for t in trials], "params": [dict(t.params) for t in trials],
            "seeds": list(seeds)}
    if (directory / GROUP).is_file():
        ckpt = directory / "checkpoints"
        if ckpt.is_dir() and any(p.name.isdigit() for p in ckpt.iterdir()):
            return directory
        shutil.rmtree(directory)  # interrupted before its first checkpoint: start over
    directory.mkdir(parents=True, exist_ok=True)
    (directory / GROUP).write_text(json.dumps(meta, indent=1))
    return None


def _read_rows(log_path: Path) -> list[dict[str, Any]]:
    if not log_path.is_file():
        return []
    return [json.loads(x) for x in log_path.read_text().splitlines() if x.strip()]


def _restore(log_path: Path, numbers: list[int]) -> tuple[dict, dict]:
    """Evaluation history and pruning state of ``numbers`` from ``trials.jsonl``."""
    history: dict[int, dict[int, float]] = {n: {} for n in numbers}
    state = {n: {"pruned": False, "value": None, "score": None, "step": 0} for n in numbers}
    for r in _read_rows(log_path):
        n = r.get("trial")
        if n not in history:
            continue
        ret = r["eval_return"]
        history[n][int(r["step"])] = ret if ret is not None and np.isfinite(ret) else -1e9
        state[n].update(value=r["objective"], score=r["stability_score"], step=int(r["step"]),
                        ret=ret, pruned=state[n]["pruned"] or bool(r["pruned"]))
    return history, state


def _drop_rows_from(log_path: Path, numbers: set[int], step: int, history: dict,
                    state: dict) -> None:
    """Forget evaluations of ``numbers`` at ``step`` or later (the resumed run redoes them)."""
    rows = _read_rows(log_path)
    keep = [r for r in rows if not (r.get("trial") in numbers and int(r["step"]) >= step)]
    if len(keep) != len(rows):
        log_path.write_text("".join(json.dumps(r) + "\n" for r in keep))
    fresh, fresh_state = _restore(log_path, list(numbers))
    history.clear()
    history.update(fresh)
    state.clear()
    state.update(fresh_state)


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
