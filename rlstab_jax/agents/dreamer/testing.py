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

PIXEL_SPEC = EnvSpec(env_id="test/pixels", obs_shape=(16, 16, 3), obs_dtype="uint8",
                     action_kind="continuous", action_dim=3, action_low=(-1.0,) * 3,
                     action_high=(1.0,) * 3, action_names=("steer", "gas", "brake"),
                     max_episode_steps=50)
TINY_CNN = dict(encoder="cnn", cnn_channels=(4, 8), cnn_kernels=(4, 4), cnn_strides=(2, 2))


def tiny_cfg(**overrides) -> DreamerConfig:
    base = dict(deter=16, stoch_groups=4, stoch_classes=4, hidden=16, layers=1, num_bins=15,
                batch_size=4, seq_len=8, horizon=5, train_ratio=32.0)
    base.update(overrides)
    return DreamerConfig(**base)


def tiny_pixel_cfg(**overrides) -> DreamerConfig:
    """``tiny_cfg`` with a 2-layer stride-2 CNN (4, 8 channels): 16x16 frames -> 4x4x8."""
    return tiny_cfg(**{**TINY_CNN, **overrides})


def build(cfg: DreamerConfig, spec: EnvSpec = DISCRETE_SPEC, seed: int = 0):
    agent = make_agent(cfg, spec)
    hp = extract_hparams(cfg)
    return agent, hp, jax.jit(agent.init)(jax.random.key(seed), hp)


def square_frames(rng: np.random.Generator, lead: tuple, shape: tuple) -> np.ndarray:
    """uint8 frames ``[*lead, H, W, C]``: a random background colour and one bright square of
    side ``H // 4`` at a random place per frame (structure a pixel decoder can learn)."""
    h, w, c = shape
    side = max(1, h // 4)
    frames = np.broadcast_to(rng.integers(0, 128, size=lead + (1, 1, c)), lead + shape).copy()
    rows = rng.integers(0, h - side + 1, size=lead)
    cols = rng.integers(0, w - side + 1, size=lead)
    for idx in np.ndindex(*lead):
        r, q = rows[idx], cols[idx]
        frames[idx + (slice(r, r + side), slice(q, q + side))] = 255
    return frames.astype(np.uint8)


def _obs(rng: np.random.Generator, spec: EnvSpec, lead: tuple) -> np.ndarray:
    if spec.obs_dtype == "uint8":
        return square_frames(rng, lead, tuple(spec.obs_shape))
    return rng.normal(size=lead + tuple(spec.obs_shape)).astype(np.float32)


def make_seq(spec: EnvSpec, B: int, T: int, seed: int = 0, ends: tuple = ()) -> SeqBatch:
    """Random rows ``[B, T]``; ``ends`` lists (b, t) where an episode terminates.

    Observations: float32 normals, or for a uint8 spec ``square_frames`` (kept uint8, as
    replay stores them).
    """
    rng = np.random.default_rng(seed)
    obs = _obs(rng, spec, (B, T))
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
    next_obs = _obs(rng, spec, (B, T))
    return SeqBatch(obs=jnp.asarray(obs), action=jnp.asarray(action),
                    reward=jnp.asarray(rng.normal(size=(B, T)).astype(np.float32)),
                    next_obs=jnp.asarray(next_obs), terminated=jnp.asarray(term),
                    truncated=jnp.zeros((B, T), bool), is_first=jnp.asarray(first))


def replace(cfg: DreamerConfig, **kw) -> DreamerConfig:
    return dataclasses.replace(cfg, **kw)
