"""World-model pass over replayed sequences and its loss (field report 002).

Rows are stored per env step (``obs_t, action_t, reward_t, next_obs_t, terminated_t``), so the
model is written as one-step transitions: from the latent ``(h_t, z_t)`` of ``obs_t`` the GRU
gives ``g_t = GRU(h_t, z_t, a_t)``, the prior predicts ``z`` from ``g_t`` and the posterior reads
``next_obs_t``; decoder, reward and continue heads read ``[g_t, z'_t]`` and predict
``next_obs_t``, ``reward_t`` and ``1 - terminated_t``. Inside an episode ``next_obs_t`` is
``obs_{t+1}``, so ``(g_t, z'_t)`` *is* the latent of step ``t + 1``; where ``is_first[t + 1]``
the chain restarts from ``h = 0`` and the posterior of ``obs_{t+1}``, the same reset the acting
carry does (so terminal observations are still modelled: continue head targets 0 there).
"""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp
import optax

from rlstab_jax.agents.base import SeqBatch
from rlstab_jax.agents.dreamer.networks import WorldModel, decoder_target
from rlstab_jax.stability.categorical import straight_through_onehot, unimix_logits
from rlstab_jax.stability.kl import categorical_kl, kl_balance
from rlstab_jax.stability.overshoot import masked_mean, overshoot_valid, shift_time
from rlstab_jax.stability.replay_priority import sequence_priority
from rlstab_jax.stability.symlog import twohot_loss
from rlstab_jax.stability.termination import terminal_recall, terminal_weighted_bce


def sample_latent(key: jax.Array, logits: jax.Array, unimix: jax.Array
                  ) -> tuple[jax.Array, jax.Array]:
    """``(z [..., C*K] straight-through one-hot sample, unimixed logits [..., C, K])``."""
    mixed = unimix_logits(logits, unimix)
    z = straight_through_onehot(key, mixed)
    return z.reshape(z.shape[:-2] + (-1,)), mixed


def mode_latent(logits: jax.Array) -> jax.Array:
    """The most likely class of each group as a flat one-hot ``[..., C*K]`` (greedy acting)."""
    z = jax.nn.one_hot(jnp.argmax(logits, -1), logits.shape[-1], dtype=jnp.float32)
    return z.reshape(z.shape[:-2] + (-1,))


def encode_action(action: jax.Array, discrete: bool, act_dim: int) -> jax.Array:
    """Model input of an action: one-hot ``[..., A]`` (discrete) or the float vector."""
    if discrete:
        return jax.nn.one_hot(action, act_dim, dtype=jnp.float32)
    return action.astype(jnp.float32)


def categorical_entropy(logits: jax.Array) -> jax.Array:
    """Entropy of factorised categoricals ``[..., C, K]`` summed over groups -> ``[...]``."""
    logp = jax.nn.log_softmax(logits, -1)
    return -jnp.sum(jnp.exp(logp) * logp, axis=(-2, -1))


def observe(wm: WorldModel, params: Any, seq: SeqBatch, key: jax.Array, unimix: jax.Array,
            discrete: bool) -> dict[str, jax.Array]:
    """Posterior rollout over ``seq`` (leaves ``[B, T, ...]``), resetting where ``is_first``.

    Returns ``[B, T, ...]`` arrays: ``h`` (= ``g_t``), ``z`` (posterior sample of
    ``next_obs_t``), ``prior``/``post`` (unimixed logits ``[B, T, C, K]``).
    """
    B, T = seq.reward.shape
    chex.assert_shape(seq.is_first, (B, T))
    a = encode_action(seq.action, discrete, wm.act_dim)
    e_obs = wm.apply(params, seq.obs, method=WorldModel.encode)
    e_next = wm.apply(params, seq.next_obs, method=WorldModel.encode)
    k_first, k_scan = jax.random.split(key)
    h0 = jnp.zeros((B, wm.deter), jnp.float32)
    # Reset latents of every step at once (h = 0 and the posterior of obs_t): used where
    # is_first, one batched call instead of one per step.
    post0 = wm.apply(params, jnp.broadcast_to(h0[:, None], (B, T, wm.deter)), e_obs,
                     method=WorldModel.posterior)
    z0, _ = sample_latent(k_first, post0, unimix)

    def step(carry, xs):
        h_prev, z_prev = carry
        a_t, e_t, first, z0_t, k = xs
        h = jnp.where(first[:, None], 0.0, h_prev)
        z = jnp.where(first[:, None], z0_t, z_prev)
        g = wm.apply(params, h, z, a_t, method=WorldModel.step)
        prior = unimix_logits(wm.apply(params, g, method=WorldModel.prior), unimix)
        z_next, post = sample_latent(k, wm.apply(params, g, e_t, method=WorldModel.posterior),
                                     unimix)
        return (g, z_next), (g, z_next, prior, post)

    tm = lambda x: jnp.swapaxes(x, 0, 1)  # noqa: E731  [B, T] <-> [T, B]
    xs = (tm(a), tm(e_next), tm(seq.is_first), tm(z0), jax.random.split(k_scan, T))
    init = (h0, jnp.zeros((B, wm.groups * wm.classes), jnp.float32))
    _, (g, z, prior, post) = jax.lax.scan(step, init, xs)
    return {"h": tm(g), "z": tm(z), "prior": tm(prior), "post": tm(post)}


def open_loop_errors(wm: WorldModel, params: Any, out: dict[str, jax.Array], seq: SeqBatch,
                     key: jax.Array, unimix: jax.Array, discrete: bool, depth: int) -> jax.Array:
    """Decoder error of the prior rolled open-loop ``d = 1..depth`` steps from every posterior.

    From the posterior latent of row ``t`` (``out["h"]``, ``out["z"]``: that of
    ``next_obs_t``), the GRU and the prior (straight-through samples, as in imagination) step on
    with the replayed actions of rows ``t+1..t+d``, and the decoder's prediction is compared with
    ``next_obs_{t+d}``. Gradients reach the decoder, the prior, the GRU and the start posterior.

    Returns:
      ``[depth, B, T]`` squared errors summed per observation (the decoder term's units);
      entries without a real target are garbage, masked by ``stability.overshoot_valid``.
    """
    a = encode_action(seq.action, discrete, wm.act_dim)
    target = decoder_target(wm, seq.next_obs)
    obs_axes = tuple(range(2, target.ndim))

    def step(carry, xs):
        h, z = carry
        d, k = xs
        g = wm.apply(params, h, z, shift_time(a, d), method=WorldModel.step)
        z_next, _ = sample_latent(k, wm.apply(params, g, method=WorldModel.prior), unimix)
        pred = wm.apply(params, jnp.concatenate([g, z_next], -1), method=WorldModel.decode)
        err = jnp.sum(jnp.square(pred - shift_time(target, d)), axis=obs_axes)
        return (g, z_next), err

    depths = jnp.arange(1, depth + 1, dtype=jnp.int32)
    _, errors = jax.lax.scan(step, (out["h"], out["z"]), (depths, jax.random.split(key, depth)))
    return errors


def wm_loss(params: Any, wm: WorldModel, seq: SeqBatch, key: jax.Array, hp: Any, bins: jax.Array,
            discrete: bool, free_bits_mode: str, overshoot_depth: int = 0
            ) -> tuple[jax.Array, tuple[dict, dict]]:
    """DreamerV3 world-model loss on a sequence batch ``[B, T]``.

    ``beta_pred * (decoder + twohot reward + Bernoulli continue)`` plus KL balancing
    (``beta_dyn``, ``beta_rep``) with free bits in ``free_bits_mode`` (field report 002: the
    ``max`` form froze the prior; the straight-through form trains it below the threshold).
    The continue term weighs terminal steps ``cont_terminal_weight`` times
    (``stability.termination``; 1 = the plain mean).
    The decoder term is a squared error summed per observation: on ``symlog(obs)`` for
    vectors, on pixels scaled to [0, 1] for ``encoder=cnn`` (``networks.decoder_target``).
    With ``overshoot_depth`` ``D > 0`` (static) the loss adds ``overshoot_scale`` times the
    decoder error of the prior rolled open-loop 1..D steps (``open_loop_errors``, averaged over
    the valid targets of ``stability.overshoot_valid``); 0 (the off variant) builds none of it.

    Returns:
      ``(loss, (metrics, states, priority))``; ``states`` are the posterior latents (``h``,
      ``z``) the actor-critic imagines from; ``priority`` ``[B]`` is each sequence's replay
      priority (``stability.replay_priority.sequence_priority`` of the per-step decoder
      error + reward NLL + unweighted continue NLL + raw dynamics KL; no gradient).
    """
    if overshoot_depth:
        key, k_open = jax.random.split(key)  # split only when on: off keeps the old key stream
    out = observe(wm, params, seq, key, hp["unimix"], discrete)
    feat = jnp.concatenate([out["h"], out["z"]], -1)
    dec, rew_logits, cont_logit = wm.apply(params, feat, method=WorldModel.heads)
    target = decoder_target(wm, seq.next_obs)
    chex.assert_equal_shape([dec, target])
    # squared error summed over one observation (every vector entry / every pixel and channel),
    # averaged over the B x T steps
    dec_step = jnp.sum(jnp.square(dec - target), axis=tuple(range(2, dec.ndim)))
    dec_loss = jnp.mean(dec_step)
    rew_step = twohot_loss(rew_logits, seq.reward.astype(jnp.float32), bins)
    rew_loss = jnp.mean(rew_step)
    cont_target = 1.0 - seq.terminated.astype(jnp.float32)
    cont_loss = terminal_weighted_bce(cont_logit, seq.terminated, hp["cont_terminal_weight"])
    recall, n_term = terminal_recall(cont_logit, seq.terminated)
    kl_loss, kl_metrics = kl_balance(out["post"], out["prior"], hp["beta_dyn"], hp["beta_rep"],
                                     hp["free_bits"], free_bits_mode)
    loss = hp["beta_pred"] * (dec_loss + rew_loss + cont_loss) + kl_loss
    extra = {}
    if overshoot_depth:
        valid = overshoot_valid(seq.is_first, overshoot_depth)
        errors = open_loop_errors(wm, params, out, seq, k_open, hp["unimix"], discrete,
                                  overshoot_depth)
        open_loss = masked_mean(errors, valid)
        loss = loss + hp["overshoot_scale"] * open_loss
        extra = {"wm/loss/open_loop": open_loss,
                 "wm/open_loop_last": masked_mean(errors[-1], valid[-1])}
    sg = jax.lax.stop_gradient
    metrics = {
        "wm/loss": loss,
        "wm/loss/decoder": dec_loss,
        "wm/loss/reward": rew_loss,
        "wm/loss/continue": cont_loss,
        "wm/prior_entropy": jnp.mean(categorical_entropy(out["prior"])),
        "wm/post_entropy": jnp.mean(categorical_entropy(out["post"])),
        "wm/continue_acc": jnp.mean(((cont_logit > 0) == (cont_target > 0.5)).astype(jnp.float32)),
        "wm/terminal_recall": recall,
        "wm/terminals": n_term,
    }
    metrics.update(kl_metrics)
    metrics.update(extra)
    states = {"h": sg(out["h"]), "z": sg(out["z"])}
    # Per-step model error for prioritised replay; unused (and removed by XLA) otherwise.
    cont_step = optax.sigmoid_binary_cross_entropy(cont_logit.astype(jnp.float32), cont_target)
    kl_step = categorical_kl(sg(out["post"]), sg(out["prior"]))
    priority = sequence_priority(sg(dec_step + rew_step + cont_step) + kl_step)
    return loss, (jax.tree.map(sg, metrics), states, priority)
