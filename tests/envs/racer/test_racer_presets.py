"""The Racer presets' env kwargs: uniformly random pedals must move the car (exploration).

With the default brake (15 m/s^2 against 8 m/s^2 of throttle) random pedals decelerate on
average and SAC never leaves the start line (measured: eval return -50 = standing still for the
whole episode on 5/5 seeds after 10k steps). The presets give equal pedal authority and a rolling
start; this test pins the mechanism so a preset edit cannot silently bring the failure back.
"""

import jax
import jax.numpy as jnp

from rlstab_jax.config.loader import load_config
from rlstab_jax.envs.racer import make_racer


def _random_progress(params, n_envs=32, n_steps=100):
    env, _ = make_racer()

    def run(key):
        k0, k1 = jax.random.split(key)
        _, state = env.reset(k0, params)

        def body(st, k):
            ka, ks = jax.random.split(k)
            a = jax.random.uniform(ka, (3,), minval=-1.0, maxval=1.0)
            _, st, *_, info = env.step(ks, st, a, params)  # gymnax 1.x: 6 values
            return st, info["progress"]

        _, prog = jax.lax.scan(body, state, jax.random.split(k1, n_steps))
        return jnp.max(prog)

    return float(jnp.mean(jax.vmap(run)(jax.random.split(jax.random.key(0), n_envs))))


PRESETS = ["sac/racer", "tqc/racer", "droq/racer", "sac/racer_pixels", "dreamer/racer",
           "dreamer/racer_pixels"]


def test_random_pedals_move_the_car_under_preset_kwargs():
    _, default = make_racer()
    base = _random_progress(default)
    seen = {}
    for preset in PRESETS:
        kwargs = dict(load_config(preset).env.kwargs)
        assert kwargs["max_brake"] <= default.max_accel, preset
        dyn = tuple(sorted((k, v) for k, v in kwargs.items() if k != "pixels"))
        if dyn not in seen:
            seen[dyn] = _random_progress(make_racer(**dict(dyn))[1])
        # Laps done (fraction) within 100 random steps, best point, mean over 32 starts.
        assert seen[dyn] > 0.05 and seen[dyn] > 3.0 * max(base, 1e-3), (preset, seen[dyn], base)
