"""Minimal on-policy agent (REINFORCE with baseline); exercises the on-policy driver."""

from rlstab_jax.agents import registry
from rlstab_jax.agents.reinforce.agent import make_agent
from rlstab_jax.agents.reinforce.config import ReinforceConfig

registry.register(
    "reinforce",
    ReinforceConfig,
    make_agent,
    "on_policy",
    "REINFORCE with a value baseline and GAE (discrete or continuous)",
)

__all__ = ["ReinforceConfig", "make_agent"]
