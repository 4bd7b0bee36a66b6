"""Scripted driver: pure pursuit on the racing line with a curvature speed profile; demos.

The racing line is the centre line. Steering follows pure pursuit towards the centre-line point
``lookahead_base + lookahead_time * speed`` metres ahead; the target speed is the lowest of
``sqrt(budget * max_lat_accel / |kappa|)`` over a preview window, relaxed by the braking
distance to each preview point. It is the baseline the learned agents are measured against and
the demo generator for report 003 §9 (demo replay with decaying weight).

``rollout``/``evaluate`` run it vmapped with optional Gaussian steering noise: with std e^-2
(report 001 §1: a log-std floor of -2 is ~13.5% steering noise) it laps slower and crashes more
than with e^-20.
"""

from __future__ import annotations

import functools
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rlstab_jax.envs.racer import track as tracklib
from rlstab_jax.envs.racer.env import EnvParams, Racer, RacerState, get_track
from rlstab_jax.replay.demos import save_demos


@struct.dataclass
class ControllerParams:
    """Pure-pursuit and speed-profile gains (fields are vmappable floats except the preview)."""

    lookahead_base: float = 4.0
    lookahead_time: float = 0.35
    lat_budget: float = 0.8
    brake_budget: float = 0.6
    speed_gain: float = 0.6
    n_preview: int = struct.field(pytree_node=False, default=16)
    preview_spacing: float = 4.0


DEFAULT_CTRL = ControllerParams()


def scripted_action(state: RacerState, params: EnvParams,
                    ctrl: ControllerParams = DEFAULT_CTRL) -> jax.Array:
    """Action ``[3]`` in ``[-1, 1]`` (steer, gas, brake) for one env state (vmap for batches)."""
    track = get_track(state.track_id, params)
    v = state.speed
    ld = ctrl.lookahead_base + ctrl.lookahead_time * v
    target = tracklib.point_at(track, state.s + ld)
    dx, dy = target[0] - state.x, target[1] - state.y
    c, s = jnp.cos(state.heading), jnp.sin(state.heading)
    fwd, left = c * dx + s * dy, -s * dx + c * dy
    alpha = jnp.arctan2(left, fwd)
    dist = jnp.maximum(jnp.sqrt(dx**2 + dy**2), 1e-3)
    delta = jnp.arctan(2.0 * params.wheelbase * jnp.sin(alpha) / dist)
    steer = jnp.clip(delta / params.max_steer, -1.0, 1.0)
    d = ctrl.preview_spacing * jnp.arange(ctrl.n_preview, dtype=jnp.float32)
    kappa = jnp.abs(tracklib.curvature_at(track, state.s + d))
    v_corner = jnp.sqrt(ctrl.lat_budget * params.max_lat_accel / jnp.maximum(kappa, 1e-4))
    v_allowed = jnp.sqrt(v_corner**2 + 2.0 * ctrl.brake_budget * params.max_brake * d)
    v_target = jnp.minimum(jnp.min(v_allowed), params.max_speed)
    err = v_target - v
    gas = jnp.clip(ctrl.speed_gain * err, 0.0, 1.0)
    brake = jnp.clip(-ctrl.speed_gain * err, 0.0, 1.0)
    return jnp.stack([steer, 2.0 * gas - 1.0, 2.0 * brake - 1.0]).astype(jnp.float32)


def add_steer_noise(key: jax.Array, action: jax.Array, std: jax.Array) -> jax.Array:
    """Gaussian noise of ``std`` (action units) on the steer dimension, then clip to [-1, 1]."""
    noise = std * jax.random.normal(key, action.shape[:-1], jnp.float32)
    return action.at[..., 0].set(jnp.clip(action[..., 0] + noise, -1.0, 1.0))


class Rollout(NamedTuple):
    """Per-step arrays ``[T, B, ...]`` of a batched rollout (auto-reset after episode ends)."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    lap_completed: jax.Array


def rollout(key: jax.Array, n_envs: int, n_steps: int, params: EnvParams | None = None,
            steer_noise_std: float = 0.0, ctrl: ControllerParams = DEFAULT_CTRL
            ) -> Rollout:
    """Drive ``n_envs`` envs for ``n_steps`` with the (noisy) scripted controller.

    Jitted with ``vmap`` over envs and ``lax.scan`` over time; ``next_obs`` is the true next
    observation (``final_observation`` at episode ends).
    """
    env = Racer()
    params = env.default_params if params is None else params
    return _rollout(env, key, params, jnp.float32(steer_noise_std), ctrl, n_envs, n_steps)


@functools.partial(jax.jit, static_argnames=("env", "n_envs", "n_steps"))
def _rollout(env, key, params, std, ctrl, n_envs, n_steps):
    k_reset, k_run = jax.random.split(key)
    obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, n_envs), params)

    def step(carry, k):
        obs, state = carry
        k_noise, k_step = jax.random.split(k)
        act = jax.vmap(scripted_action, (0, None, None))(state, params, ctrl)
        act = add_steer_noise(k_noise, act, std)
        nobs, nstate, r, term, trunc, info = jax.vmap(env.step, (0, 0, 0, None))(
            jax.random.split(k_step, n_envs), state, act, params)
        out = Rollout(obs, act, r, info["final_observation"], term, trunc & ~term,
                      info["lap_completed"])
        return (nobs, nstate), out

    _, out = jax.lax.scan(step, (obs, state), jax.random.split(k_run, n_steps))
    return out


def first_episode_mask(ro: Rollout) -> jax.Array:
    """``[T, B]`` bool: steps belonging to each env's first episode."""
    done = (ro.terminated | ro.truncated).astype(jnp.int32)
    ended_before = jnp.cumsum(done, 0) - done
    return ended_before == 0


def evaluate(key: jax.Array, n_envs: int = 64, params: EnvParams | None = None,
             steer_noise_std: float = 0.0, ctrl: ControllerParams = DEFAULT_CTRL
             ) -> dict[str, np.ndarray]:
    """First-episode statistics per env: ``return``, ``length``, ``lap`` (completed, bool).

    Runs ``max_steps_in_episode`` steps so every first episode ends.
    """
    params = Racer().default_params if params is None else params
    ro = rollout(key, n_envs, int(params.max_steps_in_episode), params, steer_noise_std, ctrl)
    mask = first_episode_mask(ro)
    return {"return": np.asarray(jnp.sum(ro.reward * mask, 0)),
            "length": np.asarray(jnp.sum(mask, 0)),
            "lap": np.asarray(jnp.any(ro.lap_completed & mask, 0))}


def record_demos(path: str | os.PathLike, key: jax.Array, n_episodes: int = 10,
                 params: EnvParams | None = None, steer_noise_std: float = 0.0,
                 ctrl: ControllerParams = DEFAULT_CTRL,
                 env_id: str = "Racer-v0") -> dict[str, Any]:
    """Record ``n_episodes`` scripted episodes into a demo ``.npz`` (design.md "Demo files").

    Keys: ``obs, next_obs [N, *obs_shape] float32`` (uint8 for pixel envs),
    ``action [N, 3] float32`` in [-1, 1], ``reward [N] float32``,
    ``terminated, truncated [N] bool``, ``episode_id [N] int32``,
    ``env_id`` (0-d str), ``action_names`` (1-d str). Episodes are stored one after another
    and written with ``rlstab_jax.replay.demos.save_demos`` (no pickling). Field report 003 §9
    (demo replay).

    Returns:
      ``{"path", "n_transitions", "returns" [E], "laps" [E]}``.
    """
    env = Racer()
    params = env.default_params if params is None else params
    ro = rollout(key, n_episodes, int(params.max_steps_in_episode), params, steer_noise_std, ctrl)
    mask = np.asarray(first_episode_mask(ro)).T  # [E, T]

    def flat(x, dtype):
        x = np.swapaxes(np.asarray(x), 0, 1)  # [E, T, ...]
        return x[mask].astype(dtype)

    episode_id = np.broadcast_to(np.arange(n_episodes, dtype=np.int32)[:, None], mask.shape)
    obs_dtype = np.uint8 if params.pixels else np.float32
    data = {
        "obs": flat(ro.obs, obs_dtype), "action": flat(ro.action, np.float32),
        "reward": flat(ro.reward, np.float32), "next_obs": flat(ro.next_obs, obs_dtype),
        "terminated": flat(ro.terminated, bool), "truncated": flat(ro.truncated, bool),
        "episode_id": episode_id[mask].astype(np.int32),
        "env_id": np.array(env_id), "action_names": np.array(env.action_names(params)),
    }
    save_demos(path, **data)
    returns = np.asarray((np.swapaxes(np.asarray(ro.reward), 0, 1) * mask).sum(1))
    laps = np.asarray((np.swapaxes(np.asarray(ro.lap_completed), 0, 1) & mask).any(1))
    return {"path": os.fspath(path), "n_transitions": int(mask.sum()), "returns": returns,
            "laps": laps}
