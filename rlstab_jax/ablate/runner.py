"""Run a grid: plan cells, skip finished ones, run the rest (locally or as Ray tasks), analyse.

The results directory (``ablations/<name>-<timestamp>/`` by default) holds ``grid.yaml`` (the
grid file as given), ``grid_overrides.json`` (command-line overrides), ``cells/<program>/
seeds<a>-<b>/`` (each a run directory of the shared loop: config.yaml, metrics.jsonl,
checkpoints/, cell.json when finished), then ``curves/``, ``summary.json``, ``plots/`` and
``report.md``. Running again on the same directory (``--resume DIR``) trains only the cells
without ``cell.json``; an interrupted cell continues from its latest checkpoint.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rlstab_jax.ablate.cells import Cell, cell_dir, is_done, plan, run_cell
from rlstab_jax.ablate.spec import GridSpec, load_grid


def default_out(spec: GridSpec) -> Path:
    return Path("ablations") / f"{spec.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def prepare(spec: GridSpec, out: Path, overrides: dict[str, Any]) -> None:
    """Record the grid file and overrides in ``out`` (what ``--resume`` reads back)."""
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    if not (out / "grid.yaml").is_file():
        header = f"# copied from {spec.path} (relative data paths made absolute)\n"
        (out / "grid.yaml").write_text(header + yaml.safe_dump(
            {**spec.raw, "name": spec.name}, sort_keys=False))
        (out / "grid_overrides.json").write_text(json.dumps(overrides))


def load_resumed(out: Path) -> tuple[GridSpec, dict[str, Any]]:
    from rlstab_jax.config.errors import ConfigError

    if not (out / "grid.yaml").is_file():
        raise ConfigError(f"--resume {out}: no grid.yaml there (not an ablation directory)")
    overrides = json.loads((out / "grid_overrides.json").read_text()) if (
        out / "grid_overrides.json").is_file() else {}
    return load_grid(str(out / "grid.yaml"), overrides), overrides


def run_grid(spec: GridSpec, out: Path, *, overrides: dict[str, Any] | None = None,
             ray_address: str | None = None, progress: bool = True,
             max_cells: int | None = None, analyse: bool = True,
             ray_shared_fs: bool | None = None, ray_cpus: float = 1,
             ray_gpus: float = 0) -> dict[str, Any]:
    """Train every missing cell of ``spec`` into ``out`` and (by default) analyse the results.

    Args:
      spec: a validated grid.
      out: results directory (created; reused when it exists).
      overrides: the dotted overrides ``spec`` was loaded with (stored for resume).
      ray_address: run cells as Ray tasks on this cluster (``"local"`` starts one here).
      progress: show the grid-wide progress bar (env steps over all cells and members).
      max_cells: train at most this many missing cells, then stop (split work, tests).
      analyse: write curves, summary.json, plots and report.md when every cell is finished.
      ray_shared_fs: Ray workers write ``out`` directly (None: detect; False: ship files back).
      ray_cpus, ray_gpus: resources each Ray task (cell) requests.

    Returns:
      ``{"ran": [cell names], "skipped": [...], "records": [...], "summary": dict | None}``.
    """
    prepare(spec, out, overrides or {})
    cells = plan(spec)
    todo = [c for c in cells if not is_done(out, c)]
    skipped = [c.name for c in cells if is_done(out, c)]
    if max_cells is not None:
        todo = todo[:max_cells]
    total = sum(c.env_steps for c in cells)
    done_steps = sum(c.env_steps for c in cells if is_done(out, c))
    bar = tqdm(total=total, initial=done_steps, unit="step", disable=not progress,
               dynamic_ncols=True, desc=f"{spec.name} ({len(cells)} cells)")
    records: list[dict[str, Any]] = []
    try:
        if ray_address:
            from rlstab_jax.ablate.ray_exec import run_cells_ray

            for rec in run_cells_ray(ray_address, spec, overrides or {}, todo, out,
                                     num_cpus=ray_cpus, num_gpus=ray_gpus,
                                     shared=ray_shared_fs):
                records.append(rec)
                bar.update(sum(c.env_steps for c in todo if c.name == rec["cell"]))
        else:
            for cell in todo:
                records.append(_run_local(cell, out, bar))
    finally:
        bar.close()
    summary = None
    if analyse and all(is_done(out, c) for c in cells):
        from rlstab_jax.ablate.report import analyse as analyse_fn

        summary = analyse_fn(spec, cells, out)
    return {"ran": [r["cell"] for r in records], "skipped": skipped, "records": records,
            "summary": summary, "out": str(out)}


def _run_local(cell: Cell, out: Path, bar: Any) -> dict[str, Any]:
    members = len(cell.members)
    pos = {"steps": 0}
    bar.set_postfix_str(cell.name, refresh=False)

    def on_chunk(steps: int, rows: list[dict[str, Any]], evaluated: bool) -> bool:
        # A resumed cell's first chunk also counts the steps restored from its checkpoint.
        bar.update(max(0, steps - pos["steps"]) * members)
        pos["steps"] = steps
        return False

    return run_cell(cell, cell_dir(out, cell), on_chunk=on_chunk)
