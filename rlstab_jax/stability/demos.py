"""Demonstration replay: decaying demo sampling weight and fixed-shape batch mixing.

Field report 003_51fc783968b47744.txt §9 (imitation bias: demo sampling weight,
``debug/demo_fraction_in_batch``) and §11C (the fixed weight let demos dominate the
batch at ~0.93 for the whole run; the fix decays the weight linearly to 1).
"""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp

__all__ = ["demo_sampling_weight", "demo_fraction", "mix_demo_batch"]


def demo_sampling_weight(
    n_samples: chex.Numeric, initial_weight: chex.Numeric, decay_samples: chex.Numeric
) -> jax.Array:
    """Demo sampling weight decaying linearly from ``initial_weight`` to 1.

    ``w = 1 + (w0 - 1) * (1 - min(1, n_samples / decay_samples))``.
    ``decay_samples <= 0`` means NO decay (``w = w0`` forever): the fixed-weight form the
    report replaced, kept as the ablation baseline. All arguments may be traced.

    Failure prevented: demos never losing influence, a permanent mismatch between the
    training distribution and the agent's own behaviour (run Hv2: demo fraction ~0.93
    throughout, Q divergence, return collapse); field report 003_51fc783968b47744.txt
    §11C, ``DEMO_WEIGHT_DECAY_SAMPLES`` (default 200000).

    Args:
      n_samples: samples in the buffer (or env steps) so far, ``>= 0``.
      initial_weight: ``w0`` (report: ``DEMO_SAMPLING_WEIGHT`` 2.5).
      decay_samples: samples after which the weight reaches 1.

    Returns:
      float32 scalar (or the broadcast shape of the inputs).
    """
    n = jnp.asarray(n_samples, jnp.float32)
    w0 = jnp.asarray(initial_weight, jnp.float32)
    decay = jnp.asarray(decay_samples, jnp.float32)
    on = decay > 0
    progress = jnp.where(on, jnp.minimum(1.0, n / jnp.where(on, decay, 1.0)), 0.0)
    return 1.0 + (w0 - 1.0) * (1.0 - progress)


def demo_fraction(weight: chex.Numeric, n_demo: chex.Numeric, n_agent: chex.Numeric) -> jax.Array:
    """Expected fraction of demo rows when each demo row is ``weight`` times as likely.

    ``f = w * n_demo / (w * n_demo + n_agent)``; 0 when there is nothing to sample
    (``w * n_demo + n_agent == 0``). Feed it to ``mix_demo_batch``.

    Failure prevented: an unmonitored, demo-dominated batch (field report
    003_51fc783968b47744.txt §9 ``debug/demo_fraction_in_batch``, §11C).

    Args:
      weight: demo sampling weight (``demo_sampling_weight``), ``>= 0``.
      n_demo: number of demo transitions stored, ``>= 0``.
      n_agent: number of agent transitions stored, ``>= 0``.

    Returns:
      float32 in ``[0, 1]``.
    """
    wd = jnp.asarray(weight, jnp.float32) * jnp.asarray(n_demo, jnp.float32)
    total = wd + jnp.asarray(n_agent, jnp.float32)
    return jnp.where(total > 0, wd / jnp.where(total > 0, total, 1.0), 0.0)


def _with_is_demo(batch, mask: jax.Array):
    """Sets an ``is_demo`` field/key to ``mask`` if the batch has one (dict, NamedTuple, dataclass)."""
    if isinstance(batch, dict):
        return {**batch, "is_demo": mask} if "is_demo" in batch else batch
    if hasattr(batch, "_replace") and "is_demo" in getattr(batch, "_fields", ()):
        return batch._replace(is_demo=mask)
    if dataclasses.is_dataclass(batch) and any(f.name == "is_demo" for f in dataclasses.fields(batch)):
        return dataclasses.replace(batch, is_demo=mask)
    return batch


def mix_demo_batch(
    key: chex.PRNGKey, agent_batch: chex.ArrayTree, demo_batch: chex.ArrayTree, frac: chex.Numeric
) -> tuple[chex.ArrayTree, jax.Array]:
    """Builds one batch whose row ``b`` comes from ``demo_batch`` with probability ``frac``.

    Row ``b`` is ``demo_batch[b]`` where ``Bernoulli(frac)`` fires, else ``agent_batch[b]``
    (``jnp.where`` per row, so shapes never change and it jits/vmaps). Both batches must
    have the same pytree structure with leaves ``[B, ...]`` (sample both at full size
    ``B``). If the batch has an ``is_demo`` field (``Transition``, a dict key, a
    NamedTuple or dataclass field) it is OVERWRITTEN with the bool row mask, so it is
    always true to where each row came from; other batches are returned as mixed.

    Failure prevented: demo influence that cannot be controlled or measured per batch
    (field report 003_51fc783968b47744.txt §9, §11C).

    Args:
      key: PRNG key.
      agent_batch: pytree of ``[B, ...]`` arrays.
      demo_batch: same structure and shapes.
      frac: demo probability per row in ``[0, 1]`` (``demo_fraction``), may be traced.

    Returns:
      ``(batch, demo_fraction_in_batch)``: the mixed batch and the realised fraction of
      demo rows (float32 scalar, the ``debug/demo_fraction_in_batch`` metric).
    """
    chex.assert_trees_all_equal_shapes_and_dtypes(agent_batch, demo_batch)
    leaves = jax.tree.leaves(agent_batch)
    if not leaves:
        raise ValueError("mix_demo_batch: agent_batch has no array leaves")
    chex.assert_equal_shape_prefix(leaves, 1)
    b = leaves[0].shape[0]
    mask = jax.random.uniform(key, (b,)) < jnp.asarray(frac, jnp.float32)

    def pick(a, d):
        return jnp.where(mask.reshape((b,) + (1,) * (a.ndim - 1)), d, a)

    mixed = jax.tree.map(pick, agent_batch, demo_batch)
    return _with_is_demo(mixed, mask), jnp.mean(mask.astype(jnp.float32))
