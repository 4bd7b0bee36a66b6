"""SAC-family config: SAC, DroQ and TQC are presets of one frozen dataclass.

Numeric fields marked ``hparam()`` become the vmappable ``hparams`` dict (learning rates,
gamma, tau, alpha settings, clip ranges, log-std bounds, Adam betas); all others are static and
change the compiled graph. Defaults: the structural fixes of field reports 000/001/003 ON
(decoupled std, tanh log-std, per-dim alpha, detached shared features, independent critics),
the scale-dependent ones OFF (backup clip, gradient clips, alpha floor) because their values
depend on the reward scale; presets turn them on.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.config.split import hparam
from rlstab_jax.nn.conv import CONV_IMPLS, conv_impl_problem
from rlstab_jax.nn.mlp import ACTIVATIONS


def _err(key: str, value: object, why: str) -> ConfigError:
    return ConfigError(f"agent.{key}={value!r} {why}")


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """SAC / DroQ / TQC configuration (``agent:`` section of a preset).

    Hyper-parameters (traced, vmappable):
      actor_lr, critic_lr, alpha_lr: Adam learning rates.
      gamma: discount; the driver folds n-step windows with it, the agent uses
        ``batch.discount``.
      tau: polyak factor of the target critics.
      init_alpha: initial alpha (and the constant alpha when ``learn_alpha=False``,
        field report 003 Run A).
      alpha_floor: lower bound on each alpha (field report 000 Step 7b); ``<= 0`` is off.
      target_entropy_total: total target entropy split evenly over dims; NaN means the
        default ``-1`` per dim (``-act_dim`` in total).
      backup_clip: clip critic targets to ``[-c, c]`` (field report 003 §11B: 100);
        ``<= 0`` is off.
      actor_grad_clip, critic_grad_clip: global-norm clips (field report 003 §11A: 1.0);
        ``<= 0`` is off. Pre-clip norms are always logged.
      log_std_min, log_std_max: log-std bounds (field report 001 §1: -20, not -2).
      log_std_init: log-std at initialisation (the actor centres its parametrisation there;
        without it the tanh form starts at the bounds' midpoint, -9 for [-20, 2]).
      adam_b1, adam_b2: Adam betas of all three optimisers (field report 001 §7: beta2
        0.99/0.995 rather than 0.999 under non-stationary data).

    Static switches:
      actor_hidden, critic_hidden: MLP widths. activation: hidden activation.
      init_kind: ``lecun`` | ``orthogonal`` kernel init.
      n_critics: ensemble size. critic_subset: REDQ subset size M for the target min
        (0 = all critics).
      critic_kind: ``q`` (scalar) | ``tqc`` (quantiles). n_quantiles: M per critic.
      drop_per_critic: TQC top quantiles dropped per critic (field report 003: 2/5/8).
      actor_q: ``min`` | ``mean`` over critics in the policy loss (TQC always averages).
      layer_norm, dropout: DroQ regularisation of the Q-networks.
      std_head: ``decoupled`` (field report 000 Fix A) | ``coupled`` (off).
      log_std_param: ``tanh`` (field report 000 Fix B) | ``clamp`` (off).
      alpha_mode: ``per_dim`` (field report 000 Fix C) | ``scalar`` (off).
      learn_alpha: learn alpha, or keep ``init_alpha`` fixed (field report 003 Run A).
      utd: critic updates per env step (field report 001 §8: 2-8 with a shared backbone).
      policy_delay: critic updates per actor/alpha update (DroQ: utd 20, delay 20).
      batch_size: minibatch size B. n_step: return window folded by the driver.
      encoder: ``mlp`` (vector obs) | ``cnn`` (pixels, GroupNorm; field report 001 §2).
      encoder_hidden: vector-encoder MLP widths (``()`` = identity).
      cnn_channels, cnn_kernels, cnn_strides, feature_dim: CNN layout.
      conv_impl: CNN convolution: ``auto`` (on CPU ``onednn`` where installed, else
        ``matmul``; ``xla`` on GPU/TPU) | ``xla`` (XLA's conv; its gradient is ~16x slower
        inside ``lax.scan`` on XLA:CPU) | ``matmul`` (patches + matmul with a hand-written VJP;
        ``rlstab_jax/nn/conv.py``) | ``onednn`` (oneDNN's direct kernels, CPU only, needs
        ``pip install 'rlstab_jax[onednn]'``; ``rlstab_jax/nn/onednn``). Same parameters and
        values either way.
      shared_encoder: one encoder trained by the critic and read by the actor.
      detach_actor_features: the actor sees ``stop_gradient`` features and FiLM inputs
        (field report 001 §4-5); False is the off variant where actor gradients reach the
        shared encoder. Only meaningful with ``shared_encoder``: ``False`` without it is
        rejected (it would be bit-identical to ``True``: a separate actor encoder never
        sends gradient to the critic's).
      actor_features: ``recompute`` (the actor step encodes ``obs`` again with the encoder the
        critic step just updated) | ``reuse`` (the actor reads the critic step's own features
        of the same ``obs``, gradient-stopped, as DrQ-v2 does: one encoder forward less per
        update, 206 -> 182 ms for a CarRacing update on CPU, bench/README.md; the features are
        one critic step older).
        ``reuse`` needs ``shared_encoder`` and ``detach_actor_features`` (the actor's features
        carry no gradient either way; report 001 §4).
      context_len: K past (obs, action) pairs for the context transformer (0 = off); the env
        must be wrapped with ``envs.wrappers.HistoryContext(env, K)``.
      context_dim, context_heads, context_layers: context transformer size (no dropout,
        field report 001 §3).
    """

    actor_lr: float = hparam(3e-4)
    critic_lr: float = hparam(3e-4)
    alpha_lr: float = hparam(3e-4)
    gamma: float = hparam(0.99)
    tau: float = hparam(0.005)
    init_alpha: float = hparam(1.0)
    alpha_floor: float = hparam(0.0)
    target_entropy_total: float = hparam(math.nan)
    backup_clip: float = hparam(0.0)
    actor_grad_clip: float = hparam(0.0)
    critic_grad_clip: float = hparam(0.0)
    log_std_min: float = hparam(-20.0)
    log_std_max: float = hparam(2.0)
    log_std_init: float = hparam(0.0)
    adam_b1: float = hparam(0.9)
    adam_b2: float = hparam(0.999)

    actor_hidden: tuple[int, ...] = (256, 256)
    critic_hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    init_kind: Literal["lecun", "orthogonal"] = "lecun"
    n_critics: int = 2
    critic_subset: int = 0
    critic_kind: Literal["q", "tqc"] = "q"
    n_quantiles: int = 25
    drop_per_critic: int = 2
    actor_q: Literal["min", "mean"] = "min"
    layer_norm: bool = False
    dropout: float = 0.0
    std_head: Literal["decoupled", "coupled"] = "decoupled"
    log_std_param: Literal["tanh", "clamp"] = "tanh"
    alpha_mode: Literal["per_dim", "scalar"] = "per_dim"
    learn_alpha: bool = True
    utd: int = 1
    policy_delay: int = 1
    batch_size: int = 256
    n_step: int = 1
    encoder: Literal["mlp", "cnn"] = "mlp"
    encoder_hidden: tuple[int, ...] = ()
    cnn_channels: tuple[int, ...] = (32, 64, 64)
    cnn_kernels: tuple[int, ...] = (8, 4, 3)
    cnn_strides: tuple[int, ...] = (4, 2, 1)
    feature_dim: int = 256
    conv_impl: Literal["auto", "xla", "matmul", "onednn"] = "auto"
    shared_encoder: bool = False
    detach_actor_features: bool = True
    actor_features: Literal["recompute", "reuse"] = "recompute"
    context_len: int = 0
    context_dim: int = 64
    context_heads: int = 4
    context_layers: int = 1

    def architecture_keys(self) -> tuple[str, ...]:
        """Fields whose change makes old checkpoints incompatible (checkpoint fingerprint)."""
        return ("actor_hidden", "critic_hidden", "n_critics", "critic_kind", "n_quantiles",
                "layer_norm", "std_head", "alpha_mode", "encoder", "encoder_hidden",
                "cnn_channels", "cnn_kernels", "cnn_strides", "feature_dim", "shared_encoder",
                "context_len", "context_dim", "context_heads", "context_layers", "activation")

    def data_keys(self) -> tuple[str, ...]:
        """Fields that change what stored actor parameters, replay transitions or optimiser
        state mean without changing shapes (report 001 Phase 4 wipes replay after the
        ``LOG_STD_MIN`` change); part of the checkpoint fingerprint."""
        return ("log_std_min", "log_std_max", "log_std_init", "log_std_param",
                "detach_actor_features")

    def validate(self) -> None:
        """Check every field; raise a one-line ``ConfigError`` naming the key and the fix."""
        for key in ("actor_lr", "critic_lr", "alpha_lr", "init_alpha"):
            v = getattr(self, key)
            if not (math.isfinite(v) and v > 0):
                raise _err(key, v, "must be a finite number > 0")
        if not 0.0 <= self.gamma < 1.0:
            raise _err("gamma", self.gamma, "must be in [0, 1)")
        if not 0.0 < self.tau <= 1.0:
            raise _err("tau", self.tau, "must be in (0, 1]")
        for key in ("alpha_floor", "backup_clip", "actor_grad_clip", "critic_grad_clip"):
            if not math.isfinite(getattr(self, key)):
                raise _err(key, getattr(self, key), "must be finite (use 0 to switch it off)")
        if self.alpha_floor >= self.init_alpha and self.alpha_floor > 0:
            raise _err("alpha_floor", self.alpha_floor, f"must be below agent.init_alpha="
                       f"{self.init_alpha}")
        if math.isinf(self.target_entropy_total):
            raise _err("target_entropy_total", self.target_entropy_total,
                       "must be finite (or NaN for the default -1 per action dim)")
        if not (math.isfinite(self.log_std_min) and math.isfinite(self.log_std_max)
                and self.log_std_min < self.log_std_max):
            raise _err("log_std_min", self.log_std_min,
                       f"must be finite and below agent.log_std_max={self.log_std_max}")
        if not self.log_std_min < self.log_std_init < self.log_std_max:
            raise _err("log_std_init", self.log_std_init,
                       f"must be inside (agent.log_std_min, agent.log_std_max) = "
                       f"({self.log_std_min}, {self.log_std_max})")
        for key in ("adam_b1", "adam_b2"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise _err(key, getattr(self, key), "must be in [0, 1)")
        self._validate_static()

    def _validate_static(self) -> None:
        for key in ("actor_hidden", "critic_hidden"):
            v = getattr(self, key)
            if not v or any(int(h) < 1 for h in v):
                raise _err(key, v, "must be a non-empty list of positive widths")
        if any(int(h) < 1 for h in self.encoder_hidden):
            raise _err("encoder_hidden", self.encoder_hidden, "widths must be positive")
        if self.activation not in ACTIVATIONS:
            raise _err("activation", self.activation, f"must be one of {sorted(ACTIVATIONS)}")
        choices = {"init_kind": ("lecun", "orthogonal"), "critic_kind": ("q", "tqc"),
                   "actor_q": ("min", "mean"), "std_head": ("decoupled", "coupled"),
                   "log_std_param": ("tanh", "clamp"), "alpha_mode": ("per_dim", "scalar"),
                   "encoder": ("mlp", "cnn"), "conv_impl": CONV_IMPLS}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise _err(key, getattr(self, key), f"must be one of {list(allowed)}")
        problem = conv_impl_problem(self.conv_impl) if self.encoder == "cnn" else ""
        if problem:
            raise _err("conv_impl", self.conv_impl, problem)
        if self.n_critics < 1:
            raise _err("n_critics", self.n_critics, "must be >= 1")
        if not 0 <= self.critic_subset <= self.n_critics:
            raise _err("critic_subset", self.critic_subset,
                       f"must be in [0, agent.n_critics={self.n_critics}] (0 = all critics)")
        if self.critic_kind == "tqc":
            if self.n_quantiles < 1:
                raise _err("n_quantiles", self.n_quantiles, "must be >= 1")
            if not 0 <= self.drop_per_critic < self.n_quantiles:
                raise _err("drop_per_critic", self.drop_per_critic,
                           f"must be in [0, agent.n_quantiles={self.n_quantiles})")
            if self.critic_subset:
                raise _err("critic_subset", self.critic_subset,
                           "must be 0 with critic_kind=tqc (TQC pools all critics)")
        if not 0.0 <= self.dropout < 1.0:
            raise _err("dropout", self.dropout, "must be in [0, 1)")
        for key in ("utd", "policy_delay", "batch_size", "n_step", "feature_dim",
                    "context_dim", "context_heads", "context_layers"):
            if getattr(self, key) < 1:
                raise _err(key, getattr(self, key), "must be >= 1")
        if self.context_len < 0:
            raise _err("context_len", self.context_len, "must be >= 0 (0 = off)")
        if not self.detach_actor_features and not self.shared_encoder:
            raise _err("detach_actor_features", self.detach_actor_features,
                       "has no effect without agent.shared_encoder=true (the actor has its own "
                       "encoder, so no actor gradient can reach the critic's); set "
                       "agent.shared_encoder=true for the report 001 §4 off variant")
        if self.actor_features == "reuse" and not (self.shared_encoder
                                                   and self.detach_actor_features):
            raise _err("actor_features", self.actor_features,
                       "needs agent.shared_encoder=true and agent.detach_actor_features=true "
                       "(only then are the critic's features the actor's, gradient-stopped); "
                       "use agent.actor_features=recompute")
        if self.context_len and self.encoder == "cnn":
            raise _err("context_len", self.context_len,
                       "needs vector observations (agent.encoder=mlp); use 0 with pixels")
        if self.context_dim % self.context_heads:
            raise _err("context_dim", self.context_dim,
                       f"must be divisible by agent.context_heads={self.context_heads}")
        cnn = (self.cnn_channels, self.cnn_kernels, self.cnn_strides)
        if len(set(map(len, cnn))) != 1 or not cnn[0] or min(min(c) for c in cnn) < 1:
            raise _err("cnn_channels", self.cnn_channels,
                       "cnn_channels, cnn_kernels and cnn_strides must be non-empty, positive "
                       "and of equal length")


@dataclasses.dataclass(frozen=True)
class DroQConfig(SACConfig):
    """DroQ (Hiraoka et al. 2022): dropout + LayerNorm Q-heads, high UTD, delayed actor."""

    layer_norm: bool = True
    dropout: float = 0.01
    utd: int = 20
    policy_delay: int = 20


@dataclasses.dataclass(frozen=True)
class TQCConfig(SACConfig):
    """TQC (Kuznetsov et al. 2020): quantile critics with top quantiles dropped."""

    critic_kind: Literal["q", "tqc"] = "tqc"
    n_quantiles: int = 25
    drop_per_critic: int = 2
