"""Strong dtypes for carried state: keep the chunk function's input signature fixed.

gymnax (and other JAX env code) build reset states from Python scalars, e.g. Pendulum's
``last_u = 0.0``, which gives *weakly typed* ``float32`` leaves; after one env step the same
leaf is strongly typed (it comes from the action). ``jax.jit`` keys its cache on weak types, so
a chunk fed the freshly initialised state compiled once, and the state it returned compiled
the chunk a second time (the first gymnax chunk paid two full compiles).
"""

from __future__ import annotations

from typing import Any

import jax


def _strong(x: Any) -> Any:
    if not isinstance(x, jax.Array) and not hasattr(x, "dtype"):
        return x
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return x  # typed PRNG keys are never weak
    # ``convert_element_type`` to the same dtype is a no-op on the values but always returns a
    # strongly typed array (``jnp.asarray(x, x.dtype)`` would keep the weak type).
    return jax.lax.convert_element_type(x, x.dtype)


def strong_types(tree: Any) -> Any:
    """``tree`` with every array leaf strongly typed (same dtypes, shapes and values)."""
    return jax.tree.map(_strong, tree)


def has_weak_types(tree: Any) -> bool:
    """True iff some leaf of ``tree`` (arrays or abstract values) is weakly typed."""
    return any(getattr(getattr(x, "aval", x), "weak_type", False)
               for x in jax.tree.leaves(tree))
