"""A finished run directory as arrays: its config and its metric rows grouped per seed."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from rlstab_jax.config.errors import ConfigError


@dataclasses.dataclass(frozen=True, eq=False)
class RunLog:
    """``config`` (the run's ``config.yaml`` as a mapping) and ``rows`` of ``metrics.jsonl``."""

    run_dir: Path
    config: dict[str, Any]
    rows: list[dict[str, Any]]

    @functools.cached_property
    def action_names(self) -> tuple[str, ...]:
        """The env's action-dimension names in action order (``()`` if the env cannot be built).

        Metric rows are key-sorted; this restores the env's order (steer, gas, brake) for plots.
        Only pure-JAX envs are built (cheap, no simulator process); others give ``()``.
        """
        from rlstab_jax.envs import registry

        env = self.config.get("env") or {}
        try:
            choice = registry.resolve(str(env.get("id")), str(env.get("backend", "auto")))
            if choice.backend != "jax":
                return ()
            spec = registry.make_jax(str(env.get("id")), dict(env.get("kwargs") or {})).spec
        except ConfigError:
            return ()
        return tuple(spec.action_names)

    @property
    def seeds(self) -> list[int]:
        return sorted({int(r["seed"]) for r in self.rows})

    @property
    def keys(self) -> set[str]:
        return {k for r in self.rows for k in r}

    def keys_under(self, prefix: str) -> list[str]:
        """Metric keys starting with ``prefix`` (e.g. ``"alpha/"``) in logged order.

        Logged order keeps action dimensions in the env's order (steer, gas, brake).
        """
        ordered = dict.fromkeys(k for r in self.rows for k in r)
        return [k for k in ordered if k.startswith(prefix)]

    def series(self, key: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """``{seed: (steps, values)}`` of the rows where ``key`` has a value."""
        out: dict[int, tuple[list[int], list[float]]] = {}
        for r in self.rows:
            v = r.get(key)
            if v is not None:
                steps, vals = out.setdefault(int(r["seed"]), ([], []))
                steps.append(int(r["step"]))
                vals.append(float(v))
        return {s: (np.asarray(a), np.asarray(b, np.float64)) for s, (a, b) in out.items()}

    def eval_matrix(self, key: str = "eval/return") -> tuple[np.ndarray, np.ndarray]:
        """``(steps [E], returns [S, E])`` on the eval steps every seed has (oldest first)."""
        per_seed = self.series(key)
        if not per_seed:
            return np.zeros(0, np.int64), np.zeros((0, 0))
        common = sorted(set.intersection(*(set(st.tolist()) for st, _ in per_seed.values())))
        mat = np.array([[dict(zip(st.tolist(), v))[t] for t in common]
                        for _, (st, v) in sorted(per_seed.items())])
        return np.asarray(common), mat


def load_run(run_dir: str | Path) -> RunLog:
    """Read ``config.yaml`` and ``metrics.jsonl`` of a run directory.

    Raises:
      ConfigError: one line when the directory is not a run directory or holds no metrics.
    """
    from rlstab_jax.config.loader import read_yaml

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run directory")
    metrics = run_dir / "metrics.jsonl"
    if not (run_dir / "config.yaml").is_file() or not metrics.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (needs config.yaml and metrics.jsonl)")
    rows = []
    with open(metrics) as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                # A run killed mid-write leaves a torn last line: report what was logged.
                continue
    if not rows:
        raise ConfigError(f"{metrics}: no metric rows yet (has the run logged a chunk?)")
    return RunLog(run_dir, read_yaml(run_dir / "config.yaml"), rows)
