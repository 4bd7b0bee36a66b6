"""``Racer``: a pure-JAX racing env (gymnax 1.x) standing in for TrackMania (reports 000-003).

Action ``[3]`` in ``[-1, 1]``: ``steer`` (fraction of ``max_steer``, + = left), ``gas`` and
``brake`` (pedals ``(a + 1) / 2`` in ``[0, 1]``).

Vector observation ``[8 + K]`` float32 (``K = n_lookahead``)::

    0          speed / max_speed                           [0, 1]
    1          heading error (rad), car minus track        [-pi, pi)
    2          lateral offset / half_width (+ = left)      |x| > 1 means off track
    3 .. 3+K-1 curvature * curvature_obs_scale at s + j * lookahead_spacing, j = 0 .. K-1
    3+K        distance to the left edge / half_width      (half_width - offset) / half_width
    4+K        distance to the right edge / half_width     (half_width + offset) / half_width
    5+K .. 7+K previous action (steer, gas, brake) in [-1, 1]

With ``pixels=True`` the observation is instead a ``[P, P, 3]`` uint8 top-down view centred
ahead of the car, heading up, with speed and steering bars (see ``render.pixel_obs``).

The track is fixed (seed ``track_seed``) by default; ``random_track=True`` draws each episode's
track from a bank of ``n_random_tracks`` seeded tracks (``track_id`` in the state).
Episodes start on the start line (small random lateral/heading jitter) and end with
``terminated`` when a lap is complete, when the car has been off track for more than
``failure_countdown`` steps, or (optional) on wall-hugging; ``truncated`` at
``max_steps_in_episode``. The reward is progress (``progress_per_lap`` per lap) plus the
report 003 §10 terms in ``reward.py`` (all neutral by default).

``info`` holds float32/bool scalars: ``progress`` (laps done, fraction), ``lap_completed``,
``off_track``, ``lateral_offset`` (m), ``speed`` (m/s).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from rlstab_jax.envs.racer import dynamics, render, reward
from rlstab_jax.envs.racer import track as tracklib

N_HARMONICS = 4


@struct.dataclass
class EnvParams(environment.EnvParams):
    """Racer parameters. Fields marked static change the compiled graph (shapes, track).

    Defaults: 0.1 s steps, a ~540 m lap 6 m wide, 40 m/s top speed, 20 m/s**2 of grip; the
    scripted controller laps in ~224 steps. Reward terms default to neutral (report 003 §10).
    """

    max_steps_in_episode: int = 500
    # -- track (static) --
    track_seed: int = struct.field(pytree_node=False, default=0)
    random_track: bool = struct.field(pytree_node=False, default=False)
    n_random_tracks: int = struct.field(pytree_node=False, default=64)
    track_radius: float = struct.field(pytree_node=False, default=80.0)
    n_track_points: int = struct.field(pytree_node=False, default=256)
    n_lookahead: int = struct.field(pytree_node=False, default=8)
    pixels: bool = struct.field(pytree_node=False, default=False)
    pixel_size: int = struct.field(pytree_node=False, default=48)
    pixel_view: float = struct.field(pytree_node=False, default=40.0)
    half_width: float = 3.0
    # -- car --
    dt: float = 0.1
    wheelbase: float = 2.5
    max_steer: float = 0.5
    max_speed: float = 40.0
    max_accel: float = 8.0
    max_brake: float = 15.0
    drag: float = 0.0
    max_lat_accel: float = 20.0
    scrub: float = 0.5
    offtrack_grip: float = 0.6
    offtrack_drag: float = 1.0
    # -- reset --
    start_speed: float = 0.0
    start_lateral_noise: float = 0.5
    start_heading_noise: float = 0.05
    # -- observation --
    lookahead_spacing: float = 5.0
    curvature_obs_scale: float = 10.0
    # -- reward (report 003 §10; neutral defaults) --
    progress_per_lap: float = 100.0
    safe_deviation_ratio: float = 0.6
    proximity_shaping: float = 1.0
    wall_hug_min_progress: float = 0.1
    wall_hug_speed: float = 10.0 / 3.6
    wall_hug_penalty: float = 0.0
    wall_hug_max_steps: int = 0
    offtrack_speed_threshold: float = 5.0 / 3.6
    offtrack_speed_penalty: float = 0.0
    constant_penalty: float = 0.0
    failure_countdown: int = 10
    reward_scale: float = 1.0
    reward_tanh: bool = False


@struct.dataclass
class RacerState(environment.EnvState):
    """Car pose, track coordinates, counters and the previous action (fixed structure)."""

    time: jax.Array
    x: jax.Array
    y: jax.Array
    heading: jax.Array
    speed: jax.Array
    s: jax.Array
    idx: jax.Array
    offset: jax.Array
    travelled: jax.Array
    off_track_steps: jax.Array
    no_progress_steps: jax.Array
    prev_action: jax.Array
    track_id: jax.Array

    @property
    def car(self) -> dynamics.CarState:
        return dynamics.CarState(self.x, self.y, self.heading, self.speed)


def get_track(track_id: jax.Array, params: EnvParams) -> tracklib.Track:
    """The episode's track: the fixed track (seed ``track_seed``), or entry ``track_id`` of
    the bank of ``n_random_tracks`` tracks (seeds ``track_seed ..``) when ``random_track``."""
    if params.random_track:
        bank = tracklib.track_bank(params.track_seed, params.n_random_tracks,
                                   params.track_radius, params.n_track_points, N_HARMONICS)
        return jax.tree.map(lambda x: x[track_id], bank)
    return tracklib.fixed_track(params.track_seed, params.track_radius, params.n_track_points,
                                N_HARMONICS)


def _angle(v: jax.Array) -> jax.Array:
    return jnp.arctan2(v[..., 1], v[..., 0])


def _wrap_angle(a: jax.Array) -> jax.Array:
    return jnp.mod(a + jnp.pi, 2.0 * jnp.pi) - jnp.pi


class Racer(environment.Environment[RacerState, EnvParams]):
    """Pure-JAX racing env; see the module docstring for spaces, termination and reward."""

    def __hash__(self) -> int:  # stateless: all instances share compiled steps
        return hash(type(self))

    def __eq__(self, other: Any) -> bool:
        return type(self) is type(other)

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    @property
    def name(self) -> str:
        return "Racer-v0"

    @property
    def num_actions(self) -> int:
        return 3

    def action_names(self, params: EnvParams | None = None) -> tuple[str, ...]:
        """Per-dimension names for telemetry (``alpha/steer`` ...; field report 000 Fix C)."""
        return ("steer", "gas", "brake")

    def obs_dim(self, params: EnvParams) -> int:
        return 8 + params.n_lookahead

    def action_space(self, params: EnvParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (3,), jnp.float32)

    def observation_space(self, params: EnvParams | None = None) -> spaces.Box:
        params = self.default_params if params is None else params
        if params.pixels:
            p = params.pixel_size
            return spaces.Box(0, 255, (p, p, 3), jnp.uint8)
        return spaces.Box(-jnp.inf, jnp.inf, (self.obs_dim(params),), jnp.float32)

    # ---- dynamics ------------------------------------------------------------------------
    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, RacerState]:
        k_track, k_lat, k_head = jax.random.split(key, 3)
        if params.random_track:
            track_id = jax.random.randint(k_track, (), 0, params.n_random_tracks, jnp.int32)
        else:
            track_id = jnp.zeros((), jnp.int32)
        lat = params.start_lateral_noise * jax.random.uniform(k_lat, (), jnp.float32, -1.0, 1.0)
        head = params.start_heading_noise * jax.random.uniform(k_head, (), jnp.float32, -1.0, 1.0)
        state = state_at(params, 0.0, lat, head, params.start_speed, track_id=track_id)
        return self.get_obs(state, params), state

    def step_env(self, key: jax.Array, state: RacerState, action: Any, params: EnvParams):
        del key
        track = get_track(state.track_id, params)
        a = jnp.clip(jnp.asarray(action, jnp.float32).reshape((3,)), -1.0, 1.0)
        steer, gas, brake = dynamics.map_action(a)
        was_off = jnp.abs(state.offset) > params.half_width
        car, _ = dynamics.bicycle_step(state.car, steer, gas, brake, was_off, params)
        proj = tracklib.project(track, jnp.stack([car.x, car.y]), state.idx)
        delta_s = tracklib.wrap_s(proj.s - state.s, track.length)
        travelled = state.travelled + delta_s
        off_track = jnp.abs(proj.offset) > params.half_width
        r, hug_steps, hug_done = reward.total(delta_s, track.length, proj.offset, car.speed,
                                              state.no_progress_steps, params)
        off_steps, failed = reward.failure_countdown(state.off_track_steps, off_track, params)
        lap = travelled >= track.length
        new = RacerState(
            time=state.time + 1, x=car.x, y=car.y, heading=car.heading, speed=car.speed,
            s=proj.s, idx=proj.idx, offset=proj.offset, travelled=travelled,
            off_track_steps=off_steps, no_progress_steps=hug_steps, prev_action=a,
            track_id=state.track_id)
        terminated = lap | failed | hug_done
        info = {"progress": travelled / track.length, "lap_completed": lap,
                "off_track": off_track, "lateral_offset": proj.offset, "speed": car.speed}
        return self.get_obs(new, params), new, r, terminated, info

    def get_obs(self, state: RacerState, params: EnvParams | None = None, key=None) -> jax.Array:
        params = self.default_params if params is None else params
        track = get_track(state.track_id, params)
        if params.pixels:
            return render.pixel_obs(track, state, params)
        return vector_obs(track, state, params)


def state_at(params: EnvParams, s: float, offset: float = 0.0, heading_error: float = 0.0,
             speed: float = 0.0, travelled: float = 0.0, track_id: Any = 0,
             **fields: Any) -> RacerState:
    """A hand-built state: the car at arc length ``s`` (m), ``offset`` (m, + = left) from the
    centre line, heading ``heading_error`` (rad) from the track direction, at ``speed``.

    Extra ``fields`` (``off_track_steps``, ``time``, ...) override the rest. For tests,
    scripted scenarios and demos that start mid-lap.
    """
    track_id = jnp.asarray(track_id, jnp.int32)
    track = get_track(track_id, params)
    centre = tracklib.point_at(track, jnp.float32(s))
    i0, i1, t = tracklib.interp_index(track, jnp.float32(s))
    tan = (1.0 - t) * track.tangent[i0] + t * track.tangent[i1]
    tan = tan / jnp.linalg.norm(tan)
    xy = centre + offset * jnp.stack([-tan[1], tan[0]])
    proj = tracklib.project(track, xy, i0)
    zero_i = jnp.asarray(0, jnp.int32)
    state = RacerState(
        time=zero_i, x=xy[0], y=xy[1], heading=_wrap_angle(_angle(tan) + heading_error),
        speed=jnp.float32(speed), s=proj.s, idx=proj.idx, offset=proj.offset,
        travelled=jnp.float32(travelled), off_track_steps=zero_i, no_progress_steps=zero_i,
        prev_action=jnp.zeros((3,), jnp.float32), track_id=track_id)
    return state.replace(**{k: jnp.asarray(v, getattr(state, k).dtype) for k, v in fields.items()})


def vector_obs(track: tracklib.Track, state: RacerState, params: EnvParams) -> jax.Array:
    """The ``[8 + K]`` float32 observation laid out in the module docstring."""
    i0, i1, t = tracklib.interp_index(track, state.s)
    tan = (1.0 - t) * track.tangent[i0] + t * track.tangent[i1]
    head_err = _wrap_angle(state.heading - _angle(tan))
    look = state.s + params.lookahead_spacing * jnp.arange(params.n_lookahead, dtype=jnp.float32)
    kappa = tracklib.curvature_at(track, look) * params.curvature_obs_scale
    hw = params.half_width
    scalars = jnp.stack([state.speed / params.max_speed, head_err, state.offset / hw])
    walls = jnp.stack([(hw - state.offset) / hw, (hw + state.offset) / hw])
    return jnp.concatenate([scalars, kappa, walls, state.prev_action]).astype(jnp.float32)
