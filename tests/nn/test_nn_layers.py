"""Fast Dropout / LayerNorm of ``rlstab_jax.nn.layers``: rate, scaling, keys, Flax equivalence."""

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.nn import MLP, CriticEnsemble
from rlstab_jax.nn.layers import Dropout, LayerNorm, dropout, dropout_keep_mask, layer_norm


@pytest.mark.parametrize("rate", [0.01, 0.1, 0.5])
def test_dropout_empirical_rate_matches(rate):
    n = 1 << 20
    keep = np.asarray(dropout_keep_mask(jax.random.key(0), rate, (n,)))
    drop = 1.0 - keep.mean()
    se = np.sqrt(rate * (1 - rate) / n)
    assert abs(drop - rate) < 5 * se, (drop, rate)
    # No structure along the index: both halves and odd/even entries see the same rate.
    for part in (keep[: n // 2], keep[n // 2:], keep[0::2], keep[1::2]):
        assert abs((1.0 - part.mean()) - rate) < 5 * np.sqrt(2) * se


def test_dropout_masks_differ_across_keys_and_are_uncorrelated():
    rate, shape = 0.5, (256, 256)
    masks = [np.asarray(dropout_keep_mask(k, rate, shape), np.float64)
             for k in jax.random.split(jax.random.key(1), 4)]
    for i in range(4):
        for j in range(i + 1, 4):
            assert not np.array_equal(masks[i], masks[j])
            corr = np.corrcoef(masks[i].ravel(), masks[j].ravel())[0, 1]
            assert abs(corr) < 0.02
    # Same key -> same mask (reproducible); neighbouring entries are not correlated.
    again = np.asarray(dropout_keep_mask(jax.random.split(jax.random.key(1), 4)[0], rate, shape))
    np.testing.assert_array_equal(masks[0], again)
    flat = masks[0].ravel()
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 0.02


def test_dropout_scales_kept_entries_by_inverse_keep_prob():
    rate = 0.01
    x = jnp.ones((512, 512))
    y = np.asarray(dropout(jax.random.key(3), x, rate))
    kept = y[y != 0]
    np.testing.assert_allclose(kept, 1.0 / (1.0 - rate), rtol=1e-6)
    assert 0 < (y == 0).sum() < 0.02 * y.size
    assert abs(y.mean() - 1.0) < 3e-3  # unbiased
    assert dropout(jax.random.key(3), x, 0.0) is x


def test_dropout_module_rng_stream_and_deterministic():
    x = jnp.ones((64, 128))
    m = Dropout(0.1)
    np.testing.assert_array_equal(m.apply({}, x, deterministic=True), x)
    a = m.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(0)})
    b = m.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(0)})
    c = m.apply({}, x, deterministic=False, rngs={"dropout": jax.random.key(1)})
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(flax.errors.InvalidRngError):  # needs a 'dropout' rng when training
        m.apply({}, x, deterministic=False)


def test_ensemble_members_draw_their_own_masks():
    feats, act = jnp.ones((32, 3)), jnp.zeros((32, 1))
    ens = CriticEnsemble(2, (64, 64), dropout=0.5)
    p = ens.init(jax.random.key(0), feats, act)
    p = jax.tree.map(lambda w: jnp.broadcast_to(w[:1], w.shape), p)  # identical members
    q = ens.apply(p, feats, act, False, rngs={"dropout": jax.random.key(2)})
    assert not np.allclose(q[0], q[1])
    q_eval = ens.apply(p, feats, act, True)
    np.testing.assert_allclose(q_eval[0], q_eval[1])


def test_layer_norm_matches_flax_forward_and_gradients():
    x = 3.0 * jax.random.normal(jax.random.key(0), (2, 16, 32)) + 1.5
    ref = nn.LayerNorm()
    p = ref.init(jax.random.key(1), x)
    p = jax.tree.map(lambda a: a + 0.1 * jax.random.normal(jax.random.key(2), a.shape), p)
    ours = LayerNorm()
    assert jax.tree.map(jnp.shape, ours.init(jax.random.key(1), x)) == jax.tree.map(jnp.shape, p)
    w = jax.random.normal(jax.random.key(3), x.shape)

    def loss(mod, p, x):
        return jnp.sum(jnp.tanh(mod.apply(p, x)) * w)

    np.testing.assert_allclose(ours.apply(p, x), ref.apply(p, x), rtol=1e-5, atol=1e-5)
    g_ours = jax.grad(loss, argnums=(1, 2))(ours, p, x)
    g_ref = jax.grad(loss, argnums=(1, 2))(ref, p, x)
    for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    # Under vmap (the seed axis of the drivers) as well.
    gv = jax.vmap(jax.grad(loss, argnums=(1, 2)), (None, None, 0))(ours, p, x[None])
    for a, b in zip(jax.tree.leaves(gv), jax.tree.leaves(g_ours)):
        np.testing.assert_allclose(a[0], b, rtol=1e-5, atol=1e-5)


def test_layer_norm_constant_rows_are_finite():
    x = jnp.full((4, 8), 7.0)
    y = layer_norm(x, jnp.ones(8), jnp.zeros(8))
    np.testing.assert_allclose(y, 0.0, atol=1e-6)
    g = jax.grad(lambda x: layer_norm(x, jnp.ones(8), jnp.zeros(8)).sum())(x)
    assert np.all(np.isfinite(g))


def test_mlp_with_fast_layers_keeps_flax_param_layout():
    m = MLP((16, 8), out_dim=1, layer_norm=True, dropout=0.01)
    p = m.init(jax.random.key(0), jnp.ones((2, 3)))["params"]
    assert set(p) == {"Dense_0", "Dense_1", "Dense_2", "LayerNorm_0", "LayerNorm_1"}
    assert set(p["LayerNorm_0"]) == {"scale", "bias"}
