"""Factored (multi-head) discrete PPO: masking, causal credit, per-head telemetry.

From field report 004_6e987958da6da454.txt ("Multi-Head PPO Validation Checklist"): an
``op`` head picks the operation and the other heads (slot, blueprint, ...) only matter
for some ops. A head that does not matter for the sampled op records the noop action 0,
gets exactly zero advantage, still gets the entropy gradient, and must have a finite
log-prob. Per-head dicts map head name -> ``[B]`` arrays; iteration is in sorted key order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.config.errors import ConfigError, did_you_mean

# Large but finite: log-probs of invalid actions stay finite (no -inf, so no 0 * inf = NaN
# in masked sums or entropies) and a sum over 8 heads of them cannot overflow float32.
MASK_LOGIT = -1e9
ENTROPY_MODES = ("all", "active_only")


def _check_same_heads(what: str, a: Mapping, b: Mapping) -> None:
    if set(a) != set(b):
        odd = sorted(set(a) ^ set(b))
        raise ConfigError(f"{what}: head names differ: {sorted(a)} vs {sorted(b)} "
                          f"(mismatch {odd}){did_you_mean(odd[0], (set(a) | set(b)) - {odd[0]})}")


def _masked_log_softmax(logits: jax.Array, action_mask: jax.Array) -> jax.Array:
    chex.assert_equal_shape([logits, action_mask])
    chex.assert_type(logits, float)
    masked = jnp.where(action_mask.astype(bool), logits, jnp.asarray(MASK_LOGIT, logits.dtype))
    return jax.nn.log_softmax(masked, axis=-1)


def masked_categorical_log_prob(logits: jax.Array, action: jax.Array,
                                action_mask: jax.Array) -> jax.Array:
    """Log-prob of ``action`` under ``softmax`` restricted to the valid actions.

    Invalid actions get logit ``MASK_LOGIT = -1e9`` (not ``-inf``), so log-probs are always
    finite: a head inactive for this op records noop index 0 and its log-prob is finite
    even if 0 is masked, and a fully masked row is uniform rather than NaN (field report
    004_6e987958da6da454.txt, §5.1 "Log Probability Computation - Finite Check"). Use the
    action masks STORED at rollout time (§5.3): an action invalid under the update's mask
    scores about -1e9, which shows up as a ratio explosion in :func:`per_head_ratio_stats`.

    Args:
      logits: ``[..., A]`` head logits.
      action: ``[...]`` integer actions.
      action_mask: ``[..., A]`` bool, True = valid.

    Returns:
      ``[...]`` finite log-probabilities.
    """
    chex.assert_type(action, int)
    chex.assert_rank(logits, action.ndim + 1)
    log_probs = _masked_log_softmax(logits, action_mask)
    return jnp.take_along_axis(log_probs, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def masked_categorical_entropy(logits: jax.Array, action_mask: jax.Array) -> jax.Array:
    """Entropy of the masked categorical; finite, and 0 from masked actions.

    Computed for every head on every row, active or not (field report
    004_6e987958da6da454.txt, §5.2 "Entropy Gradient to Masked Heads").

    Args:
      logits: ``[..., A]`` head logits.
      action_mask: ``[..., A]`` bool, True = valid.

    Returns:
      ``[...]`` entropies in nats (``log A`` for a fully masked row).
    """
    log_probs = _masked_log_softmax(logits, action_mask)
    return -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)


def make_op_head_table(op_names: Sequence[str], head_names: Sequence[str],
                       heads_by_op: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Build the static ``[n_ops, n_heads]`` bool table "head h matters for op o".

    Explicit per-op lists instead of implicit rules like ``~is_wait`` (field report
    004_6e987958da6da454.txt, §2 "ADVANCE Op Gradient Flow Test": ADVANCE leaked advantage
    into style/alpha heads through ``~is_wait``). Ops missing from ``heads_by_op`` use no
    head; include the op head itself in every list where it should learn.

    Args:
      op_names: op names in op-index order.
      head_names: head names in table-column order.
      heads_by_op: ``{op_name: [head_name, ...]}``.

    Returns:
      ``np.ndarray`` bool ``[n_ops, n_heads]``.

    Raises:
      ConfigError: for an unknown op or head name.
    """
    table = np.zeros((len(op_names), len(head_names)), dtype=bool)
    for op, heads in heads_by_op.items():
        if op not in op_names:
            raise ConfigError(f"heads_by_op: unknown op {op!r}{did_you_mean(op, op_names)}")
        for head in heads:
            if head not in head_names:
                raise ConfigError(
                    f"heads_by_op[{op!r}]: unknown head {head!r}{did_you_mean(head, head_names)}")
            table[list(op_names).index(op), list(head_names).index(head)] = True
    return table


def causal_head_masks(op: jax.Array, op_to_heads: np.ndarray | jax.Array,
                      head_names: Sequence[str]) -> dict[str, jax.Array]:
    """Per-head "this head mattered for the sampled op" masks.

    Field report 004_6e987958da6da454.txt, §1 "Per-Head Advantage Masking Verification" and
    §2 (blueprint only on GERMINATE, slot on every op but WAIT, ...).

    Args:
      op: ``[B]`` integer op indices.
      op_to_heads: ``[n_ops, n_heads]`` bool table (e.g. :func:`make_op_head_table`).
      head_names: names of the table columns.

    Returns:
      ``{head: [B] bool}``.

    Raises:
      ConfigError: if the table width differs from ``len(head_names)``.
    """
    table = jnp.asarray(op_to_heads, dtype=bool)
    if table.ndim != 2 or table.shape[1] != len(head_names):
        raise ConfigError(f"op_to_heads shape {table.shape} != [n_ops, {len(head_names)}] "
                          f"for heads {list(head_names)}")
    chex.assert_type(op, int)
    rows = table[op]
    return {name: rows[..., i] for i, name in enumerate(head_names)}


def noop_inactive_actions(actions: Mapping[str, jax.Array],
                          masks: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Record the noop index 0 for every head that was inactive for the sampled op.

    Keeps stored actions of irrelevant heads stable instead of "flapping around" (field
    report 004_6e987958da6da454.txt, §1 "test_blueprint_noop_during_non_germinate").

    Args:
      actions: ``{head: [B] int}`` sampled actions.
      masks: ``{head: [B] bool}`` from :func:`causal_head_masks`.

    Returns:
      ``{head: [B] int}`` with 0 wherever the head's mask is False.
    """
    _check_same_heads("noop_inactive_actions(actions, masks)", actions, masks)
    return {h: jnp.where(masks[h].astype(bool), a, jnp.zeros_like(a)) for h, a in actions.items()}


def per_head_advantages(adv: jax.Array, masks: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Advantage per head: ``adv`` where the head was active, exactly 0 elsewhere.

    Stops heads that did not influence the outcome from being pushed by it (field report
    004_6e987958da6da454.txt, §1: under WAIT only the op head gets advantage; §2: under
    ADVANCE only op and slot).

    Args:
      adv: ``[B]`` advantages.
      masks: ``{head: [B] bool}`` from :func:`causal_head_masks`.

    Returns:
      ``{head: [B]}``.
    """
    out = {}
    for head, mask in masks.items():
        chex.assert_equal_shape([adv, mask])
        out[head] = jnp.where(mask.astype(bool), adv, jnp.zeros_like(adv))
    return out


def joint_log_ratio(new_logp: Mapping[str, jax.Array], old_logp: Mapping[str, jax.Array],
                    head_masks: Mapping[str, jax.Array]) -> jax.Array:
    """``log pi_new(a|s) - log pi_old(a|s)`` of the factored policy, active heads only.

    The joint ratio is the product of the active heads' ratios; summing in log space is
    stable (field report 004_6e987958da6da454.txt, §5.4 "Joint Ratio Clipping Test" and
    "per-head decomposition"). Inactive heads' noop log-ratios are excluded with
    ``where`` (finite inputs, so no NaN gradient leaks).

    Args:
      new_logp: ``{head: [B]}`` log-probs under the current policy.
      old_logp: ``{head: [B]}`` log-probs recorded at rollout.
      head_masks: ``{head: [B] bool}`` causal masks (all True to include every head).

    Returns:
      ``[B]`` joint log-ratio.

    Raises:
      ConfigError: if the three dicts do not have the same heads.
    """
    _check_same_heads("joint_log_ratio(new_logp, old_logp)", new_logp, old_logp)
    _check_same_heads("joint_log_ratio(new_logp, head_masks)", new_logp, head_masks)
    total = 0.0
    for head in sorted(new_logp):
        chex.assert_equal_shape([new_logp[head], old_logp[head], head_masks[head]])
        diff = new_logp[head] - old_logp[head]
        total = total + jnp.where(head_masks[head].astype(bool), diff, jnp.zeros_like(diff))
    return total


def clipped_surrogate(log_ratio: jax.Array, adv: jax.Array,
                      clip_eps: float | jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """PPO clipped policy loss ``-mean(min(r A, clip(r, 1-eps, 1+eps) A))``, ``r = exp(log_ratio)``.

    Applied to the JOINT ratio, which can leave the clip range while every head looks
    healthy (1.15 per head over 8 heads is 3.06; field report 004_6e987958da6da454.txt,
    §5.4 "Joint Ratio Clipping Test"); the clipped branch keeps the loss finite and bounded
    for positive advantages.

    Args:
      log_ratio: ``[B]`` log-ratios (e.g. :func:`joint_log_ratio`).
      adv: ``[B]`` advantages (normalised by the caller if desired).
      clip_eps: clip range epsilon (e.g. 0.2).

    Returns:
      ``(loss, metrics)`` with ``ppo/policy_loss``, ``ppo/clip_frac`` (fraction with
      ``|r - 1| > eps``), ``ppo/approx_kl`` (``mean((r - 1) - log r)``), ``ppo/ratio_mean``,
      ``ppo/ratio_max`` and ``ppo/ratio_min``.
    """
    chex.assert_equal_shape([log_ratio, adv])
    chex.assert_type([log_ratio, adv], float)
    ratio = jnp.exp(log_ratio)
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    loss = -jnp.mean(jnp.minimum(ratio * adv, clipped * adv))
    metrics = {
        "ppo/policy_loss": loss,
        "ppo/clip_frac": jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32)),
        "ppo/approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
        "ppo/ratio_mean": jnp.mean(ratio),
        "ppo/ratio_max": jnp.max(ratio),
        "ppo/ratio_min": jnp.min(ratio),
    }
    return loss, jax.tree.map(jax.lax.stop_gradient, metrics)


def per_head_entropy_bonus(
    entropies: Mapping[str, jax.Array],
    coefs: Mapping[str, float | jax.Array],
    mode: str = "all",
    head_masks: Mapping[str, jax.Array] | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Weighted entropy bonus ``sum_h coef_h * mean_B(H_h)``; SUBTRACT it from the loss.

    ``mode="all"`` (the fix) averages every head's entropy over every row, so heads that
    were causally inactive still receive the entropy gradient and do not drift (field
    report 004_6e987958da6da454.txt, §5.2 "Entropy Gradient to Masked Heads";
    "Differential Entropy Coefficients": op 1.0, blueprint/tempo 1.3, ...).
    ``mode="active_only"`` averages each head over its active rows only, the form the
    report marks "Wrong": a head with no active row contributes 0 and gets no gradient.
    Heads missing from ``coefs`` use 1.0.

    Args:
      entropies: ``{head: [B]}`` from :func:`masked_categorical_entropy`.
      coefs: ``{head: coefficient}`` (relative; multiply the bonus by a base coefficient).
      mode: ``"all"`` or ``"active_only"`` (static).
      head_masks: ``{head: [B] bool}``, required for ``"active_only"``.

    Returns:
      ``(bonus, metrics)``: scalar bonus and ``entropy/{head}`` (mean over all rows) plus
      ``entropy/bonus``.

    Raises:
      ConfigError: for an unknown mode, unknown coefficient heads or missing masks.
    """
    if mode not in ENTROPY_MODES:
        raise ConfigError(f"entropy mode={mode!r} is not one of {ENTROPY_MODES}")
    for head in coefs:
        if head not in entropies:
            hint = did_you_mean(head, entropies)
            raise ConfigError(f"entropy coef for unknown head {head!r}{hint}")
    if mode == "active_only":
        if head_masks is None:
            raise ConfigError("per_head_entropy_bonus(mode='active_only') needs head_masks")
        _check_same_heads("per_head_entropy_bonus(entropies, head_masks)", entropies, head_masks)
    bonus = 0.0
    metrics = {}
    for head in sorted(entropies):
        ent = entropies[head]
        chex.assert_rank(ent, 1)
        if mode == "all":
            term = jnp.mean(ent)
        else:
            mask = head_masks[head].astype(ent.dtype)
            term = jnp.sum(ent * mask) / jnp.maximum(jnp.sum(mask), 1.0)
        bonus = bonus + coefs.get(head, 1.0) * term
        metrics[f"entropy/{head}"] = jax.lax.stop_gradient(jnp.mean(ent))
    metrics["entropy/bonus"] = jax.lax.stop_gradient(bonus)
    return bonus, metrics


def per_head_ratio_stats(new_logp: Mapping[str, jax.Array], old_logp: Mapping[str, jax.Array],
                         masks: Mapping[str, jax.Array], warn: float = 3.0,
                         critical: float = 10.0) -> dict[str, jax.Array]:
    """Per-head and joint probability-ratio telemetry over active rows.

    A single exploded head (ratio 10 times seven heads at 0.9 gives joint ~4.8) hides in
    the joint ratio; log heads separately (field report 004_6e987958da6da454.txt, §5.4
    "Per-Head Ratio Explosion Detection", thresholds 3 and 10).

    Args:
      new_logp: ``{head: [B]}`` current log-probs.
      old_logp: ``{head: [B]}`` rollout log-probs.
      masks: ``{head: [B] bool}`` causal masks; stats use active rows only.
      warn: ratio above which ``/warn`` is 1.
      critical: ratio above which ``/critical`` is 1.

    Returns:
      ``ratio/{head}/{max,min,mean,active_frac,warn,critical}`` and the same for
      ``ratio/joint`` (all rows), float32 scalars. A head with no active row reports
      ratio 1. No gradient flows.
    """
    _check_same_heads("per_head_ratio_stats(new_logp, old_logp)", new_logp, old_logp)
    _check_same_heads("per_head_ratio_stats(new_logp, masks)", new_logp, masks)
    new_logp, old_logp = jax.lax.stop_gradient((dict(new_logp), dict(old_logp)))

    def stats(name, log_ratio, mask):
        ratio = jnp.exp(log_ratio)
        count = jnp.sum(mask.astype(jnp.float32))
        any_active = count > 0
        rmax = jnp.where(any_active, jnp.max(jnp.where(mask, ratio, -jnp.inf)), 1.0)
        rmin = jnp.where(any_active, jnp.min(jnp.where(mask, ratio, jnp.inf)), 1.0)
        rsum = jnp.sum(jnp.where(mask, ratio, 0.0))
        rmean = jnp.where(any_active, rsum / jnp.maximum(count, 1.0), 1.0)
        return {f"ratio/{name}/max": rmax, f"ratio/{name}/min": rmin, f"ratio/{name}/mean": rmean,
                f"ratio/{name}/active_frac": count / mask.size,
                f"ratio/{name}/warn": (rmax > warn).astype(jnp.float32),
                f"ratio/{name}/critical": (rmax > critical).astype(jnp.float32)}

    out = {}
    for head in sorted(new_logp):
        mask = masks[head].astype(bool)
        out.update(stats(head, new_logp[head] - old_logp[head], mask))
    joint = joint_log_ratio(new_logp, old_logp, masks)
    out.update(stats("joint", joint, jnp.ones(joint.shape, bool)))
    return out


def q_op_stats(q_s_op: jax.Array) -> dict[str, jax.Array]:
    """Does the op-conditioned critic ``Q(s, op)`` use the op at all?

    Field report 004_6e987958da6da454.txt, §5.5 "Q(s,op) Variance Monitoring": a critic that
    ignores the op collapses to ``V(s)``; the report warns below a variance of 0.01 or a
    spread of 0.1.

    Args:
      q_s_op: ``[B, n_ops]`` ``Q(s_b, op)`` for every op (n_ops >= 2).

    Returns:
      ``critic/q_variance_across_ops``: mean over states of the unbiased (ddof=1, as the
      report's ``torch.var``) variance across ops; ``critic/q_op_spread``: max minus min
      over ops of the per-op mean over states. No gradient flows.
    """
    chex.assert_rank(q_s_op, 2)
    chex.assert_type(q_s_op, float)
    q = jax.lax.stop_gradient(q_s_op)
    per_op_mean = jnp.mean(q, axis=0)
    return {"critic/q_variance_across_ops": jnp.mean(jnp.var(q, axis=-1, ddof=1)),
            "critic/q_op_spread": jnp.max(per_op_mean) - jnp.min(per_op_mean)}
