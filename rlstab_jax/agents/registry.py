"""Agent families by name: config class, factory and driver kind."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

from rlstab_jax.config.errors import ConfigError, did_you_mean


@dataclasses.dataclass(frozen=True)
class AgentEntry:
    name: str
    config_cls: type
    make_agent: Callable[..., Any]
    kind: str  # "off_policy" | "on_policy"
    description: str = ""


_REGISTRY: dict[str, AgentEntry] = {}
# Modules whose import registers agents; imported lazily so `--help` stays fast.
_AGENT_MODULES = (
    "rlstab_jax.agents.sac", "rlstab_jax.agents.reinforce", "rlstab_jax.agents.dreamer",
    "rlstab_jax.agents.ppo",
)


def register(
    name: str, config_cls: type, make_agent: Callable[..., Any], kind: str, description: str = ""
) -> None:
    """Register an agent family under ``name`` (``agent.name`` in configs)."""
    if kind not in ("off_policy", "on_policy"):
        raise ValueError(f"kind must be 'off_policy' or 'on_policy', got {kind!r}")
    _REGISTRY[name] = AgentEntry(name, config_cls, make_agent, kind, description)


def _load_all() -> None:
    for mod in _AGENT_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:  # a family not built yet
            if e.name != mod:
                raise


def get(name: str) -> AgentEntry:
    _load_all()
    if name not in _REGISTRY:
        raise ConfigError(
            f"agent.name={name!r} is not a known agent{did_you_mean(name, _REGISTRY)};"
            f" known: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[name]


def names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)
