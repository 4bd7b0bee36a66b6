"""Config of the minimal on-policy agent (REINFORCE with a learned baseline and GAE)."""

from __future__ import annotations

import dataclasses

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.config.split import hparam


@dataclasses.dataclass(frozen=True)
class ReinforceConfig:
    """REINFORCE/actor-critic: ``gae_lambda=1`` is REINFORCE with a value baseline.

    It exists to exercise the on-policy driver and the probe envs end to end; the multi-head
    recurrent PPO of field report 004 builds on the same driver.

    Fields:
      hidden: MLP widths of the policy and value networks.
      rollout_len: env steps per rollout (per update).
      lr: Adam learning rate.
      gamma: discount.
      gae_lambda: GAE lambda (1 = Monte-Carlo returns with a baseline).
      entropy_coef: entropy bonus coefficient.
      value_coef: value-loss coefficient.
      max_grad_norm: global-norm gradient clip.
      log_std_init: initial log-std of a continuous policy.
    """

    hidden: tuple[int, ...] = (64, 64)
    rollout_len: int = 16
    lr: float = hparam(3e-3)
    gamma: float = hparam(0.99)
    gae_lambda: float = hparam(0.95)
    entropy_coef: float = hparam(0.0)
    value_coef: float = hparam(0.5)
    max_grad_norm: float = hparam(1.0)
    log_std_init: float = hparam(-0.5)

    def validate(self) -> None:
        if not 0.0 <= self.gamma < 1.0:
            raise ConfigError(f"agent.gamma={self.gamma} must be in [0, 1)")
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ConfigError(f"agent.gae_lambda={self.gae_lambda} must be in [0, 1]")
        if self.lr <= 0:
            raise ConfigError(f"agent.lr={self.lr} must be > 0")
        if self.rollout_len < 1:
            raise ConfigError(f"agent.rollout_len={self.rollout_len} must be >= 1")
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"agent.hidden={list(self.hidden)} must be positive widths")

    def architecture_keys(self) -> tuple[str, ...]:
        return ("hidden",)
