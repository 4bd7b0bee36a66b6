"""Actor switches: decoupled std_net (report 000 Fix A), tanh vs clamp log-std (Fix B)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.nn import SquashedGaussianActor

FEATS = jax.random.normal(jax.random.key(0), (16, 6))


def _log_std_grads(actor):
    params = actor.init(jax.random.key(1), FEATS, -5.0, 2.0)
    grads = jax.grad(lambda p: actor.apply(p, FEATS, -5.0, 2.0)[1].sum())(params)
    return params, grads["params"]


def test_decoupled_log_std_gives_zero_gradient_to_trunk_and_mean_head():
    params, g = _log_std_grads(SquashedGaussianActor((32, 32), 3, std_head="decoupled"))
    assert {"trunk", "mean", "std_net_0", "std_net_1"} <= set(params["params"])
    for leaf in jax.tree.leaves((g["trunk"], g["mean"])):
        assert np.all(leaf == 0.0)
    assert any(np.any(leaf != 0.0) for leaf in jax.tree.leaves(g["std_net_0"]))


def test_coupled_log_std_gradient_reaches_trunk():
    params, g = _log_std_grads(SquashedGaussianActor((32, 32), 3, std_head="coupled"))
    assert "std_net_0" not in params["params"] and "log_std" in params["params"]
    assert any(np.any(leaf != 0.0) for leaf in jax.tree.leaves(g["trunk"]))


@pytest.mark.parametrize("param", ["tanh", "clamp"])
def test_log_std_in_bounds(param):
    actor = SquashedGaussianActor((8,), 2, log_std_param=param)
    params = actor.init(jax.random.key(0), FEATS, -5.0, 2.0)
    big = jax.tree.map(lambda x: x * 1e3, params)  # drive raw outputs far outside the bounds
    mean, log_std = actor.apply(big, FEATS, -5.0, 2.0)
    assert mean.shape == log_std.shape == (16, 2)
    assert np.all(log_std >= -5.0) and np.all(log_std <= 2.0)


def test_clamp_has_dead_zone_tanh_does_not():
    # Field report 000 Problem 2 / Fix B: at the floor clamp kills the gradient, tanh keeps one.
    def grad_at_floor(param):
        actor = SquashedGaussianActor((8,), 2, std_head="coupled", log_std_param=param)
        params = actor.init(jax.random.key(0), FEATS, -5.0, 2.0)
        params["params"]["log_std"]["bias"] = jnp.full((2,), -8.0)  # raw below the floor
        params["params"]["log_std"]["kernel"] *= 0.0
        g = jax.grad(lambda p: actor.apply(p, FEATS, -5.0, 2.0)[1].sum())(params)
        return g["params"]["log_std"]["bias"]

    assert np.all(grad_at_floor("clamp") == 0.0)
    assert np.all(grad_at_floor("tanh") > 0.0)


def test_film_modulates_mean_only_in_decoupled_mode():
    actor = SquashedGaussianActor((8, 8), 2)
    params = actor.init(jax.random.key(0), FEATS, -5.0, 2.0)
    film = tuple((jnp.ones((16, 8)), jnp.ones((16, 8))) for _ in range(2))
    m0, s0 = actor.apply(params, FEATS, -5.0, 2.0)
    m1, s1 = actor.apply(params, FEATS, -5.0, 2.0, film)
    assert not np.allclose(m0, m1)
    np.testing.assert_array_equal(s0, s1)


def test_bad_switch_values_raise():
    with pytest.raises(ValueError, match="std_head"):
        SquashedGaussianActor((8,), 2, std_head="x").init(jax.random.key(0), FEATS, -5.0, 2.0)
    with pytest.raises(ValueError, match="log_std_param"):
        SquashedGaussianActor((8,), 2, log_std_param="x").init(jax.random.key(0), FEATS, -5, 2)
