"""Orthogonal initialisers that stay safe when the init is vmapped over seeds on CPU.

Failure it prevents: a whole process hanging forever at the first program of a multi-seed
run. ``vmap(init)`` turns every orthogonal initialiser's QR into a *batched* QR. On XLA:CPU
(jaxlib 0.10.2) the batched QR kernel (``jax::QrFactorizationKernel``) runs on an intra-op
pool thread and fans the batch out with ``ParallelBatchMap`` onto the same pool, then waits
(``BlockingCounter::Wait``). When two such QRs run concurrently (independent init thunks,
e.g. the LSTM's recurrent kernel and a head's kernel) they occupy both threads of a 2-core
pool and wait for sub-tasks that can no longer run: a deadlock with every thread idle
(``gdb``: both ``tf_XLAEigen`` threads in ``QrFactorizationKernel -> BlockingCounter::Wait``).
Seen here with the multi-head LSTM PPO on Scaffold-v0 at 2-5 seeds in most runs; the XLA
flags ``--xla_cpu_enable_concurrency_optimized_scheduler=false`` and
``--xla_cpu_multi_thread_eigen=false`` only made it rarer.

The fix: the initialiser is a ``custom_vmap`` whose batching rule maps the *unbatched*
initialiser over the batch with ``lax.map``, so each QR is a single matrix and never fans out.
Values are exactly those of ``jax.nn.initializers.orthogonal`` (the same function is called
on the same keys), so checkpoints and golden values do not change; init runs once per run,
so the sequential map costs nothing measurable.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

Initializer = Callable[..., jax.Array]


def sequential_under_vmap(init: Initializer) -> Initializer:
    """Wrap ``init(key, shape, dtype)`` so that ``vmap`` over keys runs one key at a time."""

    def wrapped(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        shape = tuple(int(s) for s in shape)

        @jax.custom_batching.custom_vmap
        def one(k):
            return init(k, shape, dtype)

        @one.def_vmap
        def _rule(axis_size, in_batched, k):  # only called when the key is batched
            return jax.lax.map(one, k), True

        return one(key)

    return wrapped


def orthogonal(scale: float = 1.0, column_axis: int = -1) -> Initializer:
    """``jax.nn.initializers.orthogonal(scale, column_axis)``, safe under ``vmap`` (see module)."""
    return sequential_under_vmap(jax.nn.initializers.orthogonal(scale, column_axis))
