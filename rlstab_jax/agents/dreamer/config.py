"""Dreamer (DreamerV3-style world-model agent) config: every field report 002 fix is a switch.

Numeric fields marked ``hparam()`` are the vmappable ``hparams`` dict; the rest are static.
Each fix of field report 002_f727d2bd93148014.txt has its "off" (buggy) variant:

* ``free_bits_mode``: ``straight_through`` (fix) | ``max`` (report's frozen prior).
* ``bootstrap``: ``next`` (lambda returns bootstrap ``V(s_{t+1})``) | ``current`` (Run 3 bug).
* ``critic_target_stop_gradient``: True (fix) | False (critic gradient flows into its targets).
* ``return_norm``: True (5/95 percentile EMA, ``max(1, S)``) | False (raw advantages).
* ``slow_critic``: True (EMA critic regulariser) | False.
* ``unimix``: 0.01 | 0 (no uniform mix). ``beta_rep``: 0.1 | 0.99 (report's audit).
* ``wm_ac_ratio``: world-model updates per actor-critic update (report's ``wm_ac_ratio_4``).
* ``agc``: adaptive gradient clipping ratio (0.3) | 0 (off).
* ``replay_value``: critic also fitted to real-data returns of the replayed sequence | off.
* ``overshoot_depth``: open-loop decoder loss on the prior, 1..D steps ahead | 0 (off).
* ``eval_ema``: greedy policy from EMA-averaged world model + actor weights | off.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.config.split import hparam
from rlstab_jax.nn.conv import CONV_IMPLS, conv_impl_problem
from rlstab_jax.stability.kl import FREE_BITS_MODES
from rlstab_jax.stability.returns import BOOTSTRAP_MODES


def _err(key: str, value: object, why: str) -> ConfigError:
    return ConfigError(f"agent.{key}={value!r} {why}")


@dataclasses.dataclass(frozen=True)
class DreamerConfig:
    """DreamerV3-style agent (``agent:`` section, ``name: dreamer``).

    Hyper-parameters (traced, vmappable):
      wm_lr, actor_lr, critic_lr: Adam/LaProp learning rates (after AGC).
      gamma, lam: imagination discount and lambda-return lambda (0.997, 0.95).
      entropy_coef: actor entropy bonus (3e-4; report's audit).
      beta_pred, beta_dyn, beta_rep: world-model loss weights (1, 1, 0.1).
      free_bits: KL floor in nats (1.0). unimix: uniform mix of every categorical (0.01).
      agc: adaptive-gradient-clipping ratio (0.3; <= 0 off). adam_eps: Adam/LaProp epsilon.
      slow_critic_tau: EMA rate of the slow critic (0.02).
      slow_critic_reg: weight of the regulariser pulling the critic towards the slow critic (1.0).
      replay_value_scale: weight of the replay-value loss (0.3; used when ``replay_value``).
      cont_terminal_weight: weight of a terminal step relative to a non-terminal one in the
        continue head's loss (``stability.termination.terminal_weighted_bce``; 1 = DreamerV3's
        plain mean). Above 1 keeps rare terminations (a solved CartPole's cart leaving the
        track) from being outvoted, so imagination sees them.
      overshoot_scale: weight of the open-loop (overshooting) decoder loss (1.0; used when
        ``overshoot_depth > 0``).
      eval_ema_tau: EMA rate, per update, of the weight-averaged world model and actor of
        ``eval_ema`` (0.002: an average over the last ~500 updates; 1 = the online weights).
      retnorm_decay: EMA decay of the return percentiles (0.99).
      surprise_beta: EMA decay of the world-model surprise telemetry (0.99).
      min_std, max_std: std range of the continuous actor.

    Static:
      deter: GRU (deterministic state) width. stoch_groups, stoch_classes: C x K latent.
      hidden, layers: width/depth of every MLP (encoder, heads, actor, critic).
      encoder: ``mlp`` (MLP on symlog'd state vectors, symlog-MSE vector decoder) | ``cnn``
        (uint8 ``[H, W, C]`` pixels: the GroupNorm ``nn.encoders.CNNEncoder`` and the mirrored
        ``nn.decoders.CNNDecoder``, MSE on pixels scaled to [0, 1]) | ``auto`` (``cnn`` for
        uint8 ``[H, W, C]`` observations, ``mlp`` otherwise).
      cnn_channels, cnn_kernels, cnn_strides: conv stack of the pixel encoder (same lengths,
        ``SAME`` padding); the decoder mirrors it. Default: a DreamerV3-style stack of
        16-32-64-128 channels, kernel 4, stride 2 (64x64 -> 4x4); the CNN's embedding is
        ``hidden`` wide.
      conv_impl: convolutions of the pixel encoder/decoder: ``auto`` (on CPU ``onednn`` where
        installed, else ``matmul``; ``xla`` on GPU/TPU) | ``xla`` | ``matmul`` | ``onednn``
        (``rlstab_jax/nn/conv.py``, ``rlstab_jax/nn/onednn``); same parameters either way.
      num_bins, bins_low, bins_high: twohot bins ``symexp(linspace(low, high, num_bins))``.
      batch_size: replayed subsequences per update (B).
      seq_len: length of each replayed subsequence (T; report 002: 64, or 25 for throughput).
      horizon: imagination steps (H, 15).
      train_ratio: replayed steps per env step.
      wm_ac_ratio: world-model updates per actor-critic update.
      wm_warmup: world-model-only updates before the actor-critic starts.
      free_bits_mode: ``straight_through`` (fix: KL gradient below the floor still reaches the
        prior) or ``max`` (report 002's frozen-prior bug).
      bootstrap: ``next`` (lambda returns bootstrap ``V(s_{t+1})``) or ``current`` (the
        report's ``V(s_t)`` bug).
      critic_target_stop_gradient: stop the gradient through the critic's lambda-return
        targets (off: the report's missing-stop-gradient bug).
      return_norm: normalise advantages by the 5/95-percentile EMA range ``max(1, S)`` (off:
        raw advantages).
      slow_critic: keep an EMA slow critic as the critic's regulariser (off: none).
      replay_value: also fit the critic to lambda returns of the *replayed* sequence (real
        rewards and terminations, bootstrapped from the imagined returns;
        ``stability.returns.replay_lambda_returns``), weighted by ``replay_value_scale``
        (DreamerV3's replay-value loss, 0.3). Off: the critic learns from imagined rewards
        only (field report 002's diagnosis of its collapse).
      overshoot_depth: ``D``: also decode the observation from the prior rolled open-loop
        1..D steps with the replayed actions (``stability.overshoot``,
        ``world_model.open_loop_errors``), so the dynamics imagination runs on are trained on
        their own multi-step error (field report 002's "actor exploiting the world model"; on
        CartPole, cart drift the one-step loss never taught the prior). 0 = off (DreamerV3's
        one-step loss); must be < ``seq_len``.
      eval_ema: the greedy (deterministic) policy, the one evaluated, selected as the best
        checkpoint and deployed, acts with EMAs of the world model and the actor
        (``stability.critic.polyak_update`` at ``eval_ema_tau`` per update; weight averaging of
        the policy, Nikishin et al. 2018), so a transient dip of the online actor (a solved
        CartPole seed drifting for a few thousand steps) is smoothed out of it. Sampling (data
        collection, ``eval/return_stochastic``) always reads the online weights. Off: the
        greedy policy reads the online weights (DreamerV3), and the state has no averaged copy.
      optimizer: ``adam`` or ``laprop`` (DreamerV3's: RMS-normalise, then momentum;
        ``stability.optim.laprop``), after AGC, for world model, actor and critic.
    """

    wm_lr: float = hparam(3e-4)
    actor_lr: float = hparam(1e-4)
    critic_lr: float = hparam(1e-4)
    gamma: float = hparam(0.997)
    lam: float = hparam(0.95)
    entropy_coef: float = hparam(3e-4)
    beta_pred: float = hparam(1.0)
    beta_dyn: float = hparam(1.0)
    beta_rep: float = hparam(0.1)
    free_bits: float = hparam(1.0)
    unimix: float = hparam(0.01)
    agc: float = hparam(0.3)
    adam_eps: float = hparam(1e-8)
    slow_critic_tau: float = hparam(0.02)
    slow_critic_reg: float = hparam(1.0)
    replay_value_scale: float = hparam(0.3)
    cont_terminal_weight: float = hparam(1.0)
    overshoot_scale: float = hparam(1.0)
    eval_ema_tau: float = hparam(0.002)
    retnorm_decay: float = hparam(0.99)
    surprise_beta: float = hparam(0.99)
    min_std: float = hparam(0.1)
    max_std: float = hparam(1.0)

    deter: int = 256
    stoch_groups: int = 32
    stoch_classes: int = 32
    hidden: int = 256
    layers: int = 2
    encoder: Literal["mlp", "cnn", "auto"] = "mlp"
    cnn_channels: tuple[int, ...] = (16, 32, 64, 128)
    cnn_kernels: tuple[int, ...] = (4, 4, 4, 4)
    cnn_strides: tuple[int, ...] = (2, 2, 2, 2)
    conv_impl: Literal["auto", "xla", "matmul", "onednn"] = "auto"
    num_bins: int = 255
    bins_low: float = -20.0
    bins_high: float = 20.0
    batch_size: int = 16
    seq_len: int = 64
    horizon: int = 15
    train_ratio: float = 512.0
    wm_ac_ratio: int = 1
    wm_warmup: int = 0
    free_bits_mode: str = "straight_through"
    bootstrap: str = "next"
    critic_target_stop_gradient: bool = True
    return_norm: bool = True
    slow_critic: bool = True
    replay_value: bool = False
    overshoot_depth: int = 0
    eval_ema: bool = False
    optimizer: Literal["adam", "laprop"] = "adam"

    def validate(self) -> None:
        if self.free_bits_mode not in FREE_BITS_MODES:
            raise _err("free_bits_mode", self.free_bits_mode, f"must be one of {FREE_BITS_MODES}")
        if self.bootstrap not in BOOTSTRAP_MODES:
            raise _err("bootstrap", self.bootstrap, f"must be one of {BOOTSTRAP_MODES}")
        if self.optimizer not in ("adam", "laprop"):
            raise _err("optimizer", self.optimizer, "must be 'adam' or 'laprop'")
        if self.encoder not in ("mlp", "cnn", "auto"):
            raise _err("encoder", self.encoder, "must be one of ['mlp', 'cnn', 'auto']")
        problem = conv_impl_problem(self.conv_impl) if self.encoder != "mlp" else ""
        if self.conv_impl not in CONV_IMPLS or problem:
            raise _err("conv_impl", self.conv_impl,
                       problem or f"must be one of {list(CONV_IMPLS)}")
        for key in ("cnn_channels", "cnn_kernels", "cnn_strides"):
            v = getattr(self, key)
            if not v or any(int(x) < 1 for x in v):
                raise _err(key, v, "must be a non-empty list of positive integers")
        if not len(self.cnn_channels) == len(self.cnn_kernels) == len(self.cnn_strides):
            raise _err("cnn_kernels", self.cnn_kernels,
                       f"must have one entry per agent.cnn_channels={self.cnn_channels}, as must "
                       f"agent.cnn_strides={self.cnn_strides}")
        for key in ("deter", "stoch_groups", "stoch_classes", "hidden", "layers", "batch_size",
                    "seq_len", "horizon", "wm_ac_ratio"):
            if getattr(self, key) < 1:
                raise _err(key, getattr(self, key), "must be >= 1")
        if self.seq_len < 2:
            raise _err("seq_len", self.seq_len, "must be >= 2")
        if self.num_bins < 3:
            raise _err("num_bins", self.num_bins, "must be >= 3")
        if not self.bins_low < self.bins_high:
            raise _err("bins_low", self.bins_low, f"must be < agent.bins_high={self.bins_high}")
        if self.wm_warmup < 0:
            raise _err("wm_warmup", self.wm_warmup, "must be >= 0")
        if not 0 <= self.overshoot_depth < self.seq_len:
            raise _err("overshoot_depth", self.overshoot_depth,
                       f"must be in [0, agent.seq_len={self.seq_len})")
        if not 0.0 < self.eval_ema_tau <= 1.0:
            raise _err("eval_ema_tau", self.eval_ema_tau, "must be in (0, 1]")
        if self.overshoot_scale < 0:
            raise _err("overshoot_scale", self.overshoot_scale, "must be >= 0")
        if self.train_ratio <= 0:
            raise _err("train_ratio", self.train_ratio, "must be > 0")
        if not 0.0 <= self.gamma < 1.0:
            raise _err("gamma", self.gamma, "must be in [0, 1)")
        if not 0.0 <= self.lam <= 1.0:
            raise _err("lam", self.lam, "must be in [0, 1]")
        if not 0.0 <= self.unimix <= 1.0:
            raise _err("unimix", self.unimix, "must be in [0, 1]")
        if self.cont_terminal_weight < 0:
            raise _err("cont_terminal_weight", self.cont_terminal_weight, "must be >= 0")
        for key in ("wm_lr", "actor_lr", "critic_lr"):
            if getattr(self, key) <= 0:
                raise _err(key, getattr(self, key), "must be > 0")
        if not 0.0 < self.min_std <= self.max_std:
            raise _err("min_std", self.min_std, f"must be in (0, agent.max_std={self.max_std}]")

    def architecture_keys(self) -> tuple[str, ...]:
        # optimizer: Adam and LaProp states have different trees (a checkpoint cannot switch);
        # the conv stack sets the pixel encoder's and decoder's parameter shapes (conv_impl
        # does not: both implementations share parameters).
        # Vector-only (mlp) runs leave the conv keys out, so their checkpoints (written before
        # the pixel encoder existed) keep resuming; auto may pick the CNN, so it keeps them.
        # eval_ema adds the averaged copies to the state; listed only when on, so checkpoints
        # written before it existed keep resuming.
        keys = ("deter", "stoch_groups", "stoch_classes", "hidden", "layers", "encoder",
                "num_bins", "optimizer") + (("eval_ema",) if self.eval_ema else ())
        if self.encoder == "mlp":
            return keys
        return keys + ("cnn_channels", "cnn_kernels", "cnn_strides")

    @property
    def stoch(self) -> int:
        return self.stoch_groups * self.stoch_classes
