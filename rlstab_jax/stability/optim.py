"""Optimisers the field reports ask for that optax does not ship (optax 0.2.x has no LaProp).

LaProp is composed from optax primitives (``scale_by_rms`` with bias correction, then a
debiased ``ema`` as momentum): no new state or update rule is written here, only the order
that makes it LaProp instead of Adam.
"""

from __future__ import annotations

import chex
import optax

__all__ = ["laprop"]


def laprop(learning_rate: float | chex.Array, b1: float | chex.Array = 0.9,
           b2: float | chex.Array = 0.999, eps: float | chex.Array = 1e-8
           ) -> optax.GradientTransformation:
    """LaProp (Ziyin et al. 2020; DreamerV3's optimiser): normalise, THEN take momentum.

    ``v_t = b2 v + (1 - b2) g^2``, ``u_t = g / (sqrt(v_t / (1 - b2^t)) + eps)``,
    ``m_t = b1 m + (1 - b1) u_t``, update ``-lr * m_t / (1 - b1^t)``.
    Adam divides the momentum of raw gradients by the current RMS; LaProp averages already
    normalised steps (each ``|u_t| <= sqrt((1 - b2^t) / (1 - b2))`` since ``v_t`` holds at least
    ``(1 - b2) g_t^2``), so one large gradient (a return-scale jump in the actor-critic, a world
    model surprise) enters the momentum already bounded, and momentum and adaptivity can be
    tuned independently.

    Failure prevented: overshooting actor-critic updates as imagined returns grow (field report
    002_f727d2bd93148014.txt, 01-16-26 sweep "peak-then-decline at high LR"; DreamerV3 uses
    LaProp with AGC for this).

    Args:
      learning_rate: step size (may be traced, e.g. via ``optax.inject_hyperparams``).
      b1: momentum decay. b2: decay of the squared-gradient average. eps: added to the RMS.

    Returns:
      An ``optax.GradientTransformation``.
    """
    return optax.chain(
        optax.scale_by_rms(decay=b2, eps=eps, eps_in_sqrt=False, bias_correction=True),
        optax.ema(b1, debias=True),
        optax.scale_by_learning_rate(learning_rate),
    )
