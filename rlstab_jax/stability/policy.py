"""Squashed-Gaussian policy maths: log-std parametrisation, tanh log-det, log-probs.

Everything here is a pure function over arrays; shapes are ``[..., D]`` with ``D`` the
action dimension (usually ``[B, D]``). Actions live in ``[-1, 1]`` (``tanh`` of the
pre-squash sample ``u``); rescaling to an env's Box is the env adapter's job.

Two log-std parametrisations are offered so ablations can compare them:

* ``tanh_log_std`` (field report 000_3a6813a839e5647c.txt, Fix B): smooth, gradient
  everywhere.
* ``clamp_log_std`` (the form Fix B replaced): hard clip, zero gradient outside the bounds.
"""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp

_LOG_2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

__all__ = [
    "tanh_log_std",
    "clamp_log_std",
    "squash_log_det",
    "squashed_gaussian_log_prob",
    "squashed_gaussian_sample",
    "deterministic_action",
]


@jax.custom_jvp
def _tanh(x: chex.Array) -> chex.Array:
    """``tanh`` whose derivative stays non-zero where float32 ``tanh`` saturates to +-1.

    JAX differentiates ``tanh`` as ``1 - tanh(x)^2``, which is exactly 0 in float32 for
    ``|x| >~ 9``; here the derivative is ``exp(log(1 - tanh(x)^2))`` from the stable
    closed form (about ``4e-17`` at ``|x| = 20`` instead of 0).
    """
    return jnp.tanh(x)


@_tanh.defjvp
def _tanh_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return _tanh(x), t * jnp.exp(squash_log_det(x))


def tanh_log_std(raw: chex.Array, log_std_min: float, log_std_max: float) -> chex.Array:
    """Maps an unbounded network output smoothly into ``[log_std_min, log_std_max]``.

    ``log_std = min + 0.5 * (max - min) * (tanh(raw) + 1)``.

    Failure prevented: entropy collapse through the hard-clamp dead zone. With
    ``clip(raw, min, max)`` a log-std that reaches the floor gets exactly zero gradient
    and can never be pushed back up; the tanh form has a non-zero gradient for every
    finite ``raw`` (field report 000_3a6813a839e5647c.txt, Fix B).

    Args:
      raw: unbounded pre-activation, any shape ``[..., D]``, float.
      log_std_min: lower bound (scalar, may be traced).
      log_std_max: upper bound (scalar, may be traced), ``> log_std_min``.

    Returns:
      Log standard deviations with the shape and dtype of ``raw``, in the closed interval
      ``[log_std_min, log_std_max]`` (the ends are only reached in floating point
      saturation, ``|raw|`` large). The gradient w.r.t. ``raw`` is computed from the
      stable ``sech^2`` form, so it is strictly positive for ``|raw| <= 40`` in float32
      (plain autodiff of ``tanh`` gives exactly 0 beyond ``|raw| ~ 9``).
    """
    chex.assert_type(raw, float)
    log_std = log_std_min + 0.5 * (log_std_max - log_std_min) * (_tanh(raw) + 1.0)
    # Rounding can overshoot a bound by one ulp; clip the value, keep tanh's gradient.
    clipped = jnp.clip(log_std, log_std_min, log_std_max)
    return (log_std + jax.lax.stop_gradient(clipped - log_std)).astype(raw.dtype)


def clamp_log_std(raw: chex.Array, log_std_min: float, log_std_max: float) -> chex.Array:
    """Hard-clamps the log-std into ``[log_std_min, log_std_max]`` (the OLD form).

    Kept only as the ablation baseline for ``tanh_log_std``: it has zero gradient
    whenever ``raw`` is outside the bounds, which is the dead zone that let entropy
    collapse in field report 000_3a6813a839e5647c.txt (Problem 2, replaced by Fix B).

    Args:
      raw: unbounded pre-activation, any shape, float.
      log_std_min: lower bound.
      log_std_max: upper bound.

    Returns:
      ``clip(raw, log_std_min, log_std_max)`` with the shape and dtype of ``raw``.
    """
    chex.assert_type(raw, float)
    return jnp.clip(raw, log_std_min, log_std_max).astype(raw.dtype)


def squash_log_det(u: chex.Array) -> chex.Array:
    """Per-dimension ``log |d tanh(u) / du| = log(1 - tanh(u)^2)``, numerically stable.

    Uses the identity ``log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u))``.

    Failure prevented: the naive ``log(1 - tanh(u)^2 + eps)`` saturates for ``|u| >~ 9``
    (float32 ``tanh`` rounds to 1), which biases the entropy term and the alpha update
    exactly when the policy becomes confident; the closed form stays exact and finite
    for ``|u|`` up to and beyond 20 (field report 000_3a6813a839e5647c.txt, Step 3,
    ``_squashed_gaussian_logprob``).

    Args:
      u: pre-tanh sample, shape ``[..., D]``, float.

    Returns:
      Log-determinant per dimension, same shape and dtype as ``u`` (always ``<= 0``).
    """
    chex.assert_type(u, float)
    return 2.0 * (_LOG_2 - u - jax.nn.softplus(-2.0 * u))


def _normal_log_prob(z: chex.Array, log_std: chex.Array) -> chex.Array:
    """Log-density of ``N(mean, exp(log_std))`` at a point with standardised offset ``z``."""
    return -0.5 * jnp.square(z) - log_std - _HALF_LOG_2PI


def squashed_gaussian_log_prob(
    u: chex.Array, mean: chex.Array, log_std: chex.Array
) -> tuple[chex.Array, chex.Array]:
    """Log-probability of ``a = tanh(u)`` under ``tanh(N(mean, exp(log_std)))``.

    ``logp_d = log N(u_d; mean_d, std_d) - log(1 - tanh(u_d)^2)`` per dimension, and the
    total is the sum over ``D``. Takes the PRE-tanh sample ``u`` (never ``atanh(a)``,
    which loses all precision near ``|a| = 1``).

    Failure prevented: per-dimension entropy control needs per-dimension log-probs; a
    single summed log-prob lets one action dimension (e.g. steering) collapse while
    another keeps the total entropy on target (field report 000_3a6813a839e5647c.txt,
    Fix C and Step 3).

    Args:
      u: pre-tanh sample ``[..., D]``.
      mean: Gaussian mean ``[..., D]``.
      log_std: Gaussian log standard deviation ``[..., D]``.

    Returns:
      ``(logp_total [...], logp_per_dim [..., D])``.
    """
    chex.assert_equal_shape([u, mean, log_std])
    chex.assert_type([u, mean, log_std], float)
    z = (u - mean) * jnp.exp(-log_std)
    logp_per_dim = _normal_log_prob(z, log_std) - squash_log_det(u)
    return jnp.sum(logp_per_dim, axis=-1), logp_per_dim


def squashed_gaussian_sample(
    key: chex.PRNGKey, mean: chex.Array, log_std: chex.Array
) -> tuple[chex.Array, chex.Array, chex.Array]:
    """Reparameterised sample ``a = tanh(mean + exp(log_std) * eps)`` with its log-probs.

    Gradients flow to ``mean`` and ``log_std`` through the sample (SAC's policy loss
    needs them). The Gaussian term is computed from ``eps`` directly, so it is exact
    even when ``std`` is tiny.

    Failure prevented: same as ``squashed_gaussian_log_prob`` (per-dimension log-probs
    for per-dimension alpha, stable tanh correction); field report
    000_3a6813a839e5647c.txt, Fix C and Step 6 (``actor_from_features`` returns
    ``(action, logp_total, logp_per_dim)``).

    Args:
      key: PRNG key (typed or raw uint32).
      mean: Gaussian mean ``[..., D]``.
      log_std: Gaussian log standard deviation ``[..., D]``.

    Returns:
      ``(action [..., D] in [-1, 1], logp_total [...], logp_per_dim [..., D])``.
    """
    chex.assert_equal_shape([mean, log_std])
    chex.assert_type([mean, log_std], float)
    eps = jax.random.normal(key, mean.shape, mean.dtype)
    u = mean + jnp.exp(log_std) * eps
    logp_per_dim = _normal_log_prob(eps, log_std) - squash_log_det(u)
    return _tanh(u), jnp.sum(logp_per_dim, axis=-1), logp_per_dim


def deterministic_action(mean: chex.Array) -> chex.Array:
    """Greedy action ``tanh(mean)`` for evaluation (``deterministic=True`` in ``act``).

    Failure prevented: evaluating the deterministic policy on the raw ``mean`` (outside
    ``[-1, 1]``) or on a noisy sample hides a bad greedy policy; field report
    001_f4390d4e9d41c1c2.txt tracks ``return_test_det`` separately for this reason.

    Args:
      mean: Gaussian mean ``[..., D]``.

    Returns:
      ``tanh(mean)``, same shape and dtype.
    """
    chex.assert_type(mean, float)
    return _tanh(mean)
