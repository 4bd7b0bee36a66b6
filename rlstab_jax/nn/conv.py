"""A 2-D convolution whose gradient stays fast inside ``lax.scan`` / ``cond`` / ``fori_loop`` on
XLA:CPU.

The XLA:CPU behaviour this works around (issue 14, measured on a 2-core CPU, jax 0.10.2):
XLA:CPU rewrites a convolution into its fast library call (Eigen spatial convolution) only when
it is in a canonical form (NHWC input, HWIO kernel, no dilation, stride on the output) and
— in practice — only in the *entry* computation. The gradients that JAX's autodiff emits for a
``lax.conv_general_dilated`` are convolutions in other layouts: the weight gradient contracts
over the batch dimension with the output gradient as a dilated "kernel", the input gradient of a
strided conv dilates its input (``lhs_dilation``). At the top level of a jitted function XLA still
canonicalises them; inside the body of a ``while`` loop (every ``lax.scan``, ``fori_loop``) or a
``cond`` branch — where every update of this library runs — they stay as generic loops: the
weight gradient of a 3x3 conv took 45 ms at top level and ~2,800 ms inside ``scan(length=1)``,
and a CarRacing SAC update 6 s instead of ~0.3 s. No XLA flag changed it (multi-threaded Eigen,
xnnpack, oneDNN, fusion flags), nor NCHW, bfloat16 or matmul precision.

``conv2d`` avoids the non-canonical forms altogether with a ``jax.custom_vjp``:

* the input is cut into patches (``k*k`` strided slices, concatenated: pure data movement,
  fast anywhere) and the convolution is one matmul ``patches @ W`` (``fwd="matmul"``), or XLA's
  own canonical forward convolution (``fwd="xla"``), which is fast inside loops too;
* the weight gradient is one matmul ``patches^T @ dy`` over the batch x positions;
* the input gradient is one matmul ``dy @ W^T`` followed by ``col2im``: the ``k*k`` patch
  gradients are put back with interior-padded ``lax.pad`` and summed (XLA fuses the sum into a
  single loop). Stride > 1 then needs no dilated convolution at all. The pixel input of the
  first layer needs no gradient, and XLA removes that dead branch of the backward pass.

Everything the backward pass runs is a ``dot_general``, a slice, a pad or an add, which XLA:CPU
compiles the same way at top level and inside a loop. On large frames the patches themselves
cost more than the matmuls (CarRacing: ~136 MB per forward), which is what
``conv_impl="onednn"`` (``nn/onednn``: oneDNN's direct kernels, no patches) removes where the
optional oneDNN extra is installed. On GPU/TPU XLA's own convolutions are the better choice
(cuDNN/TPU convolution units). ``conv_impl="auto"`` picks ``onednn``, else ``matmul``, on the
CPU backend (``matmul`` for tiny layers, where oneDNN's per-call cost dominates) and ``xla``
elsewhere (``resolve_conv_impl``). Parameters are those of
``flax.linen.Conv`` (``kernel`` ``[k, k, C_in, C_out]``, ``bias [C_out]``, same initialisers and
names), so all implementations are interchangeable on the same parameters and checkpoints.
"""

from __future__ import annotations

import functools
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

ConvImpl = Literal["auto", "xla", "matmul", "onednn"]
CONV_IMPLS: tuple[str, ...] = ("auto", "xla", "matmul", "onednn")


# ``auto`` on CPU keeps ``matmul`` for layers whose im2col patches per sample
# (``Ho * Wo * k * k * C_in``) are below this: there oneDNN's per-call cost outweighs the patches
# (bench/conv_layers.py, forward + both gradients in scan, batch 128: 4,608 -> matmul 0.9 ms vs
# onednn 4.0 ms; 9,216 -> even; 16,384 and up -> onednn 1.5-4.5x faster).
AUTO_ONEDNN_MIN_PATCH = 8192


def resolve_conv_impl(impl: str, patch_per_sample: int | None = None) -> str:
    """``auto`` -> on the CPU backend ``onednn`` where it is available (``nn/onednn``) and the
    layer is not tiny (``patch_per_sample >= AUTO_ONEDNN_MIN_PATCH``, when given), else
    ``matmul``; ``xla`` on GPU/TPU. Other values unchanged (``onednn`` needs the CPU backend)."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv_impl={impl!r} must be one of {CONV_IMPLS}")
    cpu = jax.default_backend() == "cpu"
    if impl == "auto":
        if not cpu:
            return "xla"
        if patch_per_sample is not None and patch_per_sample < AUTO_ONEDNN_MIN_PATCH:
            return "matmul"
        from rlstab_jax.nn import onednn
        return "onednn" if onednn.available() else "matmul"
    if impl == "onednn" and not cpu:
        raise ValueError(f"conv_impl='onednn' runs on the CPU backend only (this one is "
                         f"{jax.default_backend()!r}); use 'auto' or 'xla'")
    return impl


def conv_impl_problem(impl: str) -> str:
    """Why ``impl`` cannot run here (``""`` when it can): for config validation, so a bad choice
    is one clear line before anything compiles."""
    if impl not in CONV_IMPLS:
        return f"must be one of {list(CONV_IMPLS)}"
    if impl != "onednn":
        return ""
    if jax.default_backend() != "cpu":
        return f"runs on the CPU backend only (this one is {jax.default_backend()!r}); use 'auto'"
    from rlstab_jax.nn import onednn
    return "" if onednn.available() else f"is not available here: {onednn.unavailable_reason()}"


def same_pads(size: int, k: int, s: int) -> tuple[int, int, int]:
    """``(lo, hi, out)`` of TensorFlow/XLA ``SAME`` padding along one axis."""
    return _axis_pads(size, k, s, "SAME")


def _axis_pads(size: int, k: int, s: int, padding: str) -> tuple[int, int, int]:
    if padding not in ("SAME", "VALID"):
        raise ValueError(f"padding={padding!r} must be 'SAME' or 'VALID'")
    (lo, hi), = jax.lax.padtype_to_pads((size,), (k,), (s,), padding)  # XLA's own rule
    return lo, hi, (size + lo + hi - k) // s + 1


def _pads(x_shape, k: int, s: int, padding: str):
    _, h, w, _ = x_shape
    return _axis_pads(h, k, s, padding), _axis_pads(w, k, s, padding)


def _patches(x: jax.Array, k: int, s: int, padding: str) -> jax.Array:
    """``x [B, H, W, C]`` -> ``[B, Ho, Wo, k*k*C]`` ordered ``(kh, kw, c)`` like an HWIO kernel."""
    (lh, hh, oh), (lw, hw, ow) = _pads(x.shape, k, s, padding)
    xp = jnp.pad(x, ((0, 0), (lh, max(hh, 0)), (lw, max(hw, 0)), (0, 0)))
    cols = [xp[:, i:i + (oh - 1) * s + 1:s, j:j + (ow - 1) * s + 1:s, :]
            for i in range(k) for j in range(k)]
    return jnp.concatenate(cols, axis=-1)


def _col2im(g: jax.Array, x_shape, k: int, s: int, padding: str) -> jax.Array:
    """Adjoint of ``_patches``: ``g [B, Ho, Wo, k*k*C]`` -> ``[B, H, W, C]`` (sums overlaps)."""
    b, h, w, c = x_shape
    (lh, _, oh), (lw, _, ow) = _pads(x_shape, k, s, padding)
    g = g.reshape(b, oh, ow, k, k, c)
    zero = jnp.zeros((), g.dtype)
    total = None
    for i in range(k):
        for j in range(k):
            # place g[:, y, x, i, j] at input row y*s + i - lh (cropped to [0, H)).
            cfg = ((0, 0, 0), (i - lh, h - (i - lh) - ((oh - 1) * s + 1), s - 1),
                   (j - lw, w - (j - lw) - ((ow - 1) * s + 1), s - 1), (0, 0, 0))
            term = lax.pad(g[:, :, :, i, j, :], zero, cfg)
            total = term if total is None else total + term
    return total


def _xla_conv(x, kernel, s, padding):
    return lax.conv_general_dilated(x, kernel, (s, s), padding,
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def conv2d(x: jax.Array, kernel: jax.Array, stride: int, padding: str = "SAME",
           fwd: str = "matmul") -> jax.Array:
    """``x [B, H, W, C] * kernel [k, k, C, O]`` -> ``[B, Ho, Wo, O]`` (no bias), square stride.

    Same values as ``lax.conv_general_dilated(x, kernel, (s, s), padding, ("NHWC", "HWIO",
    "NHWC"))``; the gradient is the custom one described in the module docstring.
    ``fwd``: ``matmul`` (patches @ W) or ``xla`` (XLA's canonical forward conv).
    """
    return _conv_fwd(x, kernel, stride, padding, fwd)[0]


def _conv_fwd(x, kernel, stride, padding, fwd):
    k, _, c, o = kernel.shape
    if fwd == "xla":
        y = _xla_conv(x, kernel, stride, padding)
    else:
        p = _patches(x, k, stride, padding)
        y = jnp.einsum("bhwk,ko->bhwo", p, kernel.reshape(k * k * c, o))
    return y, (x, kernel)


def _conv_bwd(stride, padding, fwd, res, dy):
    del fwd
    x, kernel = res
    k, _, c, o = kernel.shape
    p = _patches(x, k, stride, padding)
    w2 = kernel.reshape(k * k * c, o)
    dw = jnp.einsum("bhwk,bhwo->ko", p, dy).reshape(kernel.shape)
    dp = jnp.einsum("bhwo,ko->bhwk", dy, w2)
    dx = _col2im(dp, x.shape, k, stride, padding)
    return dx.astype(x.dtype), dw.astype(kernel.dtype)


conv2d.defvjp(_conv_fwd, _conv_bwd)


class Conv2D(nn.Module):
    """Drop-in for ``nn.Conv(features, (k, k), strides=(s, s), padding=...)`` on NHWC input.

    ``impl``: ``xla`` (``nn.Conv``'s own ``lax`` convolution and autodiff), ``matmul``
    (``conv2d`` above), ``onednn`` (``nn.onednn.conv2d``: oneDNN's direct kernels through an XLA
    FFI call, CPU only), ``auto`` (``resolve_conv_impl``). Parameter names, shapes and
    initialisers equal ``nn.Conv``'s, so both impls apply to the same parameters.
    """

    features: int
    kernel_size: int
    stride: int = 1
    padding: str = "SAME"
    impl: str = "auto"
    fwd: str = "matmul"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (k, k, x.shape[-1], self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
        x = x.astype(jnp.float32)
        (_, _, out_h), (_, _, out_w) = _pads(x.shape, k, self.stride, self.padding)
        impl = resolve_conv_impl(self.impl, out_h * out_w * k * k * x.shape[-1])
        if impl == "xla":
            y = _xla_conv(x, kernel, self.stride, self.padding)
        elif impl == "onednn":
            from rlstab_jax.nn import onednn
            y = onednn.conv2d(x, kernel, self.stride, self.padding)
        else:
            y = conv2d(x, kernel, self.stride, self.padding, self.fwd)
        return y + bias
