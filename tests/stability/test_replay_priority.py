"""Tests for rlstab_jax.stability.replay_priority (world-model-loss replay priorities)."""

import chex
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlstab_jax.stability.replay_priority import PRIORITY_FLOOR, sequence_priority


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_priority_is_the_floored_mean_loss_per_sequence(b, t, seed):
    rng = np.random.default_rng(seed)
    loss = rng.gamma(2.0, size=(b, t)).astype(np.float32) * rng.uniform(0, 5, size=(b, 1))
    got = np.asarray(sequence_priority(jnp.asarray(loss)))
    chex.assert_shape(got, (b,))
    np.testing.assert_allclose(got, loss.mean(1) + PRIORITY_FLOOR, rtol=1e-5)
    assert (got >= PRIORITY_FLOOR).all()


def test_worse_predicted_sequences_get_higher_priority():
    loss = jnp.array([[0.1, 0.1, 0.1], [0.1, 5.0, 0.1], [2.0, 2.0, 2.0]])
    p = np.asarray(sequence_priority(loss))
    assert p[0] < p[1] < p[2]


def test_negative_and_non_finite_losses_get_the_floor():
    loss = jnp.array([[-3.0, -1.0], [jnp.nan, 1.0], [jnp.inf, 0.0], [1.0, 3.0]])
    p = np.asarray(sequence_priority(loss, floor=0.5))
    np.testing.assert_allclose(p, [0.5, 0.5, 0.5, 2.5])
    assert np.isfinite(p).all()


def test_rejects_a_loss_without_a_time_axis():
    with pytest.raises(AssertionError):
        sequence_priority(jnp.ones((4,)))
