"""Tests for rlstab_jax.stability.kl (categorical KL, free bits, KL balancing)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.stability.kl import categorical_kl, free_bits, kl_balance


def _np_kl(p_logits, q_logits):
    p_logits, q_logits = np.asarray(p_logits, np.float64), np.asarray(q_logits, np.float64)
    log_p = p_logits - np.log(np.exp(p_logits).sum(-1, keepdims=True))
    log_q = q_logits - np.log(np.exp(q_logits).sum(-1, keepdims=True))
    return (np.exp(log_p) * (log_p - log_q)).sum(axis=(-2, -1))


def test_categorical_kl_matches_numpy_and_hand_case():
    kp, kq = jax.random.split(jax.random.key(0))
    p, q = jax.random.normal(kp, (3, 4, 5, 6)), jax.random.normal(kq, (3, 4, 5, 6))
    kl = categorical_kl(p, q)
    assert kl.shape == (3, 4)
    np.testing.assert_allclose(kl, _np_kl(p, q), rtol=1e-5)
    # Hand case, one group: p = (1/2, 1/2), q = (1/4, 3/4):
    # KL = 0.5 log(0.5/0.25) + 0.5 log(0.5/0.75) = 0.5 log(4/3).
    hand = categorical_kl(jnp.zeros((1, 2)), jnp.log(jnp.array([[0.25, 0.75]])))
    np.testing.assert_allclose(hand, 0.5 * np.log(4.0 / 3.0), rtol=1e-6)
    # Two identical groups: the KL sums over groups.
    two = categorical_kl(jnp.zeros((2, 2)), jnp.log(jnp.array([[0.25, 0.75]] * 2)))
    np.testing.assert_allclose(two, np.log(4.0 / 3.0), rtol=1e-6)
    assert np.all(np.asarray(categorical_kl(p, p)) == 0.0)
    assert np.all(np.asarray(kl) > 0)


def _grad_free_bits(raw, mode, free=1.0):
    # d/dx of free_bits(f(x)) with f(x) = x^2, so d raw/dx = 2x.
    return jax.vmap(jax.grad(lambda x: free_bits(x**2, free, mode)))(raw)


def test_categorical_kl_any_leading_axes_but_needs_groups_and_classes():
    p = jax.random.normal(jax.random.key(2), (1, 1, 1, 1, 1, 1, 2, 3))  # rank 8
    np.testing.assert_allclose(categorical_kl(p, p), np.zeros((1,) * 6), atol=1e-7)
    with pytest.raises(ValueError, match=r"^categorical_kl: logits of shape \(3,\) need at "
                                         r"least \[groups, classes\] axes$"):
        categorical_kl(jnp.zeros(3), jnp.zeros(3))


def test_free_bits_forward_values():
    raw = jnp.array([0.2, 0.84, 0.999, 1.5, 3.0])
    for mode in ("straight_through", "max"):
        np.testing.assert_array_equal(free_bits(raw, 1.0, mode), np.maximum(1.0, raw))
    # The default mode is the report's fix (straight-through), not the frozen-prior "max".
    g = jax.grad(lambda r: jnp.sum(free_bits(r, 1.0)))(raw)
    np.testing.assert_array_equal(g, np.ones(5))


def test_free_bits_max_gradient_is_exactly_zero_below_threshold():
    x = jnp.sqrt(jnp.array([0.2, 0.84, 0.99]))  # raw = x^2 < 1
    np.testing.assert_array_equal(_grad_free_bits(x, "max"), 0.0)
    x_above = jnp.array([1.2, 2.0])
    np.testing.assert_allclose(_grad_free_bits(x_above, "max"), 2.0 * x_above, rtol=1e-6)


def test_free_bits_straight_through_gradient_is_exactly_raw_gradient():
    x = jnp.array([0.1, 0.5, 0.9, 1.2, 2.0])  # below and above the threshold
    np.testing.assert_array_equal(_grad_free_bits(x, "straight_through"), 2.0 * x)


def test_free_bits_rejects_unknown_mode():
    with pytest.raises(ConfigError, match=r"^free_bits_mode='clamp' is not one of "
                                          r"\('straight_through', 'max'\)$"):
        free_bits(jnp.ones(2), 1.0, "clamp")


def _latents():
    kp, kq = jax.random.split(jax.random.key(1))
    post = jax.random.normal(kp, (4, 3, 8, 8)) * 0.3
    prior = post + 0.1 * jax.random.normal(kq, (4, 3, 8, 8))  # KL well below 1 nat
    return post, prior


def test_kl_balance_values_and_metrics():
    post, prior = _latents()
    raw = _np_kl(post, prior)
    loss, m = kl_balance(post, prior, beta_dyn=1.0, beta_rep=0.1, free_bits=0.0)
    np.testing.assert_allclose(loss, 1.1 * raw.mean(), rtol=1e-5)
    np.testing.assert_allclose(m["kl/dyn_raw"], raw.mean(), rtol=1e-5)
    np.testing.assert_allclose(m["kl/rep_raw"], raw.mean(), rtol=1e-5)
    loss_fb, m_fb = kl_balance(post, prior, free_bits=1.0)
    assert raw.max() < 1.0
    np.testing.assert_allclose(loss_fb, 1.1, rtol=1e-6)  # both floored at 1 nat
    assert m_fb["kl/below_free_frac"] == 1.0 and m_fb["kl/dyn"] == 1.0


def test_kl_balance_routes_gradients():
    post, prior = _latents()

    def grads(beta_dyn, beta_rep, mode="straight_through", fb=1.0):
        f = lambda a, b: kl_balance(a, b, beta_dyn, beta_rep, fb, mode)[0]
        return jax.grad(f, (0, 1))(post, prior)

    # dyn = KL(sg(post) || prior) trains only the prior; rep only the posterior.
    g_post, g_prior = grads(1.0, 0.0)
    assert np.all(np.asarray(g_post) == 0.0) and np.abs(np.asarray(g_prior)).sum() > 0
    g_post, g_prior = grads(0.0, 0.1)
    assert np.all(np.asarray(g_prior) == 0.0) and np.abs(np.asarray(g_post)).sum() > 0
    # Below the free-bits threshold: "max" freezes the prior (report 002's bug) ...
    _, g_prior_max = grads(1.0, 0.1, "max")
    assert np.all(np.asarray(g_prior_max) == 0.0)
    # ... while straight-through gives the raw (unfloored) gradient.
    _, g_prior_st = grads(1.0, 0.1)
    _, g_prior_raw = grads(1.0, 0.1, fb=0.0)
    np.testing.assert_allclose(g_prior_st, g_prior_raw, rtol=1e-6, atol=1e-9)


def test_kl_balance_jit_vmap_matches_loop():
    post, prior = _latents()  # vmap over the leading axis as if over seeds
    batched = jax.jit(jax.vmap(lambda a, b: kl_balance(a, b)[0]))(post, prior)
    looped = [kl_balance(post[i], prior[i])[0] for i in range(post.shape[0])]
    np.testing.assert_allclose(batched, looped, rtol=1e-6)


def test_kl_balance_defaults_metric_keys_and_strict_below_free():
    post, prior = _latents()  # raw KL < 1 nat everywhere
    loss, m = kl_balance(post, prior)  # defaults: beta_dyn 1, beta_rep 0.1, free bits 1 nat
    np.testing.assert_allclose(loss, 1.1, rtol=1e-6)
    assert set(m) == {"kl/loss", "kl/dyn_raw", "kl/rep_raw", "kl/dyn", "kl/rep",
                      "kl/below_free_frac"}
    assert m["kl/loss"] == loss and m["kl/rep"] == 1.0
    # "below" is strict: a KL of exactly the threshold (0 = 0 for identical logits) is not below.
    _, m0 = kl_balance(post, post, free_bits=0.0)
    assert m0["kl/dyn_raw"] == 0.0 and m0["kl/below_free_frac"] == 0.0
