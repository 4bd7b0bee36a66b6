"""The one host loop for every agent: chunks of jitted steps, then log, evaluate, checkpoint.

Everything between two chunks happens on the host: metric rows (one per seed), evaluation with
the deterministic and the stochastic policy, Orbax checkpoints (periodic, keep last K, and the
best by mean eval return), the progress bar and the non-finite stop.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime
from pathlib import Path
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.config.loader import Config, dump_config
from rlstab_jax.train.checkpoint import CheckpointStore
from rlstab_jax.train.metrics import MetricsWriter, read_metrics, truncate_metrics
from rlstab_jax.train.plots import plot_learning_curve
from rlstab_jax.train.progress import Progress
from rlstab_jax.train.session import Session, build_session


class NonFiniteError(RuntimeError):
    """Raised when updates stayed non-finite for ``train.max_nonfinite`` consecutive steps."""


@dataclasses.dataclass
class RunResult:
    run_dir: Path
    state: Any
    rows: list[dict[str, Any]]
    final_eval: dict[str, np.ndarray]
    stopped: str = ""


def default_run_dir(cfg: Config) -> Path:
    name = cfg.run.name or f"{cfg.agent_name}-{cfg.env.id.replace('/', '_')}"
    return Path("runs") / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _to_rows(
    metrics: dict[str, Any],
    steps: np.ndarray,
    seeds: tuple[int, ...],
    extra: dict[str, Any],
    labels: tuple[dict[str, Any], ...] | None = None,
) -> list[dict[str, Any]]:
    host = {k: np.asarray(v) for k, v in metrics.items()}
    rows = []
    for i in range(len(steps)):
        row = {"step": int(steps[i]), "seed": seeds[i], **(labels[i] if labels else {}), **extra}
        row.update({k: float(v[i]) if v.ndim else float(v) for k, v in host.items()})
        rows.append(row)
    return rows


def _eval_keys(seeds: tuple[int, ...], step: int) -> jax.Array:
    # Evaluation never consumes the training RNG stream: a run evaluated more or less often
    # trains identically, a resumed run evaluates identically, and seed i's evaluation does
    # not depend on how many seeds run beside it.
    return jax.numpy.stack(
        [jax.random.fold_in(jax.random.PRNGKey(s + 7919), step) for s in seeds]
    )


def run(
    cfg: Config,
    *,
    resume: Path | None = None,
    session: Session | None = None,
    stop_after_steps: int | None = None,
    progress: bool | None = None,
    on_chunk: Callable[[int, list[dict[str, Any]], bool], bool] | None = None,
) -> RunResult:
    """Train ``cfg`` (or resume ``resume``) to ``train.total_steps`` env steps per seed.

    Args:
      cfg: resolved config.
      resume: a run directory to continue from its latest checkpoint.
      session: a pre-built session (tests reuse compiled chunks across runs).
      stop_after_steps: stop early once this many env steps per seed are done (tests of resume).
      progress: override ``log.progress``.
      on_chunk: called after each chunk's rows are written as ``on_chunk(steps, rows,
        evaluated)``; returning True stops the run there (the ablation grid's progress, the
        sweep's per-evaluation report and pruning).
    """
    run_dir = Path(resume) if resume else Path(cfg.run.dir) if cfg.run.dir else default_run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    sess = session or build_session(cfg)
    store = None
    if cfg.checkpoint.enabled or resume:
        store = CheckpointStore(
            run_dir / "checkpoints", keep=cfg.checkpoint.keep, fingerprint=sess.fingerprint()
        )
    state = None
    start = 0
    if resume:
        if store.latest_step() is None:
            raise ConfigError(
                f"--resume {run_dir}: no checkpoint found in {run_dir / 'checkpoints'}"
            )
        state, meta = store.restore(sess.abstract_state())
        start = int(meta["env_steps"])
        truncate_metrics(run_dir / "metrics.jsonl", start)
        if sess.runner is not None:
            sess.runner.reset_episodes()
    else:
        dump_config(cfg, run_dir / "config.yaml")
        state = sess.init_state()
    state = sess.place(state)
    hparams = sess.place(sess.hparams)
    writer = MetricsWriter(run_dir, cfg.log, cfg.to_dict())
    tcfg = cfg.train
    total = (
        tcfg.total_steps if stop_after_steps is None else min(tcfg.total_steps, stop_after_steps)
    )
    bar = Progress(total, start, enabled=cfg.log.progress if progress is None else progress)
    steps, last_eval = start, {}
    best = -np.inf if store is None or store.best_eval_return is None else store.best_eval_return
    stopped = ""
    try:
        while steps < total:
            t0 = time.perf_counter()
            state, metrics = sess.chunk(state, hparams)
            metrics = jax.device_get(metrics)
            dt = time.perf_counter() - t0
            prev, steps = steps, steps + sess.steps_per_chunk
            sps = sess.steps_per_chunk / dt
            env_steps = np.full(sess.n_seeds, steps)
            rows = _to_rows(metrics, env_steps, sess.member_seeds, {"sps": sps}, sess.labels)
            did_eval = _crossed(prev, steps, tcfg.eval_every) or steps >= total
            if did_eval:
                ev = jax.device_get(
                    sess.evaluate(state, _eval_keys(sess.member_seeds, steps), hparams)
                )
                last_eval = {k: np.asarray(v) for k, v in ev.items()}
                for i, row in enumerate(rows):
                    row.update({k: float(v[i]) for k, v in last_eval.items()})
            writer.write(rows)
            bar.update(steps, sps, rows, last_eval)
            streak = np.asarray(metrics.get("nonfinite/streak", 0.0)).max()
            if streak >= tcfg.max_nonfinite:
                stopped = (
                    f"stopped at step {steps}: {int(streak)} consecutive non-finite "
                    f"updates (train.max_nonfinite={tcfg.max_nonfinite}); the last good "
                    f"checkpoint in {run_dir / 'checkpoints'} is untouched"
                )
                break
            if store is not None:
                meta = {"env_steps": steps}
                if _crossed(prev, steps, cfg.checkpoint.every) or steps >= total:
                    if not store.save(steps, state, meta):
                        bar.write(f"step {steps}: state has non-finite values; checkpoint skipped")
                if cfg.checkpoint.best and did_eval:
                    mean_ret = float(np.mean(last_eval["eval/return"]))
                    if mean_ret > best and store.save_best(steps, state, mean_ret, meta):
                        best = mean_ret
            if on_chunk is not None and on_chunk(steps, rows, did_eval):
                break
    finally:
        bar.close()
        writer.close()
        if store is not None:
            store.close()
    rows_all = read_metrics(run_dir / "metrics.jsonl")
    if cfg.log.plot:
        plot_learning_curve(
            rows_all, run_dir / "learning_curve.png", title=f"{cfg.agent_name} on {cfg.env.id}"
        )
    if stopped:
        raise NonFiniteError(stopped)
    return RunResult(run_dir, state, rows_all, last_eval, stopped)


def _crossed(prev: int, now: int, every: int) -> bool:
    """True when a multiple of ``every`` lies in ``(prev, now]``."""
    return every > 0 and now // every > prev // every
