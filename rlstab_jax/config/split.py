"""Split an agent config into a frozen static part and a numeric hyper-parameter pytree.

A dataclass field marked with ``hparam()`` is a vmappable float32 leaf (learning rates,
gamma, tau, ...). Everything else is static: shapes, counts and switches that change the
compiled graph. ``jax.vmap(train)(hparams_batch, keys)`` then sweeps seeds and values in one
compiled call.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

HPARAM = "hparam"


def hparam(default: float, **kwargs: Any) -> Any:
    """A dataclass field holding a numeric hyper-parameter (a vmappable pytree leaf)."""
    metadata = dict(kwargs.pop("metadata", {}) or {})
    metadata[HPARAM] = True
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def hparam_names(cfg_cls_or_obj: Any) -> tuple[str, ...]:
    """Names of the fields marked ``hparam()``."""
    return tuple(f.name for f in dataclasses.fields(cfg_cls_or_obj) if f.metadata.get(HPARAM))


def extract_hparams(cfg: Any) -> dict[str, jnp.ndarray]:
    """The hyper-parameter pytree of ``cfg``: ``{name: float32 scalar}``."""
    return {name: jnp.asarray(getattr(cfg, name), dtype=jnp.float32) for name in hparam_names(cfg)}
