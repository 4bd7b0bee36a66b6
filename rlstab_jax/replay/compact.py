"""Compact replay for pixel / frame-stacked observations: one frame per row, stacks at sample time.

Failure prevented (issue 14): the flat replay stores every observation twice (``obs`` and
``next_obs``) and, with ``env.frame_stack=k``, every frame ``k`` times more: 55 KB per
CarRacing row, 41 KB per RacerPixels row with 3 stacked frames, so a 1M-row pixel replay did
not fit in memory. Here a row holds

* ``frame``: the NEWEST frame of its observation only (the last ``C = channels / k`` channels of
  the stacked observation; the whole observation when ``k = 1``);
* ``action``, ``reward``, ``terminated``, ``truncated``, ``is_demo`` as in the flat replay;
* ``slot``: where its episode-end observation lives in the side store (used only at ends).

``next_obs`` is not stored: it is the observation of the next row of the same env, except at an
episode end, where vector envs auto-reset and the next row holds the reset observation. The
true final frame of each ended episode (terminated or truncated) goes into a small per-env
side store of ``final_slots`` frames (a ring, newest kept), and ``tail`` keeps the next frame of
the newest row, so the newest row is sampleable too. A stack is rebuilt as the frame-stack
wrapper (``envs.wrappers.FrameStack``) builds it: the last ``k`` frames of the episode, oldest
first, the episode's first frame repeated where the episode is younger than ``k`` (it never
mixes frames across an episode start). ``tests/replay/test_compact.py`` checks, for every
sampleable row, that obs, next obs and n-step / sequence windows equal those of the flat store
(episode starts, truncation's final obs, termination, wrap-around, vmap over seeds, resume).

Limits of the contract (documented in docs/design.md, "Replay rows"):

* rows are added one vector step at a time, each env's rows consecutive (the drivers do this);
* the side store keeps the last ``final_slots`` episode ends per env. A row is sampled only if
  every episode end from it onwards is still there, so with episodes much shorter than
  ``rows / final_slots`` the sampleable part of the buffer shrinks (reported as
  ``replay/usable_fraction``) rather than ever bootstrapping from a wrong observation;
* the ``k - 1`` oldest rows of a full buffer are not sampled (their stack's older frames are
  overwritten).

Why not flashbax here: its trajectory buffer samples fixed-length sequences but cannot rebuild
stacks or read an episode-end side store; this is the same ring-buffer-in-a-pytree design
(it rides the scan carry, vmaps over seeds and is checkpointed with the rest of the state),
with one vectorised gather per sample (no per-item Python loop).
"""

from __future__ import annotations

import dataclasses
import math

import chex
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.agents.base import Batch
from rlstab_jax.replay.buffer import ReplayRow, fold_nstep, sequence_batch


@flax.struct.dataclass
class CompactState:
    """Per-seed compact replay: leaves ``[n_envs, rows, ...]`` plus the episode-end store.

    ``steps`` counts the vector steps added (the absolute time of the next row); the row of
    absolute time ``u`` lives at index ``u % rows``.
    """

    frame: jax.Array          # [N, T, *frame_shape]
    action: jax.Array         # [N, T, *action_shape]
    reward: jax.Array         # [N, T]
    terminated: jax.Array     # [N, T] bool
    truncated: jax.Array      # [N, T] bool
    is_demo: jax.Array        # [N, T] bool
    slot: jax.Array           # [N, T] int32: side-store slot of the row's episode end
    tail: jax.Array           # [N, *frame_shape]: next frame of the newest row
    final: jax.Array          # [N, F, *frame_shape]: true final frames of ended episodes
    final_time: jax.Array     # [N, F] int32: absolute time of the row owning the slot (-1 empty)
    n_finals: jax.Array       # [N] int32: episode ends written per env
    steps: jax.Array          # [] int32


@dataclasses.dataclass(frozen=True)
class CompactReplay:
    """Pure replay functions for one seed, the same interface as ``buffer.Replay``.

    ``sample(state, key, gamma)`` returns a Batch ``[U, B, ...]`` (n-step windows folded by
    ``buffer.fold_nstep``) or with ``seq_len > 0`` a SeqBatch ``[U, B, seq_len, ...]``.
    """

    rows: int              # T: rows per env
    n_envs: int
    updates: int
    batch_size: int
    n_step: int
    seq_len: int
    frame_stack: int       # k (1 = no stacking)
    final_slots: int       # F: episode ends kept per env

    compact = True
    prioritised = False  # uniform only (buffer.make_replay refuses replay.priority here)

    def sum_tree(self, state: CompactState) -> None:
        return None

    def with_sum_tree(self, state: CompactState, tree: None) -> CompactState:
        return state

    @property
    def window(self) -> int:
        """Rows per sample: ``seq_len`` for sequence agents, else ``n_step``."""
        return self.seq_len or self.n_step

    # ---- layout ----------------------------------------------------------------------
    def _frame(self, obs: jax.Array) -> jax.Array:
        """The newest frame of a (stacked) observation: its last ``C`` channels."""
        if self.frame_stack == 1:
            return obs
        c = obs.shape[-1] // self.frame_stack
        return obs[..., obs.shape[-1] - c:]

    def init(self, example: ReplayRow) -> CompactState:
        """Empty buffers shaped after one row (``example`` leaves without a batch axis)."""
        n, t, f = self.n_envs, self.rows, self.final_slots
        obs = jnp.asarray(example.obs)
        if self.frame_stack > 1 and (obs.ndim == 0 or obs.shape[-1] % self.frame_stack):
            raise ValueError(f"compact replay: obs shape {obs.shape} is not {self.frame_stack} "
                             f"stacked frames on the last axis")
        frame = self._frame(obs)
        zeros = lambda x, lead: jnp.zeros(lead + jnp.shape(x), jnp.asarray(x).dtype)  # noqa
        return CompactState(
            frame=zeros(frame, (n, t)), action=zeros(example.action, (n, t)),
            reward=jnp.zeros((n, t), jnp.float32), terminated=jnp.zeros((n, t), bool),
            truncated=jnp.zeros((n, t), bool), is_demo=jnp.zeros((n, t), bool),
            slot=jnp.zeros((n, t), jnp.int32), tail=zeros(frame, (n,)),
            final=zeros(frame, (n, f)), final_time=jnp.full((n, f), -1, jnp.int32),
            n_finals=jnp.zeros((n,), jnp.int32), steps=jnp.zeros((), jnp.int32))

    # ---- writing ---------------------------------------------------------------------
    def add(self, state: CompactState, rows: ReplayRow) -> CompactState:
        """Add one vector step; ``rows`` leaves ``[n_envs, ...]`` (``next_obs`` the true one)."""
        chex.assert_tree_shape_prefix(rows, (self.n_envs,))
        i = state.steps % self.rows
        put = lambda buf, x: jax.lax.dynamic_update_index_in_dim(  # noqa: E731
            buf, jnp.asarray(x, buf.dtype), i, axis=1)
        nxt = self._frame(jnp.asarray(rows.next_obs))
        done = jnp.logical_or(rows.terminated, rows.truncated)
        slot = state.n_finals % self.final_slots
        state = state.replace(
            frame=put(state.frame, self._frame(jnp.asarray(rows.obs))),
            action=put(state.action, rows.action), reward=put(state.reward, rows.reward),
            terminated=put(state.terminated, rows.terminated),
            truncated=put(state.truncated, rows.truncated), is_demo=put(state.is_demo,
                                                                       rows.is_demo),
            slot=put(state.slot, slot))
        return self._store_finals(state, done, nxt, state.steps).replace(
            tail=jnp.asarray(nxt, state.tail.dtype), steps=state.steps + 1)

    def _store_finals(self, state: CompactState, done: jax.Array, frame: jax.Array,
                      time: jax.Array) -> CompactState:
        """Write ``frame[e]`` into env e's next side-store slot where ``done[e]``."""
        env = jnp.arange(self.n_envs)
        slot = jnp.where(done, state.n_finals % self.final_slots, self.final_slots)  # F: dropped
        return state.replace(
            final=state.final.at[env, slot].set(jnp.asarray(frame, state.final.dtype),
                                                mode="drop"),
            final_time=state.final_time.at[env, slot].set(time, mode="drop"),
            n_finals=state.n_finals + done.astype(jnp.int32))

    def cut(self, state: CompactState) -> CompactState:
        """End every env's current episode at the newest row (marked ``truncated``).

        Used when the live episodes are abandoned (a gymnasium run resumed from a checkpoint
        starts fresh episodes): the next row then starts a new episode, and the newest row
        bootstraps from its true next observation (``tail``) instead of the reset frame.
        A no-op on an empty buffer and for envs whose newest row already ended an episode.
        """
        last = (state.steps - 1) % self.rows
        done = jnp.logical_or(state.terminated[:, last], state.truncated[:, last])
        open_ = jnp.logical_and(~done, state.steps > 0)
        slot = state.n_finals % self.final_slots
        state = state.replace(
            truncated=state.truncated.at[:, last].set(jnp.logical_or(
                state.truncated[:, last], open_)),
            slot=state.slot.at[:, last].set(jnp.where(open_, slot, state.slot[:, last])))
        return self._store_finals(state, open_, state.tail, state.steps - 1)

    # ---- reading ---------------------------------------------------------------------
    def bounds(self, state: CompactState) -> tuple[jax.Array, jax.Array]:
        """Per-env first and last sampleable window start ``lo[N], hi[N]`` (absolute times).

        A start ``s`` is sampleable iff its window ``s .. s+W-1`` and the next frame after it
        exist (``s + W <= steps``; time ``steps`` is ``tail``), the older frames of its stack
        are still stored, and every episode end from ``s`` on is in the side store.
        """
        t, w, k = state.steps, self.window, self.frame_stack
        wrapped = t > self.rows
        lo = jnp.where(wrapped, t - self.rows + (k - 1), 0)
        # Oldest episode end still in the side store (once the ring has wrapped).
        oldest_slot = state.n_finals % self.final_slots
        oldest_kept = jnp.take_along_axis(state.final_time, oldest_slot[:, None], 1)[:, 0]
        lost = state.n_finals > self.final_slots
        lo_env = jnp.where(lost, jnp.maximum(lo, oldest_kept), lo)
        hi = jnp.broadcast_to(t - w, lo_env.shape)
        return lo_env, hi

    def usable_fraction(self, state: CompactState) -> jax.Array:
        """Sampleable window starts / rows stored (below 1 when episode ends were dropped)."""
        lo, hi = self.bounds(state)
        stored = jnp.minimum(state.steps, self.rows) * self.n_envs
        return jnp.sum(jnp.maximum(hi - lo + 1, 0)) / jnp.maximum(stored, 1).astype(jnp.float32)

    def windows(self, state: CompactState, env: jax.Array, start: jax.Array) -> ReplayRow:
        """Rows ``start .. start+W-1`` of envs ``env`` (``[M]`` each) as ReplayRows ``[M, W]``.

        ``obs`` is the stacked observation and ``next_obs`` the true next observation, exactly
        what the flat replay stores; one vectorised gather for all M windows.
        """
        w, k, big_t = self.window, self.frame_stack, self.rows
        times = start[:, None] + jnp.arange(-(k - 1), w + 1)[None]      # [M, L = W + k]
        idx = times % big_t
        e = env[:, None]
        frames = state.frame[e, idx]                                     # [M, L, *fs]
        is_tail = (times == state.steps).reshape(times.shape + (1,) * (frames.ndim - 2))
        frames = jnp.where(is_tail, state.tail[env][:, None], frames)
        done = jnp.logical_or(state.terminated[e, idx], state.truncated[e, idx])
        done = jnp.logical_or(done, times < 0)  # before the run's first row: an episode start
        q = np.arange(w + 1) + (k - 1)                                   # window index of s+p
        if k == 1:
            stacks = frames[:, :, None]                                  # [M, W+1, 1, *fs]
        else:
            # Element i (oldest first) of the stack at q is frame q - eff(k-1-i), where eff(d)
            # counts the steps back from q (up to d) that stay inside q's episode.
            back = q[:, None] - np.arange(1, k)[None]                    # [W+1, k-1]
            inside = jnp.cumprod((~done[:, back]).astype(jnp.int32), axis=-1)  # [M, W+1, k-1]
            eff = jnp.concatenate([jnp.zeros(inside.shape[:-1] + (1,), inside.dtype),
                                   jnp.cumsum(inside, axis=-1)], axis=-1)  # d = 0..k-1
            pick = q[None, :, None] - eff[..., ::-1]                     # [M, W+1, k]
            flat = pick.reshape(pick.shape[0], -1)
            flat = flat.reshape(flat.shape + (1,) * (frames.ndim - 2))
            stacks = jnp.take_along_axis(frames, flat, axis=1).reshape(
                pick.shape + frames.shape[2:])                           # [M, W+1, k, *fs]
        rows_i = idx[:, k - 1:k - 1 + w]                                  # [M, W]
        row_done = done[:, k - 1:k - 1 + w]
        finals = state.final[e, state.slot[e, rows_i]]                   # [M, W, *fs]
        ended = jnp.concatenate([stacks[:, :w, 1:], finals[:, :, None]], axis=2)
        sel = row_done.reshape(row_done.shape + (1,) * (ended.ndim - 2))
        next_stacks = jnp.where(sel, ended, stacks[:, 1:])
        return ReplayRow(
            obs=self._merge(stacks[:, :w]), action=state.action[e, rows_i],
            reward=state.reward[e, rows_i], next_obs=self._merge(next_stacks),
            terminated=state.terminated[e, rows_i], truncated=state.truncated[e, rows_i],
            is_demo=state.is_demo[e, rows_i])

    def _merge(self, stacks: jax.Array) -> jax.Array:
        """``[M, P, k, *fs]`` -> observations ``[M, P, *obs_shape]`` (frames on the last axis)."""
        if self.frame_stack == 1:
            return stacks[:, :, 0]
        x = jnp.moveaxis(stacks, 2, -2)                                  # [M, P, ..., k, C]
        return x.reshape(x.shape[:-2] + (x.shape[-2] * x.shape[-1],))

    def sample_starts(self, state: CompactState, key: jax.Array, m: int):
        """``m`` (env, start) pairs, uniform over every sampleable window start."""
        lo, hi = self.bounds(state)
        size = jnp.maximum(hi - lo + 1, 0)
        cum = jnp.cumsum(size)
        u = jax.random.randint(key, (m,), 0, jnp.maximum(cum[-1], 1))
        env = jnp.minimum(jnp.searchsorted(cum, u, side="right"), self.n_envs - 1)
        start = lo[env] + u - (cum[env] - size[env])
        return env, start

    def sample(self, state: CompactState, key: jax.Array, gamma: jax.Array) -> Batch:
        m = self.updates * self.batch_size
        env, start = self.sample_starts(state, key, m)
        seq = self.windows(state, env, start)
        batch = sequence_batch(seq) if self.seq_len else fold_nstep(seq, gamma)
        return jax.tree.map(
            lambda x: x.reshape((self.updates, self.batch_size) + x.shape[1:]), batch)


def compact_layout(mode: str, obs_dtype: str, frame_stack: int, history: int) -> tuple[bool, int]:
    """``(use the compact replay, frames per observation k)`` for ``replay.layout=mode``.

    ``auto``: compact for pixel (uint8) or frame-stacked observations, where the stored copies
    dominate memory; vector observations keep the flat flashbax replay (``next_obs`` costs a
    few floats there, and the flat path is the benchmarked one). Frames are split off only when
    the observation IS the stack (``env.history`` appends a flat context: stored whole).
    """
    k = int(frame_stack) if frame_stack > 1 and not history else 1
    if mode == "compact":
        return True, k
    if mode == "flat":
        return False, 1
    return (obs_dtype == "uint8" or k > 1), k


def make_compact_replay(capacity: int, n_envs: int, updates: int, batch_size: int,
                        n_step: int, seq_len: int = 0, frame_stack: int = 1,
                        final_fraction: float = 0.01) -> CompactReplay:
    """A compact replay of ``capacity`` rows per seed (``capacity // n_envs`` per env).

    ``final_fraction``: side-store slots per env as a fraction of its rows (at least the
    window plus two), i.e. one episode end per ``1 / final_fraction`` rows on average is kept.
    """
    k = max(1, int(frame_stack))
    window = seq_len or n_step
    rows = max(capacity // n_envs, window + k + 1)
    slots = max(window + 2, int(math.ceil(final_fraction * rows)))
    return CompactReplay(rows, n_envs, updates, batch_size, n_step, seq_len, k, min(slots, rows))
