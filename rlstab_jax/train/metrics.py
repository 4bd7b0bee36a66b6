"""Metric sinks: JSONL always; TensorBoard, W&B and MLflow optional and imported lazily.

Credentials are read by those libraries from environment variables only (``WANDB_API_KEY``,
``MLFLOW_TRACKING_URI``, ...); nothing here writes or logs them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rlstab_jax.config.errors import ConfigError


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


def read_metrics(path: Path) -> list[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def truncate_metrics(path: Path, max_step: int) -> None:
    """Drop rows logged after ``max_step`` (a resume replays them from the checkpoint)."""
    if not path.exists():
        return
    rows = [r for r in read_metrics(path) if r.get("step", 0) <= max_step]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
