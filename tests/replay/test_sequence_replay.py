"""Sequence replay: fixed-length subsequences sampled on device, is_first at episode starts."""

import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.agents.base import SeqBatch
from rlstab_jax.replay.buffer import ReplayRow, make_replay, sequence_batch


def _row(obs, done):
    return ReplayRow(obs=jnp.asarray(obs, jnp.float32)[..., None],
                     action=jnp.zeros(jnp.shape(obs), jnp.int32),
                     reward=jnp.ones(jnp.shape(obs)),
                     next_obs=jnp.asarray(obs, jnp.float32)[..., None],
                     terminated=jnp.asarray(done), truncated=jnp.zeros(jnp.shape(obs), bool),
                     is_demo=jnp.zeros(jnp.shape(obs), bool))


def test_is_first_marks_sequence_start_and_steps_after_an_end():
    done = np.zeros((2, 6), bool)
    done[0, 2] = True  # episode ends at t=2 -> t=3 starts a new one
    done[1, 5] = True  # end at the last step: nothing inside the window starts after it
    seq = sequence_batch(_row(np.zeros((2, 6)), done))
    assert isinstance(seq, SeqBatch)
    want = np.zeros((2, 6), bool)
    want[:, 0] = True
    want[0, 3] = True
    np.testing.assert_array_equal(np.asarray(seq.is_first), want)


def test_sampled_subsequences_are_consecutive_rows_with_flags():
    n_envs, U, B, T = 2, 3, 4, 5
    replay = make_replay(64, n_envs, U, B, n_step=1, seq_len=T)
    example = _row(np.zeros(n_envs), np.zeros(n_envs, bool))
    state = replay.init(jax.tree.map(lambda x: x[0], example))
    add = jax.jit(replay.add)
    for t in range(20):  # obs = time index; env 0 ends an episode every 7 steps
        done = np.array([t % 7 == 6, False])
        state = add(state, _row(np.full(n_envs, t), done))
    seq = jax.jit(replay.sample)(state, jax.random.key(0), 0.99)
    assert seq.obs.shape == (U, B, T, 1) and seq.is_first.shape == (U, B, T)
    obs = np.asarray(seq.obs[..., 0])
    np.testing.assert_array_equal(np.diff(obs, axis=-1), 1.0)  # consecutive env steps
    first = np.asarray(seq.is_first)
    assert first[..., 0].all()
    # inside a window, a step is first iff the previous one ended (env 0: t % 7 == 6)
    prev_end = np.asarray(seq.terminated)[..., :-1]
    np.testing.assert_array_equal(first[..., 1:], prev_end)
