"""Scaffold: a long-horizon factored-action env modelled on field report 004 (see ``env.py``).

``make_scaffold(**overrides) -> (env, params)``; importing the package registers
``Scaffold-v0`` with gymnasium. Baselines in ``baselines.py``, frames in ``render.py``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rlstab_jax.config.errors import ConfigError, did_you_mean
from rlstab_jax.envs.scaffold.env import HEADS, OP_HEADS, OPS, EnvParams, EnvState, Scaffold

__all__ = ["HEADS", "OPS", "OP_HEADS", "EnvParams", "EnvState", "Scaffold", "make_scaffold"]


def make_scaffold(**overrides: Any) -> tuple[Scaffold, EnvParams]:
    """Build the env and params, e.g. ``make_scaffold(max_steps_in_episode=200)``.

    Raises:
      ConfigError: one line naming an unknown or invalid parameter.
    """
    env = Scaffold()
    params = env.default_params
    names = [f.name for f in dataclasses.fields(params)]
    for k in overrides:
        if k not in names:
            raise ConfigError(f"unknown Scaffold parameter {k!r}{did_you_mean(k, names)}")
    if "blueprint_fit" in overrides:
        overrides["blueprint_fit"] = tuple(float(v) for v in overrides["blueprint_fit"])
    params = params.replace(**overrides)
    if len(params.blueprint_fit) < params.n_blueprints:
        raise ConfigError(f"Scaffold blueprint_fit has {len(params.blueprint_fit)} values for "
                          f"n_blueprints={params.n_blueprints}")
    if params.n_slots < 1 or params.max_steps_in_episode < 1:
        raise ConfigError("Scaffold n_slots and max_steps_in_episode must be >= 1")
    return env, params


from rlstab_jax.envs.scaffold import gym as _gym  # noqa: E402,F401  (registers Scaffold-v0)
