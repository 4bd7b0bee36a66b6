"""gymnax-style observation wrappers: frame stacking (pixels) and a history context.

Both wrap the public ``reset``/``step`` of a gymnax ``Environment`` (gymnax 1.x: ``step``
returns ``(obs, state, reward, terminated, truncated, info)``, auto-resets and stores the true
last observation in ``info["final_observation"]``) and keep that contract: the wrapped
``final_observation`` is built from the pre-reset stack/history, so a truncated episode
bootstraps from the right input.

* ``FrameStack(env, k)``: the last k observations concatenated on the LAST (channel) axis,
  ``[H, W, C] -> [H, W, k*C]`` (oldest first), filled with the first observation at reset.
  The pixel path of field report 001 (CNN with GroupNorm) reads motion from it.
* ``HistoryContext(env, k)``: the flat observation ``o_t`` followed by the last k
  ``(obs, action)`` pairs, oldest first::

      [o_t (O), o_{t-k}, a_{t-k}, ..., o_{t-1}, a_{t-1}]   size O + k * (O + A)

  zero-filled before the episode start. Actions are stored as the agent's ``[-1, 1]`` values
  (Box bounds undone) or one-hot for ``Discrete`` (A = n). ``rlstab_jax.nn.context.
  split_context_obs(obs, A, k)`` inverts this layout for the context transformer (field
  report 001 §3, FiLM-conditioned actor).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces
from gymnax.wrappers.purerl import GymnaxWrapper


@struct.dataclass
class FrameStackState:
    """Inner env state plus the stacked frames ``[..., k*C]``."""

    env_state: Any
    frames: jax.Array


class FrameStack(GymnaxWrapper):
    """Stack the last ``k`` observations on the channel (last) axis.

    Raises:
      ValueError: if ``k < 1``.
    """

    def __init__(self, env: Any, k: int):
        super().__init__(env)
        if int(k) < 1:
            raise ValueError(f"FrameStack needs k >= 1, got {k}")
        self.k = int(k)

    def observation_space(self, params: Any) -> spaces.Box:
        inner = self._env.observation_space(params)
        shape = (*inner.shape[:-1], inner.shape[-1] * self.k)
        tile = lambda x: np.concatenate([np.broadcast_to(x, inner.shape)] * self.k, -1)  # noqa
        return spaces.Box(tile(inner.low), tile(inner.high), shape, inner.dtype)

    def _tile(self, obs: jax.Array) -> jax.Array:
        return jnp.concatenate([obs] * self.k, axis=-1)

    def _push(self, frames: jax.Array, obs: jax.Array) -> jax.Array:
        c = obs.shape[-1]
        return jnp.concatenate([frames[..., c:], obs], axis=-1)

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, FrameStackState]:
        obs, state = self._env.reset(key, params)
        frames = self._tile(obs)
        return frames, FrameStackState(state, frames)

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: FrameStackState, action: Any, params: Any = None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params)
        done = jnp.logical_or(terminated, truncated)
        final = self._push(state.frames, info.get("final_observation", obs))
        frames = jnp.where(done, self._tile(obs), self._push(state.frames, obs))
        info = {**info, "final_observation": final}
        return frames, FrameStackState(env_state, frames), reward, terminated, truncated, info


@struct.dataclass
class HistoryState:
    """Inner env state, the current flat observation ``[O]`` and the history ``[k, O + A]``."""

    env_state: Any
    obs: jax.Array
    history: jax.Array


class HistoryContext(GymnaxWrapper):
    """Append the last ``k`` (obs, action) pairs to a flat observation (layout in module doc).

    Raises:
      ValueError: if ``k < 1`` or the action space is neither Box nor Discrete.
    """

    def __init__(self, env: Any, k: int, params: Any = None):
        super().__init__(env)
        if int(k) < 1:
            raise ValueError(f"HistoryContext needs k >= 1, got {k}")
        self.k = int(k)
        p = env.default_params if params is None else params
        self.obs_dim = int(np.prod(env.observation_space(p).shape))
        space = env.action_space(p)
        if isinstance(space, spaces.Discrete):
            self.act_dim, self._bounds = int(space.n), None
        elif isinstance(space, spaces.Box):
            self.act_dim = int(np.prod(space.shape)) if space.shape else 1
            low = np.broadcast_to(np.asarray(space.low, np.float32), (self.act_dim,))
            high = np.broadcast_to(np.asarray(space.high, np.float32), (self.act_dim,))
            self._bounds = (tuple(map(float, low)), tuple(map(float, high)))
        else:
            raise ValueError(f"HistoryContext supports Box or Discrete actions, got {space}")

    @property
    def pair_dim(self) -> int:
        return self.obs_dim + self.act_dim

    def observation_space(self, params: Any) -> spaces.Box:
        size = self.obs_dim + self.k * self.pair_dim
        return spaces.Box(-np.inf, np.inf, (size,), jnp.float32)

    def _encode_action(self, action: Any) -> jax.Array:
        if self._bounds is None:
            return jax.nn.one_hot(jnp.asarray(action, jnp.int32).reshape(()), self.act_dim)
        low, high = (jnp.asarray(b, jnp.float32) for b in self._bounds)
        a = jnp.asarray(action, jnp.float32).reshape(self.act_dim)
        return 2.0 * (a - low) / jnp.where(high > low, high - low, 1.0) - 1.0

    def _observe(self, obs: jax.Array, history: jax.Array) -> jax.Array:
        return jnp.concatenate([obs, history.reshape(-1)])

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params: Any = None) -> tuple[jax.Array, HistoryState]:
        obs, state = self._env.reset(key, params)
        obs = jnp.asarray(obs, jnp.float32).reshape(-1)
        history = jnp.zeros((self.k, self.pair_dim), jnp.float32)
        return self._observe(obs, history), HistoryState(state, obs, history)

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: HistoryState, action: Any, params: Any = None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params)
        obs = jnp.asarray(obs, jnp.float32).reshape(-1)
        final = jnp.asarray(info.get("final_observation", obs), jnp.float32).reshape(-1)
        pair = jnp.concatenate([state.obs, self._encode_action(action)])
        pushed = jnp.concatenate([state.history[1:], pair[None]], axis=0)
        done = jnp.logical_or(terminated, truncated)
        history = jnp.where(done, jnp.zeros_like(pushed), pushed)
        info = {**info, "final_observation": self._observe(final, pushed)}
        return (self._observe(obs, history), HistoryState(env_state, obs, history), reward,
                terminated, truncated, info)
