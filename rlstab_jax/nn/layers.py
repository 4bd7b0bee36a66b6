"""Fast Dropout and LayerNorm for the DroQ Q-heads (CPU hot path).

Both are drop-in replacements for ``flax.linen.Dropout`` / ``flax.linen.LayerNorm`` inside
``MLP`` (same ``'dropout'`` rng stream, same ``scale``/``bias`` parameter names and shapes, so
checkpoints are unchanged). They exist because of two measured CPU costs of the DroQ preset
(UTD 20, 2 critics x 2 hidden layers of [256, 256], dropout in the target, online and actor-loss
critic passes = 41 masked forward passes, 10.7M mask entries per env step):

* Dropout: ``nn.Dropout`` draws its mask with ``jax.random.bernoulli``, i.e. one threefry2x32
  output per element. Threefry is 20 rounds of 32-bit mixing per pair of outputs and costs about
  100 ms per DroQ env step on CPU, three times the whole rest of the update. Here one threefry
  call draws a 64-bit seed and every element's 32-bit uniform is a keyed integer hash of its
  index (two rounds of the ``lowbias32`` mixer, a bijection of ``uint32`` with full avalanche):
  ~10x cheaper, still a fresh, independent-looking mask per key. (Splitting one 32-bit word
  into two 16-bit uniforms was tried as well: interleaving the halves costs more than it saves.)
* LayerNorm: under ``vmap`` over seeds on top of the vmapped critic ensemble, XLA:CPU lowers
  the autodiff backward of ``nn.LayerNorm`` into multiply+reduce fusions over rank-4 arrays
  that run ~10x slower than the same reductions in rank 3 (the "LayerNorm only" DroQ variant
  cost 59 ms per env step vs 35 ms without it). ``layer_norm`` has a hand-written VJP whose
  row/column sums are matrix-vector products with a ones vector, which lower to plain GEMVs
  whatever the batch rank.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["dropout_keep_mask", "dropout", "Dropout", "layer_norm", "LayerNorm"]

_U32 = 2**32


def _mix32(x: jax.Array) -> jax.Array:
    """``lowbias32`` integer finaliser: a bijection of ``uint32`` with strong avalanche."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def _threshold(rate: float) -> int:
    """Drop iff ``u32 < threshold``; ``P(drop) = threshold / 2**32`` (within 2**-33 of rate)."""
    return min(int(round(float(rate) * _U32)), _U32 - 1)


def dropout_keep_mask(key: jax.Array, rate: float, shape: Sequence[int]) -> jax.Array:
    """Boolean keep-mask of ``shape``: each entry is False with probability ``rate``.

    Cheap on CPU: one threefry call draws a 64-bit seed ``(s0, s1)`` from ``key``; entry ``i``
    (row-major index) gets the 32-bit value ``mix(mix(i + s0) ^ s1)`` and is dropped iff it is
    below ``round(rate * 2**32)``. ``mix`` is a bijection, so within one mask the 32-bit values
    are distinct and uniform over the index range; different keys give unrelated masks. Good
    enough for dropout noise, not a general-purpose PRNG (use ``jax.random`` for that).

    Args:
      key: PRNG key (typed or raw ``uint32[2]``).
      rate: static drop probability in ``[0, 1)``.
      shape: static mask shape (at most ``2**32`` entries).

    Returns:
      ``bool`` array of ``shape``.
    """
    shape = tuple(int(d) for d in shape)
    n = 1
    for d in shape:
        n *= d
    if n > _U32:
        raise ValueError(f"dropout_keep_mask: {n} entries exceed the 2**32 index range")
    seed = jax.random.bits(key, (2,), jnp.uint32)
    idx = jax.lax.iota(jnp.uint32, n).reshape(shape)
    u = _mix32(_mix32(idx + seed[0]) ^ seed[1])
    return u >= jnp.uint32(_threshold(rate))


def dropout(key: jax.Array, x: jax.Array, rate: float) -> jax.Array:
    """Inverted dropout of ``x``: zero each entry with probability ``rate``, scale the rest.

    The kept entries are scaled by ``1 / (1 - p)`` where ``p = round(rate * 2**32) / 2**32`` is
    the exact drop probability of ``dropout_keep_mask`` (equal to ``rate`` to ~1e-9), so
    ``E[dropout(x)] = x``. ``rate = 0`` returns ``x`` unchanged.
    """
    if rate == 0.0:
        return x
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
    keep_prob = 1.0 - _threshold(rate) / _U32
    mask = dropout_keep_mask(key, rate, x.shape)
    return jnp.where(mask, x * jnp.asarray(1.0 / keep_prob, x.dtype), jnp.zeros((), x.dtype))


class Dropout(nn.Module):
    """``flax.linen.Dropout`` with the cheap mask of ``dropout_keep_mask``.

    Draws its key from the ``'dropout'`` rng stream (``apply(..., rngs={'dropout': key})``),
    is the identity when ``deterministic`` (evaluation) or ``rate == 0``.

    Attributes:
      rate: static drop probability in ``[0, 1)``.
    """

    rate: float

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool = True) -> jax.Array:
        if deterministic or self.rate == 0.0:
            return x
        return dropout(self.make_rng("dropout"), x, self.rate)


def _rowmean(a: jax.Array) -> jax.Array:
    """Mean over the last axis, keepdims, as a GEMV (``a @ ones / H``)."""
    h = a.shape[-1]
    return (a @ jnp.full((h,), 1.0 / h, a.dtype))[..., None]


def _colsum(a: jax.Array) -> jax.Array:
    """Sum over all but the last axis, as a GEMV (``ones @ a``)."""
    a2 = a.reshape(-1, a.shape[-1])
    return jnp.ones((a2.shape[0],), a.dtype) @ a2


def _ln_forward(x, scale, bias, eps):
    mean = _rowmean(x)
    mean_sq = _rowmean(x * x)  # one-pass statistics: var = E[x^2] - E[x]^2, clipped at 0
    rstd = jax.lax.rsqrt(jnp.maximum(mean_sq - mean * mean, 0.0) + eps)
    xhat = (x - mean) * rstd
    return xhat * scale + bias, xhat, rstd


@jax.custom_vjp
def _layer_norm(x: jax.Array, scale: jax.Array, bias: jax.Array, eps: float) -> jax.Array:
    return _ln_forward(x, scale, bias, eps)[0]


def _layer_norm_fwd(x, scale, bias, eps):
    y, xhat, rstd = _ln_forward(x, scale, bias, eps)
    return y, (xhat, rstd, scale, eps)


def _layer_norm_bwd(res, gy):
    xhat, rstd, scale, eps = res
    g = gy * scale
    dx = rstd * (g - _rowmean(g) - xhat * _rowmean(g * xhat))
    return dx, _colsum(gy * xhat), _colsum(gy), jnp.zeros_like(eps)


_layer_norm.defvjp(_layer_norm_fwd, _layer_norm_bwd)


def layer_norm(x: jax.Array, scale: jax.Array, bias: jax.Array,
               eps: float = 1e-6) -> jax.Array:
    """``(x - mean) / sqrt(var + eps) * scale + bias`` over the last axis (float32).

    Same maths as ``flax.linen.LayerNorm`` (``use_fast_variance``: mean and mean of squares in
    one pass, variance clipped at 0) with a hand-written VJP whose reductions are GEMVs (see the
    module docstring for why).

    Args:
      x: ``[..., H]``; scale, bias: ``[H]``.
      eps: variance epsilon (Flax default ``1e-6``).
    """
    x = x.astype(jnp.float32)
    return _layer_norm(x, scale.astype(jnp.float32), bias.astype(jnp.float32),
                       jnp.asarray(eps, jnp.float32))


class LayerNorm(nn.Module):
    """``flax.linen.LayerNorm`` (last axis, learned ``scale``/``bias``) via ``layer_norm``.

    Parameters are named and shaped like Flax's (``scale`` ones, ``bias`` zeros, ``[H]``).

    Attributes:
      epsilon: variance epsilon.
    """

    epsilon: float = 1e-6

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (h,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (h,), jnp.float32)
        return layer_norm(x, scale, bias, self.epsilon)
