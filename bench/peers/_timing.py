"""Shared timing helpers of the peer runners (stdlib + numpy only: runs in every peer venv).

A runner records a wall-clock timestamp after every env step (``StepClock.tick``); ``summary``
turns them into the one JSON line every runner prints:

* ``steady_sps``: env steps/s over the learning steps after the first ``skip`` of them (the
  first learning steps hold the jit compile / first-call set-up), the same window the
  rlstab_jax side times;
* ``compile_or_startup_s``: time before that window minus what its steps cost at the measured
  warm-up and steady rates (model construction + compile + first-call overhead).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def parser(doc: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5000, help="env steps in all (incl. warm-up)")
    ap.add_argument("--learning-starts", type=int, default=1000)
    ap.add_argument("--skip", type=int, default=None,
                    help="learning steps left out of the steady window (default: 500 for UTD 1,"
                         " 100 for DroQ)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default=None)
    return ap


class StepClock:
    def __init__(self, n_steps: int):
        self.t0 = time.perf_counter()
        self.ts = np.full(n_steps + 1, np.nan)
        self.i = 0

    def start(self) -> None:  # the moment the env steps begin (after construction)
        self.ts[0] = time.perf_counter()

    def tick(self, k: int = 1) -> None:
        self.i += k
        if self.i < len(self.ts):
            self.ts[self.i] = time.perf_counter()


def summary(name: str, clock: StepClock, learning_starts: int, skip: int, steps_per_tick: int = 1,
            seeds: int = 1, **extra) -> dict:
    ts, n = clock.ts, min(clock.i, len(clock.ts) - 1)
    end = time.perf_counter()

    def tick_at(i: int) -> int:  # first recorded step >= i (chunked runners tick in blocks)
        while i <= n and np.isnan(ts[i]):
            i += 1
        return i

    ls, a = tick_at(learning_starts), tick_at(learning_starts + skip)
    assert n > a, f"only {n} steps recorded, need more than learning_starts + skip = {a}"
    steady = (n - a) / (ts[n] - ts[a])
    skip = a - ls
    w0 = min(tick_at(ls // 2), ls - 1)
    warm_sps = (ls - w0) / (ts[ls] - ts[w0]) if ls >= 2 and not np.isnan(ts[w0]) \
        else float("inf")
    before = ts[a] - clock.t0
    overhead = before - ls / warm_sps - skip / steady
    out = {"name": name, "steps": int(n), "seeds": seeds,
           "seconds_total": round(end - clock.t0, 3), "steady_sps": round(steady, 2),
           "steady_sps_aggregate": round(steady * seeds, 2), "steady_window_steps": int(n - a),
           "steady_window_s": round(float(ts[n] - ts[a]), 3),
           "compile_or_startup_s": round(max(float(overhead), 0.0), 3),
           "construct_s": round(float(ts[0] - clock.t0), 3),
           "warmup_sps": round(float(warm_sps), 1)}
    out.update(extra)
    return out


def emit(out: dict) -> None:
    print(json.dumps(out), flush=True)
