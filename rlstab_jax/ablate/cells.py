"""Grid cells: one program (structural variant) x one seed block, trained by the shared loop.

A cell's batch has one member per (numeric variant, seed): member ``j * B + k`` trains seed
``block[k]`` of the program's numeric variant ``j`` with ``PRNGKey(block[k])`` and that
variant's hyper-parameters, so it equals a single ``python -m rlstab_jax.train`` run with
``train.seed=block[k]`` and those values. The cell runs through ``rlstab_jax.train.loop.run``
(checkpoints, metrics.jsonl, evaluation, non-finite stop) in its own run directory; a cell whose
``cell.json`` exists is finished, one with checkpoints but no ``cell.json`` resumes from its
latest checkpoint.

Compile count and time come from JAX's own compile events
(``jax.monitoring``: ``/jax/core/compile/backend_compile_duration``), attributed to the cell
running when they fire.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from rlstab_jax.ablate.spec import GridSpec, Program
from rlstab_jax.config.loader import Config, load_config

CELL_DONE = "cell.json"
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@dataclasses.dataclass(frozen=True)
class Cell:
    program: Program
    block: tuple[int, ...]
    block_index: int

    @property
    def name(self) -> str:
        return f"{self.program.slug}/seeds{self.block[0]}-{self.block[-1]}"

    @property
    def members(self) -> list[tuple[str, int]]:
        """``(variant name, seed)`` of each batch member, in batch order."""
        return [(v.name, s) for v in self.program.variants for s in self.block]

    @property
    def env_steps(self) -> int:
        return len(self.members) * self.program.variants[0].cfg.train.total_steps


def plan(spec: GridSpec) -> list[Cell]:
    return [Cell(p, b, i) for p in spec.programs for i, b in enumerate(spec.blocks())]


def cell_dir(out: Path, cell: Cell) -> Path:
    return out / "cells" / cell.name


def is_done(out: Path, cell: Cell) -> bool:
    return (cell_dir(out, cell) / CELL_DONE).is_file()


class CompileCounter:
    """Counts XLA backend compiles (and their seconds) while active, via ``jax.monitoring``."""

    _lock = threading.Lock()
    _active: list[CompileCounter] = []
    _registered = False

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    @classmethod
    def _listener(cls, event: str, duration: float, **_: Any) -> None:
        if event == _COMPILE_EVENT:
            for c in list(cls._active):
                c.count += 1
                c.seconds += float(duration)

    def __enter__(self) -> CompileCounter:
        import jax.monitoring

        with self._lock:
            if not CompileCounter._registered:
                jax.monitoring.register_event_duration_secs_listener(CompileCounter._listener)
                CompileCounter._registered = True
            CompileCounter._active.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            CompileCounter._active.remove(self)


def cell_config(cell: Cell, directory: Path) -> Config:
    """The cell's run config: the program's config with the batch size and its run dir."""
    base = cell.program.variants[0].cfg.to_dict()
    base["train"]["seeds"] = len(cell.members)
    base["train"]["seed"] = cell.block[0]
    base["run"]["dir"] = str(directory)
    base["log"].update(progress=False, plot=False)
    base["checkpoint"]["best"] = False
    return load_config(base=base)


def cell_hparams(cell: Cell) -> dict[str, np.ndarray]:
    """Hyper-parameter leaves ``[M]`` in member order (variant-major, seed-minor)."""
    variants = cell.program.variants
    names = list(variants[0].numeric)
    B = len(cell.block)
    return {k: np.repeat(np.array([v.numeric[k] for v in variants], np.float32), B)
            for k in names}


_SESSIONS: dict[tuple[str, int], Any] = {}


def _session(cell: Cell, cfg: Config) -> Any:
    """One session (one compiled chunk) per program and batch size, reused across blocks."""
    import jax.numpy as jnp

    from rlstab_jax.train.session import build_session, keys_for

    seeds = tuple(s for _, s in cell.members)
    labels = tuple({"variant": v} for v, _ in cell.members)
    hp = {k: jnp.asarray(v) for k, v in cell_hparams(cell).items()}
    single = len(cell.program.variants) == 1
    key = (json.dumps(cell.program.variants[0].cfg.to_dict(), sort_keys=True, default=str),
           len(seeds))
    sess = _SESSIONS.get(key)
    # A gymnasium session's host envs and evaluation are seeded at build time (its members'
    # env seeds), so it is rebuilt for every seed block instead of reused.
    if sess is None or sess.backend == "gymnasium":
        sess = build_session(cfg, hparams=hp, seeds=None if single else seeds,
                             labels=None if single else labels)
        _SESSIONS[key] = sess
        return sess
    return dataclasses.replace(sess, cfg=cfg, hparams=hp, keys=keys_for(seeds),
                               seed_ids=None if single else seeds,
                               labels=None if single else labels)


def run_cell(cell: Cell, directory: Path, on_chunk: Any = None,
             stop_after_steps: int | None = None) -> dict[str, Any]:
    """Train one cell (or resume it from its checkpoint) and write its ``cell.json``.

    Returns the cell record: members, steps, wall-clock, compile count and seconds.
    """
    from rlstab_jax.train.loop import NonFiniteError, run

    directory.mkdir(parents=True, exist_ok=True)
    cfg = cell_config(cell, directory)
    resume = directory if (directory / "checkpoints").is_dir() and any(
        p.name.isdigit() for p in (directory / "checkpoints").iterdir()) else None
    t0 = time.perf_counter()
    stopped = ""
    with CompileCounter() as cc:
        sess = _session(cell, cfg)
        try:
            run(cfg, resume=resume, session=sess, progress=False, on_chunk=on_chunk,
                stop_after_steps=stop_after_steps)
        except NonFiniteError as e:
            stopped = str(e)
    record = {
        "cell": cell.name, "program": cell.program.name, "block": list(cell.block),
        "members": [{"variant": v, "seed": s} for v, s in cell.members],
        "total_steps": cfg.train.total_steps, "resumed": resume is not None,
        "wall_seconds": time.perf_counter() - t0, "compiles": cc.count,
        "compile_seconds": cc.seconds, "stopped": stopped,
    }
    if stop_after_steps is None or stop_after_steps >= cfg.train.total_steps or stopped:
        (directory / CELL_DONE).write_text(json.dumps(record, indent=1))
    return record


def read_cell_rows(directory: Path) -> list[dict[str, Any]]:
    from rlstab_jax.train.metrics import read_metrics

    return read_metrics(directory / "metrics.jsonl")
