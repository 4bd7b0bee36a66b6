"""PPO networks: the flat MLP actor-critic and the recurrent multi-head net of field report 004.

One module, :class:`PPONet`, with three methods the agent composes the same way for both:
``core(obs, carry, is_first) -> (carry, z)``, ``policy(z) -> logits per head`` (or the Box
mean) and ``value(z, op) -> [...]``. Leading dims are free (``[B]`` or ``[L, B]``), so the
same code serves acting and the minibatch update.

``network="mlp"``: ``z`` is the flat observation; separate actor and critic MLPs (orthogonal
init, gain sqrt(2) hidden, 0.01 policy output, 1.0 value output; CleanRL/PureJaxRL layout).

``network="lstm"`` (report 004 "Network Architecture Summary"): blueprint embedding
(N(0, 0.02) init) of the obs ids, concat, feature net Linear -> LayerNorm -> ReLU, an LSTM
cell whose carry is zeroed where ``is_first`` (episode starts), post-LSTM LayerNorm, heads
Linear -> ReLU -> Linear (``deep_heads`` 3 layers: hidden -> hidden // 4 -> k), value head
``Q(s, op)`` = Linear -> ReLU -> Linear on ``[z, one_hot(op)]``. Gains sqrt(2) hidden,
0.01 head outputs, 1.0 value output (report 004 "Orthogonal init gains").
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from rlstab_jax.agents.ppo.config import PPOConfig
from rlstab_jax.agents.ppo.heads import HeadLayout
from rlstab_jax.nn.init import orthogonal as orth  # vmap-safe on CPU (rlstab_jax.nn.init)
from rlstab_jax.nn.mlp import MLP, get_activation

SQRT2 = math.sqrt(2.0)


class Head(nn.Module):
    """Linear -> ReLU -> Linear (or the 3-layer ``deep`` head) to ``k`` logits."""

    widths: tuple[int, ...]
    k: int

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        for w in self.widths:
            z = nn.relu(nn.Dense(w, kernel_init=orth(SQRT2))(z))
        return nn.Dense(self.k, kernel_init=orth(0.01))(z)


class PPONet(nn.Module):
    layout: HeadLayout
    cfg: PPOConfig
    op_conditioned: bool

    def setup(self) -> None:
        c, lay = self.cfg, self.layout
        if c.network == "mlp":
            self.actor = MLP(c.hidden, None, activation=c.activation, init_kind="orthogonal")
            self.critic = MLP(c.hidden, 1, activation=c.activation, init_kind="orthogonal")
            self.heads = {h: nn.Dense(k, kernel_init=orth(0.01))
                          for h, k in zip(lay.names, lay.sizes)}
            return
        hh = c.head_hidden or max(1, c.lstm_hidden // 2)
        if lay.n_ids:
            self.embed = nn.Embed(lay.vocab, c.embed_dim,
                                  embedding_init=nn.initializers.normal(0.02))
        self.feat = nn.Dense(c.feature_dim, kernel_init=orth(SQRT2))
        self.feat_ln = nn.LayerNorm()
        self.lstm = nn.OptimizedLSTMCell(c.lstm_hidden, recurrent_kernel_init=orth())
        self.core_ln = nn.LayerNorm()
        self.heads = {
            h: Head((c.lstm_hidden, max(1, c.lstm_hidden // 4)) if h in c.deep_heads else (hh,), k)
            for h, k in zip(lay.names, lay.sizes)}
        self.v_hidden = nn.Dense(hh, kernel_init=orth(SQRT2))
        self.v_out = nn.Dense(1, kernel_init=orth(1.0))

    def __call__(self, obs, carry, is_first):
        carry, z = self.core(obs, carry, is_first)
        op = jnp.zeros(z.shape[:-1], jnp.int32) if self.op_conditioned else None
        return carry, self.policy(z), self.value(z, op)

    def core(self, obs: jax.Array, carry: Any, is_first: jax.Array) -> tuple[Any, jax.Array]:
        """``obs[..., *obs_shape] -> (carry, z[..., Z])``; the LSTM resets where ``is_first``."""
        feats, ids, _ = self.layout.split_obs(obs)
        if self.cfg.network == "mlp":
            x = feats if ids is None else jnp.concatenate([feats, ids.astype(jnp.float32)], -1)
            return carry, x
        x = feats
        if ids is not None:
            emb = self.embed(jnp.clip(ids, 0, self.layout.vocab - 1))
            x = jnp.concatenate([x, emb.reshape(emb.shape[:-2] + (-1,))], -1)
        x = nn.relu(self.feat_ln(self.feat(x)))
        keep = (~is_first.astype(bool))[..., None].astype(x.dtype)
        carry = jax.tree.map(lambda a: a * keep, carry)
        carry, y = self.lstm(carry, x)
        return carry, self.core_ln(y)

    def policy(self, z: jax.Array) -> dict[str, jax.Array]:
        """Logits ``{head: [..., k]}`` (a Box: ``{"action": mean [..., D]}``)."""
        h = self.actor(z) if self.cfg.network == "mlp" else z
        return {name: head(h) for name, head in self.heads.items()}

    def value(self, z: jax.Array, op: jax.Array | None) -> jax.Array:
        """``V(s)`` or, op-conditioned, ``Q(s, op)`` with the hard one-hot of ``op``."""
        if self.op_conditioned:
            z = jnp.concatenate([z, jax.nn.one_hot(op, self.layout.n_ops, dtype=z.dtype)], -1)
        if self.cfg.network == "mlp":
            return self.critic(z)[..., 0]
        act = get_activation("relu")
        return self.v_out(act(self.v_hidden(z)))[..., 0]
