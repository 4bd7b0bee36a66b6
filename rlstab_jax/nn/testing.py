"""Shared fixtures of the convolution tests (``tests/nn/test_nn_conv.py``,
``tests/nn/test_nn_onednn.py``): the preset's kernel/stride cases, XLA's conv as the reference,
random data and a scalar loss to differentiate."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# (H, C_in, C_out, k, s, padding): sac/racer_pixels (4/2, 3/2, 3/1), its old 5/2 layer,
# sac/carracing = the CNN defaults (8/4, 4/2, 3/1); odd sizes and VALID for the padding maths.
CONV_CASES = [(16, 6, 8, 4, 2, "SAME"), (8, 8, 16, 3, 2, "SAME"), (4, 16, 16, 3, 1, "SAME"),
              (12, 9, 4, 5, 2, "SAME"), (20, 3, 4, 8, 4, "SAME"), (9, 4, 6, 4, 2, "SAME"),
              (7, 3, 5, 3, 2, "VALID"), (5, 2, 3, 2, 3, "SAME")]


def conv_ref(x, w, s, pad):
    """XLA's own NHWC/HWIO convolution (and, through ``jax.grad``, its autodiff)."""
    return jax.lax.conv_general_dilated(x, w, (s, s), pad,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def conv_data(h, c, o, k, seed=0, batch=2):
    """Input ``[batch, h, h, c]`` and a fan-in-scaled kernel ``[k, k, c, o]``."""
    kx, kw = jax.random.split(jax.random.key(seed))
    x = jax.random.normal(kx, (batch, h, h, c))
    w = jax.random.normal(kw, (k, k, c, o)) / np.sqrt(k * k * c)
    return x, w


def conv_loss(conv, d):
    """``(x, w) -> sum(tanh(conv(x, w)) * d)``: every output position gets its own weight."""
    return lambda x, w: jnp.sum(jnp.tanh(conv(x, w)) * d)


def assert_grads_match_top_level_and_in_scan(conv, x, w, d, g_ref):
    """``jax.grad`` of ``conv_loss(conv, d)`` w.r.t. ``(x, w)`` equals ``g_ref`` as a top-level
    jitted call and inside a ``lax.scan`` body (a while loop in XLA, where updates run)."""
    grad = jax.grad(conv_loss(conv, d), (0, 1))
    g_top = jax.jit(grad)(x, w)

    def body(carry, _):
        return carry, grad(*carry)

    _, g_scan = jax.jit(lambda x, w: jax.lax.scan(body, (x, w), None, length=2))(x, w)
    for got in (g_top, jax.tree.map(lambda a: a[-1], g_scan)):
        for a, b in zip(got, g_ref, strict=True):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
