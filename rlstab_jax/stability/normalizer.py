"""Percentile EMA return normalisation (DreamerV3), as a fixed-structure state pytree.

Field report 002_f727d2bd93148014.txt ("Actor-Critic Hyperparameter Sweep", "Return
Normalization Implementation"): as returns grew 20 -> 120 the actor's updates grew with
them and the policy overshot (peak-then-decline at lr 3e-5). The fix divides advantages by
``max(1, S95 - S5)``, EMAs of the 95th and 5th return percentiles.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class PercentileEmaState:
    """EMAs of the low/high return percentiles.

    Attributes:
      low: ``[]`` float32 EMA of the ``low_pct`` percentile.
      high: ``[]`` float32 EMA of the ``high_pct`` percentile.
      initialised: ``[]`` bool, False until the first update.
    """

    low: jax.Array
    high: jax.Array
    initialised: jax.Array


def percentile_ema_init() -> PercentileEmaState:
    """An empty normaliser state (scale 1 until the first update).

    Part of the return-normalisation fix of field report 002_f727d2bd93148014.txt
    ("Return Normalization Implementation").

    Returns:
      ``PercentileEmaState`` with zeros and ``initialised=False``.
    """
    zero = jnp.zeros((), jnp.float32)
    return PercentileEmaState(low=zero, high=zero, initialised=jnp.zeros((), bool))


def percentile_ema_update(
    state: PercentileEmaState,
    returns: jax.Array,
    decay: float | jax.Array = 0.99,
    low_pct: float | jax.Array = 5.0,
    high_pct: float | jax.Array = 95.0,
) -> PercentileEmaState:
    """Fold a batch of returns into the percentile EMAs.

    ``low <- decay * low + (1 - decay) * percentile(returns, low_pct)`` (same for high).
    The first update sets the EMAs to the batch percentiles instead (DreamerV3 starts
    from zeros without bias correction, which under-states the range for ~1/(1-decay)
    updates). Prevents return-scale-driven actor overshoot (field report
    002_f727d2bd93148014.txt, "Return Normalization Implementation": 5th/95th
    percentiles, decay 0.99).

    Args:
      state: current state.
      returns: lambda returns of any shape (all entries are pooled), float.
      decay: EMA decay (report: 0.99).
      low_pct: lower percentile in [0, 100] (report: 5).
      high_pct: upper percentile in [0, 100] (report: 95).

    Returns:
      The new state. Shifting every return by a constant shifts ``low`` and ``high``
      equally and leaves the scale unchanged.
    """
    chex.assert_type(returns, float)
    flat = jax.lax.stop_gradient(returns).reshape(-1).astype(jnp.float32)
    lo, hi = jnp.percentile(flat, jnp.stack([jnp.asarray(low_pct, jnp.float32),
                                             jnp.asarray(high_pct, jnp.float32)]))
    decay = jnp.asarray(decay, jnp.float32)
    low = jnp.where(state.initialised, decay * state.low + (1.0 - decay) * lo, lo)
    high = jnp.where(state.initialised, decay * state.high + (1.0 - decay) * hi, hi)
    return PercentileEmaState(low=low, high=high, initialised=jnp.ones((), bool))


def percentile_ema_scale(state: PercentileEmaState) -> jax.Array:
    """``max(1, high - low)``: the divisor for advantages.

    The ``max(1, .)`` only ever scales down, so sparse or tiny rewards are not amplified
    into noise (field report 002_f727d2bd93148014.txt, "Return Normalization
    Implementation").

    Args:
      state: normaliser state.

    Returns:
      ``[]`` float32 scale >= 1 (exactly 1 before the first update).
    """
    return jnp.maximum(1.0, state.high - state.low)


def normalize_advantages(adv: jax.Array, state: PercentileEmaState) -> jax.Array:
    """Divide advantages by :func:`percentile_ema_scale` (no offset: it cancels in A).

    Keeps the actor step size independent of the return scale (field report
    002_f727d2bd93148014.txt, "Actor-Critic Hyperparameter Sweep": peak-then-decline as
    returns grew). No gradient flows into the scale.

    Args:
      adv: advantages of any shape.
      state: normaliser state (update it with the same batch's returns first).

    Returns:
      Advantages of the same shape and dtype.
    """
    scale = jax.lax.stop_gradient(percentile_ema_scale(state)).astype(adv.dtype)
    return adv / scale
