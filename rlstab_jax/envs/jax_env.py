"""Pure-JAX environments: a gymnax env plus params, seen through one small interface.

Collect and update then run inside one ``lax.scan`` with no host round-trip. Continuous actions
arrive in ``[-1, 1]`` and are rescaled to the env's Box here, so agents never see env bounds.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces as gspaces

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.envs.spec import EnvSpec


@dataclasses.dataclass(frozen=True)
class JaxEnv:
    """A gymnax ``Environment`` with fixed params; single-env functions (vmap for batches).

    ``step`` auto-resets and returns the true last observation as ``final_obs`` so truncated
    episodes can bootstrap from it.
    """

    env: Any
    params: Any
    spec: EnvSpec
    _scale: tuple[np.ndarray, np.ndarray] | None = None

    def reset(self, key: jax.Array) -> tuple[Any, jax.Array]:
        obs, state = self.env.reset(key, self.params)
        return state, self._obs(obs)

    def step(self, key: jax.Array, state: Any, action: jax.Array):
        """Returns ``(state, obs, reward, terminated, truncated, final_obs)``."""
        env_action = self.to_env_action(action)
        obs, state, reward, terminated, truncated, info = self.env.step(
            key, state, env_action, self.params
        )
        final_obs = info.get("final_observation", obs)
        return (
            state,
            self._obs(obs),
            jnp.asarray(reward, jnp.float32).reshape(()),
            jnp.asarray(terminated, bool).reshape(()),
            jnp.logical_and(
                jnp.asarray(truncated, bool).reshape(()), ~jnp.asarray(terminated, bool).reshape(())
            ),
            self._obs(final_obs),
        )

    def to_env_action(self, action: jax.Array) -> jax.Array:
        if self.spec.action_kind in ("discrete", "factored"):
            return jnp.asarray(action, jnp.int32)
        low, high = (jnp.asarray(v, jnp.float32) for v in self._scale)
        a = jnp.clip(action, -1.0, 1.0)
        return low + 0.5 * (a + 1.0) * (high - low)

    def _obs(self, obs: Any) -> jax.Array:
        dtype = jnp.uint8 if self.spec.obs_dtype == "uint8" else jnp.float32
        return jnp.asarray(obs, dtype).reshape(self.spec.obs_shape)


def spec_from_gymnax(env_id: str, env: Any, params: Any) -> EnvSpec:
    """Build an EnvSpec from gymnax spaces, rejecting spaces no agent here can handle.

    An env with factored actions or masks in the observation describes itself with
    ``env_spec(params, env_id) -> EnvSpec`` (e.g. the scaffold env).
    """
    if hasattr(env, "env_spec"):
        return env.env_spec(params, env_id)
    obs_space = env.observation_space(params)
    act_space = env.action_space(params)
    obs_shape = tuple(int(d) for d in getattr(obs_space, "shape", ()))
    obs_dtype = (
        "uint8" if np.dtype(getattr(obs_space, "dtype", np.float32)) == np.uint8 else "float32"
    )
    if not obs_shape:
        obs_shape = (1,)
    names = tuple(env.action_names(params)) if hasattr(env, "action_names") else ()
    max_steps = getattr(params, "max_steps_in_episode", None)
    if isinstance(act_space, gspaces.Discrete):
        return EnvSpec(
            env_id,
            obs_shape,
            obs_dtype,
            "discrete",
            int(act_space.n),
            action_names=names,
            max_episode_steps=max_steps,
        )
    if isinstance(act_space, gspaces.Box):
        shape = tuple(int(d) for d in act_space.shape) or (1,)
        if len(shape) != 1:
            raise ConfigError(f"env {env_id!r}: Box action spaces must be 1-d, got shape {shape}")
        low = np.broadcast_to(np.asarray(act_space.low, np.float32), shape)
        high = np.broadcast_to(np.asarray(act_space.high, np.float32), shape)
        return EnvSpec(
            env_id,
            obs_shape,
            obs_dtype,
            "continuous",
            shape[0],
            tuple(map(float, low)),
            tuple(map(float, high)),
            names,
            max_steps,
        )
    raise ConfigError(
        f"env {env_id!r}: action space {type(act_space).__name__} is not supported "
        f"(Discrete or 1-d Box)"
    )


def make_jax_env(env_id: str, env: Any, params: Any) -> JaxEnv:
    spec = spec_from_gymnax(env_id, env, params)
    scale = None
    if spec.action_kind == "continuous":
        scale = (np.asarray(spec.action_low, np.float32), np.asarray(spec.action_high, np.float32))
    return JaxEnv(env, params, spec, scale)
