"""Each report 003 §10 reward term on hand-built inputs (golden values by hand)."""

import jax.numpy as jnp
import numpy as np

from rlstab_jax.envs.racer import EnvParams
from rlstab_jax.envs.racer import reward as R

P = EnvParams()  # half_width 3.0, safe_deviation_ratio 0.6 -> safe deviation 1.8 m


def test_defaults_are_neutral_reward_is_plain_progress():
    r, steps, done = R.total(jnp.float32(2.0), jnp.float32(400.0), jnp.float32(2.5),
                             jnp.float32(20.0), jnp.int32(5), P)
    assert np.isclose(r, 100.0 * 2.0 / 400.0)  # 0.5: far off the line, no penalty at defaults
    assert not done


def test_progress_is_percent_of_lap_and_signed():
    assert np.isclose(R.progress(jnp.float32(4.0), jnp.float32(400.0), P), 1.0)
    assert np.isclose(R.progress(jnp.float32(-4.0), jnp.float32(400.0), P), -1.0)


def test_proximity_shaping_scales_positive_progress_beyond_safe_deviation():
    p = P.replace(proximity_shaping=0.5)
    assert np.isclose(R.proximity_shaping(jnp.float32(1.0), jnp.float32(1.0), p), 1.0)  # inside
    assert np.isclose(R.proximity_shaping(jnp.float32(1.0), jnp.float32(-2.0), p), 0.5)
    assert np.isclose(R.proximity_shaping(jnp.float32(-1.0), jnp.float32(2.0), p), -1.0)


def test_wall_hug_penalty_grows_and_terminates():
    p = P.replace(wall_hug_penalty=0.005, wall_hug_max_steps=3)
    steps = jnp.int32(0)
    penalties, dones = [], []
    for _ in range(4):  # no progress, 10 m/s, 2.5 m off the line: every step counts
        steps, pen, done = R.wall_hug(steps, jnp.float32(0.0), jnp.float32(10.0),
                                      jnp.float32(2.5), p)
        penalties.append(float(pen))
        dones.append(bool(done))
    np.testing.assert_allclose(penalties, [0.005 * k * 2.5 for k in (1, 2, 3, 4)], rtol=1e-6)
    assert dones == [False, False, False, True]  # steps > 3
    # Progress, low speed or being on the line each reset the count.
    for ds, v, off in ((1.0, 10.0, 2.5), (0.0, 1.0, 2.5), (0.0, 10.0, 0.5)):
        s, pen, done = R.wall_hug(jnp.int32(7), jnp.float32(ds), jnp.float32(v),
                                  jnp.float32(off), p)
        assert int(s) == 0 and float(pen) == 0.0 and not done


def test_offtrack_speed_penalty():
    p = P.replace(offtrack_speed_penalty=0.01)
    assert np.isclose(R.offtrack_speed_penalty(jnp.float32(20.0), jnp.float32(-2.5), p),
                      0.01 * 20.0 * 2.5)
    assert R.offtrack_speed_penalty(jnp.float32(20.0), jnp.float32(1.0), p) == 0.0  # on line
    assert R.offtrack_speed_penalty(jnp.float32(1.0), jnp.float32(2.5), p) == 0.0  # slow


def test_constant_penalty_enters_total():
    p = P.replace(constant_penalty=0.25)
    r, _, _ = R.total(jnp.float32(4.0), jnp.float32(400.0), jnp.float32(0.0),
                      jnp.float32(10.0), jnp.int32(0), p)
    assert np.isclose(r, 0.75)


def test_failure_countdown():
    p = P.replace(failure_countdown=2)
    steps, out = jnp.int32(0), []
    for off in (True, True, True, False):
        steps, failed = R.failure_countdown(steps, jnp.bool_(off), p)
        out.append((int(steps), bool(failed)))
    assert out == [(1, False), (2, False), (3, True), (0, False)]


def test_squash_scale_then_tanh():
    assert np.isclose(R.squash(jnp.float32(0.5), P.replace(reward_scale=3.0)), 1.5)
    assert np.isclose(R.squash(jnp.float32(0.5), P.replace(reward_scale=3.0, reward_tanh=True)),
                      np.tanh(1.5))
