"""Map a per-seed function over the leading seed axis of a seed-batched pytree.

With several seeds this is ``jax.vmap``. With one seed it squeezes the axis, calls the function
unbatched and adds the axis back: XLA then compiles the plain single-seed program. Measured on CPU
(bench/results/sac_profile_calls.json), ``vmap`` over an axis of size one made LayerNorm and
dropout Q-networks (DroQ) up to 1.6x slower than the same update without it, because batching
rules rewrite reductions and random-bit generation for a batch dimension that does not exist.
"""

from __future__ import annotations

from typing import Any, Callable

import jax


def seed_map(fn: Callable[..., Any], n_seeds: int) -> Callable[..., Any]:
    """``vmap(fn)`` over axis 0 of every argument and output, or a squeeze for ``n_seeds == 1``.

    All positional arguments must carry the seed axis; bind anything else with a closure.
    """
    if n_seeds != 1:
        return jax.vmap(fn)

    def one(*args: Any) -> Any:
        out = fn(*jax.tree.map(lambda x: x[0], args))
        return jax.tree.map(lambda x: x[None], out)

    return one
