"""DreamerV3-style world-model agent (field report 002): RSSM, imagination actor-critic."""

from rlstab_jax.agents import registry
from rlstab_jax.agents.dreamer.agent import make_agent
from rlstab_jax.agents.dreamer.config import DreamerConfig

registry.register(
    "dreamer",
    DreamerConfig,
    make_agent,
    "off_policy",
    "DreamerV3-style world model (RSSM, twohot heads, free bits) + imagination actor-critic",
)

__all__ = ["DreamerConfig", "make_agent"]
