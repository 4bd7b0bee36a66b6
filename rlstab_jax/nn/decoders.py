"""Pixel decoder: latent features -> an image, the mirror of ``encoders.CNNEncoder``.

Used by world models that reconstruct their pixel observations (Dreamer with
``agent.encoder=cnn``). Like the encoder it normalises with ``GroupNorm(num_groups=1)`` and never
BatchNorm (field report 001 §2).

Each upsampling layer is a transposed convolution written in its sub-pixel form: a stride-1
convolution at the low resolution with ``s * s`` times the output channels and kernel
``ceil(k / s)``, then depth-to-space (each group of ``s * s`` channels becomes an ``s x s``
block of pixels). That costs the same multiply-adds as ``nn.ConvTranspose(k, s)``, but it runs
through ``nn.conv.Conv2D``: the gradient of ``nn.ConvTranspose`` is an input-dilated XLA
convolution, the form that runs as naive loops inside ``lax.scan`` on XLA:CPU, where every
update of this library runs (``rlstab_jax/nn/conv.py``).

Sizes that are not a multiple of the strides: the decoder walks back through the encoder's own
feature-map sizes (``SAME`` padding: ``ceil(size / s)`` per layer), and after each upsampling it
crops the ``s``-times larger map to the encoder's size at that depth (top-left, the side where
``SAME`` padding adds least). A 48x48 or 30x30 frame therefore decodes to exactly 48x48 or 30x30.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax

from rlstab_jax.nn.conv import Conv2D, same_pads
from rlstab_jax.nn.mlp import get_activation


def feature_map_sizes(size: int, kernels: Sequence[int], strides: Sequence[int]) -> list[int]:
    """Side of the input and of every conv output of a ``SAME``-padded stack: ``[size, ...]``."""
    sizes = [int(size)]
    for k, s in zip(kernels, strides, strict=True):
        sizes.append(same_pads(sizes[-1], int(k), int(s))[2])
    return sizes


def depth_to_space(x: jax.Array, s: int) -> jax.Array:
    """``[B, h, w, s * s * c]`` -> ``[B, h * s, w * s, c]`` (channel blocks become pixels)."""
    b, h, w, cs = x.shape
    c = cs // (s * s)
    x = x.reshape(b, h, w, s, s, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h * s, w * s, c)


class CNNDecoder(nn.Module):
    """Features ``[B, F]`` -> image ``[B, H, W, C]`` in the units of the target (e.g. [0, 1]).

    ``Dense`` to the encoder's last feature map, then for each encoder layer in reverse an
    upsampling layer back to the size before it; every layer but the last is followed by
    ``GroupNorm(1 group) -> activation``; the last has ``C`` linear outputs.

    Attributes:
      out_shape: ``(H, W, C)`` of the reconstructed image.
      channels, kernels, strides: the encoder's conv stack (same lengths as in
        ``CNNEncoder``); layer ``i`` of the decoder undoes encoder layer ``n - 1 - i``.
      activation: activation name (``silu`` as in the encoder).
      conv_impl: ``auto`` | ``xla`` | ``matmul`` | ``onednn`` (``nn.conv.Conv2D``; same
        parameters for all).
    """

    out_shape: tuple[int, int, int]
    channels: Sequence[int] = (32, 64, 64)
    kernels: Sequence[int] = (4, 4, 4)
    strides: Sequence[int] = (2, 2, 2)
    activation: str = "silu"
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, feat: jax.Array) -> jax.Array:
        """``feat [B, F]`` -> ``[B, H, W, C]`` float32."""
        if feat.ndim != 2:
            raise ValueError(f"CNNDecoder expects [B, F] features, got shape {feat.shape}")
        n = len(self.channels)
        if not n == len(self.kernels) == len(self.strides) or n == 0:
            raise ValueError("channels, kernels and strides must be non-empty and equally long")
        height, width, out_c = self.out_shape
        hs = feature_map_sizes(height, self.kernels, self.strides)
        ws = feature_map_sizes(width, self.kernels, self.strides)
        act = get_activation(self.activation)
        x = nn.Dense(hs[-1] * ws[-1] * self.channels[-1])(feat)
        x = x.reshape(feat.shape[0], hs[-1], ws[-1], self.channels[-1])
        x = act(nn.GroupNorm(num_groups=1)(x))
        for j, i in enumerate(reversed(range(n))):  # undo encoder layer i
            k, s = int(self.kernels[i]), int(self.strides[i])
            last = i == 0
            c = out_c if last else self.channels[i - 1]
            x = Conv2D(c * s * s, -(-k // s), 1, "SAME", self.conv_impl, name=f"Conv_{j}")(x)
            if s > 1:
                x = depth_to_space(x, s)[:, :hs[i], :ws[i]]
            if not last:
                x = act(nn.GroupNorm(num_groups=1)(x))
        return x
