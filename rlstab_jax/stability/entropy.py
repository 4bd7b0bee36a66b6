"""Entropy temperature (alpha) for SAC-family agents: per-dimension or scalar, learned or fixed.

Field report 000_3a6813a839e5647c.txt, Fix C and Step 7: a single alpha for a 3-dim
action (steer/gas/brake) let one dimension collapse while the total entropy stayed on
target. The fix keeps one ``log_alpha`` per action dimension with a per-dimension
target entropy, uses per-dimension log-probs in the policy and alpha losses, and the
MEAN alpha times the TOTAL log-prob in the critic backup (Step 7b).

Shapes: ``log_alpha`` is ``[D]`` (per-dimension) or ``[1]`` (scalar, the old form);
``logp_per_dim`` is ``[B, D]``. A ``[1]`` alpha broadcasts against ``[B, D]``, so
``policy_entropy_cost`` with a scalar alpha is exactly ``alpha * logp_total``.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from rlstab_jax.config.errors import ConfigError

__all__ = [
    "target_entropy_per_dim",
    "alpha_loss",
    "apply_alpha_floor",
    "alpha_values",
    "policy_entropy_cost",
    "backup_alpha",
]


def target_entropy_per_dim(act_dim: int, target_total: float | None = None) -> jax.Array:
    """Per-dimension target entropy ``[D]`` for the alpha update.

    Default ``-1`` per dimension (SAC's ``-dim(A)`` heuristic split evenly); with
    ``target_total`` each dimension gets ``target_total / act_dim``.

    Failure prevented: one dimension's entropy collapsing while the sum stays on target
    (field report 000_3a6813a839e5647c.txt, Fix C, Step 7a). Field report
    003_51fc783968b47744.txt (§1-2) shows a badly scaled total target (-0.5 for 3 dims)
    driving alpha runaway, so the total stays configurable.

    Args:
      act_dim: number of continuous action dimensions, ``>= 1`` (Python int).
      target_total: total target entropy, or ``None`` for ``-act_dim``.

    Returns:
      float32 array ``[act_dim]``.

    Raises:
      ConfigError: if ``act_dim < 1``.
    """
    if int(act_dim) != act_dim or act_dim < 1:
        raise ConfigError(f"target_entropy_per_dim: act_dim={act_dim!r} must be an int >= 1")
    per_dim = -1.0 if target_total is None else float(target_total) / act_dim
    return jnp.full((int(act_dim),), per_dim, jnp.float32)


def alpha_loss(
    log_alpha: chex.Array,
    logp_per_dim: chex.Array,
    target_per_dim: chex.Array,
    per_dim: bool = True,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Temperature loss; its gradient raises alpha when entropy is below target.

    * ``per_dim=True`` (field report 000_3a6813a839e5647c.txt, Fix C / Step 7b):
      ``-sum_d log_alpha_d * sg(mean_b logp_{b,d} + target_d)``, ``log_alpha`` is ``[D]``.
    * ``per_dim=False`` (the old scalar form the report replaced):
      ``-log_alpha * sg(mean_b sum_d logp_{b,d} + sum_d target_d)``, ``log_alpha`` is ``[1]``.

    Failure prevented: with one alpha for all dimensions a confident dimension (gas)
    and an under-explored one (steer) share a temperature, so the steer entropy can
    collapse unnoticed; per-dimension alphas move each dimension independently.

    Args:
      log_alpha: ``[D]`` if ``per_dim`` else ``[1]``.
      logp_per_dim: per-dimension log-probs of fresh policy samples ``[B, D]``
        (gradient is stopped here).
      target_per_dim: per-dimension target entropy ``[D]``.
      per_dim: static switch between the two forms.

    Returns:
      ``(loss, metrics)``: scalar loss and ``{"alpha/loss", "alpha/mean", "alpha/entropy"}``
      where ``alpha/entropy`` is ``-mean_b logp_total`` (a sample estimate).
    """
    chex.assert_rank([log_alpha, logp_per_dim, target_per_dim], [1, 2, 1])
    chex.assert_equal_shape_suffix([logp_per_dim, target_per_dim], 1)
    chex.assert_type([log_alpha, logp_per_dim, target_per_dim], float)
    mean_logp = jnp.mean(jax.lax.stop_gradient(logp_per_dim), axis=0)
    target = jax.lax.stop_gradient(target_per_dim)
    if per_dim:
        chex.assert_equal_shape([log_alpha, target_per_dim])
        loss = -jnp.sum(log_alpha * (mean_logp + target))
    else:
        chex.assert_shape(log_alpha, (1,))
        loss = -jnp.sum(log_alpha * (jnp.sum(mean_logp) + jnp.sum(target)))
    metrics = {
        "alpha/loss": loss,
        "alpha/mean": jnp.mean(jnp.exp(jax.lax.stop_gradient(log_alpha))),
        "alpha/entropy": -jnp.sum(mean_logp),
    }
    return loss, metrics


def apply_alpha_floor(log_alpha: chex.Array, alpha_floor: float | chex.Array) -> chex.Array:
    """Projects ``log_alpha`` onto ``alpha >= alpha_floor`` (call after the optimiser step).

    ``alpha_floor <= 0`` switches the floor off (may be traced, so it vmaps over sweeps).

    Failure prevented: alpha decaying towards 0 so the policy becomes deterministic and
    stops exploring late in training (field report 000_3a6813a839e5647c.txt, Step 7b
    "Alpha floor": ``log_alpha.clamp_(min=log(alpha_floor))`` per dimension).

    Args:
      log_alpha: ``[D]`` or ``[1]``.
      alpha_floor: scalar floor on ``alpha`` (not on ``log_alpha``).

    Returns:
      ``log_alpha`` clamped from below, same shape and dtype.
    """
    chex.assert_type(log_alpha, float)
    alpha_floor = jnp.asarray(alpha_floor, log_alpha.dtype)
    on = alpha_floor > 0
    log_floor = jnp.log(jnp.where(on, alpha_floor, 1.0))
    return jnp.where(on, jnp.maximum(log_alpha, log_floor), log_alpha)


def alpha_values(log_alpha: chex.Array, fixed_alpha: float | chex.Array | None = None) -> jax.Array:
    """The alpha used this step: ``exp(log_alpha)``, or a constant in fixed-alpha mode.

    Fixed-alpha mode (``fixed_alpha`` not ``None``, field report
    003_51fc783968b47744.txt §3 Run A, kept in Runs B-D) returns ``fixed_alpha``
    broadcast to ``log_alpha``'s shape with no gradient; the agent then skips the alpha
    optimiser step (``agent.learn_alpha=false``). ``fixed_alpha`` may be traced.

    Failure prevented: entropy autotuning running away (alpha 0.015 -> 0.22 in report
    003 §1) when the target entropy is mis-scaled for the reward scale.

    Args:
      log_alpha: ``[D]`` or ``[1]``.
      fixed_alpha: ``None`` (learned) or a scalar alpha.

    Returns:
      alpha with ``log_alpha``'s shape; gradient flows to ``log_alpha`` only when learned.
    """
    chex.assert_type(log_alpha, float)
    if fixed_alpha is None:
        return jnp.exp(log_alpha)
    return jnp.full(log_alpha.shape, jax.lax.stop_gradient(fixed_alpha), log_alpha.dtype)


def policy_entropy_cost(alpha: chex.Array, logp_per_dim: chex.Array) -> jax.Array:
    """Per-sample entropy term of the policy loss ``sum_d alpha_d * logp_{b,d}`` ``[B]``.

    The policy loss is ``mean_b(policy_entropy_cost - Q(s_b, a_b))``. ``alpha`` is
    treated as a constant (stop-gradient), so the policy loss never moves alpha.

    Failure prevented: applying one alpha to the summed log-prob lets a confident
    dimension pay for an under-explored one; field report 000_3a6813a839e5647c.txt,
    Step 7b "Policy loss".

    Args:
      alpha: ``[D]`` (per-dimension) or ``[1]`` (scalar, equals ``alpha * logp_total``).
      logp_per_dim: ``[B, D]``.

    Returns:
      ``[B]`` entropy cost.
    """
    chex.assert_rank([alpha, logp_per_dim], [1, 2])
    chex.assert_type([alpha, logp_per_dim], float)
    if alpha.shape[0] != 1:
        chex.assert_equal_shape_suffix([alpha, logp_per_dim], 1)
    return jnp.sum(jax.lax.stop_gradient(alpha) * logp_per_dim, axis=-1)


def backup_alpha(alpha: chex.Array) -> jax.Array:
    """Scalar alpha for the critic's soft backup: the mean of the per-dimension alphas.

    The target is ``r + gamma * (1 - terminated) * (min_Q' - backup_alpha * logp_total')``
    (field report 000_3a6813a839e5647c.txt, Step 7b "Target Q backup"). With a ``[1]``
    alpha this is just that alpha. No gradient flows to alpha.

    Failure prevented: mixing per-dimension alphas into the critic target with the
    wrong shape (broadcasting a ``[D]`` alpha against ``[B, 1]`` Q-values).

    Args:
      alpha: ``[D]`` or ``[1]``.

    Returns:
      float scalar.
    """
    chex.assert_rank(alpha, 1)
    return jnp.mean(jax.lax.stop_gradient(alpha))
