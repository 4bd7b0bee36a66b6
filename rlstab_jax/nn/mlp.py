"""A configurable MLP: hidden sizes, activation, optional LayerNorm, dropout and FiLM.

Used for the actor trunk, the Q-networks of the critic ensemble and vector encoders. The
per-layer order is ``Dense -> Dropout -> LayerNorm -> FiLM -> activation`` (the DroQ layout:
dropout and LayerNorm in the Q-heads only; field report 001 §3 keeps dropout out of the
context encoder). Dropout and LayerNorm are the CPU-fast versions of ``rlstab_jax.nn.layers``
(same rng stream and parameter layout as Flax's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rlstab_jax.nn.init import orthogonal
from rlstab_jax.nn.layers import Dropout, LayerNorm

FiLMParams = Sequence[tuple[jax.Array, jax.Array]]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "silu": nn.silu,
    "tanh": jnp.tanh,
    "elu": nn.elu,
    "gelu": nn.gelu,
}


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """The activation function called ``name`` (``relu``, ``silu``, ``tanh``, ``elu``, ``gelu``).

    Raises:
      ValueError: for an unknown name (configs validate this earlier with a ConfigError).
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def kernel_init(kind: str, scale: float = 1.0) -> Callable[..., jax.Array]:
    """Kernel initialiser: ``"orthogonal"`` with gain ``scale`` or ``"lecun"`` (Flax default).

    Orthogonal init with explicit gains follows field report 004 (orthogonal init gains);
    ``lecun`` scales the variance by ``scale**2``.
    """
    if kind == "orthogonal":
        return orthogonal(scale)  # vmap-safe on CPU (rlstab_jax.nn.init)
    if kind == "lecun":
        return nn.initializers.variance_scaling(scale**2, "fan_in", "truncated_normal")
    raise ValueError(f"unknown init {kind!r}; known: orthogonal, lecun")


def apply_film(h: jax.Array, film: tuple[jax.Array, jax.Array] | None) -> jax.Array:
    """Feature-wise linear modulation ``h * (1 + gamma) + beta``.

    ``gamma`` is an offset around 1 so that a zero-initialised FiLM generator starts as the
    identity (the actor behaves like a plain MLP until the context is informative).

    Args:
      h: activations ``[B, H]``.
      film: ``(gamma [B, H], beta [B, H])`` or None (no modulation).
    """
    if film is None:
        return h
    gamma, beta = film
    return h * (1.0 + gamma) + beta


class MLP(nn.Module):
    """Multi-layer perceptron ``[B, F] -> [B, hidden[-1]]`` (or ``[B, out_dim]``).

    Attributes:
      hidden: hidden layer widths; each is ``Dense -> Dropout -> LayerNorm -> FiLM -> act``.
      out_dim: optional final linear layer width (no activation); None keeps the last hidden.
      activation: activation name (see ``ACTIVATIONS``).
      layer_norm: LayerNorm after each hidden Dense (DroQ Q-heads).
      dropout: dropout rate after each hidden Dense (DroQ; 0 disables; static).
      init_kind: ``"lecun"`` or ``"orthogonal"`` kernel init for hidden layers.
      out_scale: init scale of the output layer (small values keep initial outputs near 0).
    """

    hidden: Sequence[int]
    out_dim: int | None = None
    activation: str = "relu"
    layer_norm: bool = False
    dropout: float = 0.0
    init_kind: str = "lecun"
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array, film: FiLMParams | None = None,
                 deterministic: bool = True) -> jax.Array:
        """Apply the MLP.

        Args:
          x: inputs ``[..., F]``.
          film: optional ``(gamma, beta)`` per hidden layer (``len(film) == len(hidden)``).
          deterministic: disable dropout (evaluation and target computation in plain SAC).

        Returns:
          ``[..., hidden[-1]]`` or ``[..., out_dim]``.
        """
        if film is not None and len(film) != len(self.hidden):
            raise ValueError(f"got {len(film)} FiLM layers for {len(self.hidden)} hidden layers")
        act = get_activation(self.activation)
        gain = 2.0**0.5 if self.init_kind == "orthogonal" else 1.0
        h = x
        for i, width in enumerate(self.hidden):
            h = nn.Dense(width, kernel_init=kernel_init(self.init_kind, gain))(h)
            if self.dropout > 0.0:
                h = Dropout(self.dropout)(h, deterministic=deterministic)
            if self.layer_norm:
                h = LayerNorm()(h)
            h = apply_film(h, None if film is None else film[i])
            h = act(h)
        if self.out_dim is not None:
            h = nn.Dense(self.out_dim, kernel_init=kernel_init(self.init_kind, self.out_scale))(h)
        return h
