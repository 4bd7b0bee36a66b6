"""Dreamer's replay priorities (``update_with_priorities``): the world-model loss per sequence."""

import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.agents.dreamer.testing import DISCRETE_SPEC, build, make_seq, tiny_cfg
from rlstab_jax.stability.replay_priority import PRIORITY_FLOOR

U, B, T = 2, 4, 8
AGENT, HP, STATE = build(tiny_cfg())
UPDATE = jax.jit(AGENT.update)
UPDATE_P = jax.jit(AGENT.update_with_priorities)  # one compile each for the module


def _batch(seed=0, scale_seq=None):
    seqs = [make_seq(DISCRETE_SPEC, B, T, seed=seed + u, ends=((0, 3),)) for u in range(U)]
    batch = jax.tree.map(lambda *x: jnp.stack(x), *seqs)
    if scale_seq is not None:  # one sequence whose observations the model cannot predict
        u, b = scale_seq
        batch = batch.replace(next_obs=batch.next_obs.at[u, b].multiply(30.0))
    return batch


def test_priorities_ride_along_without_changing_the_update():
    batch, key = _batch(), jax.random.key(4)
    new, metrics = UPDATE(STATE, batch, key, HP, jnp.int32(0))
    new_p, metrics_p, prio = UPDATE_P(STATE, batch, key, HP, jnp.int32(0))
    for x, y in zip(jax.tree.leaves((new, metrics)), jax.tree.leaves((new_p, metrics_p)),
                    strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    prio = np.asarray(prio)
    assert prio.shape == (U, B) and prio.dtype == np.float32
    assert np.isfinite(prio).all() and (prio >= PRIORITY_FLOOR).all()


def test_the_sequence_the_model_predicts_worst_gets_the_highest_priority():
    _, _, prio = UPDATE_P(STATE, _batch(seed=1, scale_seq=(1, 2)), jax.random.key(0), HP,
                          jnp.int32(0))
    prio = np.asarray(prio)
    assert np.argmax(prio[1]) == 2
    assert prio[1, 2] > 5 * np.median(prio)  # decoder error dominates the step losses


def test_priorities_are_the_loss_before_the_update():
    # Two identical batches in a row: the first call's priorities are the loss of the initial
    # world model; the second call (after the first's updates) sees a lower loss.
    hp = dict(HP, wm_lr=jnp.asarray(3e-3, HP["wm_lr"].dtype))
    state = jax.jit(AGENT.init)(jax.random.key(0), hp)  # the rate lives in the optimiser state
    batch = _batch(seed=2)
    state, _, p1 = UPDATE_P(state, batch, jax.random.key(0), hp, jnp.int32(0))
    for i in range(1, 6):
        state, _, p2 = UPDATE_P(state, batch, jax.random.key(i), hp, jnp.int32(i))
    assert float(jnp.mean(p2)) < float(jnp.mean(p1))
