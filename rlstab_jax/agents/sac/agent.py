"""SAC / DroQ / TQC agent: ``make_agent(cfg, spec) -> OffPolicyAgent`` of pure functions.

One ``update`` call runs all U critic updates of an env step in one ``lax.scan`` and the actor
and alpha update every ``policy_delay`` critic updates (DroQ: U=20, delay 20 -> one actor step
per env step). When ``U % policy_delay == 0`` the schedule is a nested scan with no branch, so
vmapping over seeds does not compute both sides of a ``cond``; otherwise a ``lax.cond`` on the
update counter keeps the delay across calls.

Gradient clipping is separate for actor and critic with the pre-clip norms logged (field report
003 §11A); every optimiser is wrapped in ``stability.gradients.skip_nonfinite`` so a NaN/Inf
gradient skips the step and is counted (``nonfinite/skipped`` = skips in this call).
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from rlstab_jax.agents.base import Batch, OffPolicyAgent
from rlstab_jax.agents.sac import losses
from rlstab_jax.agents.sac.config import SACConfig
from rlstab_jax.agents.sac.networks import SACNetworks, make_networks
from rlstab_jax.agents.sac.telemetry import actor_metrics, alpha_metrics, critic_metrics
from rlstab_jax.config.errors import ConfigError
from rlstab_jax.envs.spec import EnvSpec
from rlstab_jax.nn.context import context_obs_dim
from rlstab_jax.stability import critic as critic_fns
from rlstab_jax.stability import entropy, gradients, policy

HParams = dict[str, jax.Array]  # pragma: no mutate (annotation-only alias)


@flax.struct.dataclass
class SACState:
    """Agent state; its structure depends only on the static config, never on hparams.

    Attributes:
      actor_params: ``{"encoder", "film", "pi"}`` (see ``networks``).
      actor_opt_state: optimiser state over ``{"actor": actor_params, "encoder": E}`` where E
        is the shared encoder when the actor trains it (``shared_encoder`` and not
        ``detach_actor_features``, the off variant of field report 001 §4) and ``{}`` else.
      critic_params: ``{"encoder", "q"}``; owns the shared encoder.
      critic_opt_state: optimiser state of ``critic_params``.
      target_critic_params: polyak copy of ``critic_params``.
      log_alpha: ``[D]`` always; tied to one value in ``alpha_mode="scalar"``.
      alpha_opt_state: optimiser state of ``log_alpha``.
      critic_steps, actor_steps: int32 update counters.

    All three optimiser states are ``skip_nonfinite(inject_hyperparams(adam))`` states: they
    hold the injected learning rate / betas and the non-finite skip counters.
    """

    actor_params: Any
    actor_opt_state: Any
    critic_params: Any
    critic_opt_state: Any
    target_critic_params: Any
    log_alpha: jax.Array
    alpha_opt_state: Any
    critic_steps: jax.Array
    actor_steps: jax.Array


def _optimizer() -> optax.GradientTransformation:
    adam = optax.inject_hyperparams(optax.adam)(learning_rate=0.0, b1=0.9, b2=0.999)
    return gradients.skip_nonfinite(adam)


def _with_hparams(opt_state: Any, lr: jax.Array, hp: HParams) -> Any:
    """Write the traced learning rate and betas into an injected-hyperparams state."""
    inner = opt_state.inner_state
    hps = dict(inner.hyperparams)
    hps.update(learning_rate=jnp.asarray(lr, jnp.float32),
               b1=jnp.asarray(hp["adam_b1"], jnp.float32),
               b2=jnp.asarray(hp["adam_b2"], jnp.float32))
    return opt_state._replace(inner_state=inner._replace(hyperparams=hps))


def _nonfinite_total(state: SACState) -> jax.Array:
    return (gradients.nonfinite_count(state.critic_opt_state)
            + gradients.nonfinite_count(state.actor_opt_state)
            + gradients.nonfinite_count(state.alpha_opt_state))


def _trains_encoder(cfg: SACConfig) -> bool:
    return cfg.shared_encoder and not cfg.detach_actor_features


def _shared(cfg: SACConfig, critic_params: Any) -> Any:
    return critic_params["encoder"] if cfg.shared_encoder else {}


def init_state(nets: SACNetworks, obs_example: jax.Array, key: jax.Array,
               hp: HParams) -> SACState:
    """Fresh state: independently initialised critics, ``log_alpha = log(init_alpha)``."""
    cfg, opt = nets.cfg, _optimizer()
    actor_params, critic_params = nets.init(key, obs_example)
    pi = {"actor": actor_params,
          "encoder": critic_params["encoder"] if _trains_encoder(cfg) else {}}
    log_alpha = jnp.full((nets.act_dim,), jnp.log(hp["init_alpha"]), jnp.float32)
    return SACState(
        actor_params=actor_params,
        actor_opt_state=_with_hparams(opt.init(pi), hp["actor_lr"], hp),
        critic_params=critic_params,
        critic_opt_state=_with_hparams(opt.init(critic_params), hp["critic_lr"], hp),
        target_critic_params=jax.tree.map(jnp.copy, critic_params),
        log_alpha=log_alpha,
        alpha_opt_state=_with_hparams(opt.init(log_alpha), hp["alpha_lr"], hp),
        critic_steps=jnp.zeros((), jnp.int32), actor_steps=jnp.zeros((), jnp.int32))


def critic_step(nets: SACNetworks, names: tuple[str, ...], state: SACState, batch: Batch,
                key: jax.Array, hp: HParams) -> tuple[SACState, dict[str, jax.Array]]:
    """One critic update on ``batch [B, ...]`` followed by the polyak target update."""
    state, metrics, _ = critic_step_features(nets, state, batch, key, hp)
    return state, metrics


def critic_step_features(nets: SACNetworks, state: SACState, batch: Batch, key: jax.Array,
                         hp: HParams) -> tuple[SACState, dict[str, jax.Array], Any]:
    """``critic_step`` that also returns the shared encoder's ``(feats, z)`` of ``batch.obs``
    (before this step's update) for ``actor_features="reuse"``."""
    cfg, opt = nets.cfg, _optimizer()
    k_target, k_drop = jax.random.split(key)
    alpha = losses.current_alpha(cfg, state.log_alpha, hp)
    target, next_logp = losses.compute_target(
        nets, state.actor_params, _shared(cfg, state.critic_params), state.target_critic_params,
        alpha, batch, k_target, hp)
    (loss, (q, feats)), grads = jax.value_and_grad(losses.critic_loss, has_aux=True)(
        state.critic_params, nets, batch, target, k_drop)
    grads, grad_norm = gradients.clip_by_global_norm_with_norm(grads, hp["critic_grad_clip"])
    opt_state = _with_hparams(state.critic_opt_state, hp["critic_lr"], hp)
    updates, opt_state = opt.update(grads, opt_state, state.critic_params)
    params = optax.apply_updates(state.critic_params, updates)
    target_params = critic_fns.polyak_update(state.target_critic_params, params, hp["tau"])
    state = state.replace(critic_params=params, critic_opt_state=opt_state,
                          target_critic_params=target_params,
                          critic_steps=state.critic_steps + 1)
    return state, critic_metrics(q, target, loss, grad_norm, batch, next_logp), feats


def actor_step(nets: SACNetworks, names: tuple[str, ...], state: SACState, obs: jax.Array,
               key: jax.Array, hp: HParams,
               features: Any = None) -> tuple[SACState, dict[str, jax.Array]]:
    """One actor update and (if learned) one alpha update with the floor applied after it.

    ``features``: the critic step's ``(feats, z)`` of ``obs`` (``actor_features="reuse"``), so
    the encoder does not run again; None encodes ``obs`` with the current shared encoder.
    """
    cfg, opt = nets.cfg, _optimizer()
    alpha = losses.current_alpha(cfg, state.log_alpha, hp)
    shared = _shared(cfg, state.critic_params)
    pi = {"actor": state.actor_params, "encoder": shared if _trains_encoder(cfg) else {}}

    def loss_fn(p):
        enc = p["encoder"] if _trains_encoder(cfg) else shared
        return losses.actor_loss(p["actor"], enc, nets, state.critic_params, obs, alpha, key, hp,
                                 features)

    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(pi)
    grads, grad_norm = gradients.clip_by_global_norm_with_norm(grads, hp["actor_grad_clip"])
    opt_state = _with_hparams(state.actor_opt_state, hp["actor_lr"], hp)
    updates, opt_state = opt.update(grads, opt_state, pi)
    pi = optax.apply_updates(pi, updates)
    critic_params = state.critic_params
    if _trains_encoder(cfg):  # off variant: the actor's gradient reaches the shared encoder
        critic_params = {**critic_params, "encoder": pi["encoder"]}
    log_alpha, alpha_opt_state = state.log_alpha, state.alpha_opt_state
    alpha_loss = jnp.zeros(())
    if cfg.learn_alpha:
        tgt = losses.target_entropy(nets.act_dim, hp)
        (alpha_loss, _), a_grads = jax.value_and_grad(losses.alpha_objective, has_aux=True)(
            log_alpha, cfg, aux["logp_per_dim"], tgt)
        alpha_opt_state = _with_hparams(alpha_opt_state, hp["alpha_lr"], hp)
        a_updates, alpha_opt_state = opt.update(a_grads, alpha_opt_state, log_alpha)
        log_alpha = losses.tie_scalar_alpha(cfg, optax.apply_updates(log_alpha, a_updates))
        log_alpha = entropy.apply_alpha_floor(log_alpha, hp["alpha_floor"])
    state = state.replace(actor_params=pi["actor"], actor_opt_state=opt_state,
                          critic_params=critic_params, log_alpha=log_alpha,
                          alpha_opt_state=alpha_opt_state, actor_steps=state.actor_steps + 1)
    return state, actor_metrics(names, loss, alpha_loss, grad_norm, aux, hp)


def _mean_tree(tree: Any, weights: jax.Array | None = None) -> Any:
    if weights is None:
        return jax.tree.map(lambda x: jnp.mean(x.astype(jnp.float32)), tree)
    w = weights.astype(jnp.float32)
    n = jnp.maximum(w.sum(), 1.0)
    return jax.tree.map(lambda x: jnp.sum(w * x.astype(jnp.float32)) / n, tree)


def update(nets: SACNetworks, names: tuple[str, ...], state: SACState, batch: Batch,
           key: jax.Array, hp: HParams) -> tuple[SACState, dict[str, jax.Array]]:
    """U critic updates (scan) with an actor/alpha update every ``policy_delay`` of them.

    Args:
      batch: leaves ``[U, B, ...]`` (or ``[B, ...]`` for U = 1).

    Returns:
      ``(state, metrics)``; critic metrics are means over the U updates, actor metrics means
      over the actor updates of this call (0 if none happened).
    """
    if batch.reward.ndim == 1:
        batch = jax.tree.map(lambda x: x[None], batch)
    n_updates, delay = batch.reward.shape[0], nets.cfg.policy_delay
    skipped_before = _nonfinite_total(state)

    reuse = nets.cfg.actor_features == "reuse"

    def c_step(s, xs):
        s, m, feats = critic_step_features(nets, s, xs[0], xs[1], hp)
        return s, (m, feats if reuse else None)

    if n_updates % delay == 0:
        groups = n_updates // delay
        grouped = jax.tree.map(lambda x: x.reshape(groups, delay, *x.shape[1:]), batch)
        keys = jax.random.split(key, n_updates + groups)
        c_keys = keys[:n_updates].reshape(groups, delay, *keys.shape[1:])

        def group(s, xs):
            g_batch, g_keys, a_key = xs
            s, (c_m, feats) = jax.lax.scan(c_step, s, (g_batch, g_keys))
            feats = jax.tree.map(lambda x: x[-1], feats)  # the last critic step's batch
            s, a_m = actor_step(nets, names, s, g_batch.obs[-1], a_key, hp, feats)
            return s, (c_m, a_m)

        state, (c_m, a_m) = jax.lax.scan(group, state, (grouped, c_keys, keys[n_updates:]))
        metrics = {**_mean_tree(c_m), **_mean_tree(a_m)}
    else:
        def step(s, xs):
            b, k = xs
            k_c, k_a = jax.random.split(k)
            s, (c_m, feats) = c_step(s, (b, k_c))
            a_fn = lambda st: actor_step(nets, names, st, b.obs, k_a, hp, feats)  # noqa: E731
            a_shape = jax.eval_shape(a_fn, s)[1]
            no_op = lambda st: (st, jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype),  # noqa
                                                 a_shape))
            due = s.critic_steps % delay == 0
            s, a_m = jax.lax.cond(due, a_fn, no_op, s)
            return s, (c_m, a_m, due)

        keys = jax.random.split(key, n_updates)
        state, (c_m, a_m, due) = jax.lax.scan(step, state, (batch, keys))
        metrics = {**_mean_tree(c_m), **_mean_tree(a_m, due)}
    skipped = _nonfinite_total(state) - skipped_before
    metrics["nonfinite/skipped"] = skipped.astype(jnp.float32)
    metrics.update(alpha_metrics(names, losses.current_alpha(nets.cfg, state.log_alpha, hp)))
    return state, metrics


def act(nets: SACNetworks, state: SACState, obs: jax.Array, key: jax.Array, hp: HParams,
        deterministic: bool) -> jax.Array:
    """Actions ``[B, D]`` in ``[-1, 1]``: ``tanh(mean)`` if deterministic, else a sample."""
    mean, log_std = nets.actor_dist(state.actor_params, _shared(nets.cfg, state.critic_params),
                                    obs, hp)
    if deterministic:
        return policy.deterministic_action(mean)
    return policy.squashed_gaussian_sample(key, mean, log_std)[0]


def check_spec(cfg: SACConfig, spec: EnvSpec, agent: str) -> None:
    """Reject env specs this config cannot handle, with one-line ``ConfigError``s."""
    spec.require_continuous(agent)
    pixels = len(spec.obs_shape) == 3
    if pixels and cfg.encoder != "cnn":
        raise ConfigError(f"agent.encoder={cfg.encoder!r} cannot read pixel observations of "
                          f"shape {spec.obs_shape} from env {spec.env_id!r}; use agent.encoder=cnn")
    if cfg.encoder == "cnn" and not pixels:
        raise ConfigError(f"agent.encoder='cnn' needs [H, W, C] pixels but env {spec.env_id!r} "
                          f"has observations of shape {spec.obs_shape}; use agent.encoder=mlp")
    if cfg.context_len:
        size = 1
        for d in spec.obs_shape:
            size *= int(d)
        try:
            context_obs_dim(size, spec.action_dim, cfg.context_len)
        except ValueError as e:
            raise ConfigError(f"agent.context_len={cfg.context_len}: env {spec.env_id!r} {e} "
                              f"(set env.history={cfg.context_len})") from None
    if len(spec.action_names) != spec.action_dim:
        raise ConfigError(f"env {spec.env_id!r} names {len(spec.action_names)} action dims "
                          f"but has {spec.action_dim}")


def make_agent(cfg: SACConfig, spec: EnvSpec) -> OffPolicyAgent:
    """Validate ``cfg`` against ``spec`` and return the agent's pure functions.

    Raises:
      ConfigError: bad config values, a Discrete or unbounded action space, or observations
        the chosen encoder cannot read.
    """
    cfg.validate()
    check_spec(cfg, spec, {"DroQConfig": "droq", "TQCConfig": "tqc"}.get(type(cfg).__name__,
                                                                          "sac"))
    nets = make_networks(cfg, spec)
    names = tuple(spec.action_names)
    dtype = jnp.uint8 if spec.obs_dtype == "uint8" else jnp.float32
    obs_example = jnp.zeros((1, *spec.obs_shape), dtype)

    def init_fn(key: jax.Array, hparams: HParams) -> SACState:
        return init_state(nets, obs_example, key, hparams)

    def act_fn(state, obs, key, hparams, deterministic: bool = False):
        return act(nets, state, obs, key, hparams, deterministic)

    def update_fn(state, batch, key, hparams):
        return update(nets, names, state, batch, key, hparams)

    return OffPolicyAgent(init=init_fn, act=act_fn, update=update_fn,
                          updates_per_step=cfg.utd, batch_size=cfg.batch_size, n_step=cfg.n_step)
