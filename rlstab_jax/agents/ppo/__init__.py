"""PPO: flat (one Discrete/Box head, MLP) and the multi-head recurrent PPO of field report 004."""

from rlstab_jax.agents import registry
from rlstab_jax.agents.ppo.agent import make_agent
from rlstab_jax.agents.ppo.config import PPOConfig

registry.register(
    "ppo",
    PPOConfig,
    make_agent,
    "on_policy",
    "PPO (GAE, clipped surrogate, minibatch epochs); network=lstm: report 004's multi-head "
    "recurrent PPO with causal masks and Q(s, op)",
)

__all__ = ["PPOConfig", "make_agent"]
