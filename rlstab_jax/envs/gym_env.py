"""Host-side gymnasium environments, vectorised, behind the same EnvSpec as pure-JAX envs.

Simulator state of a gymnasium env cannot be saved safely, so a resumed run restores all
learner state exactly and starts fresh episodes (see README, "Resume").
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.envs.spec import EnvSpec


# Action-dimension names of well-known gymnasium envs (for per-dim telemetry: alpha/steer).
KNOWN_ACTION_NAMES: dict[str, tuple[str, ...]] = {
    "CarRacing-v3": ("steer", "gas", "brake"),
    "CarRacing-v2": ("steer", "gas", "brake"),
    "LunarLanderContinuous-v3": ("main", "lateral"),
}


def spec_from_gymnasium(
    env_id: str, obs_space: Any, act_space: Any, max_steps: int | None, names: tuple[str, ...] = ()
) -> EnvSpec:
    if not isinstance(obs_space, gym.spaces.Box):
        raise ConfigError(
            f"env {env_id!r}: observation space {type(obs_space).__name__} is not "
            f"supported (only Box observations)"
        )
    obs_dtype = "uint8" if obs_space.dtype == np.uint8 else "float32"
    obs_shape = tuple(int(d) for d in obs_space.shape)
    if isinstance(act_space, gym.spaces.Discrete):
        return EnvSpec(
            env_id,
            obs_shape,
            obs_dtype,
            "discrete",
            int(act_space.n),
            action_names=names,
            max_episode_steps=max_steps,
        )
    if isinstance(act_space, gym.spaces.Box):
        if len(act_space.shape) != 1:
            raise ConfigError(
                f"env {env_id!r}: Box action spaces must be 1-d, got {act_space.shape}"
            )
        return EnvSpec(
            env_id,
            obs_shape,
            obs_dtype,
            "continuous",
            int(act_space.shape[0]),
            tuple(map(float, act_space.low)),
            tuple(map(float, act_space.high)),
            names,
            max_steps,
        )
    raise ConfigError(
        f"env {env_id!r}: action space {type(act_space).__name__} is not supported "
        f"(Discrete or 1-d Box)"
    )


class GymVecEnv:
    """A gymnasium vector env (same-step autoreset) that returns the true final observations.

    ``step`` returns ``(obs, reward, terminated, truncated, final_obs)`` as numpy arrays where
    ``final_obs[i]`` is the last observation of an episode that ended at this step (else equal to
    ``obs[i]``), so truncation can bootstrap (TESTING.md pattern 7).
    """

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        *,
        asynchronous: bool = False,
        kwargs: dict[str, Any] | None = None,
    ):
        try:
            self.env = gym.make_vec(
                env_id,
                num_envs=num_envs,
                vectorization_mode="async" if asynchronous else "sync",
                vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
                **(kwargs or {}),
            )
        except gym.error.Error as e:
            raise ConfigError(f"env.id={env_id!r}: {str(e).splitlines()[0]}") from None
        self.num_envs = num_envs
        single = self.env.single_action_space
        spec = getattr(self.env, "spec", None)
        max_steps = getattr(spec, "max_episode_steps", None) if spec else None
        names = (
            tuple(self.env.get_attr("action_names")[0])
            if _has_names(self.env)
            else KNOWN_ACTION_NAMES.get(env_id, ())
        )
        declared = _declared_spec(self.env)
        self.spec = declared if declared is not None else spec_from_gymnasium(
            env_id, self.env.single_observation_space, single, max_steps, names
        )
        if self.spec.action_kind == "continuous":
            self._low = np.asarray(self.spec.action_low, np.float32)
            self._high = np.asarray(self.spec.action_high, np.float32)

    def reset(self, seed: int | list[int]) -> np.ndarray:
        """New episodes everywhere: sub-env ``i`` is seeded ``seed + i`` (gymnasium's rule for
        an int) or ``seed[i]`` (a list: one seed per sub-env)."""
        obs, _ = self.env.reset(seed=seed)
        return self._obs(obs)

    def step(self, action: np.ndarray):
        if self.spec.action_kind == "continuous":
            a = np.clip(np.asarray(action, np.float32), -1.0, 1.0)
            env_action = self._low + 0.5 * (a + 1.0) * (self._high - self._low)
        else:
            env_action = np.asarray(action, np.int64)
        obs, reward, terminated, truncated, info = self.env.step(env_action)
        obs = self._obs(obs)
        final_obs = obs.copy()
        done = np.logical_or(terminated, truncated)
        if done.any():
            for i in np.flatnonzero(done):
                final_obs[i] = np.asarray(info["final_obs"][i])
        truncated = np.logical_and(truncated, ~terminated)
        return (
            obs,
            np.asarray(reward, np.float32),
            np.asarray(terminated, bool),
            np.asarray(truncated, bool),
            final_obs,
        )

    def _obs(self, obs: Any) -> np.ndarray:
        dtype = np.uint8 if self.spec.obs_dtype == "uint8" else np.float32
        return np.asarray(obs, dtype)

    def close(self) -> None:
        self.env.close()


def _declared_spec(env: Any) -> EnvSpec | None:
    """The ``rlstab_spec`` EnvSpec an env declares (factored actions, masks in the obs).

    A gymnasium ``MultiDiscrete`` space does not say which entry is the op, which heads an op
    uses or where the validity masks sit in the observation; an env that has them (Scaffold-v0)
    sets ``rlstab_spec`` to the same EnvSpec its pure-JAX version reports.
    """
    try:
        spec = env.get_attr("rlstab_spec")[0]
    except Exception:  # gymnasium raises various error types for a missing attribute
        return None
    return spec if isinstance(spec, EnvSpec) else None


def _has_names(env: Any) -> bool:
    try:
        return bool(env.get_attr("action_names"))
    except Exception:  # gymnasium raises various error types for a missing attribute
        return False
