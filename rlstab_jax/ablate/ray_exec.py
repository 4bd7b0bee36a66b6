"""Scale-out on Ray: grid cells (program x seed block) and sweep trial batches as Ray tasks.

The driver sends each task the grid file's text and the overrides (no files need to exist on
the workers besides an installed ``rlstab_jax``), the cell's name and the results directory.
A worker that can write the results directory (same machine, or a shared filesystem) trains
the cell there, so an interrupted cell resumes from its checkpoint; otherwise it trains in a
local temporary directory. Either way the task returns the cell's ``cell.json`` record, its
``config.yaml`` and ``metrics.jsonl`` text, and the driver writes them into the results
directory: the gathered directory is the same as a local run's. ``address="local"`` starts a
Ray instance in this process (useful to check the path on one machine).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlstab_jax.ablate.cells import CELL_DONE, Cell, cell_dir
from rlstab_jax.ablate.spec import GridSpec
from rlstab_jax.config.errors import ConfigError


def ray_init(address: str) -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs the 'ray' extra: pip install 'rlstab_jax[ray]'") from None
    if not ray.is_initialized():
        try:
            if address == "local":
                ray.init(include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ConfigError(f"--ray {address}: cannot connect "
                              f"({str(e).splitlines()[0]})") from None
    return ray


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
        return True
    except OSError:
        return False


def remote_cell(grid_text: str, grid_name: str, overrides: dict[str, Any], cell_name: str,
                out: str, shared: bool | None = None) -> dict[str, Any]:
    """Body of a Ray task: re-validate the grid, train one cell, return its files' text."""
    from rlstab_jax.ablate.cells import plan, run_cell
    from rlstab_jax.ablate.spec import load_grid

    with tempfile.TemporaryDirectory() as tmp:
        gpath = Path(tmp) / f"{grid_name}.yaml"
        gpath.write_text(grid_text)
        spec = load_grid(str(gpath), overrides)
        cell = next(c for c in plan(spec) if c.name == cell_name)
        use_shared = _writable(Path(out)) if shared is None else shared
        directory = cell_dir(Path(out), cell) if use_shared else Path(tmp) / "cell"
        record = run_cell(cell, directory)
        return {"record": record, "metrics": (directory / "metrics.jsonl").read_text(),
                "config": (directory / "config.yaml").read_text(), "host": os.uname().nodename}


def run_cells_ray(address: str, spec: GridSpec, overrides: dict[str, Any], cells: list[Cell],
                  out: Path, num_cpus: float = 1, num_gpus: float = 0,
                  shared: bool | None = None) -> Iterator[dict]:
    """Submit every cell as a Ray task; yield each cell's record as it finishes.

    ``shared``: whether workers write the results directory directly (None: a worker checks
    whether it can; False: always train in a worker-local directory and ship the files back).
    """
    ray = ray_init(address)
    task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=1)(remote_cell)
    import yaml

    text = yaml.safe_dump(spec.raw, sort_keys=False)
    pending = {task.remote(text, Path(spec.path).stem, overrides, c.name,
                           str(out.resolve()), shared): c for c in cells}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        cell = pending.pop(ready[0])
        result = ray.get(ready[0])
        directory = cell_dir(out, cell)
        directory.mkdir(parents=True, exist_ok=True)
        if not (directory / CELL_DONE).is_file():  # the worker could not write here
            (directory / "metrics.jsonl").write_text(result["metrics"])
            (directory / "config.yaml").write_text(result["config"])
            (directory / CELL_DONE).write_text(json.dumps(
                {**result["record"], "host": result["host"]}, indent=1))
        yield {**result["record"], "host": result["host"]}
