"""Refuse a training state that cannot fit in memory, before anything is allocated.

Failure prevented (issue 13): ``replay.capacity=10**9`` silently took all memory and was killed
by the kernel (exit 137, no message), ``10**12`` ended in an ``OverflowError`` from inside a
jitted call. The estimate is exact rather than a formula: the bytes of every leaf of
``jax.eval_shape(init)`` (replay with pixels and n-step rows, networks, optimiser states, all
seeds), which costs no allocation. The limit is the memory the process can still get: on an
accelerator the device's free bytes (``Device.memory_stats``), on CPU the smaller of the
kernel's ``MemAvailable`` and the cgroup limit (containers, SLURM jobs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np

from rlstab_jax.config.errors import ConfigError

# Headroom for XLA's temporaries, the compiled programs and the Python process itself.
USABLE_FRACTION = 0.9


def tree_bytes(tree: Any) -> int:
    """Bytes of every leaf of a (possibly abstract) pytree; typed PRNG keys count their data."""
    total = 0
    for leaf in jax.tree.leaves(tree):
        shape = getattr(leaf, "shape", ())
        dtype = getattr(leaf, "dtype", np.asarray(leaf).dtype)
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            size = 8  # threefry key data: 2 x uint32 (rbg keys are larger; negligible here)
        else:
            size = np.dtype(dtype).itemsize
        total += int(np.prod(shape, dtype=object)) * size
    return total


def _read_int(path: str) -> int | None:
    try:
        raw = Path(path).read_text().split()[0]
        return None if raw == "max" else int(raw)
    except (OSError, ValueError, IndexError):
        return None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_bytes() -> tuple[int | None, str]:
    """``(bytes the process can still allocate, where that number comes from)``.

    ``(None, reason)`` when nothing is known (then no check is made).
    """
    dev = jax.devices()[0]
    if dev.platform != "cpu":
        stats = dev.memory_stats() or {}
        if "bytes_limit" in stats:
            free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
            return free, f"free memory on {dev.platform}:{dev.id}"
    candidates = []
    mem = _meminfo_available()
    if mem is not None:
        candidates.append((mem, "MemAvailable"))
    limit = _read_int("/sys/fs/cgroup/memory.max")
    if limit is not None:
        used = _read_int("/sys/fs/cgroup/memory.current") or 0
        candidates.append((limit - used, "the cgroup memory limit"))
    if not candidates:
        return None, "unknown"
    return min(candidates)


def _gb(n: int) -> str:
    return f"{n / 2**30:.3g} GB"


def check_state_fits(abstract_state: Any, cfg: Any) -> int:
    """Raise a one-line ConfigError if the training state cannot fit; return its bytes.

    Args:
      abstract_state: ``jax.eval_shape`` of the session's init (seed-batched).
      cfg: the run config (named in the message: ``replay.capacity`` and ``train.seeds``).
    """
    need = tree_bytes(abstract_state)
    have, source = available_bytes()
    if have is None or need <= USABLE_FRACTION * have:
        return need
    replay = getattr(abstract_state, "replay", None)
    if replay is not None:
        rb = tree_bytes(replay)
        per = rb / max(1, cfg.replay.capacity * cfg.train.seeds)
        what = (
            f"replay.capacity={cfg.replay.capacity} x train.seeds={cfg.train.seeds} x "
            f"~{per:.0f} bytes per transition = {_gb(rb)} of replay"
        )
        fix = "lower replay.capacity or train.seeds"
    else:
        what, fix = f"train.seeds={cfg.train.seeds}", "lower train.seeds or env.n_envs"
    raise ConfigError(
        f"the training state needs ~{_gb(need)} ({what}) but only {_gb(have)} is available "
        f"({source}, {USABLE_FRACTION:.0%} usable); {fix}"
    )
