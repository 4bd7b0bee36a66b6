"""SAC-family losses as pure functions: soft backup, critic loss, actor loss, alpha loss.

The maths lives in ``rlstab_jax.stability``; this file only assembles it:

* backup: ``td_target(r, min_Q' - mean(alpha) * logp_total', terminated, batch.discount)``
  (field report 000 Step 7b) with the REDQ subset min or TQC truncated pooled quantiles
  (field report 003 §1-2, §5), then ``clip_backup`` (§11B).
* policy loss: ``mean_b(sum_d alpha_d * logp_{b,d} - Q(s, a~pi))`` (field report 000 Step 7b).
* alpha loss: per-dimension with a per-dimension target (Fix C); scalar form as the off
  variant, with the scalar stored tied across the fixed ``[D]`` ``log_alpha``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rlstab_jax.agents.base import Batch
from rlstab_jax.agents.sac.config import SACConfig
from rlstab_jax.agents.sac.networks import SACNetworks
from rlstab_jax.stability import critic as critic_fns
from rlstab_jax.stability import entropy, policy

HParams = dict[str, jax.Array]  # pragma: no mutate (annotation-only alias)
Metrics = dict[str, jax.Array]  # pragma: no mutate (annotation-only alias)


def current_alpha(cfg: SACConfig, log_alpha: jax.Array, hp: HParams) -> jax.Array:
    """Alpha ``[D]``: ``exp(log_alpha)`` when learned, ``init_alpha`` when fixed (report 003 A)."""
    return entropy.alpha_values(log_alpha, None if cfg.learn_alpha else hp["init_alpha"])


def target_entropy(act_dim: int, hp: HParams) -> jax.Array:
    """Per-dim target entropy ``[D]``: ``-1`` each if ``target_entropy_total`` is NaN, else
    ``target_entropy_total / D`` (traced; ``target_entropy_per_dim(D, 1) = 1/D`` scaled)."""
    total = hp["target_entropy_total"]
    return jnp.where(jnp.isnan(total), entropy.target_entropy_per_dim(act_dim),
                     entropy.target_entropy_per_dim(act_dim, 1.0) * total)


def soft_backup(cfg: SACConfig, next_q: jax.Array, next_logp_total: jax.Array,
                alpha: jax.Array, batch: Batch, hp: HParams,
                key: jax.Array | None) -> jax.Array:
    """Critic regression target from target-critic outputs at ``(next_obs, a' ~ pi)``.

    Args:
      cfg: static config (``critic_kind``, ``critic_subset``, ``drop_per_critic``).
      next_q: ``[N, B]`` (scalar critics) or ``[N, B, M]`` (TQC quantiles).
      next_logp_total: ``log pi(a'|s')`` summed over action dims ``[B]``.
      alpha: per-dim alpha ``[D]``; the backup uses its mean (field report 000 Step 7b).
      batch: rows with ``reward``, ``terminated`` and ``discount`` (``gamma**k`` for n-step).
      hp: hyper-parameters (``backup_clip``).
      key: PRNG key for the REDQ subset (unused otherwise).

    Returns:
      ``[B]`` or ``[B, N*(M - drop)]`` targets, gradient stopped and clipped.
    """
    a = entropy.backup_alpha(alpha)
    if cfg.critic_kind == "tqc":
        atoms = critic_fns.tqc_target_quantiles(next_q, cfg.drop_per_critic)
        next_value = atoms - a * next_logp_total[:, None]
    else:
        subset = cfg.critic_subset if 0 < cfg.critic_subset < cfg.n_critics else None
        next_value = critic_fns.ensemble_min(next_q, key if subset else None, subset)
        next_value = next_value - a * next_logp_total
    # Per-row discount gamma**k (n-step); expanded over TQC atoms.
    discount = jnp.reshape(batch.discount, batch.discount.shape + (1,) * (next_value.ndim - 1))
    target = critic_fns.td_target(batch.reward, next_value, batch.terminated, discount)
    return jax.lax.stop_gradient(critic_fns.clip_backup(target, hp["backup_clip"]))


def critic_regression_loss(cfg: SACConfig, q: jax.Array, target: jax.Array) -> jax.Array:
    """``0.5 * sum_n mean_b (Q_n - y)^2`` (scalar critics) or the mean quantile Huber loss."""
    if cfg.critic_kind == "tqc":
        per_critic = jax.vmap(critic_fns.quantile_huber_loss, in_axes=(0, None))(q, target)
        return jnp.mean(per_critic)
    return 0.5 * jnp.sum(jnp.mean(jnp.square(q - target[None]), axis=1))


def compute_target(nets: SACNetworks, actor_params: Any, shared_enc: Any,
                   target_critic_params: Any, alpha: jax.Array, batch: Batch, key: jax.Array,
                   hp: HParams) -> tuple[jax.Array, jax.Array]:
    """Sample ``a' ~ pi(.|next_obs)`` with the online actor and build the soft backup.

    Returns:
      ``(target, next_logp)``: the backup (see ``soft_backup``) and the summed next-state
      log-prob ``log pi(a'|s') [B]`` that entered it (logged: report 003 watches the backup).
    """
    k_pi, k_drop, k_sub = jax.random.split(key, 3)
    mean, log_std = nets.actor_dist(actor_params, shared_enc, batch.next_obs, hp)
    next_action, next_logp, _ = policy.squashed_gaussian_sample(k_pi, mean, log_std)
    next_q = nets.q_values(target_critic_params, batch.next_obs, next_action, k_drop)
    return soft_backup(nets.cfg, next_q, next_logp, alpha, batch, hp, k_sub), next_logp


def critic_loss(critic_params: Any, nets: SACNetworks, batch: Batch, target: jax.Array,
                dropout_key: jax.Array) -> tuple[jax.Array, tuple[jax.Array, Any]]:
    """Critic loss at ``(obs, action)``.

    Returns:
      ``(loss, (q [N, B(, M)], (feats, z)))``: q for telemetry, and the critic encoder's
      features of ``batch.obs`` (``nets.encode``) for ``actor_features="reuse"``; XLA drops them
      when unused.
    """
    feats, z = nets.encode(critic_params["encoder"], batch.obs)
    q = nets.q_from_features(critic_params, feats, batch.action, dropout_key)
    loss = critic_regression_loss(nets.cfg, q, target)
    return loss, (q, (feats, z))


def actor_loss(actor_params: Any, shared_enc: Any, nets: SACNetworks, critic_params: Any,
               obs: jax.Array, alpha: jax.Array, key: jax.Array,
               hp: HParams, features: Any = None) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Policy loss ``mean_b(sum_d alpha_d logp_{b,d} - Q(s_b, a_b))`` with ``a ~ pi(.|s)``.

    Differentiable in ``actor_params`` and in the shared encoder ``shared_enc`` (``{}`` when
    the encoder is not shared). With ``detach_actor_features`` the shared-encoder gradient is
    exactly zero (field report 001 §4-5); the Q path always reads gradient-stopped critic
    features, so the critic's encoder is trained by the critic loss alone (plus, in the
    non-detached off variant, the actor's own feature path).

    ``features``: ``(feats, z)`` of ``obs`` already computed by the critic step's shared
    encoder (``actor_features="reuse"``; one step older than the encoder after that step).
    They are used gradient-stopped for both the actor and the Q path, and ``obs`` is not
    encoded again. Only valid with ``shared_encoder`` and ``detach_actor_features``.

    Returns:
      ``(loss, aux)`` with ``aux = {"logp_per_dim" [B, D], "log_std" [B, D], "q_pi" [B]}``.
    """
    cfg = nets.cfg
    k_pi, k_drop = jax.random.split(key)
    if features is not None:  # SACConfig.validate: only with a shared, detached encoder
        feats, z = jax.lax.stop_gradient(features)
        q_feats = feats
    elif cfg.shared_encoder:  # encode once; the Q path never trains the encoder here
        feats, z = nets.encode(shared_enc, obs)
        q_feats = jax.lax.stop_gradient(feats)
        if cfg.detach_actor_features:  # field report 001 §4-5
            feats, z = jax.lax.stop_gradient((feats, z))
    else:
        feats, z = nets.actor_features(actor_params, shared_enc, obs)
        q_feats = nets.encode(critic_params["encoder"], obs)[0]
    mean, log_std = nets.actor_from_features(actor_params, feats, z, hp)
    action, _, logp_per_dim = policy.squashed_gaussian_sample(k_pi, mean, log_std)
    q = nets.q_from_features(jax.lax.stop_gradient(critic_params), q_feats, action, k_drop)
    if cfg.critic_kind == "tqc":
        q_pi = jnp.mean(q, axis=(0, 2))
    elif cfg.actor_q == "mean":
        q_pi = jnp.mean(q, axis=0)
    else:
        q_pi = jnp.min(q, axis=0)
    loss = jnp.mean(entropy.policy_entropy_cost(alpha, logp_per_dim) - q_pi)
    return loss, {"logp_per_dim": logp_per_dim, "log_std": log_std, "q_pi": q_pi}


def alpha_objective(log_alpha: jax.Array, cfg: SACConfig, logp_per_dim: jax.Array,
                    target_per_dim: jax.Array) -> tuple[jax.Array, Metrics]:
    """Alpha loss on the fixed ``[D]`` ``log_alpha``: per-dim (Fix C) or scalar (off variant).

    In scalar mode only ``log_alpha[0]`` enters the loss (the stored vector is kept tied by
    ``tie_scalar_alpha`` after each step), so the state's structure never depends on
    ``alpha_mode``.
    """
    if cfg.alpha_mode == "per_dim":
        return entropy.alpha_loss(log_alpha, logp_per_dim, target_per_dim, per_dim=True)
    return entropy.alpha_loss(log_alpha[:1], logp_per_dim, target_per_dim, per_dim=False)


def tie_scalar_alpha(cfg: SACConfig, log_alpha: jax.Array) -> jax.Array:
    """Scalar mode: broadcast ``log_alpha[0]`` to all dims; per-dim mode: unchanged."""
    if cfg.alpha_mode == "per_dim":
        return log_alpha
    return jnp.broadcast_to(log_alpha[:1], log_alpha.shape)
