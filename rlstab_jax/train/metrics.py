"""Metric sinks: JSONL always; TensorBoard, W&B and MLflow optional and imported lazily.

Credentials are read by those libraries from environment variables only (``WANDB_API_KEY``,
``MLFLOW_TRACKING_URI``, ...); nothing here writes or logs them.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from rlstab_jax.config.errors import ConfigError

_log = logging.getLogger(__name__)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN/Inf; null marks "no value" (e.g. no episode finished)
    return v


class JsonlSink:
    def __init__(self, path: Path):
        self.path = path
        self._f = open(path, "a", buffering=1)

    def write(self, row: dict[str, Any]) -> None:
        self._f.write(json.dumps({k: _clean(v) for k, v in row.items()}) + "\n")

    def close(self) -> None:
        self._f.close()


class TensorBoardSink:
    def __init__(self, run_dir: Path):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ConfigError("log.tensorboard=true needs the 'tracking' extra: "
                              "pip install 'rlstab_jax[tracking]'") from None
        self._writers: dict[int, Any] = {}
        self._dir = run_dir / "tensorboard"
        self._cls = SummaryWriter

    def write(self, row: dict[str, Any]) -> None:
        seed = int(row["seed"])
        if seed not in self._writers:
            self._writers[seed] = self._cls(str(self._dir / f"seed{seed}"))
        w = self._writers[seed]
        for k, v in row.items():
            if k not in ("step", "seed") and isinstance(v, (int, float)) and math.isfinite(v):
                w.add_scalar(k, v, int(row["step"]))

    def close(self) -> None:
        for w in self._writers.values():
            w.close()


class WandbSink:
    def __init__(self, run_dir: Path, project: str, config: dict[str, Any]):
        try:
            import wandb
        except ImportError:
            raise ConfigError("log.wandb=true needs the 'tracking' extra: "
                              "pip install 'rlstab_jax[tracking]'") from None
        self._run = wandb.init(project=project, dir=str(run_dir), config=config,
                               name=run_dir.name)

    def write(self, row: dict[str, Any]) -> None:
        seed = int(row["seed"])
        self._run.log({f"seed{seed}/{k}": v for k, v in row.items()
                       if k not in ("seed",) and v is not None}, step=None)

    def close(self) -> None:
        self._run.finish()


class MlflowSink:
    def __init__(self, run_dir: Path, experiment: str, config: dict[str, Any]):
        try:
            import mlflow
        except ImportError:
            raise ConfigError("log.mlflow=true needs the 'tracking' extra: "
                              "pip install 'rlstab_jax[tracking]'") from None
        mlflow.set_experiment(experiment)
        self._mlflow = mlflow
        self._run = mlflow.start_run(run_name=run_dir.name)
        flat = {f"{s}.{k}": str(v) for s, sec in config.items() if isinstance(sec, dict)
                for k, v in sec.items()}
        mlflow.log_params({k: v[:250] for k, v in flat.items()})

    def write(self, row: dict[str, Any]) -> None:
        seed = int(row["seed"])
        vals = {f"seed{seed}.{k.replace('/', '.')}": float(v) for k, v in row.items()
                if k not in ("step", "seed") and isinstance(v, (int, float)) and math.isfinite(v)}
        self._mlflow.log_metrics(vals, step=int(row["step"]))

    def close(self) -> None:
        self._mlflow.end_run()


class MetricsWriter:
    """Fan rows (one per log step and seed) out to every configured sink."""

    def __init__(self, run_dir: Path, log_cfg: Any, config: dict[str, Any]):
        self.sinks: list[Any] = [JsonlSink(run_dir / "metrics.jsonl")]
        if log_cfg.tensorboard:
            self.sinks.append(TensorBoardSink(run_dir))
        if log_cfg.wandb:
            self.sinks.append(WandbSink(run_dir, log_cfg.wandb_project, config))
        if log_cfg.mlflow:
            self.sinks.append(MlflowSink(run_dir, log_cfg.mlflow_experiment, config))

    def write(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            for sink in self.sinks:
                sink.write(row)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def read_metrics(path: Path, warn: Any = None) -> list[dict[str, Any]]:
    """Rows of a ``metrics.jsonl``; a torn LAST line (a crash mid-write) is dropped with a warning.

    ``warn`` receives the warning line (default: the ``logging`` warning). A bad line anywhere
    else is not a crash artefact (append-only writes only tear the tail): ConfigError.
    """
    text = Path(path).read_text()
    lines = text.split("\n")
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            if any(rest.strip() for rest in lines[i + 1:]):
                raise ConfigError(
                    f"{path}: line {i + 1} is not a JSON row ({type(e).__name__}: "
                    f"{str(e).splitlines()[0]}); fix or remove that line"
                ) from None
            msg = (f"warning: {path}: dropped a torn last line {i + 1} "
                   f"({len(line)} bytes; a crash during a write)")
            (warn or _log.warning)(msg)
            continue
        rows.append(row)
    return rows


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same directory and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def truncate_metrics(path: Path, max_step: int, warn: Any = None) -> int:
    """Drop rows logged after ``max_step`` (a resume replays them from the checkpoint).

    The file is rewritten atomically (a kill during the rewrite leaves the old or the new
    file, never half of one); a torn last line is dropped with a warning. Returns the number
    of rows dropped.
    """
    if not path.exists():
        return 0
    rows = read_metrics(path, warn)
    keep = [r for r in rows if r.get("step", 0) <= max_step]
    text = "".join(json.dumps(r) + "\n" for r in keep)
    if text != path.read_text():
        _write_atomic(path, text)
    return len(rows) - len(keep)
