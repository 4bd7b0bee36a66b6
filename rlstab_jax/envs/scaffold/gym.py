"""gymnasium view of ``Scaffold`` and the ``Scaffold-v0`` registration.

``gymnasium.make("Scaffold-v0")`` (after ``import rlstab_jax.envs.scaffold``): MultiDiscrete
actions (the 8 heads), Box observations (features, blueprint ids, masks), each step one jitted
JAX call, truncation at the horizon, ``render_mode="rgb_array"`` draws
:func:`render.render_frame`. Train on the pure-JAX env (vmap + scan); this is for notebooks,
host tooling and ``check_env``.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.envs.scaffold.env import Scaffold, head_sizes
from rlstab_jax.envs.scaffold.render import render_frame

ENV_ID = "Scaffold-v0"
_ENV = Scaffold()
_step = jax.jit(_ENV.step_env)
_reset = jax.jit(_ENV.reset_env)


class ScaffoldGymEnv(gymnasium.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None, **overrides: Any):
        from rlstab_jax.envs.scaffold import make_scaffold

        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.env, self.params = make_scaffold(**overrides)
        self.render_mode = render_mode
        self.action_space = gymnasium.spaces.MultiDiscrete(np.array(head_sizes(self.params)))
        # the factored spec (heads, op table, masks in the obs) for rlstab_jax's gymnasium driver
        self.rlstab_spec = self.env.env_spec(self.params, ENV_ID)
        self.observation_space = gymnasium.spaces.Box(
            -np.inf, np.inf, (self.env.obs_dim(self.params),), np.float32)
        self._frame = jax.jit(lambda s: render_frame(s, self.params))
        self._state = None
        self._key = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None or self._key is None:
            self._key = jax.random.key(int(self.np_random.integers(0, 2**31 - 1)))
        self._key, k = jax.random.split(self._key)
        obs, self._state = _reset(k, self.params)
        return np.asarray(obs, np.float32), {}

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        self._key, k = jax.random.split(self._key)
        a = jnp.asarray(np.asarray(action, np.int32).reshape(-1))
        obs, self._state, reward, terminated, info = _step(k, self._state, a, self.params)
        truncated = bool(self._state.time >= self.params.max_steps_in_episode)
        info = {k_: (bool(v) if np.asarray(v).dtype == bool else float(v))
                for k_, v in info.items()}
        return np.asarray(obs, np.float32), float(reward), bool(terminated), truncated, info

    def render(self):
        if self.render_mode != "rgb_array" or self._state is None:
            return None
        return np.asarray(self._frame(self._state))


if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="rlstab_jax.envs.scaffold.gym:ScaffoldGymEnv")
