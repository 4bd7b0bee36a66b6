"""Load a trained policy from a run directory (for demo recording, evaluation, notebooks)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from rlstab_jax.agents.base import act_step
from rlstab_jax.config.errors import ConfigError
from rlstab_jax.config.loader import load_config, read_yaml
from rlstab_jax.envs.spec import EnvSpec


def restore_run(run_dir: str | Path, best: bool = True, overrides: list[str] | None = None,
                session: Any = None) -> tuple[Any, Any, dict[str, Any]]:
    """``(session, state, meta)`` of a run directory's best (or latest) checkpoint.

    Uses the best-by-eval checkpoint when ``best`` and one exists, else the latest. The run's
    architecture fingerprint is checked. ``overrides`` change non-architecture keys of the
    rebuilt session (e.g. ``["train.eval_episodes=20"]``); a given ``session`` is used
    instead of building one (its fingerprint must match the checkpoint's).

    Raises:
      ConfigError: not a run directory, or no checkpoint in it.
    """
    from rlstab_jax.train.checkpoint import CheckpointStore
    from rlstab_jax.train.session import build_session

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml)")
    cfg = load_config(base=read_yaml(run_dir / "config.yaml"), overrides=overrides)
    sess = session if session is not None else build_session(cfg)
    store = CheckpointStore(run_dir / "checkpoints", keep=cfg.checkpoint.keep,
                            fingerprint=sess.fingerprint())
    try:
        target = sess.abstract_state()
        if best and store.best_eval_return is not None:
            state, meta = store.restore_best(target)
        elif store.latest_step() is not None:
            state, meta = store.restore(target)
        else:
            raise ConfigError(f"{run_dir}: no checkpoint to load a policy from")
    finally:
        store.close()
    return sess, state, meta


def load_policy(run_dir: str | Path, spec: EnvSpec | None = None, deterministic: bool = True,
                seed_index: int = 0, best: bool = True
                ) -> Callable[[jax.Array, jax.Array], Any] | RecurrentPolicy:
    """``policy(obs[B, ...], key) -> action`` of seed ``seed_index`` of a run.

    Recurrent agents (Dreamer's RSSM latent, LSTM PPO) return a :class:`RecurrentPolicy`
    instead: ``policy(obs[B, ...], key, carry, is_first[B]) -> (action, carry)`` with
    ``policy.init_carry(B)``; pass ``is_first=True`` at the first step of each episode (the
    agent resets its latent there itself, as in training and evaluation).

    Uses the best-by-eval checkpoint when ``best`` and one exists, else the latest. The run's
    architecture fingerprint is checked; ``spec`` (if given) must match the run's env spaces.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no config.yaml)")
    seeds = load_config(base=read_yaml(run_dir / "config.yaml")).train.seeds
    if not 0 <= seed_index < seeds:
        raise ConfigError(f"seed_index={seed_index} out of range: the run has "
                          f"{seeds} seeds")
    sess, state, _ = restore_run(run_dir, best=best)
    if spec is not None and (spec.obs_shape, spec.action_dim) != (sess.spec.obs_shape,
                                                                  sess.spec.action_dim):
        raise ConfigError(f"{run_dir}: policy expects obs {sess.spec.obs_shape} and "
                          f"{sess.spec.action_dim} actions, env has {spec.obs_shape} and "
                          f"{spec.action_dim}")
    agent_state = jax.tree.map(lambda x: x[seed_index], state.agent)
    hparams = jax.tree.map(lambda x: x[seed_index], sess.hparams)

    if sess.agent.init_carry is not None:
        agent = sess.agent

        @jax.jit
        def step(obs, key, carry, is_first):
            action, carry, _ = act_step(agent, agent_state, obs, key, hparams, deterministic,
                                        carry, is_first)
            return action, carry

        return RecurrentPolicy(step, agent.init_carry)

    @jax.jit
    def policy(obs: jax.Array, key: jax.Array) -> jax.Array:
        out = sess.agent.act(agent_state, obs, key, hparams, deterministic=deterministic)
        return out[0] if isinstance(out, tuple) else out

    return policy


@dataclasses.dataclass(frozen=True)
class RecurrentPolicy:
    """A loaded recurrent policy: ``(action, carry) = policy(obs, key, carry, is_first)``.

    ``init_carry(n)`` gives the carry for ``n`` envs (leaves ``[n, ...]``); ``is_first [n]``
    bool marks the first step of an episode, where the agent resets the carry itself.
    """

    step: Callable[..., tuple[Any, Any]]
    init_carry: Callable[[int], Any]

    def __call__(self, obs: jax.Array, key: jax.Array, carry: Any, is_first: jax.Array
                 ) -> tuple[Any, Any]:
        return self.step(obs, key, carry, jnp.asarray(is_first, bool))
