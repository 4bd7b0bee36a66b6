"""Categorical latents: uniform mixing and straight-through one-hot samples.

Field report 002_f727d2bd93148014.txt ("DreamerV3 Implementation Audit") found the world
model's categorical latents missing DreamerV3's 1% uniform mix, a collapse risk: once a
class probability underflows, its log-prob and the KL terms blow up and gradients stop.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from rlstab_jax.config.errors import ConfigError


def unimix_logits(logits: jax.Array, unimix: float | jax.Array = 0.01) -> jax.Array:
    """Log-probabilities of ``(1 - u) * softmax(logits) + u / K`` over the last axis.

    Prevents categorical collapse (a class probability reaching 0 gives ``-inf``
    log-probs, infinite KL and dead gradients): every class keeps probability >= u/K
    (field report 002_f727d2bd93148014.txt, "DreamerV3 Implementation Audit", unimix 1%).
    Apply to posterior and prior logits before sampling and before the KL.

    Computed in log space, ``logaddexp(log(1-u) + log_softmax(l), log(u/K))``, so the
    result is exact at ``u = 0`` (plain ``log_softmax``) and ``u = 1`` (uniform), with no
    ``+1e-8`` fudge (the report's PyTorch version adds 1e-8 inside the log). The output is
    a valid logits vector: ``softmax(unimix_logits(l)) == exp(unimix_logits(l))``.
    Differentiating with respect to ``u`` at exactly ``u = 0`` gives NaN; treat ``u`` as a
    hyper-parameter.

    Args:
      logits: ``[..., K]`` unnormalised logits (e.g. ``[B, T, groups, classes]``).
      unimix: mixing weight u in [0, 1]; a Python float (validated) or a traced scalar.

    Returns:
      ``[..., K]`` normalised log-probabilities, same dtype as ``logits``.

    Raises:
      ConfigError: if a Python ``unimix`` lies outside [0, 1].
    """
    if isinstance(unimix, (int, float)) and not 0.0 <= unimix <= 1.0:
        raise ConfigError(f"unimix={unimix} must lie in [0, 1] (DreamerV3 uses 0.01)")
    chex.assert_type(logits, float)
    num_classes = logits.shape[-1]
    u = jnp.asarray(unimix, dtype=logits.dtype)
    log_policy = jnp.log1p(-u) + jax.nn.log_softmax(logits, axis=-1)
    log_uniform = jnp.log(u) - jnp.log(jnp.asarray(num_classes, logits.dtype))
    return jnp.logaddexp(log_policy, log_uniform)


def straight_through_onehot(key: jax.Array, logits: jax.Array) -> jax.Array:
    """Sample a one-hot from ``softmax(logits)`` with straight-through gradients.

    The forward value is the exact hard one-hot sample; the gradient is that of the
    surrogate ``softmax(logits)`` (DreamerV3's discrete latents; field report
    002_f727d2bd93148014.txt, "DreamerV3 Implementation Audit"). Without it, sampled
    discrete latents pass no gradient to the encoder or dynamics.

    Written as ``hard + (probs - stop_gradient(probs))``: the bracket is exactly 0 in the
    forward pass, so the output is bit-exact ``{0, 1}``. The common
    ``hard + probs - stop_gradient(probs)`` rounds ``1 + p - p`` and can be off by an ulp.

    Args:
      key: PRNG key.
      logits: ``[..., K]`` logits (pass :func:`unimix_logits` output for unimix sampling).

    Returns:
      ``[..., K]`` one-hot samples in ``logits.dtype``.
    """
    chex.assert_type(logits, float)
    index = jax.random.categorical(key, logits, axis=-1)
    hard = jax.nn.one_hot(index, logits.shape[-1], dtype=logits.dtype)
    probs = jax.nn.softmax(logits, axis=-1)
    return hard + (probs - jax.lax.stop_gradient(probs))
