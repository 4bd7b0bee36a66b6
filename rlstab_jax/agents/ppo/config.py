"""Config of PPO: flat (MLP, one Discrete or Box head) or the multi-head recurrent PPO of
field report 004 (LSTM core, factored heads, op-conditioned critic ``Q(s, op)``)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.config.split import hparam


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO with GAE, the clipped surrogate on the (joint) ratio and minibatch epochs.

    Static (graph-changing) fields:
      network: ``mlp`` (separate actor/critic MLPs, CleanRL/PureJaxRL layout) or ``lstm``
        (report 004: blueprint embedding, Linear+LayerNorm+ReLU, LSTM, post-LSTM LayerNorm,
        Linear->ReLU->Linear heads, op-conditioned value head).
      hidden, activation: MLP widths and activation (``network=mlp``).
      feature_dim, lstm_hidden, head_hidden, embed_dim, deep_heads: LSTM network sizes
        (report 004: 512, 512, 256, 4; ``head_hidden=0`` means ``lstm_hidden // 2``);
        ``deep_heads`` get the 3-layer head (report: blueprint).
      rollout_len: env steps per env between updates (``T``).
      epochs, minibatches: passes over the rollout and minibatches per pass.
      bptt_len: truncated-BPTT sequence length (``network=lstm``; divides ``rollout_len``).
      clip_value: PPO value clipping (off: plain squared error).
      norm_adv: normalise advantages per minibatch.
      causal_masks: factored heads: inactive heads record noop 0 and are left out of the
        joint ratio (report 004 §1-2); off = every head always counts (the ablation).
      per_head_entropy: report 004's per-head entropy multipliers (off: all 1.0).
      entropy_head_coefs: explicit per-head multipliers in head order (overrides the table).
      op_conditioned_critic: factored: ``Q(s, one_hot(op))`` (report 004) instead of ``V(s)``.
    Hyper-parameters (vmappable):
      lr: Adam learning rate (start value when annealed).
      gamma: discount.
      gae_lambda: GAE lambda.
      clip_eps: PPO ratio clip range (the joint ratio for factored heads).
      vf_clip_eps: value clip range (``clip_value``).
      ent_coef: entropy coefficient (per-head multipliers apply on top).
      vf_coef: value-loss weight.
      max_grad_norm: global-norm gradient clip.
      anneal_steps: env steps per seed over which the learning rate decays linearly to 0
        (0 keeps it constant).
      log_std_init: initial log-std of the Gaussian head (Box actions).
      reward_scale: rewards are multiplied by this before GAE and the value targets (1.0 =
        off); keeps the critic's targets O(1) on tasks with large per-step rewards
        (Pendulum's -16..0 per step: the unscaled preset stalled at -958 after 131k steps).
    """

    network: Literal["mlp", "lstm"] = "mlp"
    hidden: tuple[int, ...] = (64, 64)
    activation: Literal["tanh", "relu"] = "tanh"
    feature_dim: int = 64
    lstm_hidden: int = 64
    head_hidden: int = 0
    embed_dim: int = 4
    deep_heads: tuple[str, ...] = ("blueprint",)
    rollout_len: int = 128
    epochs: int = 4
    minibatches: int = 4
    bptt_len: int = 16
    clip_value: bool = True
    norm_adv: bool = True
    causal_masks: bool = True
    per_head_entropy: bool = True
    entropy_head_coefs: tuple[float, ...] = ()
    op_conditioned_critic: bool = True
    lr: float = hparam(2.5e-4)
    gamma: float = hparam(0.99)
    gae_lambda: float = hparam(0.95)
    clip_eps: float = hparam(0.2)
    vf_clip_eps: float = hparam(0.2)
    ent_coef: float = hparam(0.01)
    vf_coef: float = hparam(0.5)
    max_grad_norm: float = hparam(0.5)
    anneal_steps: float = hparam(0.0)
    log_std_init: float = hparam(0.0)
    reward_scale: float = hparam(1.0)

    def validate(self) -> None:
        if not 0.0 <= self.gamma < 1.0:
            raise ConfigError(f"agent.gamma={self.gamma} must be in [0, 1)")
        if not 0.0 <= self.gae_lambda <= 1.0:
            raise ConfigError(f"agent.gae_lambda={self.gae_lambda} must be in [0, 1]")
        if self.lr <= 0:
            raise ConfigError(f"agent.lr={self.lr} must be > 0")
        if self.clip_eps <= 0:
            raise ConfigError(f"agent.clip_eps={self.clip_eps} must be > 0")
        if not self.reward_scale > 0:
            raise ConfigError(f"agent.reward_scale={self.reward_scale} must be > 0")
        if self.anneal_steps < 0:
            raise ConfigError(f"agent.anneal_steps={self.anneal_steps} must be >= 0")
        for name in ("rollout_len", "epochs", "minibatches", "bptt_len", "feature_dim",
                     "lstm_hidden", "embed_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"agent.{name}={getattr(self, name)} must be >= 1")
        if self.head_hidden < 0:
            raise ConfigError(f"agent.head_hidden={self.head_hidden} must be >= 0 (0: auto)")
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"agent.hidden={list(self.hidden)} must be positive widths")
        if self.network == "lstm" and self.rollout_len % self.bptt_len:
            raise ConfigError(f"agent.bptt_len={self.bptt_len} must divide "
                              f"agent.rollout_len={self.rollout_len}")
        if any(c < 0 for c in self.entropy_head_coefs):
            raise ConfigError(f"agent.entropy_head_coefs={list(self.entropy_head_coefs)} "
                              f"must be >= 0")

    def architecture_keys(self) -> tuple[str, ...]:
        return ("network", "hidden", "activation", "feature_dim", "lstm_hidden", "head_hidden",
                "embed_dim", "deep_heads", "op_conditioned_critic")
