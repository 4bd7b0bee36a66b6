"""Racer: a pure-JAX racing env reproducing the TrackMania failures of field reports 000-003.

``Racer`` (gymnax env), ``EnvParams``, ``make_racer(**overrides) -> (env, params)`` and
``racer_spec(params)``. Importing this package also registers ``Racer-v0`` with gymnasium
(``gymnasium.make("Racer-v0")``). See ``env.py`` for the observation layout.
"""

from __future__ import annotations

from typing import Any

from rlstab_jax.config.errors import ConfigError, did_you_mean
from rlstab_jax.envs.racer.env import EnvParams, Racer, RacerState
from rlstab_jax.envs.spec import EnvSpec

__all__ = ["EnvParams", "Racer", "RacerState", "make_racer", "racer_spec"]


def make_racer(**overrides: Any) -> tuple[Racer, EnvParams]:
    """Build the env and its params, e.g. ``make_racer(pixels=True, max_steps_in_episode=300)``.

    Raises:
      ConfigError: one line naming an unknown parameter (with a close match if any).
    """
    import dataclasses

    env = Racer()
    params = env.default_params
    names = [f.name for f in dataclasses.fields(params)]
    for k in overrides:
        if k not in names:
            raise ConfigError(f"unknown Racer parameter {k!r}{did_you_mean(k, names)}")
    return env, params.replace(**overrides)


def racer_spec(params: EnvParams | None = None, env_id: str = "Racer-v0") -> EnvSpec:
    """The :class:`EnvSpec` agents are built from (uint8 ``[P, P, 3]`` when ``pixels``)."""
    env = Racer()
    params = env.default_params if params is None else params
    shape = tuple(int(d) for d in env.observation_space(params).shape)
    return EnvSpec(env_id=env_id, obs_shape=shape,
                   obs_dtype="uint8" if params.pixels else "float32",
                   action_kind="continuous", action_dim=3, action_low=(-1.0,) * 3,
                   action_high=(1.0,) * 3, action_names=env.action_names(params),
                   max_episode_steps=int(params.max_steps_in_episode))


from rlstab_jax.envs.racer import gym as _gym  # noqa: E402,F401  (registers Racer-v0)
