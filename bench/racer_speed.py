"""Racer throughput and the scripted-controller baseline.

    python bench/racer_speed.py [--steps 1000] [--envs 1 1024] [--pixels] [--random-track]

Prints env steps/s of the pure-JAX env (jit + vmap + ``lax.scan`` over uniform random actions,
auto-reset included) for each batch size, with compile time reported separately, then the
scripted controller's mean episode return and lap time over 64 seeds (the baseline the SAC
preset must reach 80% of), clean and with the e^-2 steering-noise floor of field report 001.
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.envs.racer import controller as C
from rlstab_jax.envs.racer import make_racer


@functools.partial(jax.jit, static_argnames=("env", "n_envs", "n_steps"))
def _run(env, params, key, n_envs, n_steps):
    k0, k1 = jax.random.split(key)
    _, state = jax.vmap(env.reset, (0, None))(jax.random.split(k0, n_envs), params)

    def body(carry, k):
        state, ret = carry
        ka, ks = jax.random.split(k)
        act = jax.random.uniform(ka, (n_envs, 3), minval=-1.0, maxval=1.0)
        obs, state, r, _, _, _ = jax.vmap(env.step, (0, 0, 0, None))(
            jax.random.split(ks, n_envs), state, act, params)
        # Consume the observation so XLA cannot drop its computation (an agent reads it).
        return (state, ret + r.sum() + 1e-6 * obs.astype(jnp.float32).mean()), None

    (state, ret), _ = jax.lax.scan(body, (state, 0.0), jax.random.split(k1, n_steps))
    return ret


def throughput(n_envs: int, n_steps: int, **overrides) -> tuple[float, float]:
    """``(compile seconds, env steps per second)`` for ``n_envs`` parallel envs."""
    env, params = make_racer(**overrides)
    t0 = time.perf_counter()
    compiled = _run.lower(env, params, jax.random.key(0), n_envs, n_steps).compile()
    t_compile = time.perf_counter() - t0
    compiled(params, jax.random.key(1)).block_until_ready()  # warm
    t0 = time.perf_counter()
    compiled(params, jax.random.key(2)).block_until_ready()
    return t_compile, n_envs * n_steps / (time.perf_counter() - t0)


def baseline(n_seeds: int = 64) -> None:
    """Scripted controller: mean first-episode return and lap time, clean vs noisy steering."""
    _, params = make_racer()
    for label, log_std in (("e^-20", -20.0), ("e^-2 ", -2.0)):
        st = C.evaluate(jax.random.key(0), n_seeds, params, float(np.exp(log_std)))
        lap = st["lap"]
        steps = st["length"][lap]
        print(f"scripted controller, steer noise {label}: return {st['return'].mean():7.2f} "
              f"+- {st['return'].std():5.2f} | laps {lap.mean():5.1%} | lap "
              f"{steps.mean():6.1f} steps ({steps.mean() * float(params.dt):5.1f} s) "
              f"over {n_seeds} seeds")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--envs", type=int, nargs="+", default=[1, 1024])
    ap.add_argument("--pixels", action="store_true")
    ap.add_argument("--random-track", action="store_true")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    overrides = {"pixels": args.pixels, "random_track": args.random_track}
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; Racer {overrides}")
    for n in args.envs:
        t_c, sps = throughput(n, args.steps, **overrides)
        print(f"{n:5d} envs x {args.steps} steps: compile {t_c:5.2f} s | {sps:12,.0f} env steps/s")
    if not args.no_baseline:
        baseline()


if __name__ == "__main__":
    main()
