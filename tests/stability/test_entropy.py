"""Tests for rlstab_jax.stability.entropy (field report 000, Fix C / Step 7)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.stability.entropy import (
    alpha_loss,
    alpha_values,
    apply_alpha_floor,
    backup_alpha,
    policy_entropy_cost,
    target_entropy_per_dim,
)


def test_target_entropy_per_dim():
    np.testing.assert_array_equal(target_entropy_per_dim(3), [-1.0, -1.0, -1.0])
    np.testing.assert_allclose(target_entropy_per_dim(3, -3.0), [-1.0] * 3)
    np.testing.assert_allclose(target_entropy_per_dim(4, -0.5), [-0.125] * 4)
    assert target_entropy_per_dim(2).dtype == jnp.float32
    np.testing.assert_array_equal(target_entropy_per_dim(1), [-1.0])  # one dim is valid
    with pytest.raises(ConfigError, match=r"^target_entropy_per_dim: act_dim=0 must be an "
                                          r"int >= 1$"):
        target_entropy_per_dim(0)


def test_alpha_loss_per_dim_hand_value_and_gradient():
    # mean_b logp = [-2, 0.5]; target = [-1, -1] -> gaps = [-3, -0.5]
    # loss = -(la0 * -3 + la1 * -0.5) = 3 la0 + 0.5 la1 with la = [0.1, -0.2] -> 0.2
    log_alpha = jnp.array([0.1, -0.2])
    logp = jnp.array([[-1.0, 0.0], [-3.0, 1.0]])
    target = jnp.array([-1.0, -1.0])
    loss, metrics = alpha_loss(log_alpha, logp, target)
    np.testing.assert_allclose(loss, 0.2, rtol=1e-6)
    g = jax.grad(lambda la: alpha_loss(la, logp, target)[0])(log_alpha)
    np.testing.assert_allclose(g, [3.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(metrics["alpha/entropy"], 1.5, rtol=1e-6)  # -(-2 + 0.5)
    np.testing.assert_allclose(metrics["alpha/mean"], np.mean(np.exp([0.1, -0.2])), rtol=1e-6)
    assert set(metrics) == {"alpha/loss", "alpha/mean", "alpha/entropy"}
    assert metrics["alpha/loss"] == loss


def test_alpha_loss_scalar_variant_uses_total():
    # mean_b logp_total = -1.5; sum target = -2 -> loss = -la * (-3.5) = 3.5 la
    logp = jnp.array([[-1.0, 0.0], [-3.0, 1.0]])
    loss, _ = alpha_loss(jnp.array([0.4]), logp, jnp.array([-1.0, -1.0]), per_dim=False)
    np.testing.assert_allclose(loss, 3.5 * 0.4, rtol=1e-6)
    with pytest.raises(AssertionError):
        alpha_loss(jnp.zeros(2), logp, jnp.zeros(2), per_dim=False)


def test_alpha_loss_stops_gradient_to_logp():
    g = jax.grad(lambda lp: alpha_loss(jnp.ones(2), lp, -jnp.ones(2))[0])(jnp.ones((3, 2)))
    np.testing.assert_array_equal(g, np.zeros((3, 2)))


def _alpha_trajectory(per_dim, steps=50):
    # Synthetic batch: dim 0 very random (logp -3 => entropy 3 above target -1),
    # dim 1 exactly on target, dim 2 too deterministic (logp +2 => entropy -2).
    logp = jnp.tile(jnp.array([[-3.0, 1.0, 2.0]]), (16, 1))
    target = target_entropy_per_dim(3)
    log_alpha = jnp.zeros(3) if per_dim else jnp.zeros(1)
    opt = optax.sgd(0.01)
    state = opt.init(log_alpha)
    for _ in range(steps):
        g = jax.grad(lambda la: alpha_loss(la, logp, target, per_dim)[0])(log_alpha)
        upd, state = opt.update(g, state)
        log_alpha = optax.apply_updates(log_alpha, upd)
    return log_alpha


def test_per_dim_alpha_moves_dims_independently():
    la = _alpha_trajectory(per_dim=True)
    # gradient per dim = -(logp_d + target_d) = [4, 0, -1]; 50 SGD steps of 0.01
    np.testing.assert_allclose(la, [-2.0, 0.0, 0.5], rtol=1e-5, atol=1e-6)
    la_scalar = _alpha_trajectory(per_dim=False)
    # scalar: gradient = -(0 + -3) = 3 -> one alpha falls for every dimension
    np.testing.assert_allclose(la_scalar, [-1.5], rtol=1e-5)


@settings(max_examples=50, deadline=None)
@given(la=st.floats(-30, 5, width=32), floor=st.floats(-1.0, 1.0, width=32))
def test_alpha_floor_property(la, floor):
    out = float(apply_alpha_floor(jnp.array([la], jnp.float32), floor)[0])
    if floor > 0:
        assert out >= math.log(floor) - 1e-6
        assert out == pytest.approx(max(la, math.log(floor)), abs=1e-6)
    else:
        assert out == la


def test_alpha_floor_traced_under_vmap():
    floors = jnp.array([0.0, 0.01, 0.5])
    out = jax.jit(jax.vmap(apply_alpha_floor, in_axes=(None, 0)))(jnp.full(3, -10.0), floors)
    np.testing.assert_allclose(out[0], -10.0)
    np.testing.assert_allclose(out[1], math.log(0.01), rtol=1e-6)
    np.testing.assert_allclose(out[2], math.log(0.5), rtol=1e-6)


def test_alpha_values_learned_and_fixed():
    la = jnp.log(jnp.array([0.1, 0.2]))
    np.testing.assert_allclose(alpha_values(la), [0.1, 0.2], rtol=1e-6)
    np.testing.assert_allclose(alpha_values(la, 0.027), [0.027, 0.027], rtol=1e-6)
    g = jax.grad(lambda x: alpha_values(x, 0.01).sum())(la)
    np.testing.assert_array_equal(g, [0.0, 0.0])
    np.testing.assert_allclose(jax.grad(lambda x: alpha_values(x).sum())(la), [0.1, 0.2], rtol=1e-6)


def test_policy_entropy_cost_per_dim_and_scalar():
    logp = jnp.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    cost = policy_entropy_cost(jnp.array([0.1, 0.2, 0.3]), logp)
    np.testing.assert_allclose(cost, [0.1 - 0.4 + 0.15, 0.6 - 0.3], rtol=1e-6)
    scalar = policy_entropy_cost(jnp.array([0.5]), logp)
    np.testing.assert_allclose(scalar, 0.5 * logp.sum(-1), rtol=1e-6)
    # gradient goes to the log-probs only
    ga = jax.grad(lambda a: policy_entropy_cost(a, logp).sum())(jnp.ones(3))
    np.testing.assert_array_equal(ga, np.zeros(3))
    gl = jax.grad(lambda lp: policy_entropy_cost(jnp.array([0.1, 0.2, 0.3]), lp).sum())(logp)
    np.testing.assert_allclose(gl, np.tile([0.1, 0.2, 0.3], (2, 1)), rtol=1e-6)


def test_backup_alpha_is_mean():
    np.testing.assert_allclose(backup_alpha(jnp.array([0.1, 0.2, 0.6])), 0.3, rtol=1e-6)
    np.testing.assert_allclose(backup_alpha(jnp.array([0.05])), 0.05, rtol=1e-6)


def test_vmap_over_seeds_matches_loop():
    las = jnp.array([[0.0, 1.0], [-1.0, 0.5], [2.0, -2.0]])
    logps = jnp.arange(3 * 4 * 2, dtype=jnp.float32).reshape(3, 4, 2) / 10 - 1
    tgt = -jnp.ones(2)
    vm = jax.jit(jax.vmap(lambda a, b: alpha_loss(a, b, tgt)[0]))(las, logps)
    loop = [alpha_loss(las[i], logps[i], tgt)[0] for i in range(3)]
    np.testing.assert_allclose(vm, loop, rtol=1e-6)
