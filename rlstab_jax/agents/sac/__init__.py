"""SAC, DroQ and TQC: one agent family, variants by config (registered as sac/droq/tqc)."""

from rlstab_jax.agents import registry
from rlstab_jax.agents.sac.agent import SACState, make_agent
from rlstab_jax.agents.sac.config import DroQConfig, SACConfig, TQCConfig

registry.register("sac", SACConfig, make_agent, kind="off_policy",
                  description="Soft Actor-Critic with the entropy/Q fixes of reports 000/001/003")
registry.register("droq", DroQConfig, make_agent, kind="off_policy",
                  description="DroQ: SAC with dropout+LayerNorm critics, UTD 20, policy delay 20")
registry.register("tqc", TQCConfig, make_agent, kind="off_policy",
                  description="TQC: SAC with truncated quantile critics")

__all__ = ["SACConfig", "DroQConfig", "TQCConfig", "SACState", "make_agent"]
