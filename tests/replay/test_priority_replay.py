"""Prioritised sequence replay (replay.priority): flashbax's prioritised trajectory buffer behind
the same Replay interface, with the sampled indices handed back for the agent's priorities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.config.errors import ConfigError
from flashbax.buffers import sum_tree

from rlstab_jax.replay.buffer import PRIORITY_SCALE, ReplayRow, make_replay

T = 3


def _row(t):
    obs = jnp.full((1,), float(t))[:, None]
    return ReplayRow(obs=obs, action=jnp.zeros((1,), jnp.int32), reward=jnp.ones((1,)),
                     next_obs=obs + 1.0, terminated=jnp.zeros((1,), bool),
                     truncated=jnp.zeros((1,), bool), is_demo=jnp.zeros((1,), bool))


def _filled(rows, batch, alpha=0.5):
    replay = make_replay(64, 1, 1, batch, n_step=1, seq_len=T, priority_exponent=alpha)
    state = replay.init(jax.tree.map(lambda x: x[0], _row(0)))
    add = jax.jit(replay.add)
    for t in range(rows):
        state = add(state, _row(t))
    return replay, state


def _starts(replay, state, draws, seed=0):
    """First observation of each sampled window over ``draws`` calls, and the indices."""
    sample = jax.jit(lambda s, k: replay.sample_indexed(s, k, jnp.float32(0.99)))
    starts, idx = [], []
    for k in jax.random.split(jax.random.key(seed), draws):
        batch, i = sample(state, k)
        starts.append(np.asarray(batch.obs[0, :, 0, 0]))
        idx.append(np.asarray(i))
    return np.concatenate(starts).astype(int), np.concatenate(idx)


def test_uniform_replay_has_no_indices_and_is_not_prioritised():
    replay = make_replay(64, 1, 1, 4, n_step=1, seq_len=T)
    assert not replay.prioritised and replay.sum_tree(None) is None
    state = replay.init(jax.tree.map(lambda x: x[0], _row(0)))
    for t in range(8):
        state = replay.add(state, _row(t))
    _, idx = replay.sample_indexed(state, jax.random.key(0), jnp.float32(0.99))
    assert idx is None


def test_sampled_indices_name_the_windows_returned():
    replay, state = _filled(20, 16)
    starts, idx = _starts(replay, state, 5)
    # one env, buffer not full: item i is the window starting at row i
    np.testing.assert_array_equal(starts, idx)
    assert starts.max() <= 20 - T  # only whole windows


def test_sampling_follows_priority_to_the_power_alpha():
    rows, alpha = 40, 0.5
    items = rows - T + 1
    replay, state = _filled(rows, items, alpha)
    prio = np.ones(items, np.float32)
    prio[10] = 100.0  # weight 100 ** 0.5 = 10 against 1 for each other window
    state = jax.jit(replay.set_priorities)(state, jnp.arange(items, dtype=jnp.int32),
                                           jnp.asarray(prio)[None])
    starts, _ = _starts(replay, state, 30, seed=1)
    want = 10.0 / (10.0 + (items - 1))
    got = float(np.mean(starts == 10))
    sd = np.sqrt(want * (1 - want) / starts.size)
    assert abs(got - want) < 5 * sd, (got, want)
    # the others stay near-uniform among themselves (each ~ 1 / (10 + items - 1))
    others = np.bincount(starts[starts != 10], minlength=items)
    assert (np.delete(others, 10) > 0).mean() > 0.9


def _weights(state, items):
    return np.asarray(sum_tree.get_batch(state.sum_tree_state, jnp.arange(items)))


def test_new_windows_enter_with_the_largest_priority_so_far():
    rows, alpha = 30, 0.5
    items = rows - T + 1
    replay, state = _filled(rows, items, alpha)
    # rows stored before any priority was written weigh as priority 1
    np.testing.assert_allclose(_weights(state, items), PRIORITY_SCALE)
    prio = np.full((1, items), 1e-4, np.float32)
    prio[0, 5] = 2.7  # the largest so far, not an integer weight
    state = replay.set_priorities(state, jnp.arange(items, dtype=jnp.int32), jnp.asarray(prio))
    state = replay.add(state, _row(rows))  # one more whole window: start rows - T + 1
    w = _weights(state, items + 1)
    top = PRIORITY_SCALE * 2.7 ** alpha
    np.testing.assert_allclose(w[5], top, rtol=1e-6)
    # flashbax truncates the new window's weight to an integer: within 1/1024 of the largest
    assert abs(w[items] - top) <= top / 1024
    starts, _ = _starts(replay, state, 4, seed=2)
    assert float(np.mean((starts == items) | (starts == 5))) > 0.9


def test_priorities_must_match_the_sampled_batch_shape():
    replay, state = _filled(20, 4)
    with pytest.raises(AssertionError):
        replay.set_priorities(state, jnp.arange(4, dtype=jnp.int32), jnp.ones((4,)))


def test_compact_layout_refuses_priorities():
    with pytest.raises(ConfigError, match="replay.priority=true needs the flat replay layout"):
        make_replay(64, 1, 1, 4, n_step=1, seq_len=T, compact=True, priority_exponent=0.6)
