"""Reward terms of field report 003 §10, each a small pure function of env params.

Every term defaults to neutral (the reward is then plain progress), so each one can be switched
on alone and its effect measured. ``safe deviation`` is ``safe_deviation_ratio * half_width``
(report 003: ``SPEED_SAFE_DEVIATION_RATIO``; ``MAX_STRAY`` plays the role of the half-width).

The report's magnitudes (e.g. ``WALL_HUG_PENALTY_FACTOR`` 0.005, ``CONSTANT_PENALTY`` 0.0005)
were tuned for TrackMania's reward units; here progress is ``progress_per_lap`` (default 100)
per lap, i.e. about 0.3-0.5 per step for a good driver, so scale them accordingly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def safe_deviation(params) -> jax.Array:
    """Lateral offset (m) beyond which the shaping terms apply (report 003 §10)."""
    return params.safe_deviation_ratio * params.half_width


def progress(delta_s: jax.Array, length: jax.Array, params) -> jax.Array:
    """Progress along the centre line, ``progress_per_lap * delta_s / length``.

    Negative when driving backwards, so circling back over the start line earns nothing.
    Field report 003 (reward = trajectory progress; the base of every §10 term).
    """
    return params.progress_per_lap * delta_s / length


def proximity_shaping(r_progress: jax.Array, offset: jax.Array, params) -> jax.Array:
    """Scale positive progress by ``proximity_shaping`` beyond the safe deviation.

    Rewards the ideal line over riding the wall (report 003 §10, ``PROXIMITY_REWARD_SHAPING``,
    report default 0.5; neutral 1.0). Negative progress is left unscaled so driving backwards
    off the line is not made cheaper.
    """
    far = jnp.abs(offset) > safe_deviation(params)
    return jnp.where(far & (r_progress > 0), r_progress * params.proximity_shaping, r_progress)


def wall_hug(no_progress_steps: jax.Array, delta_s: jax.Array, speed: jax.Array,
             offset: jax.Array, params) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Wall-hug penalty and termination on fast driving with no progress (report 003 §10).

    A step counts when progress ``delta_s < wall_hug_min_progress`` (m), ``speed >
    wall_hug_speed`` (m/s; report ``WALL_HUG_SPEED_THRESHOLD`` 10 km/h) and ``|offset|`` beyond
    the safe deviation. Consecutive counted steps accumulate; the penalty is
    ``wall_hug_penalty * steps * |offset|`` (grows with steps and distance; report
    ``WALL_HUG_PENALTY_FACTOR`` 0.005; neutral 0). The episode terminates once ``steps >
    wall_hug_max_steps`` (report: ``3 * nb_zero_rew_before_failure``; neutral 0 = never).

    Returns:
      ``(new no_progress_steps int32, penalty >= 0, terminate bool)``.
    """
    hugging = ((delta_s < params.wall_hug_min_progress) & (speed > params.wall_hug_speed)
               & (jnp.abs(offset) > safe_deviation(params)))
    steps = jnp.where(hugging, no_progress_steps + 1, 0).astype(jnp.int32)
    penalty = params.wall_hug_penalty * steps.astype(jnp.float32) * jnp.abs(offset)
    terminate = (params.wall_hug_max_steps > 0) & (steps > params.wall_hug_max_steps)
    return steps, penalty, terminate


def offtrack_speed_penalty(speed: jax.Array, offset: jax.Array, params) -> jax.Array:
    """``offtrack_speed_penalty * speed * |offset|`` beyond the safe deviation at speed.

    Discourages fast driving off the line (report 003 §10 "off-track speed penalty", applied
    above ``offtrack_speed_threshold``, report 5 km/h; factor in the spirit of
    ``RECKLESS_PENALTY_FACTOR``; neutral 0).
    """
    far = jnp.abs(offset) > safe_deviation(params)
    fast = speed > params.offtrack_speed_threshold
    return jnp.where(far & fast, params.offtrack_speed_penalty * speed * jnp.abs(offset), 0.0)


def constant_penalty(params) -> jax.Array:
    """A per-step cost that makes time matter (report 003 §8 ``CONSTANT_PENALTY``; neutral 0)."""
    return jnp.asarray(params.constant_penalty, jnp.float32)


def failure_countdown(off_track_steps: jax.Array, off_track: jax.Array,
                      params) -> tuple[jax.Array, jax.Array]:
    """Count consecutive off-track steps; fail once the count exceeds ``failure_countdown``.

    Report 003 §8/§10 ``FAILURE_COUNTDOWN`` (10, then 7, then 9): how long a car may stay off
    before the episode ends. Returns ``(new off_track_steps int32, failed bool)``.
    """
    steps = jnp.where(off_track, off_track_steps + 1, 0).astype(jnp.int32)
    return steps, steps > params.failure_countdown


def squash(raw: jax.Array, params) -> jax.Array:
    """``reward_scale * raw``, then ``tanh`` if ``reward_tanh`` (report 003 §10 ``REWARD_SCALE``
    3.0 then tanh, for contrast in a bounded reward; neutral: scale 1, no tanh)."""
    scaled = params.reward_scale * raw
    return jnp.where(params.reward_tanh, jnp.tanh(scaled), scaled)


def total(delta_s, length, offset, speed, no_progress_steps, params):
    """All terms combined. Returns ``(reward, new no_progress_steps, wall-hug terminate)``."""
    r = proximity_shaping(progress(delta_s, length, params), offset, params)
    steps, hug_penalty, hug_done = wall_hug(no_progress_steps, delta_s, speed, offset, params)
    raw = r - hug_penalty - offtrack_speed_penalty(speed, offset, params) - constant_penalty(params)
    return squash(raw, params).astype(jnp.float32), steps, hug_done
