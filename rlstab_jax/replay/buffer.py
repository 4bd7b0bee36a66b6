"""Replay on flashbax's trajectory buffer, with n-step windows folded into agent batches.

flashbax keeps replay a pure pytree (it rides the scan carry, vmaps over seeds and checkpoints
with the rest of the state); rows are stored per env step so an n-step window is one sampled
sequence of length n.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import chex
import flashbax as fbx
from flashbax.buffers import prioritised_trajectory_buffer as fbx_prioritised
import flax.struct
import jax
import jax.numpy as jnp

from rlstab_jax.agents.base import Batch, SeqBatch
from rlstab_jax.config.errors import ConfigError


@flax.struct.dataclass
class ReplayRow:
    """One env step as stored. ``next_obs`` is the true next observation (final obs at ends)."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    is_demo: jax.Array


def sequence_batch(seq: ReplayRow) -> SeqBatch:
    """Rows ``[..., T, ...]`` of consecutive env steps as a :class:`SeqBatch` with ``is_first``.

    ``is_first[..., 0]`` is True (no latent from before the window) and ``is_first[..., t]``
    is ``terminated | truncated`` of row ``t - 1``: one vectorised expression for the whole
    batch, no per-sequence Python loop (field report 002, "Vectorized Data Loading Bug Fix").
    """
    t_axis = seq.reward.ndim - 1
    done = jnp.logical_or(seq.terminated, seq.truncated)
    first = jnp.ones_like(jax.lax.slice_in_dim(done, 0, 1, axis=t_axis))
    is_first = jnp.concatenate(
        [first, jax.lax.slice_in_dim(done, 0, done.shape[t_axis] - 1, axis=t_axis)], axis=t_axis)
    return SeqBatch(obs=seq.obs, action=seq.action, reward=seq.reward, next_obs=seq.next_obs,
                    terminated=seq.terminated, truncated=seq.truncated, is_first=is_first)


def fold_nstep(seq: ReplayRow, gamma: jax.Array) -> Batch:
    """Fold windows ``[..., n, ...]`` of consecutive rows into n-step :class:`Batch` rows.

    The window stops at the first step whose episode ended (terminated or truncated): rewards
    after it belong to another episode. A terminated window does not bootstrap; a truncated one
    bootstraps from its true final observation with ``discount = gamma**(k+1)``.

    Args:
      seq: rows with leaves ``[..., n, ...]`` (time axis at position ``reward.ndim - 1``).
      gamma: discount factor (scalar, may be traced).

    Returns:
      A Batch with the time axis removed.
    """
    t_axis = seq.reward.ndim - 1
    n = seq.reward.shape[-1]
    ends = jnp.logical_or(seq.terminated, seq.truncated).astype(jnp.float32)
    # alive[j] = 1 while no earlier step in the window ended the episode.
    alive = jnp.cumprod(jnp.concatenate(
        [jnp.ones_like(ends[..., :1]), 1.0 - ends[..., :-1]], axis=-1), axis=-1)
    powers = gamma ** jnp.arange(n, dtype=jnp.float32)
    reward = jnp.sum(alive * powers * seq.reward, axis=-1)
    # Last index included: the first end, or n-1.
    last = jnp.where(jnp.any(ends > 0, axis=-1), jnp.argmax(ends > 0, axis=-1), n - 1)

    def pick(x: jax.Array) -> jax.Array:
        idx = last.reshape(last.shape + (1,) * (x.ndim - t_axis))
        return jnp.take_along_axis(x, idx, axis=t_axis).squeeze(t_axis)

    first = lambda x: jnp.take(x, 0, axis=t_axis)  # noqa: E731
    return Batch(obs=first(seq.obs), action=first(seq.action), reward=reward,
                 next_obs=pick(seq.next_obs), terminated=pick(seq.terminated),
                 discount=gamma ** (last.astype(jnp.float32) + 1.0),
                 is_demo=first(seq.is_demo).astype(jnp.float32))


@dataclasses.dataclass(frozen=True)
class Replay:
    """Pure replay functions for one seed: ``init(example_row)``, ``add``, ``sample``.

    ``sample(state, key, gamma)`` returns a Batch with leaves ``[U, B, ...]``, or with
    ``seq_len > 0`` a :class:`SeqBatch` with leaves ``[U, B, seq_len, ...]``.
    """

    buffer: Any
    n_envs: int
    updates: int
    batch_size: int
    n_step: int
    seq_len: int = 0
    priority_exponent: float | None = None  # None: uniform; else a prioritised buffer

    compact = False  # rows hold obs and next_obs (replay.compact.CompactReplay: one frame)

    @property
    def prioritised(self) -> bool:
        return self.priority_exponent is not None

    def init(self, example: ReplayRow) -> Any:
        state = self.buffer.init(example)
        if self.prioritised:  # rows stored before the first update: priority 1 (scaled)
            tree = state.sum_tree_state
            top = jnp.asarray(PRIORITY_SCALE, tree.max_recorded_priority.dtype)
            state = state.replace(sum_tree_state=tree.replace(max_recorded_priority=top))
        return state

    def cut(self, state: Any) -> Any:
        """End the live episodes at the newest row: a no-op here (next_obs is stored)."""
        return state

    def add(self, state: Any, rows: ReplayRow) -> Any:
        """Add one vector step; ``rows`` leaves are ``[n_envs, ...]``."""
        chex.assert_tree_shape_prefix(rows, (self.n_envs,))
        return self.buffer.add(state, jax.tree.map(lambda x: x[:, None], rows))

    def sample(self, state: Any, key: jax.Array, gamma: jax.Array) -> Batch:
        return self.sample_indexed(state, key, gamma)[0]

    def sample_indexed(self, state: Any, key: jax.Array, gamma: jax.Array
                       ) -> tuple[Batch, jax.Array | None]:
        """``sample`` plus the sampled items' buffer indices ``[U * B]`` (None if uniform),
        to hand back to :meth:`set_priorities`."""
        sample = self.buffer.sample(state, key)
        seq = sample.experience  # [U*B, n or seq_len, ...]
        batch = sequence_batch(seq) if self.seq_len else fold_nstep(seq, gamma)
        batch = jax.tree.map(
            lambda x: x.reshape((self.updates, self.batch_size) + x.shape[1:]), batch)
        return batch, (sample.indices if self.prioritised else None)

    def set_priorities(self, state: Any, indices: jax.Array, priorities: jax.Array) -> Any:
        """Write ``priorities[U, B]`` (``> 0``) for the items ``sample_indexed`` returned.

        Items sampled twice in one call keep the last value written. Sampling probability is
        ``priority ** priority_exponent / sum``; new items enter with the largest value so far.
        """
        chex.assert_shape(priorities, (self.updates, self.batch_size))
        weight = PRIORITY_SCALE * priorities.reshape(-1).astype(jnp.float32) \
            ** self.priority_exponent
        return fbx_prioritised.set_priorities(state, indices, weight, 1.0, _flashbax_device())

    def sum_tree(self, state: Any) -> Any:
        """The part of the state that ``set_priorities`` changes (None if uniform)."""
        return state.sum_tree_state if self.prioritised else None

    def with_sum_tree(self, state: Any, tree: Any) -> Any:
        return state.replace(sum_tree_state=tree) if self.prioritised else state


# flashbax 0.1.3 gives each new window the sum tree's largest recorded weight through
# ``jnp.full_like(item_indices, max_recorded_priority)``: the int32 dtype of the index array
# truncates it (2.7 -> 2; a weight below 1 would become 0, never sampled). Stored weights are
# therefore ``PRIORITY_SCALE * priority ** alpha`` (a common factor leaves the sampling
# probabilities unchanged), so the truncation costs at most 1/1024 of the largest weight, and
# the initial largest weight is PRIORITY_SCALE (priority 1), not 1. Weights must stay below
# 2**31 (int32): priority ** alpha < 2e6.
PRIORITY_SCALE = 1024.0


def _flashbax_device() -> str:
    """flashbax's name for the default backend (it picks its sum-tree kernels by it)."""
    backend = jax.default_backend()
    return "tpu" if backend == "tpu" else ("cpu" if backend == "cpu" else "gpu")


def make_replay(capacity: int, n_envs: int, updates: int, batch_size: int, n_step: int,
                seq_len: int = 0, *, compact: bool = False, frame_stack: int = 1,
                final_fraction: float = 0.01, priority_exponent: float | None = None) -> Any:
    """A replay of ``capacity`` rows per seed sampling ``updates`` batches of ``batch_size``.

    ``seq_len > 0`` samples fixed-length subsequences (any start, ``period=1``) for sequence
    models instead of n-step windows; flashbax draws them on device in one call.
    ``compact=True`` returns a :class:`rlstab_jax.replay.compact.CompactReplay` (one frame per
    row, ``next_obs`` and stacks of ``frame_stack`` frames rebuilt at sample time; same
    interface and batches).
    ``priority_exponent`` (``replay.priority``): a flashbax prioritised trajectory buffer
    that samples items in proportion to ``priority ** priority_exponent`` (flat layout only);
    the driver writes the agent's priorities back after each update.
    """
    if compact and priority_exponent is not None:
        raise ConfigError("replay.priority=true needs the flat replay layout (replay.layout="
                          "flat); the compact layout (pixels, frame stacks) samples uniformly")
    if compact:
        from rlstab_jax.replay.compact import make_compact_replay

        return make_compact_replay(capacity, n_envs, updates, batch_size, n_step, seq_len,
                                   frame_stack, final_fraction)
    length = seq_len or n_step
    max_len = max(capacity // n_envs, length + 1)
    if priority_exponent is None:
        buffer = fbx.make_trajectory_buffer(
            add_batch_size=n_envs, sample_batch_size=updates * batch_size,
            sample_sequence_length=length, period=1, min_length_time_axis=length,
            max_length_time_axis=max_len)
    else:
        buffer = fbx.make_prioritised_trajectory_buffer(
            add_batch_size=n_envs, sample_batch_size=updates * batch_size,
            sample_sequence_length=length, period=1, min_length_time_axis=length,
            max_length_time_axis=max_len, priority_exponent=priority_exponent,
            device=_flashbax_device())
    return Replay(buffer, n_envs, updates, batch_size, n_step, seq_len, priority_exponent)
