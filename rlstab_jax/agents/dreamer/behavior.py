"""Actor-critic in imagination: rollouts in the world model, lambda returns, both losses.

Field report 002 fixes composed here, each with its switch: lambda returns bootstrapping
``V(s_{t+1})`` (``bootstrap``), stop-gradient critic targets (``critic_target_stop_gradient``),
percentile return normalisation (``return_norm``), slow-critic regulariser (``slow_critic``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rlstab_jax.agents.dreamer.networks import ActorNet, CriticNet, WorldModel
from rlstab_jax.agents.dreamer.world_model import encode_action, sample_latent
from rlstab_jax.stability.categorical import unimix_logits
from rlstab_jax.stability.returns import lambda_returns
from rlstab_jax.stability.symlog import twohot_decode_logits, twohot_encode, twohot_loss

_LOG_2PI_E = float(jnp.log(2.0 * jnp.pi * jnp.e))


def policy_dist(out: jax.Array, hp: Any, discrete: bool) -> tuple[jax.Array, jax.Array | None]:
    """Actor head output -> (unimixed logits, None) or (mean in [-1, 1], std)."""
    if discrete:
        return unimix_logits(out, hp["unimix"]), None
    mean, raw_std = jnp.split(out, 2, -1)
    std = (hp["max_std"] - hp["min_std"]) * jax.nn.sigmoid(raw_std + 2.0) + hp["min_std"]
    return jnp.tanh(mean), std


def sample_action(key: jax.Array, out: jax.Array, hp: Any, discrete: bool,
                  deterministic: bool = False) -> jax.Array:
    """Action for the env/model: int index, or a float vector clipped to ``[-1, 1]``."""
    loc, std = policy_dist(out, hp, discrete)
    if discrete:
        a = jnp.argmax(loc, -1) if deterministic else jax.random.categorical(key, loc)
        return a.astype(jnp.int32)
    if deterministic:
        return loc
    return jnp.clip(loc + std * jax.random.normal(key, loc.shape), -1.0, 1.0)


def log_prob_entropy(out: jax.Array, action: jax.Array, hp: Any, discrete: bool
                     ) -> tuple[jax.Array, jax.Array]:
    """Log-probability of ``action`` and the policy entropy, both ``[...]``."""
    loc, std = policy_dist(out, hp, discrete)
    if discrete:
        logp_all = jax.nn.log_softmax(loc, -1)
        logp = jnp.take_along_axis(logp_all, action[..., None], -1)[..., 0]
        return logp, -jnp.sum(jnp.exp(logp_all) * logp_all, -1)
    logp = -0.5 * jnp.square((action - loc) / std) - jnp.log(std) - 0.5 * jnp.log(2 * jnp.pi)
    return jnp.sum(logp, -1), jnp.sum(jnp.log(std) + 0.5 * _LOG_2PI_E, -1)


def imagine(wm: WorldModel, wm_params: Any, actor: ActorNet, actor_params: Any, h: jax.Array,
            z: jax.Array, key: jax.Array, hp: Any, horizon: int, discrete: bool
            ) -> dict[str, jax.Array]:
    """Roll the prior forward ``horizon`` steps from start latents ``h [N, D], z [N, C*K]``.

    No gradient reaches the world model (it is frozen here; the actor learns by REINFORCE).
    Returns time-major ``feat [H + 1, N, F]`` and ``action [H, N, ...]``.
    """
    sg = jax.lax.stop_gradient
    wm_params, actor_params = sg(wm_params), sg(actor_params)

    def step(carry, k):
        h, z = carry
        k_act, k_z = jax.random.split(k)
        feat = jnp.concatenate([h, z], -1)
        a = sample_action(k_act, actor.apply(actor_params, feat), hp, discrete)
        g = wm.apply(wm_params, h, z, encode_action(a, discrete, wm.act_dim),
                     method=WorldModel.step)
        z_next, _ = sample_latent(k_z, wm.apply(wm_params, g, method=WorldModel.prior),
                                  hp["unimix"])
        return (g, sg(z_next)), (feat, a)

    (h_end, z_end), (feats, actions) = jax.lax.scan(step, (h, z), jax.random.split(key, horizon))
    last = jnp.concatenate([h_end, z_end], -1)[None]
    return {"feat": jnp.concatenate([feats, last], 0), "action": actions}


def imagined_rewards(wm: WorldModel, wm_params: Any, feat: jax.Array, bins: jax.Array
                     ) -> tuple[jax.Array, jax.Array]:
    """Rewards ``r_t`` and continue probabilities ``c_t`` of ``s_t -> s_{t+1}``, ``[H, N]``."""
    rew_logits, cont_logit = wm.apply(jax.lax.stop_gradient(wm_params), feat[1:],
                                      method=WorldModel.reward_cont)
    return twohot_decode_logits(rew_logits, bins), jax.nn.sigmoid(cont_logit)


def critic_loss(critic_params: Any, critic: CriticNet, feat: jax.Array, rewards: jax.Array,
                conts: jax.Array, weight: jax.Array, slow_values: jax.Array, hp: Any,
                bins: jax.Array, bootstrap: str, stop_gradient_targets: bool, slow_reg: bool
                ) -> tuple[jax.Array, dict]:
    """Twohot-symlog critic loss on lambda returns (+ slow-critic regulariser).

    With ``stop_gradient_targets=False`` (field report 002, "Missing stop_gradient on critic
    targets") the returns are recomputed from this critic's values inside the loss and the
    two-hot target stays differentiable, so the critic can move its own targets.
    """
    logits = critic.apply(critic_params, feat)  # [H + 1, N, bins]
    values = twohot_decode_logits(logits, bins)
    returns = lambda_returns(rewards, values, conts, hp["gamma"], hp["lam"], bootstrap)
    log_p = jax.nn.log_softmax(logits[:-1], -1)
    if stop_gradient_targets:
        per_step = twohot_loss(logits[:-1], jax.lax.stop_gradient(returns), bins)
    else:
        per_step = -jnp.sum(twohot_encode(returns, bins) * log_p, -1)
    if slow_reg:
        per_step = per_step + hp["slow_critic_reg"] * twohot_loss(logits[:-1], slow_values[:-1],
                                                                  bins)
    loss = jnp.mean(weight[:-1] * per_step)
    return loss, {"critic/loss": loss, "critic/value_mean": jnp.mean(values)}


def actor_loss(actor_params: Any, actor: ActorNet, feat: jax.Array, action: jax.Array,
               adv: jax.Array, weight: jax.Array, hp: Any, discrete: bool
               ) -> tuple[jax.Array, dict]:
    """REINFORCE on normalised advantages with an entropy bonus (``entropy_coef``)."""
    out = actor.apply(actor_params, jax.lax.stop_gradient(feat[:-1]))
    logp, ent = log_prob_entropy(out, action, hp, discrete)
    per_step = -(logp * jax.lax.stop_gradient(adv) + hp["entropy_coef"] * ent)
    loss = jnp.mean(weight[:-1] * per_step)
    return loss, {"actor/loss": loss, "actor/entropy": jnp.mean(ent)}


def replay_value_loss(critic_params: Any, critic: CriticNet, feat: jax.Array,
                      targets: jax.Array, weight: jax.Array, bins: jax.Array) -> jax.Array:
    """Twohot critic loss of replayed latents ``feat [N, F]`` towards real-data returns.

    ``targets [N]`` come from ``stability.returns.replay_lambda_returns`` (stop-gradient);
    ``weight [N]`` drops terminal latents and the sequence's last step (no return).
    """
    logits = critic.apply(critic_params, feat)
    per = twohot_loss(logits, jax.lax.stop_gradient(targets), bins)
    return jnp.sum(weight * per) / jnp.maximum(jnp.sum(weight), 1.0)

