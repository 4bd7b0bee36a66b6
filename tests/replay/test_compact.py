"""Compact replay round trip: every sampleable window equals what the flat store would give.

A tiny pixel env with random frames, random terminations and a short time limit, wrapped in the
real ``FrameStack``, steps like the off-policy driver; the flat rows (obs and true next_obs)
are kept in NumPy as the reference. For each checked buffer state, EVERY sampleable (env, start)
window of the compact replay must equal the reference rows: stacked obs across episode starts,
next_obs at truncation (true final obs) and termination, after wrap-around, with side-store
loss, n-step folding, sequence batches, under vmap over seeds and after a checkpoint round trip.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

from rlstab_jax.envs.jax_env import make_jax_env
from rlstab_jax.envs.wrappers import FrameStack
from rlstab_jax.replay.buffer import ReplayRow, fold_nstep, make_replay, sequence_batch
from rlstab_jax.replay.compact import CompactReplay

N_ENVS = 3


@struct.dataclass
class _State(environment.EnvState):
    time: jax.Array
    frame: jax.Array


@struct.dataclass
class _Params(environment.EnvParams):
    max_steps_in_episode: int = 5


class _Flicker(environment.Environment):
    """Random 2x2x2 uint8 frames; terminates with probability 0.2, truncates after 5 steps."""

    @property
    def default_params(self):
        return _Params()

    def _frame(self, key):
        return jax.random.randint(key, (2, 2, 2), 0, 256).astype(jnp.uint8)

    def reset_env(self, key, params):
        f = self._frame(key)
        return f, _State(time=jnp.int32(0), frame=f)

    def step_env(self, key, state, action, params):
        k_f, k_t = jax.random.split(key)
        f = self._frame(k_f)
        term = jax.random.uniform(k_t) < 0.2
        st = _State(time=state.time + 1, frame=f)
        return f, st, jnp.sum(action).astype(jnp.float32) + state.time, term, {}

    def observation_space(self, params):
        return spaces.Box(0, 255, (2, 2, 2), jnp.uint8)

    def action_space(self, params):
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)


@functools.partial(jax.jit, static_argnames=("k", "steps"))
def _rollout_jit(k: int, steps: int, seed: int):
    return _rollout_impl(k, steps, seed)


def _rollout(k: int, steps: int, seed: int = 0):
    return jax.tree.map(np.asarray, _rollout_jit(k, steps, seed))


def _rollout_impl(k: int, steps: int, seed):
    """``steps`` driver-like vector steps: flat ReplayRows ``[steps, N_ENVS, ...]``."""
    env = _Flicker()
    env = make_jax_env("flicker", FrameStack(env, k) if k > 1 else env, env.default_params)
    key = jax.random.PRNGKey(seed)  # seed may be traced
    state, obs = jax.vmap(env.reset)(jax.random.split(key, N_ENVS))

    def body(carry, key):
        state, obs = carry
        k_a, k_e = jax.random.split(key)
        action = jax.random.uniform(k_a, (N_ENVS, 1), minval=-1, maxval=1)
        state, nobs, reward, term, trunc, final = jax.vmap(env.step)(
            jax.random.split(k_e, N_ENVS), state, action)
        row = ReplayRow(obs=obs, action=action, reward=reward, next_obs=final, terminated=term,
                        truncated=trunc, is_demo=jnp.zeros((N_ENVS,), bool))
        return (state, nobs), row

    _, rows = jax.lax.scan(body, (state, obs), jax.random.split(key, steps))
    return rows


@functools.lru_cache(maxsize=None)
def _jitted(rp: CompactReplay):
    """One compiled add / windows per replay layout (windows padded to a fixed count)."""
    return jax.jit(rp.add), jax.jit(rp.windows)


def _fill(rp, rows, upto: int, st=None):
    st = rp.init(jax.tree.map(lambda x: x[0, 0], rows)) if st is None else st
    add = _jitted(rp)[0]
    for t in range(int(st.steps), upto):
        st = add(st, jax.tree.map(lambda x, t=t: x[t], rows))
    return st


PAD = 64  # windows per compiled call (padded with repeats)


def _check_all_windows(rp: CompactReplay, st, rows) -> int:
    """Compare every sampleable window with the flat rows; returns how many were checked."""
    lo, hi = (np.asarray(x) for x in rp.bounds(st))
    env, start = [], []
    for e in range(rp.n_envs):
        for s in range(int(lo[e]), int(hi[e]) + 1):
            env.append(e)
            start.append(s)
    if not env:
        return 0
    n = len(env)
    assert n <= PAD
    pad_e, pad_s = np.resize(env, PAD), np.resize(start, PAD)
    got = _jitted(rp)[1](st, jnp.asarray(pad_e), jnp.asarray(pad_s))
    got = jax.tree.map(lambda x: np.asarray(x)[:n], got)
    w = rp.window
    for name in ReplayRow.__dataclass_fields__:
        ref = getattr(rows, name)
        want = np.stack([ref[s:s + w, e] for e, s in zip(env, start)])
        np.testing.assert_array_equal(np.asarray(getattr(got, name)), want, err_msg=name)
    return len(env)


@pytest.fixture(scope="module")
def rows3():
    return _rollout(k=3, steps=60)


def _make(k: int, n_step: int = 1, seq_len: int = 0, rows_per_env: int = 16,
          final_fraction: float = 1.0, batch: int = 8) -> CompactReplay:
    return make_replay(rows_per_env * N_ENVS, N_ENVS, 2, batch, n_step, seq_len, compact=True,
                       frame_stack=k, final_fraction=final_fraction)


def test_rollout_has_what_the_test_needs(rows3):
    assert rows3.terminated.any() and rows3.truncated.any()
    # an episode start inside the first k-1 frames of some stack: frames repeat there
    assert np.logical_or(rows3.terminated, rows3.truncated)[:, 0].sum() >= 5


@pytest.mark.parametrize("n_step", [1, 3])
def test_every_window_equals_the_flat_rows(rows3, n_step):
    """Before and after wrap-around (16 rows per env): obs stacks, true next_obs, flags."""
    rp = _make(3, n_step=n_step)
    st = None
    for upto in (1, 3, 16, 17, 40, 60):
        st = _fill(rp, rows3, upto, st)
        checked = _check_all_windows(rp, st, rows3)
        lo, hi = (np.asarray(x) for x in rp.bounds(st))
        # no episode end lost (one slot per row): the buffer minus k-1 stack rows is usable
        first = 0 if upto <= 16 else upto - 16 + 2
        assert (lo == first).all() and (hi == upto - n_step).all()
        assert checked == max(0, upto - n_step - first + 1) * N_ENVS


def test_small_side_store_shrinks_the_sampleable_part_but_stays_exact(rows3):
    rp = _make(3, n_step=2, final_fraction=0.01)  # 4 episode ends kept per env
    assert rp.final_slots == 4
    st = _fill(rp, rows3, 60)
    assert _check_all_windows(rp, st, rows3) > 0
    frac = float(rp.usable_fraction(st))
    assert 0.0 < frac < 0.9


def test_no_frame_stack_and_vector_obs():
    rows = _rollout(k=1, steps=30, seed=1)
    rp = _make(1, n_step=3, rows_per_env=8)
    st = _fill(rp, rows, 30)
    assert _check_all_windows(rp, st, rows) == (8 - 3 + 1) * N_ENVS
    # vector observations: flatten the frames
    flat = rows.replace(obs=rows.obs.reshape(30, N_ENVS, -1).astype(np.float32),
                        next_obs=rows.next_obs.reshape(30, N_ENVS, -1).astype(np.float32))
    st = _fill(rp, flat, 30)
    assert _check_all_windows(rp, st, flat) == (8 - 3 + 1) * N_ENVS


def test_bytes_per_row_are_one_frame(rows3):
    rp = _make(3, rows_per_env=64, final_fraction=0.01)
    st = rp.init(jax.tree.map(lambda x: x[0, 0], rows3))
    flat = make_replay(64 * N_ENVS, N_ENVS, 2, 8, 1).init(jax.tree.map(lambda x: x[0, 0], rows3))
    nbytes = lambda t: sum(x.nbytes for x in jax.tree.leaves(t))  # noqa: E731
    assert st.frame.shape[-1] == 2 and rows3.obs.shape[-1] == 6
    assert nbytes(st) < nbytes(flat) / 2  # tiny frames: actions and flags weigh here


@pytest.mark.parametrize("n_step", [1, 3])
def test_sampled_batches_fold_like_the_flat_rows(rows3, n_step):
    """sample(): each folded row equals fold_nstep of the flat window it came from."""
    rp = _make(3, n_step=n_step, batch=16)
    st = _fill(rp, rows3, 40)
    key = jax.random.PRNGKey(3)
    env, start = rp.sample_starts(st, key, rp.updates * rp.batch_size)
    lo, hi = rp.bounds(st)
    assert ((start >= lo[env]) & (start <= hi[env])).all()
    batch = rp.sample(st, key, jnp.float32(0.9))
    win = jax.tree.map(
        lambda x: np.stack([x[s:s + n_step, e] for e, s in zip(np.asarray(env),
                                                              np.asarray(start))]), rows3)
    want = fold_nstep(jax.tree.map(jnp.asarray, win), jnp.float32(0.9))
    for name in ("obs", "action", "reward", "next_obs", "terminated", "discount"):
        np.testing.assert_array_equal(np.asarray(getattr(batch, name)).reshape(
            np.shape(getattr(want, name))), np.asarray(getattr(want, name)), err_msg=name)


def test_sequence_batches(rows3):
    rp = _make(3, seq_len=4, batch=4)
    st = _fill(rp, rows3, 45)
    assert _check_all_windows(rp, st, rows3) > 0
    key = jax.random.PRNGKey(5)
    env, start = rp.sample_starts(st, key, rp.updates * rp.batch_size)
    got = rp.sample(st, key, jnp.float32(0.9))
    win = jax.tree.map(lambda x: np.stack([x[s:s + 4, e] for e, s in
                                           zip(np.asarray(env), np.asarray(start))]), rows3)
    want = sequence_batch(jax.tree.map(jnp.asarray, win))
    for name in ("obs", "next_obs", "is_first", "reward", "truncated"):
        np.testing.assert_array_equal(np.asarray(getattr(got, name)).reshape(
            np.shape(getattr(want, name))), np.asarray(getattr(want, name)), err_msg=name)


def test_vmap_over_seeds_equals_each_seed():
    rows = [_rollout(k=3, steps=25, seed=s) for s in (11, 12)]
    rp = _make(3, n_step=2, rows_per_env=10)
    both = jax.tree.map(lambda a, b: np.stack([a, b]), *rows)
    st = jax.vmap(rp.init)(jax.tree.map(lambda x: x[:, 0, 0], both))
    add = jax.jit(jax.vmap(rp.add))
    for t in range(25):
        st = add(st, jax.tree.map(lambda x, t=t: x[:, t], both))
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    batched = jax.vmap(rp.sample, in_axes=(0, 0, None))(st, keys, jnp.float32(0.9))
    for i in range(2):
        one = jax.tree.map(lambda x, i=i: x[i], st)
        assert _check_all_windows(rp, one, rows[i]) > 0
        single = rp.sample(one, keys[i], jnp.float32(0.9))
        jax.tree.map(lambda a, b, i=i: np.testing.assert_array_equal(np.asarray(a)[i], b),
                     batched, single)


def test_cut_ends_the_live_episodes_with_their_true_next_obs(rows3):
    """A resumed gymnasium run starts fresh episodes: the newest rows become truncations."""
    rp = _make(3, n_step=1)
    st = _fill(rp, rows3, 20)
    st = rp.cut(st)
    newest = rp.windows(st, jnp.arange(N_ENVS), jnp.full((N_ENVS,), 19))
    np.testing.assert_array_equal(np.asarray(newest.next_obs)[:, 0], rows3.next_obs[19])
    assert np.asarray(newest.truncated)[:, 0].all()  # open episodes cut, ended ones kept
    np.testing.assert_array_equal(np.asarray(newest.terminated)[:, 0], rows3.terminated[19])
    # a fresh episode after the cut: its first stack repeats its own first frame only
    fresh = rows3.replace(obs=rows3.obs[30:], next_obs=rows3.next_obs[30:])
    st = rp.add(st, jax.tree.map(lambda x: x[0], fresh))
    w = rp.windows(st, jnp.arange(N_ENVS), jnp.full((N_ENVS,), 20))
    first = fresh.obs[0][..., -2:]
    np.testing.assert_array_equal(np.asarray(w.obs)[:, 0], np.concatenate([first] * 3, -1))
    assert int(rp.cut(rp.init(jax.tree.map(lambda x: x[0, 0], rows3))).n_finals.sum()) == 0
