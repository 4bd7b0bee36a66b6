"""SAC-family metrics with the field reports' own keys (report 000 Step 8, report 003 §11).

Critic side: ``q/mean/<i>``, ``q/std/<i>`` (per critic at the REPLAYED actions; TQC: mean
over quantiles), ``critic/next_logp`` (mean ``log pi(a'|s')`` summed over dims, the log-prob
the soft backup subtracts),
``q/ensemble_std``, ``critic/backup_mean``, ``critic/backup_std``, ``reward/mean``,
``critic/loss``, ``critic/grad_norm``, ``critic/identical_frac`` (report 003 §1: q1 == q2),
``demo/fraction_in_batch`` (report 003 §9).
Actor side: ``q_pi/mean``, ``q_pi/std`` (Q at the CURRENT policy's action ``a ~ pi(.|s)``, as
the policy loss sees it: report 003's ``debug/q_a1``, its main drift signal), ``actor/loss``,
``actor/grad_norm``, ``alpha/loss``, ``log_std/mean/<name>``,
``log_std/min/<name>``, ``log_std/frac_at_floor``, ``entropy/<name>`` (sample estimate
``-mean_b logp_{b,d}``, squashed). Alpha after the call: ``alpha/<name>``, ``alpha/mean``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rlstab_jax.agents.base import Batch
from rlstab_jax.stability import telemetry

# A log-std within this fraction of the [min, max] range of the floor counts as "at the floor".
FLOOR_TOL = 0.01


def critic_metrics(q: jax.Array, target: jax.Array, loss: jax.Array, grad_norm: jax.Array,
                   batch: Batch, next_logp: jax.Array) -> dict[str, jax.Array]:
    """Metrics of one critic update.

    Args:
      q: online critic outputs at ``(obs, action)``: ``[N, B]`` or ``[N, B, M]``.
      target: backup ``[B]`` or ``[B, K]``.
      loss, grad_norm: critic loss and pre-clip gradient norm.
      batch: the update's rows (``reward``, ``is_demo``).
      next_logp: ``log pi(a'|s')`` ``[B]`` used in the backup.
    """
    q_values = q if q.ndim == 2 else jnp.mean(q, axis=-1)
    stats = telemetry.q_stats(jax.lax.stop_gradient(q_values), prefix="q")
    out: dict[str, jax.Array] = {}
    for i in range(q_values.shape[0]):
        out[f"q/mean/{i}"] = stats[f"q/q{i}_mean"]
        out[f"q/std/{i}"] = stats[f"q/q{i}_std"]
    out["q/ensemble_std"] = stats["q/q_ensemble_std"]
    identical = (telemetry.identical_fraction(q_values[0], q_values[1])
                 if q_values.shape[0] > 1 else jnp.ones((), jnp.float32))
    out.update({
        "critic/loss": loss,
        "critic/grad_norm": grad_norm,
        "critic/backup_mean": jnp.mean(target),
        "critic/backup_std": jnp.std(target),
        "critic/next_logp": jnp.mean(next_logp),
        "critic/identical_frac": identical,
        "reward/mean": jnp.mean(batch.reward),
        "demo/fraction_in_batch": jnp.mean(batch.is_demo.astype(jnp.float32)),
    })
    return out


def alpha_metrics(names: tuple[str, ...], alpha: jax.Array) -> dict[str, jax.Array]:
    """``alpha/<name>`` per action dim and ``alpha/mean`` (field report 000 Step 8)."""
    out = telemetry.per_dim_metrics("alpha", alpha, names)
    out["alpha/mean"] = jnp.mean(alpha)
    return out


def actor_metrics(names: tuple[str, ...], loss: jax.Array, alpha_loss: jax.Array,
                  grad_norm: jax.Array, aux: dict[str, Any],
                  hp: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Metrics of one actor/alpha update (per action dim named by ``names``)."""
    log_std, logp = aux["log_std"], aux["logp_per_dim"]
    floor = hp["log_std_min"] + FLOOR_TOL * (hp["log_std_max"] - hp["log_std_min"])
    q_pi = jax.lax.stop_gradient(aux["q_pi"])
    out = {
        "q_pi/mean": jnp.mean(q_pi),
        "q_pi/std": jnp.std(q_pi),
        "actor/loss": loss,
        "actor/grad_norm": grad_norm,
        "alpha/loss": alpha_loss,
        "log_std/frac_at_floor": jnp.mean((log_std <= floor).astype(jnp.float32)),
    }
    out.update(telemetry.per_dim_metrics("log_std/mean", jnp.mean(log_std, axis=0), names))
    out.update(telemetry.per_dim_metrics("log_std/min", jnp.min(log_std, axis=0), names))
    out.update(telemetry.per_dim_metrics("entropy", -jnp.mean(logp, axis=0), names))
    return out
