"""Racer env: determinism, vmap == loop, end conditions, action mapping, obs layout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.envs.racer import EnvParams, Racer, make_racer, racer_spec
from rlstab_jax.envs.racer import dynamics
from rlstab_jax.envs.racer.env import get_track, state_at

# Every test reuses the same few compiled functions (ENV.step / ENV.reset are jitted by gymnax).
ENV, PARAMS = make_racer()
ACTIONS = jnp.array([[0.3, 1.0, -1.0], [-0.5, 0.2, -1.0], [0.0, -1.0, 1.0]] * 3, jnp.float32)
KEY = jax.random.key(0)
_state_at = jax.jit(state_at)
_obs = jax.jit(ENV.get_obs)


def place(params, s, offset=0.0, heading_error=0.0, speed=0.0, travelled=0.0, time=0):
    """A hand-built state (one compiled ``state_at`` for every call)."""
    return _state_at(params, s, offset, heading_error, speed, travelled, time=time)


def run(key, params):
    """Reset then 9 fixed actions; returns everything the env emitted."""
    k0, k1 = jax.random.split(key)
    obs, state = ENV.reset(k0, params)
    out = [obs]
    for k, a in zip(jax.random.split(k1, len(ACTIONS)), ACTIONS):
        obs, state, r, te, tr, info = ENV.step(k, state, a, params)
        out.append((obs, r, te, tr, info["speed"]))
    return out


def test_same_key_same_trajectory_different_key_different_start():
    a = run(jax.random.key(0), PARAMS)
    b = run(jax.random.key(0), PARAMS)
    c = run(jax.random.key(1), PARAMS)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    assert not np.allclose(a[0], c[0])  # start jitter (lateral offset, heading) differs


def test_vmapped_step_equals_looped_step():
    keys = jax.random.split(jax.random.key(2), 4)
    obs, states = jax.vmap(ENV.reset, (0, None))(keys, PARAMS)
    acts = jnp.array([[0.1, 1.0, -1.0], [-1.0, 0.0, 0.5], [1.0, 1.0, 1.0], [0.0, -1.0, -1.0]])
    step = ENV.step
    for _ in range(3):
        batched = jax.vmap(ENV.step, (0, 0, 0, None))(keys, states, acts, PARAMS)
        looped = [step(keys[i], jax.tree.map(lambda x, i=i: x[i], states), acts[i], PARAMS)
                  for i in range(4)]
        looped = jax.tree.map(lambda *xs: jnp.stack(xs), *looped)
        jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5),
                     batched, looped)
        states = batched[1]


def test_obs_layout_and_info_structure():
    obs, state = ENV.reset(KEY, PARAMS)
    k = PARAMS.n_lookahead
    assert obs.shape == (8 + k,) and obs.dtype == jnp.float32
    s = place(PARAMS, 50.0, offset=1.5, heading_error=0.1, speed=20.0)
    obs = _obs(s, PARAMS)
    np.testing.assert_allclose(obs[0], 20.0 / PARAMS.max_speed, rtol=1e-5)
    np.testing.assert_allclose(obs[1], 0.1, atol=2e-3)
    np.testing.assert_allclose(obs[2], 0.5, atol=1e-3)
    track = get_track(s.track_id, PARAMS)
    kappa = np.interp(float(s.s), np.arange(track.n) * float(track.ds), np.asarray(track.kappa))
    assert np.isclose(obs[3], kappa * PARAMS.curvature_obs_scale, atol=1e-4)
    np.testing.assert_allclose(obs[3 + k:5 + k], [0.5, 1.5], atol=1e-3)  # left, right walls
    np.testing.assert_array_equal(obs[5 + k:], [0.0, 0.0, 0.0])
    _, _, _, _, _, info = ENV.step(KEY, s, jnp.zeros(3), PARAMS)
    assert set(info) >= {"progress", "lap_completed", "off_track", "lateral_offset", "speed"}
    assert info["lap_completed"].dtype == jnp.bool_ and info["off_track"].dtype == jnp.bool_
    assert ENV.action_names(PARAMS) == ("steer", "gas", "brake")
    assert racer_spec(PARAMS).action_names == ("steer", "gas", "brake")


def test_action_mapping_and_clipping():
    steer, gas, brake = dynamics.map_action(jnp.array([-1.0, -1.0, 1.0]))
    assert (float(steer), float(gas), float(brake)) == (-1.0, 0.0, 1.0)
    steer, gas, brake = dynamics.map_action(jnp.array([5.0, 0.0, -7.0]))
    assert (float(steer), float(gas), float(brake)) == (1.0, 0.5, 0.0)
    s = place(PARAMS, 10.0, speed=10.0)
    step = ENV.step
    faster = step(KEY, s, jnp.array([0.0, 1.0, -1.0]), PARAMS)[1]
    coast = step(KEY, s, jnp.array([0.0, -1.0, -1.0]), PARAMS)[1]
    slower = step(KEY, s, jnp.array([0.0, -1.0, 1.0]), PARAMS)[1]
    assert float(faster.speed) > float(coast.speed) > float(slower.speed)
    left = step(KEY, s, jnp.array([1.0, 0.0, -1.0]), PARAMS)[1]
    assert float(left.offset) > float(coast.offset)  # + steer turns left
    np.testing.assert_array_equal(step(KEY, s, jnp.array([9.0, 0.0, -9.0]),
                                       PARAMS)[1].prev_action, [1.0, 0.0, -1.0])


def test_lap_complete_terminates():
    track = get_track(0, PARAMS)
    L = float(track.length)
    s = place(PARAMS, L - 1.0, speed=20.0, travelled=L - 1.0)
    _, st, r, term, trunc, info = ENV.step(KEY, s, jnp.array([0.0, 0.0, -1.0]), PARAMS)
    assert bool(term) and not bool(trunc) and bool(info["lap_completed"])
    assert float(st.travelled) == 0.0  # auto-reset to the start line
    np.testing.assert_allclose(info["progress"], 1.0, atol=0.01)


def test_off_track_countdown_terminates():
    p = PARAMS.replace(failure_countdown=3)
    s = place(p, 100.0, offset=8.0, heading_error=1.57, speed=0.0)  # parked on the grass
    step = ENV.step
    terms = []
    for _ in range(4):
        _, s, _, term, trunc, info = step(KEY, s, jnp.array([0.0, -1.0, 1.0]), p)
        terms.append(bool(term))
        assert bool(info["off_track"]) and not bool(trunc)
    assert terms == [False, False, False, True]


def test_time_limit_truncates_not_terminates():
    p = PARAMS.replace(max_steps_in_episode=50)
    s = place(p, 100.0, speed=10.0, time=49)
    _, st, _, term, trunc, info = ENV.step(KEY, s, jnp.array([0.0, 0.0, -1.0]), p)
    assert bool(trunc) and not bool(term)
    assert int(st.time) == 0  # auto-reset


def test_pixel_obs_and_random_track():
    env, p = make_racer(pixels=True, random_track=True)
    obs, state = env.reset(KEY, p)
    assert obs.shape == (48, 48, 3) and obs.dtype == jnp.uint8
    assert racer_spec(p).obs_dtype == "uint8" and racer_spec(p).obs_shape == (48, 48, 3)
    on_track = np.all(np.asarray(obs) == np.array([100, 100, 104]), -1)
    assert 0.05 < on_track.mean() < 0.6
    ids = [int(env.reset(k, p)[1].track_id) for k in jax.random.split(KEY, 8)]
    assert len(np.unique(np.asarray(ids))) > 4  # a new track per episode


def test_unknown_param_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match="unknown Racer parameter 'half_widht'.*half_width"):
        make_racer(half_widht=2.0)
    assert isinstance(Racer().default_params, EnvParams)


def test_wall_hug_terminates_when_enabled():
    """Fast, sideways, off the line, no progress: penalised, then terminated (report 003 §10)."""
    p = PARAMS.replace(wall_hug_penalty=0.01, wall_hug_max_steps=1)
    s = place(p, 100.0, offset=2.0, heading_error=1.57, speed=10.0)
    out = []
    for _ in range(2):
        _, s, r, term, _, info = ENV.step(KEY, s, jnp.array([0.0, 0.0, -1.0]), p)
        out.append((float(r), bool(term)))
    assert out[0][0] < 0.0 and not out[0][1]
    assert out[1][1] and not bool(info["lap_completed"])
    # Neutral defaults: the same manoeuvre is neither penalised nor terminated.
    s = place(PARAMS, 100.0, offset=2.0, heading_error=1.57, speed=10.0)
    _, s, r, term, _, _ = ENV.step(KEY, s, jnp.array([0.0, 0.0, -1.0]), PARAMS)
    assert abs(float(r)) < 0.05 and not bool(term)
