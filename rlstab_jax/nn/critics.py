"""Critic ensembles: N independently initialised Q-networks (scalar Q or M quantiles).

Field report 003 §1-2: the twin critics ``q1``/``q2`` of the original agent produced identical
values because both were built from the same seed; the fix was to seed ``q2`` differently. Here
the ensemble is one ``nn.vmap`` over a Q-network with ``variable_axes={'params': 0}`` and
``split_rngs={'params': True, 'dropout': True}``: every member draws its own initial weights
(and its own dropout masks), so members differ at init by construction.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rlstab_jax.nn.mlp import MLP


class QNetwork(nn.Module):
    """One Q-network ``Q(features, action)``.

    Attributes:
      hidden: hidden widths.
      n_outputs: 1 for a scalar Q, M for M quantiles (TQC).
      activation, layer_norm, dropout, init_kind: see ``MLP`` (DroQ: ``layer_norm=True``,
        ``dropout=0.01``).
    """

    hidden: Sequence[int]
    n_outputs: int = 1
    activation: str = "relu"
    layer_norm: bool = False
    dropout: float = 0.0
    init_kind: str = "lecun"

    @nn.compact
    def __call__(self, features: jax.Array, action: jax.Array,
                 deterministic: bool = True) -> jax.Array:
        """``features [B, F]``, ``action [B, D]`` -> ``[B]`` (scalar) or ``[B, M]`` (quantiles)."""
        x = jnp.concatenate([features, action], axis=-1)
        out = MLP(self.hidden, out_dim=self.n_outputs, activation=self.activation,
                  layer_norm=self.layer_norm, dropout=self.dropout, init_kind=self.init_kind,
                  name="mlp")(x, deterministic=deterministic)
        return out[..., 0] if self.n_outputs == 1 else out


class CriticEnsemble(nn.Module):
    """``n_critics`` Q-networks with independent parameters, evaluated in one vmapped call.

    Attributes:
      n_critics: ensemble size N (2 for clipped double-Q, 10 for REDQ, 2-5 for TQC).
      hidden, n_outputs, activation, layer_norm, dropout, init_kind: per-member ``QNetwork`` config.
    """

    n_critics: int
    hidden: Sequence[int]
    n_outputs: int = 1
    activation: str = "relu"
    layer_norm: bool = False
    dropout: float = 0.0
    init_kind: str = "lecun"

    @nn.compact
    def __call__(self, features: jax.Array, action: jax.Array,
                 deterministic: bool = True) -> jax.Array:
        """Evaluate every member on the same inputs.

        Args:
          features: encoder features ``[B, F]`` (shared by all members).
          action: actions ``[B, D]`` in ``[-1, 1]``.
          deterministic: disable dropout; with dropout on, each member draws its own mask
            (needs a ``'dropout'`` rng).

        Returns:
          ``[N, B]`` Q-values or ``[N, B, M]`` quantiles.
        """
        # With LayerNorm or dropout, give every member its own copy of the (shared) inputs:
        # with unbatched inputs XLA merges the N first-layer matmuls into one ``[B, N*H]``
        # product and then runs every later elementwise/LayerNorm fusion of that layer
        # (forward and backward) through a ``[B, N, H] -> [N, B, H]`` transpose, which
        # dominated the DroQ update on CPU. Plain Q-networks keep the merged matmul (faster).
        per_member = self.layer_norm or self.dropout > 0.0
        ensemble = nn.vmap(
            QNetwork,
            variable_axes={"params": 0},
            split_rngs={"params": True, "dropout": True},
            in_axes=(0, 0, None) if per_member else None,
            out_axes=0,
            axis_size=self.n_critics,
        )
        if per_member:
            n = self.n_critics
            features = jnp.broadcast_to(features, (n, *features.shape))
            action = jnp.broadcast_to(action, (n, *action.shape))
        return ensemble(self.hidden, self.n_outputs, self.activation, self.layer_norm,
                        self.dropout, self.init_kind, name="q")(features, action, deterministic)
