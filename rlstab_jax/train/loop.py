"""The one host loop for every agent: chunks of jitted steps, then log, evaluate, checkpoint.

Everything between two chunks happens on the host: metric rows (one per seed), evaluation with
the deterministic and the stochastic policy, Orbax checkpoints (periodic, keep last K, and the
best by mean eval return), the progress bar, the non-finite stop and SIGINT/SIGTERM. What the
loop promises (exit codes, locking, resume, faults tested) is in docs/reliability.md.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
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
from rlstab_jax.train.eval_health import EvalHealth
from rlstab_jax.train.guard import (
    SIGNAL_NAMES,
    RunInterrupted,
    StopSignals,
    nonfinite_state_leaves,
)
from rlstab_jax.train.early_stop import early_stop_streak
from rlstab_jax.train.memory import check_state_fits
from rlstab_jax.train.metrics import MetricsWriter, read_metrics, truncate_metrics
from rlstab_jax.train.plots import plot_learning_curve
from rlstab_jax.train.progress import Progress
from rlstab_jax.train.rundir import RunDirLock, holds_run
from rlstab_jax.train.session import Session, build_session


class NonFiniteError(RuntimeError):
    """The non-finite guard stopped the run (exit code 3).

    Raised when ``train.max_nonfinite`` consecutive update calls skipped a step or reported a
    NaN/Inf loss, when the agent state holds NaN/Inf at a chunk end, or when a checkpoint was
    refused because the state holds NaN/Inf.
    """


@dataclasses.dataclass
class RunResult:
    run_dir: Path
    state: Any
    rows: list[dict[str, Any]]
    final_eval: dict[str, np.ndarray]
    stopped: str = ""
    early_stopped: str = ""  # train.early_stop_return reached on eval returns (not an error)


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


def _hint(run_dir: Path) -> str:
    return f"resume with: python -m rlstab_jax.train --resume {run_dir}"


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

    Safety (issue 13, docs/reliability.md): the run directory is locked for the life of the
    call; a new run refuses a directory that already holds one; the training state's memory is
    checked before anything is allocated; a resume falls back to the newest checkpoint that
    restores; the first SIGINT/SIGTERM finishes the chunk, writes a checkpoint and raises
    :class:`RunInterrupted`; a non-finite state stops the run (:class:`NonFiniteError`).

    Args:
      cfg: resolved config.
      resume: a run directory to continue from its newest good checkpoint.
      session: a pre-built session (tests reuse compiled chunks across runs).
      stop_after_steps: stop early once this many env steps per seed are done (tests of resume).
      progress: override ``log.progress``.

    Raises:
      ConfigError: bad input, an occupied or locked run directory, a state that cannot fit,
        no checkpoint that restores.
      NonFiniteError: the guard stopped the run.
      RunInterrupted: SIGINT/SIGTERM (``exit_code`` 130/143).
      on_chunk: called after each chunk's rows are written as ``on_chunk(steps, rows,
        evaluated)``; returning True stops the run there (the ablation grid's progress, the
        sweep's per-evaluation report and pruning).
    """
    run_dir = Path(resume) if resume else Path(cfg.run.dir) if cfg.run.dir else default_run_dir(cfg)
    fresh = resume is None
    if fresh and holds_run(run_dir):
        raise ConfigError(
            f"run dir {run_dir} already holds a run; use --resume {run_dir} or another run.dir"
        )
    sess = session or build_session(cfg)
    abstract = sess.abstract_state()
    check_state_fits(abstract, cfg)  # before any allocation and before the directory exists
    lock = RunDirLock(run_dir)
    try:
        return _run_locked(cfg, run_dir, fresh, sess, abstract, stop_after_steps, progress,
                           on_chunk)
    finally:
        lock.release(remove_if_empty=fresh)


def _run_locked(cfg, run_dir, fresh, sess, abstract, stop_after_steps, progress,
                on_chunk=None) -> RunResult:
    if fresh and holds_run(run_dir):  # another process got here between the check and the lock
        raise ConfigError(
            f"run dir {run_dir} already holds a run; use --resume {run_dir} or another run.dir"
        )
    store = None
    if cfg.checkpoint.enabled or not fresh:
        store = CheckpointStore(
            run_dir / "checkpoints", keep=cfg.checkpoint.keep, fingerprint=sess.fingerprint()
        )
    try:
        state, start = _initial_state(cfg, run_dir, fresh, sess, store, abstract)
    except BaseException:
        if store is not None:
            store.close()
        raise
    tcfg = cfg.train
    if not fresh and start >= tcfg.total_steps:
        store.close()
        msg = (f"nothing to do: {run_dir} is at step {start} >= train.total_steps="
               f"{tcfg.total_steps}; pass a larger train.total_steps to continue")
        return RunResult(run_dir, state, [], {}, stopped=msg)
    state = sess.place(state)
    hparams = sess.place(sess.hparams)
    health = (EvalHealth.from_metrics(run_dir / "metrics.jsonl", sess.n_seeds)
              if not fresh else EvalHealth(sess.n_seeds))  # stability/* fields of eval rows
    writer = MetricsWriter(run_dir, cfg.log, cfg.to_dict())
    total = (
        tcfg.total_steps if stop_after_steps is None else min(tcfg.total_steps, stop_after_steps)
    )
    bar = Progress(total, start, enabled=cfg.log.progress if progress is None else progress)
    steps, last_eval = start, {}
    best = -np.inf if store is None or store.best_eval_return is None else store.best_eval_return
    saved = store.latest_step() if store is not None else None  # newest good checkpoint
    stopped, early, streak = "", "", 0
    signals = StopSignals()
    try:
        with signals:
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
                    last_eval.update(health.update(last_eval["eval/return"]))
                    for i, row in enumerate(rows):
                        row.update({k: float(v[i]) for k, v in last_eval.items()})
                    streak = early_stop_streak(streak, last_eval["eval/return"],
                                               tcfg.early_stop_return)
                    if streak >= tcfg.early_stop_patience:  # streak stays 0 when off
                        early = (f"early stop at step {steps}: every seed's eval return >= "
                                 f"{tcfg.early_stop_return} for {streak} evaluation(s)")
                writer.write(rows)
                bar.update(steps, sps, rows, last_eval)
                stopped = _nonfinite_reason(state, metrics, steps, tcfg.max_nonfinite)
                if stopped:
                    break
                if store is not None:
                    meta = {"env_steps": steps}
                    want = (_crossed(prev, steps, cfg.checkpoint.every) or steps >= total
                            or bool(early))
                    if (want or signals.signum is not None) and saved != steps:
                        if not store.save(steps, state, meta):
                            stopped = f"stopped at step {steps}: {store.last_refusal}"
                            break
                        saved = steps
                    if cfg.checkpoint.best and did_eval:
                        mean_ret = float(np.mean(last_eval["eval/return"]))
                        if mean_ret > best and store.save_best(steps, state, mean_ret, meta):
                            best = mean_ret
                if signals.signum is not None:
                    name = SIGNAL_NAMES[signals.signum]
                    where = (f"checkpoint written at step {steps}; {_hint(run_dir)}"
                             if store is not None else
                             "checkpoint.enabled=false: nothing to resume from")
                    raise RunInterrupted(signals.signum, f"stopped by {name} at step {steps}: "
                                                         f"{where}")
                if on_chunk is not None and on_chunk(steps, rows, did_eval):
                    break
                if early:
                    break
    except RunInterrupted as e:
        if not e.message.startswith("stopped by"):
            e.message = f"{e}; {_resume_point(run_dir, saved)}"
        raise
    except KeyboardInterrupt as e:  # a signal before our handler, or a foreign KeyboardInterrupt
        raise RunInterrupted(signal.SIGINT, f"interrupted; {_resume_point(run_dir, saved)}") from e
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
        raise NonFiniteError(f"{stopped}; {_resume_point(run_dir, saved, store is not None)}")
    return RunResult(run_dir, state, rows_all, last_eval, stopped, early)


def _initial_state(cfg, run_dir, fresh, sess, store, abstract) -> tuple[Any, int]:
    """Fresh: write config.yaml and init. Resume: the newest checkpoint that restores."""
    if fresh:
        dump_config(cfg, run_dir / "config.yaml")
        return sess.init_state(), 0
    if store.latest_step() is None:
        raise ConfigError(f"--resume {run_dir}: no checkpoint found in {run_dir / 'checkpoints'}")
    state, meta, skipped = store.restore_newest_good(abstract)
    start = int(meta["env_steps"])
    for step, why in skipped:
        print(f"warning: skipped damaged checkpoint step {step} (moved to "
              f"{store.directory.name}-damaged/), resuming from step {start}: {why[:200]}",
              file=sys.stderr)
    if start < cfg.train.total_steps:
        truncate_metrics(run_dir / "metrics.jsonl", start,
                         warn=lambda m: print(m, file=sys.stderr))
    if sess.runner is not None:
        sess.runner.reset_episodes()
    return state, start


def _nonfinite_reason(state: Any, metrics: dict, steps: int, max_nonfinite: int) -> str:
    streak = np.asarray(metrics.get("nonfinite/streak", 0.0)).max()
    if streak >= max_nonfinite:
        return (f"stopped at step {steps}: {int(streak)} consecutive non-finite updates "
                f"(skipped gradient steps or NaN/Inf losses; train.max_nonfinite={max_nonfinite})")
    agent = getattr(state, "agent", state)
    bad = nonfinite_state_leaves(agent)
    if bad:
        more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
        return (f"stopped at step {steps}: non-finite values in the agent state "
                f"(never recovers): {', '.join(bad[:3])}{more}")
    return ""


def _resume_point(run_dir: Path, saved: int | None, checkpointing: bool = True) -> str:
    if not checkpointing:
        return "checkpoint.enabled=false: nothing to resume from"
    if saved is None:
        return "no checkpoint was written: nothing to resume from"
    return f"the last good checkpoint is step {saved}; {_hint(run_dir)}"


def _crossed(prev: int, now: int, every: int) -> bool:
    """True when a multiple of ``every`` lies in ``(prev, now]``."""
    return every > 0 and now // every > prev // every
