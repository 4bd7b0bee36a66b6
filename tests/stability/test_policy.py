"""Tests for rlstab_jax.stability.policy (field report 000, Fix B / Fix C)."""

import math

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlstab_jax.stability.policy import (
    clamp_log_std,
    deterministic_action,
    squash_log_det,
    squashed_gaussian_log_prob,
    squashed_gaussian_sample,
    tanh_log_std,
)

LO, HI = -20.0, 2.0
finite_raw = st.floats(-1e6, 1e6, allow_nan=False, width=32)


# ---------------------------------------------------------------- log-std parametrisation
def test_tanh_log_std_hand_values():
    # raw=0 -> tanh=0 -> midpoint; raw -> +-inf -> the bounds.
    out = tanh_log_std(jnp.array([0.0, 50.0, -50.0]), -5.0, 1.0)
    np.testing.assert_allclose(out, [-2.0, 1.0, -5.0], atol=1e-6)
    # raw=0.5: -5 + 3 * (tanh(0.5) + 1)
    np.testing.assert_allclose(
        tanh_log_std(jnp.array(0.5), -5.0, 1.0), -5.0 + 3.0 * (math.tanh(0.5) + 1.0), rtol=1e-6
    )


def test_tanh_log_std_rounding_overshoot_is_clipped_to_the_bound():
    # float32: -20 + 0.5 * 20.1 * 2 = 0.10000038 > 0.1; the value is clipped to the bound exactly
    # while the gradient stays tanh's (a sign error in the correction doubles the overshoot).
    for lo, hi in ((-20.0, 0.1), (-10.0, 0.3)):
        out = np.asarray(tanh_log_std(jnp.array([50.0, -50.0]), lo, hi))
        np.testing.assert_array_equal(out, np.float32([hi, lo]))
        g = jax.grad(lambda r, lo=lo, hi=hi: tanh_log_std(r, lo, hi))(jnp.float32(5.0))
        assert g > 0.0


@settings(max_examples=50, deadline=None)
@given(raw=st.lists(finite_raw, min_size=1, max_size=8))
def test_tanh_log_std_always_in_bounds(raw):
    out = np.asarray(tanh_log_std(jnp.asarray(raw, jnp.float32), LO, HI))
    assert np.all(out >= LO) and np.all(out <= HI)


@settings(max_examples=50, deadline=None)
@given(raw=st.floats(-20.0, 20.0, allow_nan=False, width=32))
def test_tanh_log_std_gradient_never_zero(raw):
    g = jax.grad(lambda r: tanh_log_std(r, LO, HI))(jnp.float32(raw))
    assert np.isfinite(g) and g > 0.0


def test_tanh_log_std_gradient_matches_analytic_in_saturation():
    # d/draw = 0.5 (hi - lo) sech^2(raw); sech^2(20) = 4 e^-40 / (1 + e^-40)^2.
    g = jax.grad(lambda r: tanh_log_std(r, LO, HI))(jnp.float32(20.0))
    np.testing.assert_allclose(g, 0.5 * (HI - LO) * 4.0 * math.exp(-40.0), rtol=1e-4)


@settings(max_examples=50, deadline=None)
@given(raw=st.lists(finite_raw, min_size=1, max_size=8))
def test_clamp_log_std_in_bounds(raw):
    out = np.asarray(clamp_log_std(jnp.asarray(raw, jnp.float32), LO, HI))
    assert np.all(out >= LO) and np.all(out <= HI)


def test_clamp_log_std_dead_zone_is_exactly_zero_gradient():
    grad = jax.vmap(jax.grad(lambda r: clamp_log_std(r, LO, HI)))
    g = grad(jnp.array([-25.0, -20.5, 2.5, 30.0, -3.0, 0.0]))
    np.testing.assert_array_equal(g, [0.0, 0.0, 0.0, 0.0, 1.0, 1.0])


# ---------------------------------------------------------------- tanh log-det
@pytest.mark.parametrize("u", [-20.0, -9.0, -1.3, 0.0, 0.7, 5.0, 9.0, 20.0])
def test_squash_log_det_matches_float64_reference(u):
    # log(1 - tanh^2) = -2 log cosh(u) = -2 (|u| + log1p(e^{-2|u|}) - log 2), float64.
    ref = -2.0 * (abs(u) + math.log1p(math.exp(-2.0 * abs(u))) - math.log(2.0))
    np.testing.assert_allclose(squash_log_det(jnp.float32(u)), ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("u", [-3.0, -0.4, 0.0, 0.8, 2.5])
def test_squash_log_det_equals_autodiff_log_abs_jacobian(u):
    autodiff = math.log(float(jax.grad(jnp.tanh)(jnp.float32(u))))
    np.testing.assert_allclose(squash_log_det(jnp.float32(u)), autodiff, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("u", [-2.0, -0.3, 0.0, 1.1])
def test_squash_log_det_matches_finite_difference_of_tanh(u):
    h = 1e-3
    fd = (math.tanh(u + h) - math.tanh(u - h)) / (2 * h)
    np.testing.assert_allclose(squash_log_det(jnp.float32(u)), math.log(fd), rtol=1e-4, atol=1e-5)


def test_squash_log_det_finite_at_20_with_finite_gradient():
    u = jnp.array([-20.0, 20.0, -40.0, 40.0])
    val = squash_log_det(u)
    assert np.all(np.isfinite(val))
    np.testing.assert_allclose(val[:2], 2 * (math.log(2) - 20.0), rtol=1e-6)
    g = jax.vmap(jax.grad(squash_log_det))(u)
    np.testing.assert_allclose(g, [2.0, -2.0, 2.0, -2.0], rtol=1e-6)  # d/du(-2|u|) far out


# ---------------------------------------------------------------- log-probs
def _moderate_inputs():
    u = jnp.array([[0.3, -1.2, 2.0], [-0.5, 0.0, 1.5]], jnp.float32)
    mean = jnp.array([[0.1, -1.0, 1.0], [0.2, 0.3, -0.4]], jnp.float32)
    log_std = jnp.array([[-0.5, 0.2, -1.0], [0.0, -2.0, 0.5]], jnp.float32)
    return u, mean, log_std


def test_log_prob_matches_distrax_transformed_tanh():
    u, mean, log_std = _moderate_inputs()
    total, per_dim = squashed_gaussian_log_prob(u, mean, log_std)
    dist = distrax.Transformed(distrax.Normal(mean, jnp.exp(log_std)), distrax.Tanh())
    ref_per_dim = dist.log_prob(jnp.tanh(u))
    np.testing.assert_allclose(per_dim, ref_per_dim, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(total, ref_per_dim.sum(-1), rtol=1e-4, atol=1e-4)
    assert total.shape == (2,) and per_dim.shape == (2, 3)


def test_log_prob_sums_the_last_axis_for_any_leading_axes():
    # [T, B, D] (and a single [D] action, or 5 leading axes) sum over the action dims only.
    u, mean, log_std = _moderate_inputs()
    total, per_dim = squashed_gaussian_log_prob(u, mean, log_std)
    for shape in ((1, 2, 3), (2, 1, 1, 1, 1, 3)):
        t, p = squashed_gaussian_log_prob(u.reshape(shape), mean.reshape(shape),
                                          log_std.reshape(shape))
        np.testing.assert_allclose(t, total.reshape(shape[:-1]), rtol=1e-6)
        np.testing.assert_allclose(p, per_dim.reshape(shape), rtol=1e-6)
    t1, _ = squashed_gaussian_log_prob(u[1], mean[1], log_std[1])
    np.testing.assert_allclose(t1, total[1], rtol=1e-6)


def test_log_prob_hand_value():
    # u=mean=0, log_std=0: log N(0;0,1) = -0.5 log(2 pi); log-det(0) = 0.
    total, per_dim = squashed_gaussian_log_prob(jnp.zeros((1, 2)), jnp.zeros((1, 2)), jnp.zeros((1, 2)))
    np.testing.assert_allclose(per_dim, -0.5 * math.log(2 * math.pi) * np.ones((1, 2)), rtol=1e-6)
    np.testing.assert_allclose(total, [-math.log(2 * math.pi)], rtol=1e-6)


def test_log_prob_finite_for_extreme_u():
    u = jnp.array([[-20.0, 20.0, 15.0]])
    total, per_dim = squashed_gaussian_log_prob(u, jnp.zeros_like(u), jnp.zeros_like(u))
    assert np.all(np.isfinite(per_dim)) and np.all(np.isfinite(total))
    g = jax.grad(lambda m: squashed_gaussian_log_prob(u, m, jnp.zeros_like(u))[0].sum())(u * 0)
    assert np.all(np.isfinite(g))


def test_sample_is_consistent_with_log_prob_and_bounded():
    key = jax.random.key(0)
    mean = jnp.array([[0.5, -3.0, 8.0]] * 4)
    log_std = jnp.array([[-1.0, 0.0, 1.0]] * 4)
    action, total, per_dim = squashed_gaussian_sample(key, mean, log_std)
    assert action.shape == (4, 3) and total.shape == (4,) and per_dim.shape == (4, 3)
    assert np.all(np.abs(action) <= 1.0)
    # Recompute u from the same noise and compare with the log-prob function.
    eps = jax.random.normal(key, mean.shape)
    u = mean + jnp.exp(log_std) * eps
    np.testing.assert_allclose(action, jnp.tanh(u), rtol=1e-6)
    ref_total, ref_per_dim = squashed_gaussian_log_prob(u, mean, log_std)
    np.testing.assert_allclose(per_dim, ref_per_dim, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(total, ref_total, rtol=1e-4, atol=1e-4)
    # [T, B, D] (as in a sequence of batches): the total sums the action dims only.
    _, total3, per_dim3 = squashed_gaussian_sample(key, mean.reshape(2, 2, 3),
                                                   log_std.reshape(2, 2, 3))
    assert total3.shape == (2, 2)
    np.testing.assert_allclose(total3, per_dim3.sum(-1), rtol=1e-6)


def test_sample_is_reparameterised():
    key = jax.random.key(1)

    def f(mean, log_std):
        a, logp, _ = squashed_gaussian_sample(key, mean, log_std)
        return a.sum() + logp.sum()

    gm, gs = jax.grad(f, argnums=(0, 1))(jnp.zeros((2, 3)), jnp.zeros((2, 3)))
    assert np.all(np.abs(gm) > 0) and np.all(np.abs(gs) > 0)


def test_sample_jit_vmap_match_loop():
    keys = jax.random.split(jax.random.key(2), 3)
    mean = jnp.linspace(-1, 1, 3 * 5 * 2).reshape(3, 5, 2)
    log_std = jnp.full((3, 5, 2), -0.5)
    batched = jax.jit(jax.vmap(squashed_gaussian_sample))(keys, mean, log_std)
    for i in range(3):
        single = squashed_gaussian_sample(keys[i], mean[i], log_std[i])
        for b, s in zip(batched, single):
            np.testing.assert_allclose(b[i], s, rtol=1e-5, atol=1e-6)


def test_deterministic_action():
    m = jnp.array([[-30.0, -1.0, 0.0, 2.0]])
    np.testing.assert_allclose(deterministic_action(m), np.tanh(np.asarray(m)), rtol=1e-6)
    assert jax.grad(lambda x: deterministic_action(x).sum())(jnp.float32(12.0)) > 0.0


def test_shape_mismatch_raises():
    with pytest.raises(AssertionError):
        squashed_gaussian_log_prob(jnp.zeros((2, 3)), jnp.zeros((2, 2)), jnp.zeros((2, 3)))
