"""What stepping a host simulator from inside a jitted scan costs, and what it can overlap with.

    python bench/io_callback_cost.py      # prints a table, writes results/io_callback_cost.json

Measures, per scan step:

* a do-nothing ``io_callback`` that returns Pendulum-sized outputs (ordered and unordered): the
  floor the in-scan gymnasium path (``env.host_step=scan``) pays per env step on top of the
  gymnax path;
* gymnasium Pendulum-v1 stepped raw and through a 1-env ``SyncVectorEnv`` (what
  ``GymVecEnv`` wraps);
* a 2 ms busy callback next to an independent chain of 256x256 matmuls, plain and with the
  matmuls inside a ``lax.cond`` (the off-policy chunk's learning switch): does XLA:CPU run the
  callback concurrently with compute that does not depend on it?

No library code is imported; numbers feed the bounds in ``bench/README.md``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback
from sac_profile import _best  # bench/ is on sys.path when run as a script

RESULTS = Path(__file__).resolve().parent / "results"


def _best_per_step(f, steps: int, reps: int = 5) -> float:
    jax.block_until_ready(f())  # compile
    return _best(f, reps) / steps


def noop_callback_us(ordered: bool, steps: int = 2000) -> float:
    shapes = (jax.ShapeDtypeStruct((1, 3), jnp.float32), jax.ShapeDtypeStruct((1,), jnp.float32))

    def host(_):
        return np.zeros((1, 3), np.float32), np.zeros((1,), np.float32)

    def body(c, _):
        o, r = io_callback(host, shapes, c, ordered=ordered)
        return c + r[0] + o[0, 0], None

    f = jax.jit(lambda c: jax.lax.scan(body, c, None, length=steps)[0])
    return _best_per_step(lambda: f(jnp.float32(0)), steps) * 1e6


def _host_loop_us(step, action: np.ndarray, steps: int) -> float:
    t = time.perf_counter()
    for _ in range(steps):
        step(action)
    return (time.perf_counter() - t) / steps * 1e6


def gymnasium_step_us(steps: int = 2000) -> dict[str, float]:
    import gymnasium as gym

    env = gym.make("Pendulum-v1")
    env.reset(seed=0)
    venv = gym.make_vec("Pendulum-v1", num_envs=1, vectorization_mode="sync")
    venv.reset(seed=0)
    return {"raw Pendulum-v1 step us":
                round(_host_loop_us(env.step, np.zeros(1, np.float32), steps), 1),
            "SyncVectorEnv(1) step us":
                round(_host_loop_us(venv.step, np.zeros((1, 1), np.float32), steps), 1)}


def overlap_ms(callback: bool, in_cond: bool, steps: int = 50, busy_s: float = 0.002) -> float:
    def host(x):
        t = time.perf_counter()
        while time.perf_counter() - t < busy_s:  # a simulator holding the GIL
            pass
        return np.asarray(x + 1, np.float32)

    def heavy(w, x):
        for _ in range(12):
            x = jnp.tanh(x @ w)
        return x

    def body(carry, _):
        w, x, s, i = carry
        if callback:  # depends on s only: independent of the matmul chain
            s = io_callback(host, jax.ShapeDtypeStruct((), jnp.float32), s, ordered=True)
        if in_cond:
            x = jax.lax.cond(i >= 0, heavy, lambda w, x: x, w, x)
        else:
            x = heavy(w, x)
        return (w, x, s, i + 1), None

    f = jax.jit(lambda w, x, s: jax.lax.scan(body, (w, x, s, 0), None, length=steps)[0])
    w, x = jnp.eye(256) * 0.5, jnp.ones((256, 256))
    return _best_per_step(lambda: f(w, x, jnp.float32(0)), steps, reps=3) * 1e3


def main() -> None:
    out: dict = {"load_start": list(os.getloadavg()), "jax": jax.__version__}
    out["noop io_callback, ordered, us/call"] = round(noop_callback_us(True), 1)
    out["noop io_callback, unordered, us/call"] = round(noop_callback_us(False), 1)
    out.update(gymnasium_step_us())
    for in_cond in (False, True):
        where = "inside lax.cond" if in_cond else "plain"
        alone = overlap_ms(False, in_cond)
        both = overlap_ms(True, in_cond)
        out[f"matmul chain {where}, ms/step"] = round(alone, 2)
        out[f"matmul chain {where} + 2 ms callback, ms/step"] = round(both, 2)
        out[f"  sequential would be ({where}), ms/step"] = round(alone + 2.0, 2)
    out["load_end"] = list(os.getloadavg())
    for k, v in out.items():
        print(f"{k:55s} {v}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "io_callback_cost.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
