"""Dreamer networks: observation encoder/decoder, RSSM (LayerNorm GRU + C x K categoricals), heads.

Two observation paths (``DreamerConfig.encoder``):

* ``mlp``: vectors ``[..., D]``; MLP encoder on ``symlog(obs)``, MLP decoder predicting
  ``symlog(obs)`` (symlog-MSE).
* ``cnn``: uint8 pixels ``[..., H, W, C]``; the GroupNorm ``nn.encoders.CNNEncoder`` (casts and
  scales by 1/255 itself) and the mirrored ``nn.decoders.CNNDecoder`` predicting ``obs / 255``
  (MSE on [0, 1] pixels, as DreamerV3: symlog is for vectors).

``decoder_target`` gives the decoder's target in either case. Shapes: ``h [..., deter]``
deterministic state, ``z [..., C * K]`` flattened one-hot stochastic state, latent logits
``[..., C, K]``, features ``[h, z]``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from rlstab_jax.nn.decoders import CNNDecoder
from rlstab_jax.nn.encoders import CNNEncoder
from rlstab_jax.nn.layers import LayerNorm
from rlstab_jax.nn.mlp import MLP
from rlstab_jax.stability.symlog import symlog


class NormGRUCell(nn.Module):
    """GRU with LayerNorm on the gate pre-activations (DreamerV3's RSSM core).

    ``update = sigmoid(u - 1)`` biases the cell towards keeping its state at init, which keeps
    long imagined rollouts stable.
    """

    deter: int

    @nn.compact
    def __call__(self, h: jax.Array, x: jax.Array) -> jax.Array:
        parts = nn.Dense(3 * self.deter, use_bias=False)(jnp.concatenate([h, x], -1))
        reset, cand, update = jnp.split(LayerNorm()(parts), 3, axis=-1)
        reset = jax.nn.sigmoid(reset)
        cand = jnp.tanh(reset * cand)
        update = jax.nn.sigmoid(update - 1.0)
        return update * cand + (1.0 - update) * h


def _mlp(width: int, layers: int, out: int | None = None, zero_out: bool = False) -> nn.Module:
    if zero_out:
        return nn.Sequential([
            MLP((width,) * layers, activation="silu", layer_norm=True),
            nn.Dense(out, kernel_init=nn.initializers.zeros),
        ])
    return MLP((width,) * layers, out_dim=out, activation="silu", layer_norm=True)


PIXEL_SCALE = 1.0 / 255.0  # uint8 pixels -> [0, 1]: CNNEncoder's input and the decoder target


class WorldModel(nn.Module):
    """Encoder, RSSM and heads; call methods with ``apply(..., method=WorldModel.x)``.

    Attributes:
      obs_dim: flattened observation size. act_dim: action input size (one-hot for discrete).
      deter, groups, classes, hidden, layers, num_bins: sizes (see ``DreamerConfig``).
      encoder_kind: ``mlp`` (vectors) | ``cnn`` (pixels; needs ``obs_shape``); the resolved
        ``DreamerConfig.encoder`` (no ``auto``). Submodules keep the names ``encoder`` and
        ``decoder`` either way.
      obs_shape: ``(H, W, C)`` of the pixels for ``cnn`` (unused for ``mlp``).
      cnn_channels, cnn_kernels, cnn_strides, conv_impl: the pixel conv stack (``cnn``).
    """

    obs_dim: int
    act_dim: int
    deter: int
    groups: int
    classes: int
    hidden: int
    layers: int
    num_bins: int
    encoder_kind: str = "mlp"
    obs_shape: tuple[int, ...] = ()
    cnn_channels: tuple[int, ...] = (16, 32, 64, 128)
    cnn_kernels: tuple[int, ...] = (4, 4, 4, 4)
    cnn_strides: tuple[int, ...] = (2, 2, 2, 2)
    conv_impl: str = "auto"

    @property
    def obs_ndim(self) -> int:
        """Trailing observation dims: 3 for pixels, 1 for vectors."""
        return 3 if self.encoder_kind == "cnn" else 1

    def setup(self) -> None:
        if self.encoder_kind == "cnn":
            if len(self.obs_shape) != 3:
                raise ValueError(f"encoder_kind='cnn' needs obs_shape (H, W, C), got "
                                 f"{self.obs_shape}")
            conv = dict(channels=self.cnn_channels, kernels=self.cnn_kernels,
                        strides=self.cnn_strides, conv_impl=self.conv_impl)
            self.encoder = CNNEncoder(feature_dim=self.hidden, pixel_scale=PIXEL_SCALE, **conv)
            self.decoder = CNNDecoder(tuple(self.obs_shape), **conv)
        else:
            self.encoder = _mlp(self.hidden, self.layers)
            self.decoder = _mlp(self.hidden, self.layers, self.obs_dim)
        self.img_in = _mlp(self.hidden, 1)
        self.gru = NormGRUCell(self.deter)
        stoch = self.groups * self.classes
        self.prior_net = _mlp(self.hidden, 1, stoch)
        self.post_net = _mlp(self.hidden, 1, stoch)
        # Zero-initialised reward output: uniform twohot probabilities decode to exactly 0.
        self.reward_head = _mlp(self.hidden, self.layers, self.num_bins, zero_out=True)
        self.cont_head = _mlp(self.hidden, self.layers, 1)

    def encode(self, obs: jax.Array) -> jax.Array:
        """``obs [..., *obs_shape]`` -> embedding ``[..., hidden]``.

        ``mlp``: of ``symlog(obs)``; ``cnn``: of the raw uint8 frames (the CNN scales them).
        """
        lead = obs.shape[: obs.ndim - self.obs_ndim]
        if self.encoder_kind == "cnn":
            e = self.encoder(obs.reshape((-1,) + obs.shape[len(lead):]))
            return e.reshape(lead + e.shape[-1:])
        return self.encoder(symlog(obs.reshape(lead + (-1,)).astype(jnp.float32)))

    def decode(self, feat: jax.Array) -> jax.Array:
        """``feat [..., F]`` -> prediction of ``decoder_target``: ``[..., H, W, C]`` in [0, 1]
        units (``cnn``) or ``[..., D]`` symlog (``mlp``)."""
        if self.encoder_kind == "cnn":
            lead = feat.shape[:-1]
            x = self.decoder(feat.reshape(-1, feat.shape[-1]))
            return x.reshape(lead + x.shape[1:])
        return self.decoder(feat)

    def step(self, h: jax.Array, z: jax.Array, action: jax.Array) -> jax.Array:
        """Deterministic transition ``h' = GRU(h, [z, a])``."""
        return self.gru(h, self.img_in(jnp.concatenate([z, action], -1)))

    def _logits(self, x: jax.Array) -> jax.Array:
        return x.reshape(x.shape[:-1] + (self.groups, self.classes))

    def prior(self, h: jax.Array) -> jax.Array:
        """Prior logits ``[..., C, K]`` of ``z`` given ``h`` (the dynamics predictor)."""
        return self._logits(self.prior_net(h))

    def posterior(self, h: jax.Array, embed: jax.Array) -> jax.Array:
        """Posterior logits ``[..., C, K]`` of ``z`` given ``h`` and the observation."""
        return self._logits(self.post_net(jnp.concatenate([h, embed], -1)))

    def reward_cont(self, feat: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``feat [..., F]`` -> (reward logits ``[..., bins]``, continue logit ``[...]``); what
        imagination needs (no decoding, which for pixels would be most of the cost)."""
        return self.reward_head(feat), self.cont_head(feat)[..., 0]

    def heads(self, feat: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``feat [..., F]`` -> (``decode(feat)``, reward logits ``[..., bins]``, cont logit)."""
        return (self.decode(feat),) + self.reward_cont(feat)

    def __call__(self, obs: jax.Array, action: jax.Array) -> tuple[jax.Array, ...]:
        """Touches every submodule (used by ``init``)."""
        e = self.encode(obs)
        h = jnp.zeros(obs.shape[:1] + (self.deter,), jnp.float32)
        z = jnp.zeros(obs.shape[:1] + (self.groups * self.classes,), jnp.float32)
        h = self.step(h, z, action)
        post = self.posterior(h, e)
        feat = jnp.concatenate([h, z], -1)
        return (self.prior(h), post) + self.heads(feat)


def decoder_target(wm: WorldModel, obs: jax.Array) -> jax.Array:
    """What ``wm.decode`` predicts for ``obs [..., *obs_shape]`` (no parameters involved).

    ``cnn``: the pixels scaled to [0, 1], shape kept (``[..., H, W, C]``). ``mlp``:
    ``symlog(obs)`` flattened to ``[..., D]``.
    """
    if wm.encoder_kind == "cnn":
        return obs.astype(jnp.float32) * PIXEL_SCALE
    lead = obs.shape[: obs.ndim - wm.obs_ndim]
    return symlog(obs.reshape(lead + (-1,)).astype(jnp.float32))


class ActorNet(nn.Module):
    """Policy head on latent features: logits ``[..., A]`` or (mean, raw std) ``[..., D]``."""

    hidden: int
    layers: int
    act_dim: int
    discrete: bool

    @nn.compact
    def __call__(self, feat: jax.Array) -> jax.Array:
        out = self.act_dim if self.discrete else 2 * self.act_dim
        return _mlp(self.hidden, self.layers, out)(feat)


class CriticNet(nn.Module):
    """Twohot-symlog value head, zero-initialised output (predicts exactly 0 at init)."""

    hidden: int
    layers: int
    num_bins: int

    @nn.compact
    def __call__(self, feat: jax.Array) -> jax.Array:
        return _mlp(self.hidden, self.layers, self.num_bins, zero_out=True)(feat)
