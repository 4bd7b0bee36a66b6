"""Python entry points: build a config, train, resume, evaluate a checkpoint, load a policy.

What the notebooks and scripts use instead of the CLI (``python -m rlstab_jax.train``); it is
the same loop (``rlstab_jax.train.loop.run``) with the same config layers::

    from rlstab_jax import api

    cfg = api.make_config("sac/pendulum", {"train.total_steps": 5000, "run.dir": "runs/demo"})
    result = api.train(cfg)                      # RunResult: run_dir, state, rows, final_eval
    api.evaluate("runs/demo")                    # best checkpoint, deterministic policy
    policy = api.load_policy("runs/demo")        # policy(obs[B, ...], key) -> action[B, ...]
    api.resume("runs/demo", {"train.total_steps": 10000})

Bad input raises ``ConfigError`` with one line naming the key, as on the command line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.config.loader import Config, load_config, read_yaml
from rlstab_jax.train.policy_io import load_policy, restore_run

__all__ = ["make_config", "make_session", "train", "resume", "evaluate", "load_policy", "metrics"]

Overrides = Mapping[str, Any] | Sequence[str] | None


def _dotlist(overrides: Overrides) -> list[str]:
    """``{"train.seeds": 4, "agent.actor_hidden": [64, 64]}`` -> ``["train.seeds=4", ...]``."""
    if overrides is None:
        return []
    if isinstance(overrides, str):
        raise ConfigError(f"overrides must be a mapping or a list of key=value, got {overrides!r}")
    if not isinstance(overrides, Mapping):
        return [str(o) for o in overrides]
    out = []
    for key, v in overrides.items():
        if isinstance(v, str):
            text = v
        elif isinstance(v, float) and math.isnan(v):
            text = ".nan"  # YAML's NaN (the loader parses values as YAML)
        else:
            text = json.dumps(list(v) if isinstance(v, tuple) else v)
        out.append(f"{key}={text}")
    return out


def make_config(preset: str | None = None, overrides: Overrides = None) -> Config:
    """Resolve a config: schema defaults -> ``preset`` (name or YAML path) -> ``overrides``.

    Args:
      preset: e.g. ``"sac/pendulum"`` (the default when ``None``), ``"sac/racer"`` or a path.
      overrides: ``{"train.total_steps": 5000, ...}`` or ``["train.total_steps=5000", ...]``.
    """
    return load_config(preset, _dotlist(overrides))


def make_session(cfg: Config) -> Any:
    """Build (but do not compile yet) the env, agent, driver and jitted chunk of ``cfg``.

    Pass it to :func:`train`, :func:`resume` and :func:`evaluate` to reuse the compiled chunk
    and evaluation across calls in one process (a notebook) instead of compiling them again.
    """
    from rlstab_jax.train.session import build_session

    return build_session(cfg)


def _check_session(session: Any, cfg: Config) -> None:
    """A reused session must have been built from the same agent/env/replay settings."""
    if session is None:
        return
    old, new = session.cfg.to_dict(), cfg.to_dict()
    for part in ("agent", "env", "replay"):
        # compared as JSON text: NaN fields (target_entropy_total) are not == themselves
        if json.dumps(old[part], sort_keys=True) != json.dumps(new[part], sort_keys=True):
            raise ConfigError(f"session was built for a different '{part}' config than this "
                              f"run; build a new one with make_session(cfg)")
    if session.cfg.train.seeds != cfg.train.seeds or (
            session.cfg.train.chunk_steps != cfg.train.chunk_steps):
        raise ConfigError("session was built for different train.seeds/train.chunk_steps; "
                          "build a new one with make_session(cfg)")


def train(cfg: Config, *, session: Any = None, progress: bool = False) -> Any:
    """Train ``cfg`` to ``train.total_steps`` env steps per seed (all seeds vmapped).

    ``session``: from :func:`make_session` (same config) to reuse its compiled chunk.

    Returns the loop's ``RunResult`` (``run_dir``, final ``state``, metric ``rows``,
    ``final_eval``). Raises ``NonFiniteError`` when updates stayed non-finite for
    ``train.max_nonfinite`` consecutive steps (the last good checkpoint is kept).
    """
    from rlstab_jax.train.loop import run

    _check_session(session, cfg)
    return run(cfg, session=session, progress=progress)


def resume(run_dir: str | Path, overrides: Overrides = None, *, session: Any = None,
           progress: bool = False) -> Any:
    """Continue ``run_dir`` from its latest checkpoint (e.g. to a larger ``train.total_steps``).

    The run's own ``config.yaml`` is the base; ``overrides`` go on top. Resuming with a
    different architecture raises ``ConfigError`` naming the differing keys. ``session``: the
    one the run was trained with (reuses its compiled chunk; overrides must then leave the
    agent, env and replay settings unchanged).
    """
    from rlstab_jax.train.loop import run

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"resume {run_dir}: no config.yaml there (not a run directory)")
    cfg = load_config(base=read_yaml(run_dir / "config.yaml"), overrides=_dotlist(overrides))
    _check_session(session, cfg)
    return run(cfg, resume=run_dir, session=session, progress=progress)


def evaluate(run_dir: str | Path, *, best: bool = True, episodes: int | None = None,
             seed: int = 0, session: Any = None) -> dict[str, np.ndarray]:
    """Evaluate a run's best (or latest) checkpoint: ``{"eval/return": [S], ...}`` per seed.

    The deterministic and the stochastic policy are evaluated on ``episodes`` episodes
    (default: the run's ``train.eval_episodes``) with keys derived from ``seed``. ``session``
    (the run's, from :func:`make_session`) reuses its compiled evaluation; it then evaluates
    the session's ``train.eval_episodes`` and ``episodes`` must be ``None``.
    """
    import jax

    if session is not None and episodes is not None:
        raise ConfigError("evaluate: pass either session or episodes (a session's episode "
                          "count is compiled in)")
    overrides = [] if episodes is None else [f"train.eval_episodes={int(episodes)}"]
    sess, state, _ = restore_run(run_dir, best=best, overrides=overrides, session=session)
    keys = jax.numpy.stack([jax.random.PRNGKey(seed + 104729 * (i + 1))
                            for i in range(sess.n_seeds)])
    out = jax.device_get(sess.evaluate(state, keys, sess.hparams))
    return {k: np.asarray(v) for k, v in out.items()}


def metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of ``run_dir/metrics.jsonl`` (one per log step and seed)."""
    from rlstab_jax.train.metrics import read_metrics

    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no metrics.jsonl (not a run directory)")
    return read_metrics(path)
