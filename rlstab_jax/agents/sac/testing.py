"""Test helpers for the SAC family: tiny configs, a vector spec and synthetic batches.

Used by ``tests/agents/test_sac*.py`` and handy for driver tests that need an agent and a
batch of the right shapes without an env.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from rlstab_jax.agents.base import Batch
from rlstab_jax.agents.sac import SACConfig, make_agent
from rlstab_jax.config.split import extract_hparams
from rlstab_jax.envs.spec import EnvSpec

VEC_SPEC = EnvSpec("test/vec", (3,), "float32", "continuous", 2, (-1.0, -1.0), (1.0, 1.0),
                   ("steer", "gas"))
TINY = dict(actor_hidden=(16, 16), critic_hidden=(16, 16), batch_size=8)


def tiny_cfg(**kw) -> SACConfig:
    """A SACConfig with 16x16 nets and batch 8, overridden by ``kw``."""
    return SACConfig(**{**TINY, **kw})


@functools.lru_cache(maxsize=16)
def build(cfg: SACConfig, spec: EnvSpec = VEC_SPEC, seed: int = 0):
    """``(agent, hparams, state)`` for ``cfg`` on ``spec`` (jitted init, cached per args).

    The returned arrays are immutable, so sharing the cached state between tests is safe;
    do not mutate the returned ``hparams`` dict in place (copy it).
    """
    agent = make_agent(cfg, spec)
    hp = extract_hparams(cfg)
    return agent, hp, jax.jit(agent.init)(jax.random.key(seed), hp)


def make_batch(spec: EnvSpec, u: int, b: int, key=None, dtype=jnp.float32, **over) -> Batch:
    """A random ``Batch`` with leaves ``[u, b, ...]``; ``over`` replaces fields."""
    key = jax.random.key(42) if key is None else key
    k1, k2, k3, k4 = jax.random.split(key, 4)
    if dtype == jnp.uint8:
        obs = jax.random.randint(k1, (u, b, *spec.obs_shape), 0, 256).astype(jnp.uint8)
        nobs = jax.random.randint(k2, (u, b, *spec.obs_shape), 0, 256).astype(jnp.uint8)
    else:
        obs = jax.random.normal(k1, (u, b, *spec.obs_shape))
        nobs = jax.random.normal(k2, (u, b, *spec.obs_shape))
    fields = dict(obs=obs, action=jax.random.uniform(k3, (u, b, spec.action_dim), minval=-1,
                                                     maxval=1),
                  reward=jax.random.normal(k4, (u, b)), next_obs=nobs,
                  terminated=jnp.zeros((u, b), bool), discount=jnp.full((u, b), 0.99),
                  is_demo=jnp.zeros((u, b), jnp.float32))
    fields.update(over)
    return Batch(**fields)


def replace(cfg: SACConfig, **kw) -> SACConfig:
    """``dataclasses.replace`` for configs."""
    return dataclasses.replace(cfg, **kw)
