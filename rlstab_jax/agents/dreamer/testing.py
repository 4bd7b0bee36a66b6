"""Tiny Dreamer configs and synthetic sequence batches for tests (CPU-cheap)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.agents.base import SeqBatch
from rlstab_jax.agents.dreamer.agent import make_agent
from rlstab_jax.agents.dreamer.config import DreamerConfig
from rlstab_jax.config.split import extract_hparams
from rlstab_jax.envs.spec import EnvSpec

DISCRETE_SPEC = EnvSpec(env_id="test/discrete", obs_shape=(4,), obs_dtype="float32",
                        action_kind="discrete", action_dim=2, action_low=(), action_high=(),
                        action_names=("a",), max_episode_steps=50)
CONTINUOUS_SPEC = EnvSpec(env_id="test/continuous", obs_shape=(3,), obs_dtype="float32",
                          action_kind="continuous", action_dim=1, action_low=(-2.0,),
                          action_high=(2.0,), action_names=("torque",), max_episode_steps=50)


def tiny_cfg(**overrides) -> DreamerConfig:
    base = dict(deter=16, stoch_groups=4, stoch_classes=4, hidden=16, layers=1, num_bins=15,
                batch_size=4, seq_len=8, horizon=5, train_ratio=32.0)
    base.update(overrides)
    return DreamerConfig(**base)


def build(cfg: DreamerConfig, spec: EnvSpec = DISCRETE_SPEC, seed: int = 0):
    agent = make_agent(cfg, spec)
    hp = extract_hparams(cfg)
    return agent, hp, jax.jit(agent.init)(jax.random.key(seed), hp)


def make_seq(spec: EnvSpec, B: int, T: int, seed: int = 0, ends: tuple = ()) -> SeqBatch:
    """Random rows ``[B, T]``; ``ends`` lists (b, t) where an episode terminates."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(B, T) + spec.obs_shape).astype(np.float32)
    if spec.action_kind == "discrete":
        action = rng.integers(0, spec.action_dim, size=(B, T)).astype(np.int32)
    else:
        action = rng.uniform(-1, 1, size=(B, T, spec.action_dim)).astype(np.float32)
    term = np.zeros((B, T), bool)
    for b, t in ends:
        term[b, t] = True
    first = np.zeros((B, T), bool)
    first[:, 0] = True
    first[:, 1:] = term[:, :-1]
    next_obs = rng.normal(size=obs.shape).astype(np.float32)
    return SeqBatch(obs=jnp.asarray(obs), action=jnp.asarray(action),
                    reward=jnp.asarray(rng.normal(size=(B, T)).astype(np.float32)),
                    next_obs=jnp.asarray(next_obs), terminated=jnp.asarray(term),
                    truncated=jnp.zeros((B, T), bool), is_first=jnp.asarray(first))


def replace(cfg: DreamerConfig, **kw) -> DreamerConfig:
    return dataclasses.replace(cfg, **kw)
