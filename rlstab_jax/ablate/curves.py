"""Per-seed curves of every variant, gathered from the cells' ``metrics.jsonl``.

Written as ``curves/<variant>.npz`` (``np.savez``, loaded with ``allow_pickle=False``):

- ``seeds [S]`` int, ``eval_steps [E]`` int, ``eval_return [S, E]`` float (NaN = missing);
- ``log_steps [T]`` and, per logged series, ``[S, T]`` arrays under the metric name with ``/``
  replaced by ``.`` (``log_std.frac_at_floor``, ``q_mean``, ``nonfinite.skipped``,
  ``train.episode_return``, ...);
- ``nonfinite_count [S]``: non-finite (skipped) updates per seed over the run.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from rlstab_jax.ablate.cells import Cell, cell_dir, read_cell_rows
from rlstab_jax.ablate.spec import GridSpec, _slug

SERIES = ("log_std/frac_at_floor", "nonfinite/skipped", "updates/fraction",
          "train/episode_return", "alpha/mean", "critic/loss", "critic/grad_norm",
          "actor/grad_norm")


@dataclasses.dataclass
class Curves:
    variant: str
    seeds: np.ndarray  # [S]
    eval_steps: np.ndarray  # [E]
    eval_return: np.ndarray  # [S, E]
    log_steps: np.ndarray  # [T]
    series: dict[str, np.ndarray]  # name -> [S, T]
    nonfinite_count: np.ndarray  # [S]

    def save(self, path: Path) -> None:
        arrays = {"seeds": self.seeds, "eval_steps": self.eval_steps,
                  "eval_return": self.eval_return, "log_steps": self.log_steps,
                  "nonfinite_count": self.nonfinite_count,
                  "variant": np.array(self.variant)}
        arrays.update({k.replace("/", "."): v for k, v in self.series.items()})
        np.savez(path, **arrays)

    @staticmethod
    def load(path: Path) -> Curves:
        with np.load(path, allow_pickle=False) as z:
            fixed = ("seeds", "eval_steps", "eval_return", "log_steps", "nonfinite_count",
                     "variant")
            series = {k.replace(".", "/"): z[k] for k in z.files if k not in fixed}
            return Curves(str(z["variant"]), z["seeds"], z["eval_steps"], z["eval_return"],
                          z["log_steps"], series, z["nonfinite_count"])


def _grid(rows_by_seed: dict[int, dict[int, dict[str, Any]]], seeds: list[int], key: str,
          steps: list[int]) -> np.ndarray:
    out = np.full((len(seeds), len(steps)), np.nan, np.float64)
    for i, s in enumerate(seeds):
        for j, t in enumerate(steps):
            v = rows_by_seed.get(s, {}).get(t, {}).get(key)
            if v is not None:
                out[i, j] = float(v)
    return out


def variant_curves(spec: GridSpec, cells: list[Cell], out: Path, metric: str) -> dict[str, Curves]:
    """Collect every variant's per-seed curves from the finished cells."""
    rows: dict[str, dict[int, dict[int, dict[str, Any]]]] = {}
    chunk_iters: dict[str, int] = {}
    for cell in cells:
        directory = cell_dir(out, cell)
        if not (directory / "metrics.jsonl").is_file():
            continue
        only = cell.program.variants[0].name if len(cell.program.variants) == 1 else None
        for r in read_cell_rows(directory):
            name = r.get("variant", only)
            rows.setdefault(name, {}).setdefault(int(r["seed"]), {})[int(r["step"])] = r
        for v in cell.program.variants:
            cfg = v.cfg
            chunk_iters[v.name] = max(1, cfg.train.chunk_steps // cfg.env.n_envs)
    result = {}
    for v in spec.variants:
        by_seed = rows.get(v.name, {})
        if not by_seed:
            continue
        seeds = sorted(by_seed)
        log_steps = sorted({t for d in by_seed.values() for t in d})
        eval_steps = sorted({t for d in by_seed.values() for t, r in d.items()
                             if r.get(metric) is not None})
        series = {}
        for key in SERIES:
            arr = _grid(by_seed, seeds, key, log_steps)
            if np.isfinite(arr).any():
                series[key] = arr
        qkeys = sorted({k for d in by_seed.values() for r in d.values() for k in r
                        if k.startswith("q/mean/")})
        if qkeys:
            series["q_mean"] = np.nanmean(
                np.stack([_grid(by_seed, seeds, k, log_steps) for k in qkeys]), axis=0)
        skipped = series.get("nonfinite/skipped")
        frac = series.get("updates/fraction")
        if skipped is not None:
            f = np.nan_to_num(frac, nan=1.0) if frac is not None else 1.0
            count = np.nansum(skipped * f * chunk_iters.get(v.name, 1), axis=1)
        else:
            count = np.zeros(len(seeds))
        result[v.name] = Curves(v.name, np.array(seeds), np.array(eval_steps, np.int64),
                                _grid(by_seed, seeds, metric, eval_steps),
                                np.array(log_steps, np.int64), series, np.rint(count))
    return result


def write_curves(curves: dict[str, Curves], out: Path) -> dict[str, str]:
    directory = out / "curves"
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, c in curves.items():
        p = directory / f"{_slug(name)}.npz"
        c.save(p)
        paths[name] = str(p.relative_to(out))
    (directory / "index.json").write_text(json.dumps(paths, indent=1))
    return paths
