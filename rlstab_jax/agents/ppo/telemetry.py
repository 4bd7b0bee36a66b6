"""PPO telemetry with field report 004's thresholds, and the per-head critical flags.

Per update: per-head ratio max/min/mean with warn (3) / critical (10) flags (§5.4, from
``multihead.per_head_ratio_stats``), per-head entropy against the report's warning/critical
table (§4), head usage (fraction of rollout steps where the head was causally active), the
"collapsed before use" flag (entropy below warning while usage < 10%), approx KL and clip
fraction (``clipped_surrogate``), explained variance, ``Q(s, op)`` variance across ops (§5.5),
advantage bias by op (§3: ``|mean| > std`` over > 100 steps), LSTM cell-state magnitude and
per-head gradient norms. ``critical/{head}`` is 1 when a head crossed a critical threshold in
this update (ratio > 10 or entropy below its critical level); ``critical/heads`` counts them.
The progress line names those heads (``rlstab_jax.train.progress``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rlstab_jax.agents.ppo.heads import MIN_USAGE, HeadLayout

ADV_BIAS_MIN_COUNT = 100  # report 004 §3: only ops seen more than 100 times are judged


def _reduce(key: str, v: jax.Array) -> jax.Array:
    if key.endswith(("/max", "/warn", "/critical")):
        return jnp.max(v)
    if key.endswith("/min"):
        return jnp.min(v)
    return jnp.mean(v.astype(jnp.float32))


def reduce_update_metrics(m: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Collapse ``[epochs, minibatches]`` metrics: max of maxima/flags, min of minima, mean."""
    return {k: _reduce(k, v) for k, v in m.items()}


def rollout_telemetry(layout: HeadLayout, op: jax.Array | None, adv: jax.Array,
                      update_metrics: dict[str, jax.Array], carry: Any,
                      causal: bool) -> dict[str, jax.Array]:
    """Rollout-level telemetry and the threshold flags (see the module docstring).

    Args:
      layout: the action heads.
      op: ``[T, N]`` op actions (None without an op head).
      adv: ``[T, N]`` raw (unnormalised) GAE advantages.
      update_metrics: the reduced update metrics (``entropy/{head}``, ``ratio/{head}/...``).
      carry: the stored LSTM carries ``(c, h)`` ``[T, N, H]`` or None.
      causal: causal masks in use (usage is then the op table's; else every head is used).
    """
    out: dict[str, jax.Array] = {}
    shape = adv.shape
    usage = layout.causal(op if layout.has_ops else None, shape)
    thresholds = layout.entropy_thresholds()
    n_critical = jnp.zeros((), jnp.float32)
    for h in layout.names:
        use = jnp.mean(usage[h].astype(jnp.float32))
        out[f"head_usage/{h}"] = use
        crit = update_metrics.get(f"ratio/{h}/critical", jnp.zeros(()))
        if h in thresholds:
            warn_t, crit_t = thresholds[h]
            ent = update_metrics[f"entropy/{h}"]
            out[f"entropy/{h}/warn"] = (ent < warn_t).astype(jnp.float32)
            out[f"entropy/{h}/critical"] = (ent < crit_t).astype(jnp.float32)
            out[f"entropy/{h}/collapsed_unused"] = ((ent < warn_t) & (use < MIN_USAGE)).astype(
                jnp.float32)
            crit = jnp.maximum(crit, out[f"entropy/{h}/critical"])
        out[f"critical/{h}"] = crit
        n_critical = n_critical + crit
    out["critical/heads"] = n_critical
    if layout.has_ops:
        a = adv.reshape(-1)
        o = op.reshape(-1)
        for i in range(layout.n_ops):
            m = (o == i).astype(jnp.float32)
            n = jnp.sum(m)
            mean = jnp.sum(a * m) / jnp.maximum(n, 1.0)
            std = jnp.sqrt(jnp.sum(m * (a - mean) ** 2) / jnp.maximum(n - 1.0, 1.0))
            name = layout.op_names[i] if layout.op_names else str(i)
            out[f"adv_by_op/{name}/mean"] = mean
            out[f"adv_by_op/{name}/count"] = n
            out[f"adv_by_op/{name}/bias"] = ((jnp.abs(mean) > std)
                                             & (n > ADV_BIAS_MIN_COUNT)).astype(jnp.float32)
    if carry is not None:
        c = carry[0]
        out["lstm/cell_abs_mean"] = jnp.mean(jnp.abs(c))
        out["lstm/cell_abs_max"] = jnp.max(jnp.abs(c))
    return out
