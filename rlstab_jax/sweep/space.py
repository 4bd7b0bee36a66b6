"""Search spaces: YAML ``params:`` mapping dotted config keys to Optuna distributions.

Each entry is one of ``{choices: [...]}`` (categorical), ``{int: [lo, hi]}`` (optionally
``step``), ``{float: [lo, hi]}`` (optionally ``log: true``). Presets live in ``spaces/``:
``report001_phase3`` is field report 001 Phase 3 (gamma in {0.99, 0.995, 0.999}, Adam beta2 in
{0.99, 0.995}, UTD 2..8).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from rlstab_jax.config.errors import ConfigError, did_you_mean
from rlstab_jax.config.loader import read_yaml

SPACE_DIR = Path(__file__).resolve().parent / "spaces"


@dataclasses.dataclass(frozen=True)
class Param:
    key: str
    kind: str  # choices | int | float
    values: tuple[Any, ...]
    log: bool = False
    step: int = 1

    def suggest(self, trial: Any) -> Any:
        if self.kind == "choices":
            return trial.suggest_categorical(self.key, list(self.values))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.values[0]), int(self.values[1]),
                                     step=self.step)
        return trial.suggest_float(self.key, float(self.values[0]), float(self.values[1]),
                                   log=self.log)


def list_spaces() -> list[str]:
    return sorted(p.stem for p in SPACE_DIR.glob("*.yaml"))


def load_space(name_or_path: str) -> tuple[Param, ...]:
    """Read a search space file or preset name; one-line ConfigError on bad input."""
    p = Path(name_or_path)
    if not p.is_file():
        cand = SPACE_DIR / f"{name_or_path}.yaml"
        if not cand.is_file():
            raise ConfigError(f"--space {name_or_path!r}: no such file or preset"
                              f"{did_you_mean(name_or_path, list_spaces())}")
        p = cand
    data = read_yaml(p)
    params = data.get("params")
    if not isinstance(params, dict) or not params:
        raise ConfigError(f"{p}: 'params' must map dotted config keys to distributions")
    out = []
    for key, d in params.items():
        where = f"{p}: params.{key}"
        if not isinstance(key, str) or "." not in key:
            raise ConfigError(f"{where}: key must be dotted like agent.gamma")
        if not isinstance(d, dict):
            raise ConfigError(f"{where} must be {{choices: [...]}}, {{int: [lo, hi]}} or "
                              "{float: [lo, hi]}")
        kinds = [k for k in ("choices", "int", "float") if k in d]
        if len(kinds) != 1:
            raise ConfigError(f"{where}: give exactly one of choices/int/float")
        kind = kinds[0]
        values = d[kind]
        if not isinstance(values, list) or not values or (kind != "choices" and len(values) != 2):
            what = "of values" if kind == "choices" else "[lo, hi]"
            raise ConfigError(f"{where}.{kind} must be a list {what}")
        if kind != "choices" and not values[0] < values[1]:
            raise ConfigError(f"{where}.{kind}: need lo < hi, got {values}")
        out.append(Param(key, kind, tuple(values), bool(d.get("log", False)),
                         int(d.get("step", 1))))
    return tuple(out)
