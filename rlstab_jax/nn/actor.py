"""Squashed-Gaussian actor: a (FiLM-able) trunk for the mean and a log-std head.

Two switches reproduce field report 000's fixes and their "off" variants:

* ``std_head="decoupled"`` (Fix A): log-std comes from its own small ``std_net``
  (``Dense(64) -> SiLU -> Dense(D)``) on the raw encoder features, so the features that make
  the mean confident cannot drag the log-std down with them. ``"coupled"`` is the original
  shared head on the trunk output.
* ``log_std_param="tanh"`` (Fix B): ``stability.policy.tanh_log_std`` maps the raw output
  smoothly into ``[log_std_min, log_std_max]``; ``"clamp"`` is the hard clip whose zero
  gradient at the bounds let entropy collapse.

The bounds and the initial log-std are arguments (traced hyper-parameters; field report 001 §1
moved LOG_STD_MIN from -2 to -20). Sampling and log-probs live in ``stability.policy``.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rlstab_jax.nn.mlp import MLP, FiLMParams, kernel_init
from rlstab_jax.stability import policy


class SquashedGaussianActor(nn.Module):
    """``features [B, F] -> (mean [B, D], log_std [B, D])``.

    Attributes:
      hidden: trunk widths (the FiLM-modulated layers).
      act_dim: action dimension D.
      std_head: ``"decoupled"`` (field report 000 Fix A) or ``"coupled"`` (off variant).
      log_std_param: ``"tanh"`` (field report 000 Fix B) or ``"clamp"`` (off variant).
      std_hidden: width of the decoupled ``std_net`` (64 in the report).
      activation, layer_norm, init_kind: trunk options (see ``MLP``).
    """

    hidden: Sequence[int]
    act_dim: int
    std_head: str = "decoupled"
    log_std_param: str = "tanh"
    std_hidden: int = 64
    activation: str = "relu"
    layer_norm: bool = False
    init_kind: str = "lecun"

    @nn.compact
    def __call__(self, features: jax.Array, log_std_min: jax.Array | float,
                 log_std_max: jax.Array | float, film: FiLMParams | None = None,
                 log_std_init: jax.Array | float = 0.0) -> tuple[jax.Array, jax.Array]:
        """Compute the Gaussian parameters (before the tanh squash).

        Args:
          features: encoder features ``[B, F]`` (already stop-gradiented by the caller when
            the encoder is shared and detached; field report 001 §4).
          log_std_min, log_std_max: log-std bounds (scalars, may be traced).
          film: optional ``(gamma, beta)`` per trunk layer from the context encoder.
          log_std_init: log-std produced by a zero raw output (the value at init). Without
            this centring the tanh form starts at the midpoint of the bounds, e.g.
            ``(-20 + 2) / 2 = -9`` (std 1e-4) with report 001's ``LOG_STD_MIN=-20``: a
            near-deterministic initial policy.

        Returns:
          ``(mean [B, D], log_std [B, D])`` with ``log_std`` in the bounds.
        """
        trunk = MLP(self.hidden, activation=self.activation, layer_norm=self.layer_norm,
                    init_kind=self.init_kind, name="trunk")(features, film)
        mean = nn.Dense(self.act_dim, kernel_init=kernel_init(self.init_kind, 0.01),
                        name="mean")(trunk)
        if self.std_head == "decoupled":
            h = nn.silu(nn.Dense(self.std_hidden, kernel_init=kernel_init(self.init_kind),
                                 name="std_net_0")(features))
            raw = nn.Dense(self.act_dim, kernel_init=kernel_init(self.init_kind, 0.01),
                           name="std_net_1")(h)
        elif self.std_head == "coupled":
            raw = nn.Dense(self.act_dim, kernel_init=kernel_init(self.init_kind, 0.01),
                           name="log_std")(trunk)
        else:
            raise ValueError(f"std_head must be decoupled|coupled, got {self.std_head!r}")
        if self.log_std_param == "tanh":
            # Offset so that raw = 0 maps to log_std_init (clipped strictly inside the bounds).
            width = log_std_max - log_std_min
            centre = jnp.clip((log_std_init - log_std_min) / width, 1e-3, 1.0 - 1e-3)
            log_std = policy.tanh_log_std(raw + jnp.arctanh(2.0 * centre - 1.0), log_std_min,
                                          log_std_max)
        elif self.log_std_param == "clamp":
            log_std = policy.clamp_log_std(raw + log_std_init, log_std_min, log_std_max)
        else:
            raise ValueError(f"log_std_param must be tanh|clamp, got {self.log_std_param!r}")
        return mean, log_std
