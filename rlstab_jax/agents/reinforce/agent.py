"""REINFORCE with a learned value baseline (GAE), for discrete and continuous actions."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

from rlstab_jax.agents.base import OnPolicyAgent, Rollout
from rlstab_jax.agents.reinforce.config import ReinforceConfig
from rlstab_jax.envs.spec import EnvSpec
from rlstab_jax.nn.mlp import MLP
from rlstab_jax.stability import policy as pol
from rlstab_jax.stability.gradients import all_finite, clip_by_global_norm_with_norm
from rlstab_jax.stability.returns import gae


class ActorCritic(nn.Module):
    hidden: tuple[int, ...]
    n_out: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = obs.reshape(obs.shape[0], -1).astype(jnp.float32)
        logits = MLP(
            self.hidden, self.n_out, activation="tanh", init_kind="orthogonal", out_scale=0.01
        )(x)
        value = MLP(self.hidden, 1, activation="tanh", init_kind="orthogonal")(x)[..., 0]
        return logits, value


@flax.struct.dataclass
class ReinforceState:
    params: Any
    log_std: jax.Array
    opt_state: Any
    step: jax.Array


def make_agent(cfg: ReinforceConfig, spec: EnvSpec) -> OnPolicyAgent:
    if spec.action_kind == "factored":
        spec.require_discrete("reinforce")  # one-line ConfigError: factored actions need ppo
    discrete = spec.action_kind == "discrete"
    net = ActorCritic(cfg.hidden, spec.action_dim)
    opt = optax.inject_hyperparams(optax.adam)(learning_rate=cfg.lr)

    def init(key, hp):
        params = net.init(key, jnp.zeros((1,) + spec.obs_shape, jnp.float32))
        log_std = jnp.full((spec.action_dim,), hp["log_std_init"], jnp.float32)
        opt_state = opt.init((params, log_std))
        opt_state.hyperparams["learning_rate"] = hp["lr"]
        return ReinforceState(params, log_std, opt_state, jnp.zeros((), jnp.int32))

    def act(state, obs, key, hp, deterministic=False):
        out, value = net.apply(state.params, obs)
        if discrete:
            a = jnp.argmax(out, -1) if deterministic else jax.random.categorical(key, out)
            return a.astype(jnp.int32), {"value": value, "u": jnp.zeros(out.shape[:1] + (1,))}
        log_std = jnp.broadcast_to(state.log_std, out.shape)
        if deterministic:
            return pol.deterministic_action(out), {"value": value, "u": out}
        u = out + jnp.exp(log_std) * jax.random.normal(key, out.shape)
        return jnp.tanh(u), {"value": value, "u": u}

    def log_prob_entropy(params, log_std, obs, action, u):
        out, value = net.apply(params, obs)
        if discrete:
            logp_all = jax.nn.log_softmax(out)
            logp = jnp.take_along_axis(logp_all, action[..., None], -1)[..., 0]
            ent = -jnp.sum(jnp.exp(logp_all) * logp_all, -1)
            return logp, ent, value
        ls = jnp.broadcast_to(log_std, out.shape)
        logp, _ = pol.squashed_gaussian_log_prob(u, out, ls)
        ent = jnp.sum(ls + 0.5 * jnp.log(2 * jnp.pi * jnp.e), -1)  # pre-squash entropy
        return logp, ent, value

    def update(state, ro: Rollout, last_obs, key, hp):
        T, N = ro.reward.shape
        _, last_v = net.apply(state.params, last_obs)
        _, final_v = net.apply(
            state.params, ro.final_obs.reshape((T * N,) + ro.final_obs.shape[2:])
        )
        adv, ret = gae(
            ro.reward,
            ro.policy_info["value"],
            last_v,
            ro.terminated,
            hp["gamma"],
            hp["gae_lambda"],
            truncated=ro.truncated,
            final_values=final_v.reshape(T, N),
        )
        adv = jax.lax.stop_gradient(adv)
        ret = jax.lax.stop_gradient(ret)
        flat = lambda x: x.reshape((T * N,) + x.shape[2:])  # noqa: E731

        def loss_fn(p):
            params, log_std = p
            logp, ent, value = log_prob_entropy(
                params, log_std, flat(ro.obs), flat(ro.action), flat(ro.policy_info["u"])
            )
            pg = -jnp.mean(logp * flat(adv))
            vloss = 0.5 * jnp.mean((value - flat(ret)) ** 2)
            loss = pg + hp["value_coef"] * vloss - hp["entropy_coef"] * jnp.mean(ent)
            return loss, {"actor/loss": pg, "critic/loss": vloss, "entropy/mean": jnp.mean(ent)}

        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            (state.params, state.log_std)
        )
        grads, gnorm = clip_by_global_norm_with_norm(grads, hp["max_grad_norm"])
        updates, opt_state = opt.update(grads, state.opt_state, (state.params, state.log_std))
        # Guard on the update, not only the gradient: a NaN learning rate or optimiser state
        # turns finite gradients into NaN parameters.
        ok = all_finite(grads) & all_finite(updates) & jnp.isfinite(loss)
        new_params, new_log_std = optax.apply_updates((state.params, state.log_std), updates)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)  # noqa
        new = ReinforceState(
            keep(new_params, state.params),
            keep(new_log_std, state.log_std),
            keep(opt_state, state.opt_state),
            state.step + 1,
        )
        metrics.update(
            {
                "loss": loss,
                "grad_norm": gnorm,
                "nonfinite/skipped": (~ok).astype(jnp.float32),
                "value/mean": jnp.mean(ro.policy_info["value"]),
            }
        )
        return new, metrics

    return OnPolicyAgent(init=init, act=act, update=update, rollout_len=cfg.rollout_len)
