"""A 2-D convolution on XLA:CPU through oneDNN's direct kernels (``conv_impl="onednn"``).

Why: XLA:CPU has no direct convolution that it uses inside loops (``nn/conv.py`` explains the
slow path of its own convolutions inside ``lax.scan``). ``conv_impl="matmul"`` avoids that path
with patches + matmuls, but on large frames the patches themselves dominate: at CarRacing's
96x96x3 and batch 128 the matmuls run as fast as PyTorch's, yet building ~136 MB of im2col
patches per forward (and summing them back in the backward pass) made the encoder 2x slower
than PyTorch (issue 14, ``bench/pixel_matmul_floor.py``). PyTorch's CPU convolutions are
oneDNN's direct (jit, blocked) kernels, which never build patches. This module calls the same
library as an XLA FFI custom call: forward, backward-data and backward-weights are three
handlers (``conv.cc``), wired together by a ``jax.custom_vjp``, so the whole update still jits
and runs inside ``lax.scan`` unchanged. Under ``vmap`` (seeds) the call loops over the mapped
axis (``vmap_method="sequential"``).

Availability: Linux x86-64 with ``pip install 'rlstab_jax[onednn]'`` (oneDNN's CPU/OpenMP
wheels) and a C++ compiler; the handlers are compiled once and cached (``build.py``).
``available()`` says whether that worked (and ``unavailable_reason()`` why not);
``conv_impl="auto"`` uses this when it is available on the CPU backend and ``matmul`` otherwise.
Float32, NHWC input, HWIO kernel, square stride, ``SAME``/``VALID`` padding: the parameters are
those of ``flax.linen.Conv``, so every ``conv_impl`` applies to the same checkpoints.
"""

from __future__ import annotations

import functools
import threading

import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.nn.onednn.build import BuildError, library

TARGETS = {"forward": "RlstabConvForward", "backward_data": "RlstabConvBackwardData",
           "backward_weights": "RlstabConvBackwardWeights"}
_lock = threading.Lock()
_state: dict[str, object] = {}


def _register() -> None:
    """Build (or load from the cache) and register the handlers, once per process."""
    import ctypes

    with _lock:
        if "ok" in _state or "error" in _state:
            return
        try:
            lib = ctypes.CDLL(str(library()))
            for target in TARGETS.values():
                jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(getattr(lib, target)),
                                            platform="cpu")
            _state["ok"] = True
        except (BuildError, OSError, AttributeError) as e:
            _state["error"] = str(e)


def available() -> bool:
    """True when the oneDNN convolution is built and registered (builds it on the first call)."""
    _register()
    return "ok" in _state


def unavailable_reason() -> str:
    """Why ``available()`` is False (empty when it is True)."""
    _register()
    return str(_state.get("error", ""))


def _call(name: str, out_shape, a: jax.Array, b: jax.Array, stride: int, pads) -> jax.Array:
    (top, bottom), (left, right) = pads
    if not available():
        raise RuntimeError(f"conv_impl='onednn' is not available: {unavailable_reason()}")
    return jax.ffi.ffi_call(TARGETS[name], jax.ShapeDtypeStruct(out_shape, jnp.float32),
                            vmap_method="sequential")(
        a, b, stride=np.int64(stride), pad_top=np.int64(top), pad_left=np.int64(left),
        pad_bottom=np.int64(bottom), pad_right=np.int64(right))


def _geometry(x_shape, kernel_shape, stride: int, padding: str):
    """``(pads, out_shape)``; XLA's own padding rule, so values equal ``lax.conv``'s."""
    k_h, k_w, _, out_c = kernel_shape
    pads = jax.lax.padtype_to_pads(x_shape[1:3], (k_h, k_w), (stride, stride), padding)
    out_hw = [(size + lo + hi - k) // stride + 1
              for size, (lo, hi), k in zip(x_shape[1:3], pads, (k_h, k_w), strict=True)]
    return pads, (x_shape[0], *out_hw, out_c)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv2d(x: jax.Array, kernel: jax.Array, stride: int, padding: str = "SAME") -> jax.Array:
    """``x [B, H, W, C] * kernel [kh, kw, C, O]`` -> ``[B, Ho, Wo, O]`` float32, no bias.

    Same values as ``lax.conv_general_dilated(x, kernel, (s, s), padding, ("NHWC", "HWIO",
    "NHWC"))`` (to float32 rounding); forward and both gradients are oneDNN direct kernels.
    """
    return _forward(x, kernel, stride, padding)[0]


def _forward(x, kernel, stride, padding):
    if padding not in ("SAME", "VALID"):
        raise ValueError(f"padding={padding!r} must be 'SAME' or 'VALID'")
    if x.dtype != jnp.float32 or kernel.dtype != jnp.float32:
        raise TypeError(f"the oneDNN conv takes float32 input and kernel, got {x.dtype} and "
                        f"{kernel.dtype}")
    pads, out_shape = _geometry(x.shape, kernel.shape, stride, padding)
    return _call("forward", out_shape, x, kernel, stride, pads), (x, kernel)


def _backward(stride, padding, res, dy):
    x, kernel = res
    pads, _ = _geometry(x.shape, kernel.shape, stride, padding)
    # The pixel input of a first layer needs no dx; XLA drops that (side-effect free) call.
    dx = _call("backward_data", x.shape, dy, kernel, stride, pads)
    dw = _call("backward_weights", kernel.shape, x, dy, stride, pads)
    return dx, dw


conv2d.defvjp(_forward, _backward)
