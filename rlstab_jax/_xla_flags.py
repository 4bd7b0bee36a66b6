"""Process-wide XLA:CPU flag that avoids a runtime hang (applied once, on import).

Failure it prevents: on XLA:CPU (jaxlib 0.10.2) the multi-head LSTM PPO on Scaffold-v0 with
``train.seeds >= 2`` hangs forever at its first program: every XLA/Eigen worker idle, the main
thread waiting on a buffer (a lost wake-up in the CPU runtime's concurrency-optimised thunk
scheduler; ``docs/troubleshooting.md``). Measured here: 3 of 3 runs of the 2-seed init hung
without the flag, 12 of 12 finished with ``--xla_cpu_enable_concurrency_optimized_scheduler=false``
put into ``XLA_FLAGS`` before the CPU backend starts (whether or not ``jax`` was imported first).

XLA reads ``XLA_FLAGS`` once, when the first backend is created, so the flag is added here, at
``import rlstab_jax``. It is a CPU-only flag (GPU/TPU ignore it). A value the user already put
into ``XLA_FLAGS`` is left alone, and ``RLSTAB_JAX_KEEP_XLA_FLAGS=1`` turns this off.
"""

from __future__ import annotations

import os
import sys
import warnings

FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"


def add_cpu_scheduler_flag(environ: dict | None = None) -> bool:
    """Add ``FLAG=false`` to ``XLA_FLAGS`` unless set already; True if it was added."""
    env = os.environ if environ is None else environ
    if env.get("RLSTAB_JAX_KEEP_XLA_FLAGS", "") not in ("", "0"):
        return False
    flags = env.get("XLA_FLAGS", "")
    if FLAG in flags:
        return False
    if environ is None and _backend_started():
        warnings.warn(
            f"rlstab_jax was imported after JAX started its backend, so {FLAG}=false cannot "
            "take effect; multi-seed LSTM runs on CPU may hang (docs/troubleshooting.md). "
            "Import rlstab_jax before running JAX code, or set the flag in XLA_FLAGS.",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    env["XLA_FLAGS"] = f"{flags} {FLAG}=false".strip()
    return True


def _backend_started() -> bool:
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge  # private, but the only way to ask; absent -> assume not

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):
        return False
