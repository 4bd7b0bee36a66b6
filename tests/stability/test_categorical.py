"""Tests for rlstab_jax.stability.categorical (unimix, straight-through one-hot)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.stability.categorical import straight_through_onehot, unimix_logits


def test_unimix_matches_probability_space_formula():
    logits = jnp.array([[2.0, 0.0, -1.0, 0.5], [0.0, 0.0, 0.0, 0.0]])
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    expected = np.log(0.99 * p + 0.01 / 4)
    out = unimix_logits(logits, 0.01)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_allclose(jnp.exp(out).sum(-1), 1.0, rtol=1e-6)


def test_unimix_floor_and_limits():
    # A collapsed distribution keeps every class at >= u/K, with finite log-probs.
    logits = jnp.array([200.0, 0.0, -200.0])
    out = unimix_logits(logits, 0.01)
    assert np.all(np.isfinite(out)) and np.all(np.exp(out) >= 0.01 / 3 * (1 - 1e-6))
    np.testing.assert_allclose(unimix_logits(logits, 0.0), jax.nn.log_softmax(logits), rtol=1e-6)
    np.testing.assert_allclose(unimix_logits(logits, 1.0), np.full(3, -np.log(3.0)), rtol=1e-6)
    g = jax.grad(lambda lg: unimix_logits(lg, 0.01)[1])(logits)
    assert np.all(np.isfinite(g))


def test_unimix_groups_and_traced_coefficient():
    logits = jax.random.normal(jax.random.key(0), (2, 3, 4, 5))  # [B, T, groups, classes]
    out = jax.jit(unimix_logits)(logits, jnp.float32(0.05))
    assert out.shape == logits.shape
    np.testing.assert_allclose(out, unimix_logits(logits, 0.05), rtol=1e-6)
    swept = jax.vmap(unimix_logits, in_axes=(None, 0))(logits, jnp.array([0.0, 0.01, 0.1]))
    for i, u in enumerate([0.0, 0.01, 0.1]):
        np.testing.assert_allclose(swept[i], unimix_logits(logits, u), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("u", [-0.1, 1.5])
def test_unimix_rejects_out_of_range(u):
    with pytest.raises(ConfigError, match=rf"^unimix={u} must lie in \[0, 1\]"):
        unimix_logits(jnp.zeros(3), u)


def test_unimix_default_is_dreamers_one_percent():
    logits = jnp.array([4.0, -3.0, 0.5])
    np.testing.assert_array_equal(unimix_logits(logits), unimix_logits(logits, 0.01))


def test_straight_through_forward_is_exact_hard_sample():
    logits = jax.random.normal(jax.random.key(1), (64, 8, 16)) * 3.0
    sample = jax.jit(straight_through_onehot)
    for key in jax.random.split(jax.random.key(2), 2):
        out = sample(key, logits)
        hard = jax.nn.one_hot(jax.random.categorical(key, logits), 16)
        np.testing.assert_array_equal(out, hard)  # bit-exact, not allclose
        assert set(np.unique(np.asarray(out))) <= {0.0, 1.0}
        np.testing.assert_array_equal(np.asarray(out).sum(-1), 1.0)


def test_straight_through_gradient_equals_surrogate_gradient():
    logits = jax.random.normal(jax.random.key(3), (5, 6))
    weights = jax.random.normal(jax.random.key(4), (5, 6))
    key = jax.random.key(5)

    def through_sample(lg):
        return jnp.sum(weights * straight_through_onehot(key, lg) ** 2)

    def through_probs(lg):
        # d/dx (x^2) evaluated at the HARD value, chained into d softmax.
        hard = jax.lax.stop_gradient(straight_through_onehot(key, lg))
        return jnp.sum(weights * 2.0 * hard * jax.nn.softmax(lg))

    g = jax.grad(through_sample)(logits)
    np.testing.assert_allclose(g, jax.grad(through_probs)(logits), rtol=1e-6, atol=1e-7)
    assert np.abs(np.asarray(g)).sum() > 0  # a plain sample would give exactly zero


def test_straight_through_sample_frequencies():
    logits = jnp.log(jnp.array([0.7, 0.2, 0.1]))
    keys = jax.random.split(jax.random.key(6), 20000)
    freq = jax.jit(jax.vmap(straight_through_onehot, in_axes=(0, None)))(keys, logits).mean(0)
    np.testing.assert_allclose(freq, [0.7, 0.2, 0.1], atol=0.015)
