"""Dreamer networks: symlog MLP encoder, RSSM (LayerNorm GRU + C x K categoricals), heads.

Shapes: ``h [..., deter]`` deterministic state, ``z [..., C * K]`` flattened one-hot
stochastic state, latent logits ``[..., C, K]``, features ``[h, z]``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from rlstab_jax.nn.layers import LayerNorm
from rlstab_jax.nn.mlp import MLP
from rlstab_jax.stability.symlog import symlog


class NormGRUCell(nn.Module):
    """GRU with LayerNorm on the gate pre-activations (DreamerV3's RSSM core).

    ``update = sigmoid(u - 1)`` biases the cell towards keeping its state at init, which keeps
    long imagined rollouts stable.
    """

    deter: int

    @nn.compact
    def __call__(self, h: jax.Array, x: jax.Array) -> jax.Array:
        parts = nn.Dense(3 * self.deter, use_bias=False)(jnp.concatenate([h, x], -1))
        reset, cand, update = jnp.split(LayerNorm()(parts), 3, axis=-1)
        reset = jax.nn.sigmoid(reset)
        cand = jnp.tanh(reset * cand)
        update = jax.nn.sigmoid(update - 1.0)
        return update * cand + (1.0 - update) * h


def _mlp(width: int, layers: int, out: int | None = None, zero_out: bool = False) -> nn.Module:
    if zero_out:
        return nn.Sequential([
            MLP((width,) * layers, activation="silu", layer_norm=True),
            nn.Dense(out, kernel_init=nn.initializers.zeros),
        ])
    return MLP((width,) * layers, out_dim=out, activation="silu", layer_norm=True)


class WorldModel(nn.Module):
    """Encoder, RSSM and heads; call methods with ``apply(..., method=WorldModel.x)``.

    Attributes:
      obs_dim: flattened observation size. act_dim: action input size (one-hot for discrete).
      deter, groups, classes, hidden, layers, num_bins: sizes (see ``DreamerConfig``).
    """

    obs_dim: int
    act_dim: int
    deter: int
    groups: int
    classes: int
    hidden: int
    layers: int
    num_bins: int

    def setup(self) -> None:
        self.encoder = _mlp(self.hidden, self.layers)
        self.img_in = _mlp(self.hidden, 1)
        self.gru = NormGRUCell(self.deter)
        stoch = self.groups * self.classes
        self.prior_net = _mlp(self.hidden, 1, stoch)
        self.post_net = _mlp(self.hidden, 1, stoch)
        self.decoder = _mlp(self.hidden, self.layers, self.obs_dim)
        # Zero-initialised reward output: uniform twohot probabilities decode to exactly 0.
        self.reward_head = _mlp(self.hidden, self.layers, self.num_bins, zero_out=True)
        self.cont_head = _mlp(self.hidden, self.layers, 1)

    def encode(self, obs: jax.Array) -> jax.Array:
        """``obs [..., *obs_shape]`` -> embedding ``[..., hidden]`` of ``symlog(obs)``."""
        lead = obs.shape[: obs.ndim - 1]
        return self.encoder(symlog(obs.reshape(lead + (-1,)).astype(jnp.float32)))

    def step(self, h: jax.Array, z: jax.Array, action: jax.Array) -> jax.Array:
        """Deterministic transition ``h' = GRU(h, [z, a])``."""
        return self.gru(h, self.img_in(jnp.concatenate([z, action], -1)))

    def _logits(self, x: jax.Array) -> jax.Array:
        return x.reshape(x.shape[:-1] + (self.groups, self.classes))

    def prior(self, h: jax.Array) -> jax.Array:
        """Prior logits ``[..., C, K]`` of ``z`` given ``h`` (the dynamics predictor)."""
        return self._logits(self.prior_net(h))

    def posterior(self, h: jax.Array, embed: jax.Array) -> jax.Array:
        """Posterior logits ``[..., C, K]`` of ``z`` given ``h`` and the observation."""
        return self._logits(self.post_net(jnp.concatenate([h, embed], -1)))

    def heads(self, feat: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``feat [..., F]`` -> (symlog obs prediction, reward logits [..., bins], cont logit)."""
        return self.decoder(feat), self.reward_head(feat), self.cont_head(feat)[..., 0]

    def __call__(self, obs: jax.Array, action: jax.Array) -> tuple[jax.Array, ...]:
        """Touches every submodule (used by ``init``)."""
        e = self.encode(obs)
        h = jnp.zeros(obs.shape[:1] + (self.deter,), jnp.float32)
        z = jnp.zeros(obs.shape[:1] + (self.groups * self.classes,), jnp.float32)
        h = self.step(h, z, action)
        post = self.posterior(h, e)
        feat = jnp.concatenate([h, z], -1)
        return (self.prior(h), post) + self.heads(feat)


class ActorNet(nn.Module):
    """Policy head on latent features: logits ``[..., A]`` or (mean, raw std) ``[..., D]``."""

    hidden: int
    layers: int
    act_dim: int
    discrete: bool

    @nn.compact
    def __call__(self, feat: jax.Array) -> jax.Array:
        out = self.act_dim if self.discrete else 2 * self.act_dim
        return _mlp(self.hidden, self.layers, out)(feat)


class CriticNet(nn.Module):
    """Twohot-symlog value head, zero-initialised output (predicts exactly 0 at init)."""

    hidden: int
    layers: int
    num_bins: int

    @nn.compact
    def __call__(self, feat: jax.Array) -> jax.Array:
        return _mlp(self.hidden, self.layers, self.num_bins, zero_out=True)(feat)
