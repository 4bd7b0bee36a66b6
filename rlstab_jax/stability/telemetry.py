"""Training-health telemetry: stability score, collapse detection, critic diagnostics.

Pure functions over arrays (jit/vmap-able) that turn eval returns and critic outputs
into scalars worth logging. Field reports 000_3a6813a839e5647c.txt (step 8 per-dim
alpha, step 10 stability score), 003_51fc783968b47744.txt (q1 == q2 check, metrics to
log), 004_6e987958da6da454.txt (explained variance, critic variance monitoring).
"""

from __future__ import annotations

from collections.abc import Sequence

import chex
import jax
import jax.numpy as jnp

__all__ = [
    "stability_score",
    "collapse_detector",
    "explained_variance",
    "identical_fraction",
    "q_stats",
    "per_dim_metrics",
]


def stability_score(eval_returns: chex.Array, eps: float = 1e-6) -> jax.Array:
    """Score in ``[0, 1]`` for how steady a window of eval returns is (1 = perfectly steady).

    Over the last axis (a window of ``W`` evals, oldest first), with
    ``scale = max(max_t |x_t|, eps)``::

        drawdown  = mean_t (cummax(x)_t - x_t) / scale     clipped to [0, 1]
        roughness = std_t(x_{t+1} - x_t) / scale           (population std; 0 if W = 1)
        score     = (1 - drawdown) / (1 + roughness)

    Drawdown from the running best catches collapse; roughness is a coefficient of
    variation of the eval-to-eval CHANGES rather than of the returns themselves, so a
    steady improvement (constant increments) scores 1 while oscillation scores low.
    Constant returns score 1; a drop from the best to 0 held for half the window scores
    at most 0.5.

    Failure prevented: hyper-parameter sweeps promoting trials that peak and then
    collapse; the score is logged every epoch, before a sweep prunes a trial (field
    report 000_3a6813a839e5647c.txt, Step 10 ``stability_score``).

    Args:
      eval_returns: ``[..., W]`` float, ``W >= 1``.
      eps: floor for the return scale (returns ~0 everywhere).

    Returns:
      ``[...]`` float32 scores in ``[0, 1]``.
    """
    chex.assert_type(eval_returns, float)
    x = eval_returns.astype(jnp.float32)
    scale = jnp.maximum(jnp.max(jnp.abs(x), axis=-1), eps)
    best = jax.lax.cummax(x, axis=x.ndim - 1)
    drawdown = jnp.clip(jnp.mean(best - x, axis=-1) / scale, 0.0, 1.0)
    if x.shape[-1] > 1:
        roughness = jnp.std(jnp.diff(x, axis=-1), axis=-1) / scale
    else:
        roughness = jnp.zeros_like(scale)
    return (1.0 - drawdown) / (1.0 + roughness)


def collapse_detector(
    eval_returns: chex.Array,
    drop_frac: float = 0.3,
    patience: int = 3,
    eps: float = 1e-8,
    baseline: float | chex.Array | None = None,
) -> jax.Array:
    """Flags seeds whose eval return stayed far below their best for ``patience`` evals.

    Eval ``t`` of a seed is "down" when ``x_t < best_t - drop_frac * max(|best_t|, eps)``
    with ``best_t = max_{s<=t} x_s`` (best so far, not the future best). Using
    ``|best|`` makes the rule work for negative returns (best -100, drop 0.3: down below
    -130). With a ``baseline`` (e.g. the random policy's return) the drop is measured
    against the improvement instead: down below ``best_t - drop_frac * (best_t - baseline)``.
    Use it when returns are negative and best is near 0 (Pendulum: best -50, random
    -1200 — a 30% drop of |best| would be -65, inside evaluation noise). A seed has collapsed if it was down for ``patience`` CONSECUTIVE evals at any
    point (a recovery afterwards does not clear the flag).

    Failure prevented: late collapses hidden by averaging over seeds or by looking only
    at the final return (field report 003_51fc783968b47744.txt §11, return collapse
    after good mid-run episodes; field report 002_f727d2bd93148014.txt, solved then
    collapsed to ~100 steps).

    Args:
      eval_returns: ``[S, E]`` (seeds x evals, oldest first).
      drop_frac: relative drop from the best that counts as down (may be traced).
      patience: consecutive down evals needed (may be traced).
      eps: floor for the scale.
      baseline: optional return of a policy that learned nothing (scalar or ``[S]``).

    Returns:
      ``bool[S]``.
    """
    chex.assert_rank(eval_returns, 2)
    chex.assert_type(eval_returns, float)
    x = eval_returns.astype(jnp.float32)
    best = jax.lax.cummax(x, axis=1)
    if baseline is None:
        scale = jnp.abs(best)
    else:
        scale = best - jnp.reshape(jnp.asarray(baseline, jnp.float32), (-1, 1))
    down = x < best - drop_frac * jnp.maximum(scale, eps)

    def step(carry, down_t):
        run, hit = carry
        run = jnp.where(down_t, run + 1, 0)
        return (run, hit | (run >= patience)), None

    init = (jnp.zeros(x.shape[0], jnp.int32), jnp.zeros(x.shape[0], bool))
    (_, hit), _ = jax.lax.scan(step, init, down.T)
    return hit


def explained_variance(pred: chex.Array, target: chex.Array) -> jax.Array:
    """``1 - Var[target - pred] / Var[target]`` over all elements.

    1 is a perfect critic, 0 no better than a constant, negative worse than a constant.
    Returns 0 when ``Var[target] == 0`` (undefined; keeps the metric finite under jit).

    Failure prevented: a critic that has stopped explaining returns while its loss looks
    fine (field report 004_6e987958da6da454.txt: "Track explained_variance — should
    improve from current negative values").

    Args:
      pred: value predictions, any shape.
      target: regression targets, same shape.

    Returns:
      float32 scalar.
    """
    chex.assert_equal_shape([pred, target])
    p, t = pred.astype(jnp.float32), target.astype(jnp.float32)
    var_t = jnp.var(t)
    return jnp.where(var_t > 0, 1.0 - jnp.var(t - p) / jnp.where(var_t > 0, var_t, 1.0), 0.0)


def identical_fraction(q1: chex.Array, q2: chex.Array, atol: float = 0.0) -> jax.Array:
    """Fraction of entries where two critics agree within ``atol`` (``|q1 - q2| <= atol``).

    Near 1 means the "twin" critics are not independent (shared weights or same
    initialisation), so the min over them does not curb over-estimation.

    Failure prevented: identical twin critics (field report 003_51fc783968b47744.txt §1:
    ``debug/q1`` and ``debug/q2`` identical; fixed by seeding ``q2`` with ``seed+1``).

    Args:
      q1: any shape.
      q2: same shape.
      atol: tolerance ``>= 0`` (0 = bit-identical).

    Returns:
      float32 scalar in ``[0, 1]``.
    """
    chex.assert_equal_shape([q1, q2])
    return jnp.mean((jnp.abs(q1 - q2) <= atol).astype(jnp.float32))


def q_stats(q: chex.Array, prefix: str = "critic") -> dict[str, jax.Array]:
    """Per-critic mean/std of Q-values plus ensemble spread, as slash-namespaced metrics.

    Keys: ``{prefix}/q{i}_mean``, ``{prefix}/q{i}_std`` for each critic ``i``,
    ``{prefix}/q_mean`` (all critics) and ``{prefix}/q_ensemble_std`` (batch mean of the
    std across critics; ~0 means the critics agree everywhere).

    Failure prevented: Q drift (``debug/q_a1`` drifting to -131) and twin critics
    collapsing onto each other going unnoticed (field report 003_51fc783968b47744.txt
    §1, §11, "Monitor ... debug/q_a1"; field report 004_6e987958da6da454.txt §5.5
    critic variance monitoring).

    Args:
      q: ``[N, B]`` (or ``[N, B, ...]``, statistics over all but the critic axis).
      prefix: metric namespace.

    Returns:
      dict of float32 scalars.
    """
    chex.assert_rank(q, {2, 3})
    q = q.astype(jnp.float32)
    metrics = {}
    for i in range(q.shape[0]):
        metrics[f"{prefix}/q{i}_mean"] = jnp.mean(q[i])
        metrics[f"{prefix}/q{i}_std"] = jnp.std(q[i])
    metrics[f"{prefix}/q_mean"] = jnp.mean(q)
    metrics[f"{prefix}/q_ensemble_std"] = jnp.mean(jnp.std(q, axis=0))
    return metrics


def per_dim_metrics(
    prefix: str, values: chex.Array, names: Sequence[str] | None = None
) -> dict[str, jax.Array]:
    """Splits a ``[D]`` vector into named scalar metrics ``{prefix}/{name}``.

    E.g. ``per_dim_metrics("alpha", alpha, ("steer", "gas", "brake"))`` gives
    ``alpha/steer``, ``alpha/gas``, ``alpha/brake`` (names default to ``"0", "1", ...``).

    Failure prevented: one action dimension's alpha/entropy collapsing unseen behind a
    mean (field report 000_3a6813a839e5647c.txt, Step 8 per-dim alpha diagnostics).

    Args:
      prefix: metric namespace.
      values: ``[D]``.
      names: ``D`` names (e.g. ``EnvSpec.action_names``) or ``None``.

    Returns:
      dict of scalars.

    Raises:
      ValueError: if ``len(names) != D``.
    """
    chex.assert_rank(values, 1)
    d = values.shape[0]
    names = tuple(str(i) for i in range(d)) if names is None else tuple(names)
    if len(names) != d:
        raise ValueError(f"per_dim_metrics: {len(names)} names for {d} values ({prefix})")
    return {f"{prefix}/{n}": values[i] for i, n in enumerate(names)}
