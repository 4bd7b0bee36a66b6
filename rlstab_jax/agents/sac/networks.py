"""SAC-family networks: encoders, actor (+FiLM), critic ensemble and their pure apply functions.

Parameter layout (plain dicts of Flax ``params`` collections):

* ``critic_params = {"encoder": {"obs": ..., "context": ...}, "q": ...}``
* ``actor_params = {"encoder": {...} or {} (shared), "film": ... or {}, "pi": ...}``

With ``shared_encoder`` the encoder lives in the critic's tree (the critic trains it) and the
actor reads it; with ``detach_actor_features`` the actor sees ``stop_gradient`` features and a
stop-gradient context embedding, so its FiLM parameters carry no gradient into the shared
encoder (field report 001 §4-5). The FiLM output heads belong to the actor: they are the only
consumer of FiLM, so keeping them in the shared (critic-trained) tree would leave them untrained
once the actor is detached.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rlstab_jax.agents.sac.config import SACConfig
from rlstab_jax.envs.spec import EnvSpec
from rlstab_jax.nn import (CNNEncoder, ContextEncoder, CriticEnsemble, FiLMGenerator,
                           SquashedGaussianActor, VectorEncoder, split_context_obs)

Params = dict[str, Any]


def _unbox(variables: Any) -> Params:
    return dict(variables.get("params", {}))


@dataclasses.dataclass(frozen=True)
class SACNetworks:
    """The modules of one agent and the pure functions that apply them.

    Attributes:
      cfg: static config. act_dim: action dimension D.
      obs_encoder, context, film, actor, critic: Flax modules (``context``/``film`` are None
        without a history context).
    """

    cfg: SACConfig
    act_dim: int
    obs_encoder: nn.Module
    context: ContextEncoder | None
    film: FiLMGenerator | None
    actor: SquashedGaussianActor
    critic: CriticEnsemble

    # ---- init ------------------------------------------------------------------------
    def init(self, key: jax.Array, obs: jax.Array) -> tuple[Params, Params]:
        """Initialise ``(actor_params, critic_params)`` from an example ``obs [B, ...]``."""
        k_enc_a, k_enc_c, k_film, k_pi, k_q = jax.random.split(key, 5)
        critic_enc = self._init_encoder(k_enc_c, obs)
        feats, z = self.encode(critic_enc, obs)
        action = jnp.zeros((obs.shape[0], self.act_dim), jnp.float32)
        critic_params = {"encoder": critic_enc,
                         "q": _unbox(self.critic.init(k_q, feats, action))}
        film_params = {} if self.film is None else _unbox(self.film.init(k_film, z))
        film = None if self.film is None else self.film.apply({"params": film_params}, z)
        pi = _unbox(self.actor.init(k_pi, feats, -1.0, 1.0, film))
        actor_enc = {} if self.cfg.shared_encoder else self._init_encoder(k_enc_a, obs)
        return {"encoder": actor_enc, "film": film_params, "pi": pi}, critic_params

    def _init_encoder(self, key: jax.Array, obs: jax.Array) -> Params:
        k_obs, k_ctx = jax.random.split(key)
        current, history = self._split(obs)
        params = {"obs": _unbox(self.obs_encoder.init(k_obs, current)), "context": {}}
        if self.context is not None:
            params["context"] = _unbox(self.context.init(k_ctx, history))
        return params

    # ---- apply -----------------------------------------------------------------------
    def _split(self, obs: jax.Array) -> tuple[jax.Array, jax.Array | None]:
        if self.context is None:
            return obs, None
        return split_context_obs(obs.astype(jnp.float32), self.act_dim, self.cfg.context_len)

    def encode(self, enc_params: Params, obs: jax.Array) -> tuple[jax.Array, jax.Array | None]:
        """Features ``[B, F]`` (obs features, concatenated with ``z`` when a context is used)
        and the context embedding ``z [B, Z]`` (or None)."""
        current, history = self._split(obs)
        feats = self.obs_encoder.apply({"params": enc_params["obs"]}, current)
        if self.context is None:
            return feats, None
        z = self.context.apply({"params": enc_params["context"]}, history)
        return jnp.concatenate([feats, z], axis=-1), z

    def actor_features(self, actor_params: Params, shared_enc: Params,
                       obs: jax.Array) -> tuple[jax.Array, jax.Array | None]:
        """The actor's view of ``obs``: own encoder, or the shared one (detached if set)."""
        if not self.cfg.shared_encoder:
            return self.encode(actor_params["encoder"], obs)
        feats, z = self.encode(shared_enc, obs)
        if self.cfg.detach_actor_features:  # field report 001 §4-5
            feats, z = jax.lax.stop_gradient((feats, z))
        return feats, z

    def actor_from_features(self, actor_params: Params, feats: jax.Array,
                            z: jax.Array | None, hp: dict[str, jax.Array]):
        """``(mean [B, D], log_std [B, D])`` from features (FiLM from ``z`` if present)."""
        film = None
        if self.film is not None:
            film = self.film.apply({"params": actor_params["film"]}, z)
        return self.actor.apply({"params": actor_params["pi"]}, feats, hp["log_std_min"],
                                hp["log_std_max"], film, hp["log_std_init"])

    def actor_dist(self, actor_params: Params, shared_enc: Params, obs: jax.Array,
                   hp: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
        """``(mean, log_std)`` of the policy at ``obs [B, ...]``."""
        feats, z = self.actor_features(actor_params, shared_enc, obs)
        return self.actor_from_features(actor_params, feats, z, hp)

    def q_from_features(self, critic_params: Params, feats: jax.Array, action: jax.Array,
                        dropout_key: jax.Array | None) -> jax.Array:
        """Ensemble output ``[N, B]`` / ``[N, B, M]``; dropout is on iff a key is given."""
        if dropout_key is None or self.cfg.dropout == 0.0:
            return self.critic.apply({"params": critic_params["q"]}, feats, action, True)
        return self.critic.apply({"params": critic_params["q"]}, feats, action, False,
                                 rngs={"dropout": dropout_key})

    def q_values(self, critic_params: Params, obs: jax.Array, action: jax.Array,
                 dropout_key: jax.Array | None = None) -> jax.Array:
        """``Q(obs, action)`` through the critic's own encoder."""
        feats, _ = self.encode(critic_params["encoder"], obs)
        return self.q_from_features(critic_params, feats, action, dropout_key)


def make_networks(cfg: SACConfig, spec: EnvSpec) -> SACNetworks:
    """Build the modules for ``cfg`` and ``spec`` (validated beforehand by ``make_agent``)."""
    if cfg.encoder == "cnn":
        obs_encoder: nn.Module = CNNEncoder(cfg.cnn_channels, cfg.cnn_kernels, cfg.cnn_strides,
                                            cfg.feature_dim, conv_impl=cfg.conv_impl)
    else:
        obs_encoder = VectorEncoder(cfg.encoder_hidden, cfg.activation)
    context = film = None
    if cfg.context_len:
        context = ContextEncoder(cfg.context_dim, cfg.context_heads, cfg.context_layers,
                                 2 * cfg.context_dim)
        film = FiLMGenerator(cfg.actor_hidden)
    actor = SquashedGaussianActor(cfg.actor_hidden, spec.action_dim, cfg.std_head,
                                  cfg.log_std_param, activation=cfg.activation,
                                  init_kind=cfg.init_kind)
    n_out = cfg.n_quantiles if cfg.critic_kind == "tqc" else 1
    critic = CriticEnsemble(cfg.n_critics, cfg.critic_hidden, n_out, cfg.activation,
                            cfg.layer_norm, cfg.dropout, cfg.init_kind)
    return SACNetworks(cfg, spec.action_dim, obs_encoder, context, film, actor, critic)
