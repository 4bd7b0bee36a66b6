"""PPO on the shared on-policy driver: flat (MLP) or recurrent multi-head (field report 004).

One code path for every action space: a Discrete env is one categorical head, a factored env
several (op first) with causal masks, a Box one Gaussian head. The update is PureJaxRL-shaped
(GAE, ``epochs`` x ``minibatches`` in ``lax.scan``, advantage normalisation, clipped value
loss, global-norm clipping, linearly annealed learning rate), with the multi-head pieces from
``rlstab_jax.stability.multihead``: masked log-probs/entropies, the joint ratio over causally
active heads, per-head entropy coefficients with entropy for every head every step, per-head
ratio telemetry and the ``Q(s, op)`` sensitivity monitor.

Recurrent (``network=lstm``): ``act`` stores the carry entering each step and ``is_first``;
the update cuts the rollout into ``bptt_len`` sequences that start from the stored carries
(truncated BPTT) and replays ``is_first`` resets inside them. Masks, actions and log-probs are
the ones stored at rollout time (report 004 §5.3), never recomputed from the state.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from rlstab_jax.agents.base import OnPolicyAgent, Rollout
from rlstab_jax.agents.ppo.config import PPOConfig
from rlstab_jax.agents.ppo.heads import (
    HeadLayout,
    categorical_logp_entropy,
    gaussian_logp_entropy,
    sample_heads,
)
from rlstab_jax.agents.ppo.networks import PPONet
from rlstab_jax.agents.ppo.telemetry import reduce_update_metrics, rollout_telemetry
from rlstab_jax.envs.spec import EnvSpec
from rlstab_jax.stability import multihead as mh
from rlstab_jax.stability.gradients import all_finite, clip_by_global_norm_with_norm
from rlstab_jax.stability.returns import gae
from rlstab_jax.stability.telemetry import explained_variance


@flax.struct.dataclass
class PPOState:
    params: Any
    log_std: jax.Array
    opt_state: Any
    step: jax.Array  # updates done


def value_loss(value: jax.Array, old_value: jax.Array, ret: jax.Array,
               clip_eps: jax.Array, clip: bool) -> jax.Array:
    """``0.5 * mean(max((v - R)^2, (v_clip - R)^2))``, ``v_clip = v_old + clip(v - v_old)``.

    PPO value clipping keeps the critic within ``clip_eps`` of the rollout's values per update
    (``clip=False``: plain squared error, the "off" variant).
    """
    err = (value - ret) ** 2
    if not clip:
        return 0.5 * jnp.mean(err)
    clipped = old_value + jnp.clip(value - old_value, -clip_eps, clip_eps)
    return 0.5 * jnp.mean(jnp.maximum(err, (clipped - ret) ** 2))


def make_agent(cfg: PPOConfig, spec: EnvSpec) -> OnPolicyAgent:
    layout = HeadLayout.from_spec(spec)
    recurrent = cfg.network == "lstm"
    gaussian = layout.kind == "gaussian"
    op_cond = layout.has_ops and cfg.op_conditioned_critic
    causal = cfg.causal_masks and layout.has_ops
    net = PPONet(layout, cfg, op_cond)
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=cfg.lr, eps=1e-5)
    ent_coefs = layout.entropy_coefs(cfg.per_head_entropy, cfg.entropy_head_coefs)
    H = cfg.lstm_hidden
    op_head = layout.names[0]

    def init_carry(n: int):
        return (jnp.zeros((n, H), jnp.float32), jnp.zeros((n, H), jnp.float32))

    def init(key, hp):
        obs = jnp.zeros((1,) + spec.obs_shape, jnp.float32)
        params = net.init(key, obs, init_carry(1), jnp.ones((1,), bool))
        log_std = jnp.full((layout.sizes[0],), hp["log_std_init"], jnp.float32)
        opt_state = opt.init((params, log_std))
        opt_state.hyperparams["learning_rate"] = hp["lr"]
        return PPOState(params, log_std, opt_state, jnp.zeros((), jnp.int32))

    def core(params, obs, carry, is_first):
        return net.apply(params, obs, carry, is_first, method=PPONet.core)

    def value_of(params, z, op):
        return net.apply(params, z, op if op_cond else None, method=PPONet.value)

    def sample_op(params, z, obs, key):
        """The op the bootstrap ``Q(s, op)`` uses: sampled from the policy (report 004)."""
        if not op_cond:
            return None
        logits = net.apply(params, z, method=PPONet.policy)
        _, _, masks = layout.split_obs(obs)
        masked = jnp.where(masks[op_head], logits[op_head], mh.MASK_LOGIT)
        return jax.random.categorical(key, masked).astype(jnp.int32)

    def policy_step(params, log_std, obs, carry, is_first, key, deterministic):
        carry, z = core(params, obs, carry, is_first)
        out = net.apply(params, z, method=PPONet.policy)
        lead = obs.shape[:1]
        if gaussian:
            mean = out["action"]
            noise = jax.random.normal(key, mean.shape)
            u = mean if deterministic else mean + jnp.exp(log_std) * noise
            logp, _ = gaussian_logp_entropy(mean, log_std, u)
            return carry, {"action": u}, {"logp": {"action": logp}, "u": u,
                                          "value": value_of(params, z, None)}
        _, _, masks = layout.split_obs(obs)
        actions = sample_heads(layout, out, masks, key, deterministic)
        op = actions[op_head] if layout.has_ops else None
        if causal:
            actions = mh.noop_inactive_actions(actions, layout.causal(op, lead))
        logp, _ = categorical_logp_entropy(out, masks, actions)
        return carry, actions, {"logp": logp, "masks": masks, "value": value_of(params, z, op)}

    def act(state, obs, key, hp, deterministic=False, carry=None, is_first=None):
        if not recurrent:
            _, actions, info = policy_step(state.params, state.log_std, obs, None,
                                           jnp.zeros(obs.shape[:1], bool), key, deterministic)
            return layout.to_env_action(actions), info
        new_carry, actions, info = policy_step(state.params, state.log_std, obs, carry,
                                               is_first, key, deterministic)
        info = dict(info, carry=carry, is_first=is_first)
        return layout.to_env_action(actions), new_carry, info

    def bootstrap_values(params, ro: Rollout, last_obs, key):
        """``V``/``Q(s, sampled op)`` of the obs after the rollout and of final observations."""
        T, N = ro.reward.shape
        info = ro.policy_info
        k_last, k_final = jax.random.split(key)
        done = ro.terminated | ro.truncated
        if recurrent:
            c_in = info["carry"]
            last_carry, _ = core(params, ro.obs[-1], jax.tree.map(lambda a: a[-1], c_in),
                                 info["is_first"][-1])
            # the carry after step t is the (pre-reset) carry entering step t + 1
            c_out = jax.tree.map(lambda a, b: jnp.concatenate([a[1:], b[None]], 0),
                                 c_in, last_carry)
        else:
            last_carry, c_out = None, None
        _, z_last = core(params, last_obs, last_carry, done[-1])
        last_v = value_of(params, z_last, sample_op(params, z_last, last_obs, k_last))
        flat = lambda x: x.reshape((T * N,) + x.shape[2:])  # noqa: E731
        c_flat = None if c_out is None else jax.tree.map(flat, c_out)
        fin = flat(ro.final_obs)
        _, z_fin = core(params, fin, c_flat, jnp.zeros((T * N,), bool))
        final_v = value_of(params, z_fin, sample_op(params, z_fin, fin, k_final))
        return last_v, final_v.reshape(T, N)

    def update(state, ro: Rollout, last_obs, key, hp):
        T, N = ro.reward.shape
        info = ro.policy_info
        k_boot, k_epochs = jax.random.split(key)
        last_v, final_v = bootstrap_values(state.params, ro, last_obs, k_boot)
        adv, ret = gae(ro.reward * hp["reward_scale"], info["value"], last_v, ro.terminated,
                       hp["gamma"], hp["gae_lambda"], truncated=ro.truncated,
                       final_values=final_v)
        adv, ret = jax.lax.stop_gradient((adv, ret))
        actions = {"action": info["u"]} if gaussian else layout.from_env_action(ro.action)
        op = actions[op_head] if layout.has_ops else None

        # Sequences [L, n_seq]: L = bptt_len (recurrent) or 1; all steps of one sequence
        # come from one env, starting at a stored carry.
        L = cfg.bptt_len if recurrent else 1
        S = T // L

        def seqs(x):
            x = x.reshape((S, L, N) + x.shape[2:])
            return jnp.swapaxes(x, 0, 1).reshape((L, S * N) + x.shape[3:])

        data = {"obs": ro.obs, "actions": actions, "logp": info["logp"], "value": info["value"],
                "adv": adv, "ret": ret}
        if not gaussian:
            data["masks"] = info["masks"]
        if recurrent:
            data["is_first"] = info["is_first"]
        data = jax.tree.map(seqs, data)
        carry0 = None
        if recurrent:
            carry0 = jax.tree.map(
                lambda a: a.reshape((S, L, N) + a.shape[2:])[:, 0].reshape((S * N,) + a.shape[2:]),
                info["carry"])
        n_seq = S * N
        mb = max(1, n_seq // cfg.minibatches)
        n_mb = n_seq // mb

        frac = jnp.where(hp["anneal_steps"] > 0,
                         jnp.clip(1.0 - state.step * (T * N) / jnp.maximum(hp["anneal_steps"],
                                                                         1.0), 0.0, 1.0), 1.0)
        opt_state = state.opt_state
        hyper = dict(opt_state.hyperparams)
        hyper["learning_rate"] = hp["lr"] * frac
        opt_state = opt_state._replace(hyperparams=hyper)

        def loss_fn(p, batch, c0):
            params, log_std = p
            if recurrent:
                def step(c, xs):
                    o, f = xs
                    c, z = core(params, o, c, f)
                    return c, z
                _, z = jax.lax.scan(step, c0, (batch["obs"], batch["is_first"]))
            else:
                _, z = core(params, batch["obs"], None, None)
            z = z.reshape((-1,) + z.shape[2:])
            b = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]),
                             {k: v for k, v in batch.items() if k not in ("obs", "is_first")})
            out = net.apply(params, z, method=PPONet.policy)
            if gaussian:
                lp, ent = gaussian_logp_entropy(out["action"], log_std, b["actions"]["action"])
                new_logp, ents = {"action": lp}, {"action": ent}
            else:
                new_logp, ents = categorical_logp_entropy(out, b["masks"], b["actions"])
            bop = b["actions"][op_head] if layout.has_ops else None
            cmask = layout.causal(bop if causal else None, z.shape[:1])
            joint = mh.joint_log_ratio(new_logp, b["logp"], cmask)
            a = b["adv"]
            if cfg.norm_adv:
                a = (a - a.mean()) / (a.std() + 1e-8)
            pg, metrics = mh.clipped_surrogate(joint, a, hp["clip_eps"])
            bonus, em = mh.per_head_entropy_bonus(ents, ent_coefs, "all")
            v = value_of(params, z, bop)
            vl = value_loss(v, b["value"], b["ret"], hp["vf_clip_eps"], cfg.clip_value)
            loss = pg + hp["vf_coef"] * vl - hp["ent_coef"] * bonus
            metrics = dict(metrics, **em)
            metrics["critic/loss"] = vl
            metrics["loss"] = loss
            metrics.update(mh.per_head_ratio_stats(new_logp, b["logp"], cmask))
            if op_cond:
                q = jnp.stack([value_of(params, z, jnp.full(z.shape[:1], i, jnp.int32))
                               for i in range(layout.n_ops)], -1)
                metrics.update(mh.q_op_stats(q))
            return loss, metrics

        def minibatch(carry, idx):
            p, opt_s = carry
            batch = jax.tree.map(lambda x: jnp.take(x, idx, axis=1), data)
            c0 = None if carry0 is None else jax.tree.map(lambda x: jnp.take(x, idx, 0), carry0)
            (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, batch, c0)
            for h in layout.names:
                sub = grads[0]["params"].get(f"heads_{h}")
                if sub is not None:
                    metrics[f"grad_norm/{h}"] = optax.tree.norm(sub)
            grads, gnorm = clip_by_global_norm_with_norm(grads, hp["max_grad_norm"])
            updates, new_opt = opt.update(grads, opt_s, p)
            # Guard the update, not only the gradient (a NaN lr or optimiser state).
            ok = all_finite(grads) & all_finite(updates) & jnp.isfinite(loss)
            new_p = optax.apply_updates(p, updates)
            keep = lambda n, o: jax.tree.map(lambda x, y: jnp.where(ok, x, y), n, o)  # noqa
            metrics["grad_norm"] = gnorm
            metrics["nonfinite/skipped"] = (~ok).astype(jnp.float32)
            return (keep(new_p, p), keep(new_opt, opt_s)), metrics

        def epoch(carry, k):
            perm = jax.random.permutation(k, n_seq)[: n_mb * mb].reshape(n_mb, mb)
            return jax.lax.scan(minibatch, carry, perm)

        (p, opt_state), m = jax.lax.scan(epoch, ((state.params, state.log_std), opt_state),
                                         jax.random.split(k_epochs, cfg.epochs))
        metrics = reduce_update_metrics(m)
        metrics["nonfinite/skipped"] = jnp.sum(m["nonfinite/skipped"])
        metrics["lr"] = hp["lr"] * frac
        metrics["critic/explained_variance"] = explained_variance(info["value"], ret)
        metrics["value/mean"] = jnp.mean(info["value"])
        if not gaussian:
            # ln(#valid actions) averaged over the rollout: the entropy a head could have with
            # its masks (a 6-way op head with 2 valid ops is "critical" at any policy).
            for h in layout.names:
                n_valid = jnp.sum(info["masks"][h].astype(jnp.float32), -1)
                metrics[f"entropy/{h}/valid_max"] = jnp.mean(jnp.log(jnp.maximum(n_valid, 1.0)))
        metrics.update(rollout_telemetry(layout, op, adv, metrics,
                                         info["carry"] if recurrent else None, causal))
        new = PPOState(p[0], p[1], opt_state, state.step + 1)
        return new, metrics

    return OnPolicyAgent(init=init, act=act, update=update, rollout_len=cfg.rollout_len,
                         init_carry=init_carry if recurrent else None)
