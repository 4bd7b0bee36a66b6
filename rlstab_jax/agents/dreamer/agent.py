"""Dreamer agent: world model + imagination actor-critic on the shared off-policy driver.

The driver replays ``SeqBatch`` subsequences (``seq_len``), keeps the per-env RSSM latent as
the recurrent carry and calls ``update`` every ``update_every`` env steps (the train ratio).
Pixel observations (``agent.encoder=cnn``) stay uint8 in replay and in the batches; only the
world model's CNN casts them to float.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from rlstab_jax.agents.base import OffPolicyAgent, SeqBatch
from rlstab_jax.agents.dreamer import behavior as bh
from rlstab_jax.agents.dreamer.config import DreamerConfig
from rlstab_jax.agents.dreamer.networks import ActorNet, CriticNet, WorldModel
from rlstab_jax.agents.dreamer.world_model import (encode_action, mode_latent, sample_latent,
                                                   wm_loss)
from rlstab_jax.config.errors import ConfigError
from rlstab_jax.envs.spec import EnvSpec
from rlstab_jax.stability import normalizer as rn
from rlstab_jax.stability.critic import polyak_update
from rlstab_jax.stability.gradients import adaptive_grad_clip
from rlstab_jax.stability.optim import laprop
from rlstab_jax.stability.returns import lambda_returns, replay_lambda_returns
from rlstab_jax.stability.surprise import SurpriseState, surprise_init, surprise_update
from rlstab_jax.stability.symlog import symexp_bins, twohot_decode_logits

SURPRISE = ("state", "reward", "continue", "kl_dyn", "kl_rep")  # report 002's component names
_WM_MODULES = {"encoder": ("encoder",), "rssm": ("img_in", "gru", "prior_net", "post_net"),
               "decoder": ("decoder",), "reward": ("reward_head",), "continue": ("cont_head",)}


@flax.struct.dataclass
class DreamerCarry:
    """Per-env recurrent state: ``h [N, deter]``, ``z [N, C*K]``, last action input ``[N, A]``."""

    h: jax.Array
    z: jax.Array
    action: jax.Array


@flax.struct.dataclass
class DreamerState:
    wm_params: Any
    actor_params: Any
    critic_params: Any
    slow_critic_params: Any
    wm_opt: Any
    actor_opt: Any
    critic_opt: Any
    retnorm: rn.PercentileEmaState
    surprise: SurpriseState
    wm_steps: jax.Array
    ac_steps: jax.Array
    # With ``agent.eval_ema``: weight-averaged copies the greedy (deterministic) policy acts
    # with, EMAs of the world model and the actor at rate ``eval_ema_tau`` per update. None
    # (no leaves, so checkpoints without them still restore) when off.
    eval_wm_params: Any = None
    eval_actor_params: Any = None


def acting_params(state: DreamerState, deterministic: bool) -> tuple[Any, Any]:
    """``(world model, actor)`` parameters a policy acts with: the weight-averaged copies for
    the greedy policy when ``agent.eval_ema`` keeps them, the online ones otherwise."""
    if deterministic and state.eval_wm_params is not None:
        return state.eval_wm_params, state.eval_actor_params
    return state.wm_params, state.actor_params


def _optimizer(learning_rate, agc, eps, kind="adam"):
    # AGC first on raw gradients (DreamerV3's order), then Adam or LaProp.
    base = laprop(learning_rate, eps=eps) if kind == "laprop" else optax.adam(learning_rate,
                                                                              eps=eps)
    return optax.chain(adaptive_grad_clip(agc), base)


def _make_opt(lr_key: str, kind: str = "adam"):
    opt = optax.inject_hyperparams(_optimizer, static_args=("kind",))(
        learning_rate=0.0, agc=0.0, eps=1e-8, kind=kind)

    def init(params, hp):
        state = opt.init(params)
        state.hyperparams["learning_rate"] = hp[lr_key]
        state.hyperparams["agc"] = hp["agc"]
        state.hyperparams["eps"] = hp["adam_eps"]
        return state

    return opt, init


def _apply(opt, grads, opt_state, params):
    updates, opt_state = opt.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def _module_norms(grads: Any) -> dict[str, jax.Array]:
    p = grads["params"]
    return {f"wm/grad_norm/{name}": optax.global_norm([p[m] for m in mods])
            for name, mods in _WM_MODULES.items()}


def build_networks(cfg: DreamerConfig, spec: EnvSpec
                   ) -> tuple[WorldModel, ActorNet, CriticNet, jax.Array]:
    """The agent's modules for ``spec``: ``(world model, actor, critic, twohot bins)``.

    ``make_agent`` uses them; diagnostics that need more than ``act`` (e.g. open-loop
    imagination in ``bench/cartpole_failure_modes.py``) apply them to a state's parameters.
    """
    obs_dim = 1
    for d in spec.obs_shape:
        obs_dim *= d
    wm = WorldModel(obs_dim, spec.action_dim, cfg.deter, cfg.stoch_groups, cfg.stoch_classes,
                    cfg.hidden, cfg.layers, cfg.num_bins,
                    encoder_kind=encoder_kind(cfg.encoder, spec),
                    obs_shape=tuple(int(d) for d in spec.obs_shape),
                    cnn_channels=tuple(cfg.cnn_channels), cnn_kernels=tuple(cfg.cnn_kernels),
                    cnn_strides=tuple(cfg.cnn_strides), conv_impl=cfg.conv_impl)
    actor = ActorNet(cfg.hidden, cfg.layers, spec.action_dim, spec.action_kind == "discrete")
    critic = CriticNet(cfg.hidden, cfg.layers, cfg.num_bins)
    return wm, actor, critic, symexp_bins(cfg.num_bins, cfg.bins_low, cfg.bins_high)


def make_agent(cfg: DreamerConfig, spec: EnvSpec) -> OffPolicyAgent:
    cfg.validate()
    check_spec(cfg, spec)
    discrete = spec.action_kind == "discrete"
    act_dim = spec.action_dim
    wm, actor, critic, bins = build_networks(cfg, spec)
    obs_dtype = jnp.uint8 if spec.obs_dtype == "uint8" else jnp.float32
    wm_opt, wm_opt_init = _make_opt("wm_lr", cfg.optimizer)
    actor_opt, actor_opt_init = _make_opt("actor_lr", cfg.optimizer)
    critic_opt, critic_opt_init = _make_opt("critic_lr", cfg.optimizer)
    feat_dim = cfg.deter + cfg.stoch
    replayed = cfg.batch_size * cfg.seq_len
    updates_per_call = max(1, round(cfg.train_ratio / replayed))
    update_every = max(1, round(replayed * updates_per_call / cfg.train_ratio))

    def init(key, hp):
        k_wm, k_a, k_c = jax.random.split(key, 3)
        obs = jnp.zeros((1,) + tuple(spec.obs_shape), obs_dtype)
        wm_params = wm.init(k_wm, obs, jnp.zeros((1, act_dim), jnp.float32))
        feat = jnp.zeros((1, feat_dim), jnp.float32)
        actor_params = actor.init(k_a, feat)
        critic_params = critic.init(k_c, feat)
        return DreamerState(
            wm_params=wm_params, actor_params=actor_params, critic_params=critic_params,
            slow_critic_params=critic_params,
            wm_opt=wm_opt_init(wm_params, hp), actor_opt=actor_opt_init(actor_params, hp),
            critic_opt=critic_opt_init(critic_params, hp),
            retnorm=rn.percentile_ema_init(), surprise=surprise_init(SURPRISE),
            wm_steps=jnp.zeros((), jnp.int32), ac_steps=jnp.zeros((), jnp.int32),
            eval_wm_params=wm_params if cfg.eval_ema else None,
            eval_actor_params=actor_params if cfg.eval_ema else None)

    def init_carry(n):
        return DreamerCarry(jnp.zeros((n, cfg.deter), jnp.float32),
                            jnp.zeros((n, cfg.stoch), jnp.float32),
                            jnp.zeros((n, act_dim), jnp.float32))

    def act(state, obs, key, hp, deterministic, carry, is_first):
        k_z, k_a = jax.random.split(key)
        # The greedy policy (evaluation, best checkpoint, deployment) reads the weight-averaged
        # world model and actor; sampling (data collection) reads the online ones.
        p, actor_params = acting_params(state, deterministic)
        e = wm.apply(p, obs, method=WorldModel.encode)
        g = wm.apply(p, carry.h, carry.z, carry.action, method=WorldModel.step)
        h = jnp.where(is_first[:, None], 0.0, g)
        # A new episode also drops the previous action (the carry restarts from h = 0).
        logits = wm.apply(p, h, e, method=WorldModel.posterior)
        if deterministic:
            z = mode_latent(logits)
        else:
            z, _ = sample_latent(k_z, logits, hp["unimix"])
        feat = jnp.concatenate([h, z], -1)
        out = actor.apply(actor_params, feat)
        action = bh.sample_action(k_a, out, hp, discrete, deterministic)
        a_enc = encode_action(action, discrete, act_dim)
        return action, DreamerCarry(h, z, a_enc), _act_info(p, state.critic_params, h, z, a_enc)

    def _act_info(p, critic_params, h, z, a_enc):
        """Diagnostics of the acting latent (``bench/cartpole_failure_modes.py --values``):
        the critic's ``value`` and ``cont_next``, the continue probability imagination gives the
        next step under the chosen action (prior mode). The drivers drop ``info``, so jit
        removes this."""
        value = twohot_decode_logits(critic.apply(critic_params, jnp.concatenate([h, z], -1)),
                                     bins)
        g = wm.apply(p, h, z, a_enc, method=WorldModel.step)
        z_next = mode_latent(wm.apply(p, g, method=WorldModel.prior))
        _, cont_logit = wm.apply(p, jnp.concatenate([g, z_next], -1),
                                 method=WorldModel.reward_cont)
        return {"value": value, "cont_next": jax.nn.sigmoid(cont_logit)}

    def replay_targets(returns, rows, hp):
        """Real-data lambda returns of the replayed latents (``replay_value_scale``)."""
        B, T = rows["reward"].shape
        tm = lambda x: jnp.swapaxes(x.reshape((B, T)), 0, 1)  # noqa: E731  [T, B]
        ret = replay_lambda_returns(
            tm(rows["reward"].astype(jnp.float32)), tm(rows["terminated"]),
            tm(rows["is_first"]), tm(returns[0]), hp["gamma"], hp["lam"])  # [T - 1, B]
        target = jnp.concatenate([ret, jnp.zeros((1, B), ret.dtype)], 0)
        keep = jnp.concatenate([jnp.ones((T - 1, B)), jnp.zeros((1, B))], 0)
        keep = keep * (1.0 - tm(rows["terminated"]).astype(jnp.float32))
        flat = lambda x: jnp.swapaxes(x, 0, 1).reshape(-1)  # noqa: E731  back to [B * T]
        return jax.lax.stop_gradient(flat(target)), flat(keep)

    def ac_update(state, starts, start_weight, key, hp, rows):
        """One imagination actor-critic update from posterior starts ``[N, ...]``.

        ``rows``: the replayed sequence's ``reward``/``terminated``/``is_first`` ``[B, T]``
        (the starts are its latents, flattened ``B * T``) for the replay-value loss.
        """
        img = bh.imagine(wm, state.wm_params, actor, state.actor_params, starts["h"],
                         starts["z"], key, hp, cfg.horizon, discrete)
        feat = img["feat"]
        rewards, conts = bh.imagined_rewards(wm, state.wm_params, feat, bins)
        weight = jax.lax.stop_gradient(jnp.concatenate(
            [start_weight[None], start_weight[None] * jnp.cumprod(conts, 0)], 0))
        slow_values = twohot_decode_logits(critic.apply(state.slow_critic_params, feat), bins)
        values = twohot_decode_logits(critic.apply(state.critic_params, feat), bins)
        returns = lambda_returns(rewards, values, conts, hp["gamma"], hp["lam"],
                                    cfg.bootstrap)
        retnorm = rn.percentile_ema_update(state.retnorm, returns, hp["retnorm_decay"])
        adv = returns - values[:-1]
        if cfg.return_norm:
            adv = rn.normalize_advantages(adv, retnorm)
        (_, a_metrics), a_grads = jax.value_and_grad(bh.actor_loss, has_aux=True)(
            state.actor_params, actor, feat, img["action"], adv, weight, hp, discrete)
        if cfg.replay_value:  # the real-data targets only when the loss uses them
            rep_target, rep_weight = replay_targets(returns, rows, hp)

        def critic_total(params):
            loss, m = bh.critic_loss(params, critic, feat, rewards, conts, weight, slow_values,
                                     hp, bins, cfg.bootstrap, cfg.critic_target_stop_gradient,
                                     cfg.slow_critic)
            if not cfg.replay_value:
                return loss, m
            rep = bh.replay_value_loss(params, critic, feat[0], rep_target, rep_weight, bins)
            return loss + hp["replay_value_scale"] * rep, dict(m, **{"critic/replay_loss": rep})

        (_, c_metrics), c_grads = jax.value_and_grad(critic_total, has_aux=True)(
            state.critic_params)
        actor_params, actor_state = _apply(actor_opt, a_grads, state.actor_opt,
                                           state.actor_params)
        critic_params, critic_state = _apply(critic_opt, c_grads, state.critic_opt,
                                             state.critic_params)
        tau = hp["slow_critic_tau"]
        slow = jax.tree.map(lambda s, c: (1.0 - tau) * s + tau * c, state.slow_critic_params,
                            critic_params)
        metrics = {**a_metrics, **c_metrics,
                   "imag/reward_mean": jnp.mean(rewards), "imag/value_mean": jnp.mean(values),
                   "imag/return_mean": jnp.mean(returns), "imag/continue_mean": jnp.mean(conts),
                   "retnorm/scale": rn.percentile_ema_scale(retnorm),
                   "adv/mean": jnp.mean(adv), "adv/std": jnp.std(adv),
                   "actor/grad_norm": optax.global_norm(a_grads),
                   "critic/grad_norm": optax.global_norm(c_grads)}
        eval_actor = (polyak_update(state.eval_actor_params, actor_params, hp["eval_ema_tau"])
                      if cfg.eval_ema else None)
        new = state.replace(actor_params=actor_params, critic_params=critic_params,
                            slow_critic_params=slow, actor_opt=actor_state,
                            eval_actor_params=eval_actor,
                            critic_opt=critic_state, retnorm=retnorm,
                            ac_steps=state.ac_steps + 1)
        return new, metrics

    def one_update(state, seq: SeqBatch, key, hp, wm_step):
        k_wm, k_ac = jax.random.split(key)
        (_, (metrics, starts, priority)), grads = jax.value_and_grad(wm_loss, has_aux=True)(
            state.wm_params, wm, seq, k_wm, hp, bins, discrete, cfg.free_bits_mode,
            cfg.overshoot_depth)
        metrics.update(_module_norms(grads))
        wm_params, wm_state = _apply(wm_opt, grads, state.wm_opt, state.wm_params)
        surprise, s_metrics = surprise_update(state.surprise, {
            "state": metrics["wm/loss/decoder"], "reward": metrics["wm/loss/reward"],
            "continue": metrics["wm/loss/continue"], "kl_dyn": metrics["kl/dyn_raw"],
            "kl_rep": metrics["kl/rep_raw"]}, hp["surprise_beta"], prefix="wm/surprise")
        metrics.update(s_metrics)
        eval_wm = (polyak_update(state.eval_wm_params, wm_params, hp["eval_ema_tau"])
                   if cfg.eval_ema else None)
        state = state.replace(wm_params=wm_params, wm_opt=wm_state, surprise=surprise,
                              wm_steps=state.wm_steps + 1, eval_wm_params=eval_wm)
        flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
        starts = jax.tree.map(flat, starts)
        # A start whose observation is terminal has no future to imagine.
        start_weight = flat(1.0 - seq.terminated.astype(jnp.float32))
        # Gate on the driver's seed-independent count (``wm_step`` = this world-model update's
        # 1-based number), not on ``state.wm_steps``: under the seed vmap the latter is batched
        # and the cond would become a select that computes the actor-critic update every time.
        ac_on = (wm_step > cfg.wm_warmup) & (wm_step % cfg.wm_ac_ratio == 0)
        rows = {"reward": seq.reward, "terminated": seq.terminated, "is_first": seq.is_first}
        ac_shapes = jax.eval_shape(ac_update, state, starts, start_weight, k_ac, hp, rows)[1]
        state, ac_metrics = jax.lax.cond(
            ac_on, lambda s: ac_update(s, starts, start_weight, k_ac, hp, rows),
            lambda s: (s, jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), ac_shapes)),
            state)
        metrics.update(ac_metrics)
        metrics["ac/active"] = ac_on.astype(jnp.float32)
        return state, (metrics, priority)

    def update_with_priorities(state, batch: SeqBatch, key, hp, update_index):
        """``update`` that also returns each replayed sequence's priority ``[U, B]``: its
        world-model loss before this update (``stability.replay_priority``)."""
        def body(s, xs):
            seq, k, j = xs
            return one_update(s, seq, k, hp, update_index * n + j + 1)

        n = batch.reward.shape[0]
        js = jnp.arange(n, dtype=jnp.int32)  # built here, so unbatched under the seed vmap
        state, (metrics, priority) = jax.lax.scan(body, state,
                                                  (batch, jax.random.split(key, n), js))
        return state, jax.tree.map(lambda m: jnp.mean(m, 0), metrics), priority

    def update(state, batch: SeqBatch, key, hp, update_index):
        """``update_index``: the driver's count of earlier ``update`` calls (unbatched)."""
        state, metrics, _ = update_with_priorities(state, batch, key, hp, update_index)
        return state, metrics

    return OffPolicyAgent(init=init, act=act, update=update, updates_per_step=updates_per_call,
                          batch_size=cfg.batch_size, init_carry=init_carry,
                          seq_len=cfg.seq_len, update_every=update_every,
                          takes_update_index=True,
                          update_with_priorities=update_with_priorities)


def _is_pixels(spec: EnvSpec) -> bool:
    return len(spec.obs_shape) == 3 and spec.obs_dtype == "uint8"


def encoder_kind(encoder: str, spec: EnvSpec) -> str:
    """``agent.encoder`` resolved for ``spec``: ``auto`` is ``cnn`` for uint8 ``[H, W, C]``
    observations and ``mlp`` otherwise; ``mlp`` and ``cnn`` are returned as they are."""
    if encoder == "auto":
        return "cnn" if _is_pixels(spec) else "mlp"
    return encoder


def check_spec(cfg: DreamerConfig, spec: EnvSpec) -> None:
    """Reject observations the chosen encoder cannot model, with a one-line ``ConfigError``.

    ``mlp`` reads float vectors ``[D]``; ``cnn`` reads uint8 pixels ``[H, W, C]`` (frame stacks
    as extra channels). Discrete and continuous actions are both supported.
    """
    kind = encoder_kind(cfg.encoder, spec)
    shape, dtype = tuple(spec.obs_shape), spec.obs_dtype
    via = f" (agent.encoder=auto chose {kind!r})" if cfg.encoder == "auto" else ""
    if kind == "mlp" and (len(shape) != 1 or dtype == "uint8"):
        hint = ("; use agent.encoder=cnn (or auto) for pixels" if _is_pixels(spec)
                else "; flatten them or use a vector-observation env")
        raise ConfigError(f"agent.encoder='mlp'{via} models float vector observations [D], but "
                          f"env {spec.env_id!r} has obs_shape={shape} dtype={dtype}{hint}")
    if kind == "cnn" and not _is_pixels(spec):
        raise ConfigError(f"agent.encoder='cnn' needs uint8 [H, W, C] pixel observations, but "
                          f"env {spec.env_id!r} has obs_shape={shape} dtype={dtype}; use "
                          f"agent.encoder=mlp (or auto)")
