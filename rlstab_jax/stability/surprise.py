"""World-model "surprise" telemetry: log-ratio of each current loss to its EMA.

Field report 002_f727d2bd93148014.txt ("WM Surprise Metrics", "WM-Actor Lag Analysis"):
the actor outran the world model (dreams went stale, performance collapsed while the
critic's values kept rising). A spike of ``log(loss / EMA(loss))`` flags that the latest
batch is worse than usual before returns drop; the report suggests ``log(1.2)`` as an
alarm threshold (and warns that a threshold too low, 0.02, fires constantly).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
from flax import struct

from rlstab_jax.config.errors import ConfigError, did_you_mean

_EPS = 1e-8


@struct.dataclass
class SurpriseState:
    """EMA of each loss component, fixed key set.

    Attributes:
      ema: ``{component: [] float32}`` EMA per loss component.
      ready: ``[]`` bool, False until the first update has set the EMAs.
    """

    ema: dict[str, jax.Array]
    ready: jax.Array


def surprise_init(names: Sequence[str]) -> SurpriseState:
    """An empty tracker for the given loss components (e.g. reward, continue, kl_dyn).

    Part of the world-model surprise telemetry of field report 002_f727d2bd93148014.txt
    ("WM Surprise Metrics").

    Args:
      names: component names; fixed for the life of the state (pytree structure).

    Returns:
      ``SurpriseState`` with zero EMAs and ``ready=False``.

    Raises:
      ConfigError: if ``names`` is empty or has duplicates.
    """
    names = list(names)
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"surprise_init: names={names} must be non-empty and unique")
    return SurpriseState(ema={n: jnp.zeros((), jnp.float32) for n in names},
                         ready=jnp.zeros((), bool))


def surprise_update(
    state: SurpriseState,
    losses: Mapping[str, jax.Array],
    beta: float | jax.Array = 0.99,
    prefix: str = "surprise",
) -> tuple[SurpriseState, dict[str, jax.Array]]:
    """Log-ratios of the current losses to their EMAs, then fold them into the EMAs.

    For each component ``log_ratio = log(current / ema)`` against the EMA *before* this
    batch, then ``ema <- beta * ema + (1 - beta) * current``. The first call sets each EMA
    to its value and reports ratios of 0 with ``ready = 0``. ``total_log_ratio`` compares
    the summed losses with the summed EMAs (the EMA of the sum); ``max_component_log_ratio``
    is the largest component ratio. Losses must be non-negative (values are floored at
    1e-8 inside the log); no gradient flows. Detects world-model lag behind the actor
    (field report 002_f727d2bd93148014.txt, "WM Surprise Metrics", ``train.surprise_ema_beta``
    0.99).

    Args:
      state: tracker state.
      losses: ``{component: [] loss}`` with exactly the names given to :func:`surprise_init`
        (do not include a separate total: it is derived).
      beta: EMA decay.
      prefix: metric namespace.

    Returns:
      ``(state, metrics)`` with ``{prefix}/ready`` (0 on the initialising call, else 1),
      ``{prefix}/total_log_ratio``, ``{prefix}/max_component_log_ratio`` and
      ``{prefix}/{component}_log_ratio``.

    Raises:
      ConfigError: if the component names differ from the state's.
    """
    if set(losses) != set(state.ema):
        extra = sorted(set(losses) - set(state.ema))
        hint = did_you_mean(extra[0], state.ema) if extra else ""
        raise ConfigError(
            f"surprise_update: loss names {sorted(losses)} != tracked {sorted(state.ema)}{hint}")
    names = sorted(state.ema)
    current = {n: jax.lax.stop_gradient(jnp.asarray(losses[n], jnp.float32)) for n in names}
    for n in names:
        if current[n].shape != ():
            raise ConfigError(f"surprise_update: loss {n!r} has shape {current[n].shape}, want ()")
    ready = state.ready
    # Before the first update the EMA is the current value itself, so every ratio is 0.
    prev = {n: jnp.where(ready, state.ema[n], current[n]) for n in names}

    def log_ratio(cur, ema):
        return jnp.log(jnp.maximum(cur, _EPS)) - jnp.log(jnp.maximum(ema, _EPS))

    ratios = {n: log_ratio(current[n], prev[n]) for n in names}
    total = log_ratio(sum(current.values()), sum(prev.values()))
    beta = jnp.asarray(beta, jnp.float32)
    new_ema = {n: jnp.where(ready, beta * prev[n] + (1.0 - beta) * current[n], current[n])
               for n in names}
    metrics = {
        f"{prefix}/ready": ready.astype(jnp.float32),
        f"{prefix}/total_log_ratio": total,
        f"{prefix}/max_component_log_ratio": jnp.max(jnp.stack([ratios[n] for n in names])),
    }
    metrics.update({f"{prefix}/{n}_log_ratio": ratios[n] for n in names})
    return SurpriseState(ema=new_ema, ready=jnp.ones((), bool)), metrics
