"""Layered configs: schema defaults -> YAML preset -> ``key=value`` overrides, then validation.

OmegaConf merges the layers and parses override values; the typed build below turns the merged
mapping into frozen dataclasses with one-line errors (unknown key with the nearest valid key,
wrong type, out-of-range value), never a traceback.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlstab_jax.config.errors import ConfigError, did_you_mean
from rlstab_jax.config.schema import SECTIONS

PRESET_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_PRESET = PRESET_DIR / "sac" / "pendulum.yaml"


@dataclasses.dataclass(frozen=True)
class Config:
    """A resolved, validated run configuration."""

    agent_name: str
    agent: Any
    env: Any
    replay: Any
    train: Any
    log: Any
    checkpoint: Any
    run: Any
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"agent": {"name": self.agent_name, **_plain(self.agent)}}
        for name in SECTIONS:
            out[name] = _plain(getattr(self, name))
        return out


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def list_presets() -> list[str]:
    """Preset paths relative to the preset directory (``sac/pendulum.yaml``)."""
    return sorted(str(p.relative_to(PRESET_DIR)) for p in PRESET_DIR.glob("*/*.yaml"))


def resolve_preset(path: str) -> Path:
    """Accept a file path or a preset name (``sac/pendulum``)."""
    p = Path(path)
    if p.is_file():
        return p
    for cand in (PRESET_DIR / path, PRESET_DIR / f"{path}.yaml"):
        if cand.is_file():
            return cand
    names = [n.removesuffix(".yaml") for n in list_presets()]
    raise ConfigError(f"--config {path!r}: no such file or preset{did_you_mean(path, names)}")


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: top level must be a mapping of sections, got {type(data).__name__}"
        )
    return data


def _parse_overrides(overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"override {item!r} must look like key=value (e.g. train.seeds=4)")
    try:
        return OmegaConf.to_container(OmegaConf.from_dotlist(list(overrides)), resolve=True)
    except OmegaConfBaseException as e:
        for i in range(len(overrides)):  # name the first override that does not fit the rest
            try:
                OmegaConf.from_dotlist(list(overrides[: i + 1]))
            except OmegaConfBaseException:
                bad = overrides[i]
                break
        else:
            bad = ", ".join(overrides)
        raise ConfigError(f"cannot parse override {bad!r}: {str(e).splitlines()[0]}") from None


def _merge(base: dict[str, Any], *layers: dict[str, Any]) -> dict[str, Any]:
    _check_sections(base)
    try:
        merged = OmegaConf.create(base)
        for layer in layers:
            _check_sections(layer)
            merged = OmegaConf.merge(merged, OmegaConf.create(layer))
        return OmegaConf.to_container(merged, resolve=True)
    except OmegaConfBaseException as e:  # e.g. a list merged into a mapping
        raise ConfigError(f"cannot merge config layers: {str(e).splitlines()[0]}") from None


def _check_sections(layer: dict[str, Any]) -> None:
    """Every section (``agent`` included) is a mapping or empty: ``agent: 5`` is one line."""
    for section, value in layer.items():
        known = section in SECTIONS or section == "agent"  # unknown ones are named later
        if known and value is not None and not isinstance(value, dict):
            raise ConfigError(
                f"config section '{section}' must be a mapping of keys (e.g. "
                f"{section}.<key>=<value>), got {type(value).__name__} {value!r}"
            )


def _check_type(key: str, value: Any, tp: Any) -> Any:
    """Coerce ``value`` to ``tp`` where lossless; otherwise raise a one-line ConfigError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(key, value, arg)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}={value!r} has the wrong type")
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{key}={value!r} must be one of {', '.join(map(repr, allowed))}")
        return value
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}={value!r} must be a list")
        args = typing.get_args(tp)
        elem = args[0] if args else Any
        return tuple(_check_type(f"{key}[{i}]", v, elem) for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}={value!r} must be a mapping")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}={value!r} must be true or false")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key}={value!r} must be an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}={value!r} must be a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}={value!r} must be a string")
        return value
    return value


def build_dataclass(cls: type, data: dict[str, Any], prefix: str) -> Any:
    """Build a frozen config dataclass from a mapping, checking keys and types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            valid = [f"{prefix}.{f}" for f in sorted(fields)]
            raise ConfigError(
                f"unknown config key '{prefix}.{key}'{did_you_mean(f'{prefix}.{key}', valid)}"
            )
        kwargs[key] = _check_type(f"{prefix}.{key}", value, hints[key])
    obj = cls(**kwargs)
    if hasattr(obj, "validate"):
        obj.validate()
    return obj


def load_config(
    config_path: str | None = None,
    overrides: list[str] | None = None,
    base: dict[str, Any] | None = None,
) -> Config:
    """Resolve a run config: defaults -> preset (or ``base``) -> overrides, then validate.

    Args:
      config_path: a YAML file or preset name; ``None`` uses the default preset
        (``sac/pendulum``) unless ``base`` is given.
      overrides: ``["train.seeds=4", "agent.actor_lr=1e-4", ...]``.
      base: an already-loaded mapping (e.g. a run directory's ``config.yaml`` on resume).

    Raises:
      ConfigError: one line naming the key, the value and what is wrong.
    """
    from rlstab_jax.agents import registry  # import here: agents import jax

    overrides = list(overrides or [])
    if base is not None:
        preset, source = base, "resume"
    else:
        path = resolve_preset(config_path) if config_path else DEFAULT_PRESET
        preset, source = read_yaml(path), str(path)
    merged = _merge(preset, _parse_overrides(overrides))
    for section in merged:
        if section not in SECTIONS and section != "agent":
            valid = list(SECTIONS) + ["agent"]
            raise ConfigError(
                f"unknown config section '{section}'{did_you_mean(section, valid)}"
                f"; sections: {', '.join(valid)}"
            )
    agent_data = dict(merged.get("agent") or {})
    name = agent_data.pop("name", "sac")
    if not isinstance(name, str):
        raise ConfigError(f"agent.name={name!r} must be a string (see --list)")
    entry = registry.get(name)
    try:
        agent_cfg = build_dataclass(entry.config_cls, agent_data, "agent")
        sections = {s: build_dataclass(cls, merged.get(s) or {}, s) for s, cls in SECTIONS.items()}
    except TypeError as e:  # a dataclass rejected a value in __init__/__post_init__
        raise ConfigError(str(e)) from None
    return Config(agent_name=str(name), agent=agent_cfg, source=source, **sections)


def dump_config(cfg: Config, path: Path) -> None:
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


__all__ = [
    "Config",
    "load_config",
    "dump_config",
    "list_presets",
    "build_dataclass",
    "resolve_preset",
    "read_yaml",
]
