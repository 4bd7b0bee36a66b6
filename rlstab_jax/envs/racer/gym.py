"""gymnasium wrapper around the pure-JAX ``Racer`` and the ``Racer-v0`` registration.

``gymnasium.make("Racer-v0", **param_overrides)`` (after ``import rlstab_jax.envs.racer``)
gives a single, host-side env: each ``step`` is one jitted JAX call. It truncates itself at
``max_steps_in_episode`` (no extra ``TimeLimit``). ``render_mode="rgb_array"`` draws the whole
track, the trail of the last ``trail_length`` positions and the car.

Use it for host-side tooling (gymnasium vector envs, notebooks, ``check_env``); training on
Racer should use the pure-JAX env directly (vmap + scan), which is orders of magnitude faster.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.envs.racer import render
from rlstab_jax.envs.racer.env import EnvParams, Racer, get_track

ENV_ID = "Racer-v0"

_ENV = Racer()
_step = jax.jit(_ENV.step_env)
_reset = jax.jit(_ENV.reset_env)
_frame = jax.jit(render.render_frame)


class RacerGymEnv(gymnasium.Env):
    """``gymnasium.Env`` view of :class:`Racer` (numpy obs/actions, python info values).

    Args:
      render_mode: ``None`` or ``"rgb_array"``.
      render_size: side of rendered frames (pixels).
      trail_length: number of past positions drawn as the trail.
      **overrides: :class:`EnvParams` fields (e.g. ``pixels=True``).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None, render_size: int = 256,
                 trail_length: int = 400, **overrides: Any):
        from rlstab_jax.envs.racer import make_racer  # validates override names

        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.env, self.params = make_racer(**overrides)
        self.render_mode = render_mode
        self.render_size = int(render_size)
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / float(self.params.dt)))}
        self.action_names = self.env.action_names(self.params)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (3,), np.float32)
        space = self.env.observation_space(self.params)
        if self.params.pixels:
            self.observation_space = gymnasium.spaces.Box(0, 255, tuple(space.shape), np.uint8)
        else:
            self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, tuple(space.shape),
                                                          np.float32)
        self._state = None
        self._key = None
        self._trail: deque = deque(maxlen=int(trail_length))
        self._bg = None

    def _obs(self, obs: jax.Array) -> np.ndarray:
        return np.asarray(obs, self.observation_space.dtype)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None or self._key is None:
            self._key = jax.random.key(int(self.np_random.integers(0, 2**31 - 1)))
        self._key, k = jax.random.split(self._key)
        obs, self._state = _reset(k, self.params)
        self._trail.clear()
        self._trail.append((float(self._state.x), float(self._state.y)))
        if self.params.random_track:
            self._bg = None
        return self._obs(obs), {}

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        a = jnp.asarray(np.asarray(action, np.float32).reshape(3))
        self._key, k = jax.random.split(self._key)
        obs, self._state, reward, terminated, info = _step(k, self._state, a, self.params)
        truncated = bool(self.env.is_truncated(self._state, self.params)) and not bool(terminated)
        self._trail.append((float(self._state.x), float(self._state.y)))
        info = {name: (bool(v) if np.asarray(v).dtype == bool else float(v))
                for name, v in info.items()}
        return self._obs(obs), float(reward), bool(terminated), truncated, info

    def render(self):
        if self.render_mode != "rgb_array" or self._state is None:
            return None
        if self._bg is None:
            track = get_track(self._state.track_id, self.params)
            self._bg = render.background(track, float(self.params.half_width), self.render_size)
        bg, view = self._bg
        # Fixed-size trail buffer + mask: one compiled frame function whatever the trail length.
        trail = np.zeros((self._trail.maxlen, 2), np.float32)
        mask = np.zeros((self._trail.maxlen,), bool)
        trail[:len(self._trail)] = np.asarray(self._trail, np.float32).reshape(-1, 2)
        mask[:len(self._trail)] = True
        s = self._state
        return np.asarray(_frame(bg, view, s.x, s.y, s.heading, trail, mask))


def _register() -> None:
    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point="rlstab_jax.envs.racer.gym:RacerGymEnv")


_register()

__all__ = ["ENV_ID", "EnvParams", "RacerGymEnv"]
