"""The API reference (docs/api/*.md) covers every stability module, agent family and env package.

The strict docs build (test_docs_build.py) checks that each ``::: module`` entry renders; this
checks that none is missing, so a new primitive, agent or env cannot be left out of the site.
"""

import pkgutil
import re
from pathlib import Path

import rlstab_jax.agents
import rlstab_jax.envs
import rlstab_jax.stability

API = Path(__file__).resolve().parents[2] / "docs" / "api"


def _entries(page: str) -> set[str]:
    return set(re.findall(r"^::: (\S+)", (API / page).read_text(), re.M))


def _children(pkg, packages_only=False) -> set[str]:
    return {m.name for m in pkgutil.iter_modules(pkg.__path__)
            if not m.name.startswith("_") and (m.ispkg or not packages_only)}


def test_every_stability_module_has_an_entry():
    missing = sorted(f"rlstab_jax.stability.{m}" for m in _children(rlstab_jax.stability)
                     if f"rlstab_jax.stability.{m}" not in _entries("stability.md"))
    assert not missing, f"add '::: <module>' to docs/api/stability.md for {missing}"


def test_every_agent_family_has_its_config_and_agent_entries():
    entries = _entries("agents.md")
    families = _children(rlstab_jax.agents, packages_only=True)
    assert {"sac", "reinforce", "dreamer", "ppo"} <= families
    missing = sorted(f"rlstab_jax.agents.{f}.{m}" for f in families for m in ("config", "agent")
                     if f"rlstab_jax.agents.{f}.{m}" not in entries)
    assert not missing, f"add '::: <module>' to docs/api/agents.md for {missing}"


def test_every_env_package_has_an_entry():
    entries = _entries("envs.md")
    envs = _children(rlstab_jax.envs, packages_only=True)
    assert {"racer", "scaffold"} <= envs
    missing = sorted(e for e in envs
                     if not any(x == f"rlstab_jax.envs.{e}" or x.startswith(f"rlstab_jax.envs.{e}.")
                                for x in entries))
    assert not missing, f"add '::: rlstab_jax.envs.<package>' to docs/api/envs.md for {missing}"
