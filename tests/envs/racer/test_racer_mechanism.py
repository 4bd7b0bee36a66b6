"""The mechanism of field report 001 §1: steering noise of std e^-2 (~13.5%, a LOG_STD_MIN=-2
floor) costs laps at speed, std e^-20 does not; at low speed the same noise is harmless.

One compiled rollout serves every case (noise std and params are traced). Measured on 64 seeds
at defaults: e^-20 laps in 224 steps, all laps complete; e^-2 laps in ~245 steps (+10%) and
~9% of laps end off track. The asserted margins are a fraction of that.
"""

import jax
import numpy as np
import pytest

from rlstab_jax.envs.racer import controller as C
from rlstab_jax.envs.racer import make_racer

N_SEEDS = 64


def _stats(params, std):
    st = C.evaluate(jax.random.key(7), N_SEEDS, params, float(std))
    lap = st["lap"]
    lap_steps = st["length"][lap].mean() if lap.any() else np.inf
    return lap.mean(), lap_steps, st["return"].mean()


@pytest.fixture(scope="module")
def results():
    _, params = make_racer()
    slow = params.replace(max_speed=12.0)  # same compiled rollout: max_speed is traced
    return {(name, std): _stats(p, np.exp(std))
            for name, p in (("fast", params), ("slow", slow)) for std in (-20.0, -2.0)}


def test_clean_controller_laps_every_seed(results):
    laps, steps, ret = results[("fast", -20.0)]
    assert laps == 1.0
    assert 150 < steps < 300  # a lap is a few hundred steps (fast learning)
    assert ret > 99.0


def test_noise_floor_costs_laps_or_time_at_speed(results):
    laps0, steps0, _ = results[("fast", -20.0)]
    laps2, steps2, _ = results[("fast", -2.0)]
    fewer_laps = laps2 <= laps0 - 0.03
    slower = steps2 >= 1.04 * steps0
    assert fewer_laps or slower, (laps0, steps0, laps2, steps2)
    assert slower  # both hold at defaults; the lap-time effect is the robust one


def test_noise_is_harmless_at_low_speed(results):
    laps0, steps0, _ = results[("slow", -20.0)]
    laps2, steps2, _ = results[("slow", -2.0)]
    assert laps0 == laps2 == 1.0
    assert steps2 <= 1.01 * steps0
    fast_cost = results[("fast", -2.0)][1] / results[("fast", -20.0)][1]
    assert fast_cost - 1.0 > 4.0 * (steps2 / steps0 - 1.0)  # noise hurts more the faster
