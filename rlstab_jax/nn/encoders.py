"""Observation encoders: identity/MLP for vectors, a GroupNorm CNN for pixels.

Field report 001 §2: BatchNorm's running statistics drift with the replay distribution and
corrupt the network in evaluation mode (the deterministic policy scored -0.405). The CNN here
therefore normalises with ``GroupNorm(num_groups=1)`` (per-sample statistics, identical in
training and evaluation) and never BatchNorm.

Convolutions go through ``nn.conv.Conv2D`` (``conv_impl``): on XLA:CPU the gradient of XLA's own
convolution runs as naive loops inside ``lax.scan``/``cond``/``fori_loop`` (every update of this
library runs there; ~16x slower than at the top level), so ``conv_impl="auto"`` uses oneDNN's
direct convolutions (``nn/onednn``, when the optional extra is installed) or a patches+matmul
convolution with a hand-written VJP on CPU, and XLA's convolution on GPU/TPU.
The why and the measurements are in ``rlstab_jax/nn/conv.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rlstab_jax.nn.conv import Conv2D
from rlstab_jax.nn.mlp import MLP, get_activation


class VectorEncoder(nn.Module):
    """Flatten ``[B, *obs_shape]`` and optionally apply an MLP.

    Attributes:
      hidden: MLP widths; ``()`` makes the encoder the identity (flatten only), the default
        for low-dimensional state observations.
      activation, layer_norm: MLP options.
    """

    hidden: Sequence[int] = ()
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        """``obs [B, ...]`` -> features ``[B, F]`` float32."""
        x = jnp.reshape(obs, (obs.shape[0], -1)).astype(jnp.float32)
        if not self.hidden:
            return x
        return MLP(self.hidden, activation=self.activation, layer_norm=self.layer_norm)(x)


class CNNEncoder(nn.Module):
    """Pixel encoder ``[B, H, W, C]`` (uint8 in [0, 255]) -> ``[B, feature_dim]``.

    Each conv block is ``Conv -> GroupNorm(1 group) -> activation`` (field report 001 §2: no
    BatchNorm). The flattened map goes through ``Dense -> LayerNorm -> tanh`` so features are
    bounded whatever the pixel statistics. Frame stacks arrive as extra channels
    (``envs.wrappers.FrameStack``).

    Attributes:
      channels, kernels, strides: conv stack (same length); ``SAME`` padding.
      feature_dim: output width.
      activation: activation name (``silu`` as in the report's CNN).
      pixel_scale: inputs are cast to float32 and multiplied by this (1/255 -> [0, 1]).
      conv_impl: ``auto`` | ``xla`` | ``matmul`` | ``onednn`` (``nn.conv.Conv2D``; same
        parameters for all).
    """

    channels: Sequence[int] = (32, 64, 64)
    kernels: Sequence[int] = (8, 4, 3)
    strides: Sequence[int] = (4, 2, 1)
    feature_dim: int = 256
    activation: str = "silu"
    pixel_scale: float = 1.0 / 255.0
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        """``obs [B, H, W, C]`` -> features ``[B, feature_dim]``."""
        if obs.ndim != 4:
            raise ValueError(f"CNNEncoder expects [B, H, W, C] pixels, got shape {obs.shape}")
        if not len(self.channels) == len(self.kernels) == len(self.strides):
            raise ValueError("channels, kernels and strides must have the same length")
        act = get_activation(self.activation)
        h = obs.astype(jnp.float32) * self.pixel_scale
        for i, (c, k, s) in enumerate(zip(self.channels, self.kernels, self.strides,
                                          strict=True)):
            # named like nn.Conv's auto names, so parameter trees do not depend on conv_impl
            h = Conv2D(c, k, s, "SAME", self.conv_impl, name=f"Conv_{i}")(h)
            h = nn.GroupNorm(num_groups=1)(h)
            h = act(h)
        h = jnp.reshape(h, (h.shape[0], -1))
        h = nn.Dense(self.feature_dim)(h)
        return jnp.tanh(nn.LayerNorm()(h))
