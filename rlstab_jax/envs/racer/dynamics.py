"""Kinematic bicycle model with a lateral-grip limit: why steering noise hurts at speed.

The demanded yaw rate of a kinematic bicycle is ``omega = v tan(delta) / L``, so the lateral
acceleration it asks of the tyres is ``v * omega = v**2 tan(delta) / L``: the same steering
error costs ``v**2`` times more grip at speed. Grip is limited to ``max_lat_accel``; demand
beyond it is not turned into yaw (understeer: the car runs wide) and is scrubbed off as speed
loss. With the default params (``max_steer`` 0.5 rad, wheelbase 2.5 m) a steering noise of
std 0.135 (action units, i.e. a policy log-std floor of -2, field report 001 §1) asks for
~24 m/s**2 (std) of lateral acceleration at 30 m/s, beyond the 20 m/s**2 of grip, but only
~4 m/s**2 at 12 m/s: the scripted driver with that noise laps ~10% slower and leaves the track
for good in ~9% of laps at full speed, yet loses nothing when capped at 12 m/s.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class CarState(NamedTuple):
    """Pose and speed: ``x, y`` (m), ``heading`` (rad, world frame), ``speed`` (m/s, >= 0)."""

    x: jax.Array
    y: jax.Array
    heading: jax.Array
    speed: jax.Array


def map_action(action: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Agent action ``[3]`` in ``[-1, 1]`` -> ``(steer [-1, 1], gas [0, 1], brake [0, 1])``.

    Actions are clipped first; gas and brake use ``(a + 1) / 2`` so that the agent's symmetric
    Box maps onto pedal travel (design.md "Actions").
    """
    a = jnp.clip(jnp.asarray(action, jnp.float32).reshape((3,)), -1.0, 1.0)
    return a[0], 0.5 * (a[1] + 1.0), 0.5 * (a[2] + 1.0)


def lateral_demand(speed: jax.Array, steer: jax.Array, params) -> jax.Array:
    """Lateral acceleration (m/s**2, signed) asked for by ``steer`` in [-1, 1] at ``speed``."""
    delta = steer * params.max_steer
    return speed**2 * jnp.tan(delta) / params.wheelbase


def bicycle_step(car: CarState, steer: jax.Array, gas: jax.Array, brake: jax.Array,
                 off_track: jax.Array, params) -> tuple[CarState, jax.Array]:
    """Advance the car by ``params.dt``.

    Args:
      car: current :class:`CarState`.
      steer: ``[]`` in [-1, 1] (fraction of ``max_steer``).
      gas, brake: ``[]`` in [0, 1].
      off_track: ``[]`` bool; off the track the car has ``offtrack_grip`` of its grip and an
        extra drag ``offtrack_drag`` (grass).
      params: env params (``dt, wheelbase, max_steer, max_speed, max_accel, max_brake, drag,
        max_lat_accel, scrub, offtrack_grip, offtrack_drag``).

    Returns:
      ``(new car state, excess lateral demand (m/s**2, >= 0))``.
    """
    v = car.speed
    grip = params.max_lat_accel * jnp.where(off_track, params.offtrack_grip, 1.0)
    demand = lateral_demand(v, steer, params)
    lat = jnp.clip(demand, -grip, grip)
    excess = jnp.abs(demand) - jnp.abs(lat)
    omega = lat / jnp.maximum(v, 0.1)
    # Engine force fades to zero at max_speed; brake and scrub act against the motion.
    accel = (gas * params.max_accel * (1.0 - (v / params.max_speed) ** 2)
             - brake * params.max_brake - params.scrub * excess
             - (params.drag + jnp.where(off_track, params.offtrack_drag, 0.0)) * v)
    v_new = jnp.clip(v + accel * params.dt, 0.0, params.max_speed)
    heading_mid = car.heading + 0.5 * omega * params.dt
    v_mid = 0.5 * (v + v_new)
    heading_new = car.heading + omega * params.dt
    heading_new = jnp.mod(heading_new + jnp.pi, 2.0 * jnp.pi) - jnp.pi
    x = car.x + v_mid * jnp.cos(heading_mid) * params.dt
    y = car.y + v_mid * jnp.sin(heading_mid) * params.dt
    return CarState(x, y, heading_new, v_new), excess
