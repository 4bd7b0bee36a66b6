"""History context: a small transformer over the last K (obs, action) pairs, and FiLM heads.

The context embedding ``z`` summarises recent dynamics; ``FiLMGenerator`` turns it into one
``(gamma, beta)`` pair per actor hidden layer (``nn.mlp.apply_film``). Field report 001 §3:
dropout inside the context transformer made Bellman targets noisy moving targets, so the
transformer has no dropout at all (DroQ's dropout belongs to the Q-heads only).

Observation layout (produced by ``rlstab_jax.envs.wrappers.HistoryContext``):
``[obs_t (O), (obs_{t-K}, act_{t-K}), ..., (obs_{t-1}, act_{t-1})]`` flattened to
``O + K * (O + D)`` floats, oldest pair first, zero-filled before the episode start.
``split_context_obs`` inverts it.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def context_obs_dim(total_dim: int, act_dim: int, k: int) -> int:
    """Size O of the current observation inside a ``HistoryContext`` observation.

    Raises:
      ValueError: if ``total_dim`` is not ``O + k * (O + act_dim)`` for an integer O >= 1.
    """
    rest = total_dim - k * act_dim
    if k < 1 or rest <= 0 or rest % (k + 1):
        raise ValueError(f"observation size {total_dim} is not O + {k}*(O + {act_dim}) for any "
                         f"O >= 1; wrap the env with HistoryContext(env, {k})")
    return rest // (k + 1)


def split_context_obs(obs: jax.Array, act_dim: int, k: int) -> tuple[jax.Array, jax.Array]:
    """Split a ``HistoryContext`` observation into ``(obs_t [B, O], history [B, K, O + D])``."""
    o = context_obs_dim(obs.shape[-1], act_dim, k)
    current = obs[..., :o]
    history = jnp.reshape(obs[..., o:], (*obs.shape[:-1], k, o + act_dim))
    return current, history


class ContextEncoder(nn.Module):
    """Pre-norm transformer encoder ``history [B, K, P] -> z [B, d_model]`` without dropout.

    Attributes:
      d_model: embedding width.
      n_heads: attention heads.
      n_layers: transformer blocks.
      ff_dim: feed-forward width.
    """

    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 1
    ff_dim: int = 128

    @nn.compact
    def __call__(self, history: jax.Array) -> jax.Array:
        """Encode ``history [B, K, P]`` (oldest first) into ``z [B, d_model]`` (mean-pooled)."""
        k = history.shape[-2]
        h = nn.Dense(self.d_model, name="embed")(history.astype(jnp.float32))
        pos = self.param("pos", nn.initializers.normal(0.02), (k, self.d_model))
        h = h + pos
        for i in range(self.n_layers):
            a = nn.LayerNorm(name=f"ln_attn_{i}")(h)
            # dropout_rate=0 and deterministic: field report 001 §3.
            a = nn.MultiHeadDotProductAttention(num_heads=self.n_heads, dropout_rate=0.0,
                                                deterministic=True, name=f"attn_{i}")(a, a)
            h = h + a
            f = nn.LayerNorm(name=f"ln_ff_{i}")(h)
            f = nn.Dense(self.ff_dim, name=f"ff_in_{i}")(f)
            f = nn.Dense(self.d_model, name=f"ff_out_{i}")(nn.gelu(f))
            h = h + f
        return nn.LayerNorm(name="ln_out")(h).mean(axis=-2)


class FiLMGenerator(nn.Module):
    """``z [B, Z] -> ((gamma_i [B, H_i], beta_i [B, H_i]) for each actor hidden layer)``.

    The output layers are zero-initialised, so FiLM starts as the identity
    (``h * (1 + 0) + 0``) and the actor begins as a plain MLP.

    Attributes:
      widths: actor hidden widths ``H_i``.
    """

    widths: Sequence[int]

    @nn.compact
    def __call__(self, z: jax.Array) -> tuple[tuple[jax.Array, jax.Array], ...]:
        out = []
        for i, w in enumerate(self.widths):
            gb = nn.Dense(2 * w, kernel_init=nn.initializers.zeros, name=f"film_{i}")(z)
            out.append((gb[..., :w], gb[..., w:]))
        return tuple(out)
