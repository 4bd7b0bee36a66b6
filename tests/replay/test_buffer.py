"""n-step folding by hand: terminal vs truncated windows, and the flashbax round trip."""

import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.replay.buffer import ReplayRow, fold_nstep, make_replay


def _rows(rewards, term, trunc):
    n = len(rewards)
    return ReplayRow(obs=jnp.arange(n, dtype=jnp.float32)[:, None],
                     action=jnp.zeros((n, 1)), reward=jnp.asarray(rewards, jnp.float32),
                     next_obs=10.0 + jnp.arange(n, dtype=jnp.float32)[:, None],
                     terminated=jnp.asarray(term), truncated=jnp.asarray(trunc),
                     is_demo=jnp.zeros(n, bool))


def test_fold_no_end():
    # 3-step window, no episode end: R = 1 + 0.5*2 + 0.25*4 = 3, bootstrap from next_obs[2]
    b = fold_nstep(_rows([1.0, 2.0, 4.0], [False] * 3, [False] * 3), jnp.float32(0.5))
    assert float(b.reward) == 3.0
    assert float(b.discount) == 0.125
    assert float(b.next_obs[0]) == 12.0 and not bool(b.terminated)
    assert float(b.obs[0]) == 0.0


def test_fold_terminated_stops_and_does_not_bootstrap():
    # termination at step 1: R = 1 + 0.5*2 (step 2 belongs to the next episode)
    b = fold_nstep(_rows([1.0, 2.0, 4.0], [False, True, False], [False] * 3), jnp.float32(0.5))
    assert float(b.reward) == 2.0
    assert bool(b.terminated)
    assert float(b.next_obs[0]) == 11.0


def test_fold_truncated_bootstraps_from_final_obs():
    # truncation at step 0: R = 1, discount gamma^1, next_obs = true final obs of step 0
    b = fold_nstep(_rows([1.0, 2.0, 4.0], [False] * 3, [True, False, False]), jnp.float32(0.5))
    assert float(b.reward) == 1.0
    assert float(b.discount) == 0.5
    assert not bool(b.terminated)
    assert float(b.next_obs[0]) == 10.0


def test_fold_one_step_equals_td_inputs():
    b = fold_nstep(_rows([3.0], [True], [False]), jnp.float32(0.9))
    assert float(b.reward) == 3.0 and bool(b.terminated)
    np.testing.assert_allclose(float(b.discount), 0.9)


def test_replay_add_sample_shapes():
    rp = make_replay(capacity=64, n_envs=2, updates=3, batch_size=4, n_step=2)
    row = jax.tree.map(lambda x: x[0], _rows([0.0], [False], [False]))
    st = rp.init(row)
    for t in range(5):
        rows = jax.tree.map(lambda x: jnp.stack([x, x]), _rows([float(t)], [False], [False]))
        rows = jax.tree.map(lambda x: x[:, 0], rows)
        st = rp.add(st, rows)
    b = rp.sample(st, jax.random.PRNGKey(0), jnp.float32(0.9))
    assert b.reward.shape == (3, 4) and b.obs.shape == (3, 4, 1)
    # rewards of consecutive steps t, t+1: R = t + 0.9 (t+1) for some t in 0..3
    r = np.asarray(b.reward).ravel()
    expected = np.array([t + 0.9 * (t + 1) for t in range(4)])
    assert np.all(np.min(np.abs(r[:, None] - expected[None]), axis=1) < 1e-5)
