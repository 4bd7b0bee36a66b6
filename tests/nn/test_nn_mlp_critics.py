"""MLP and critic-ensemble tests: shapes, FiLM identity, independent critic init (report 003)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.nn import MLP, CriticEnsemble, apply_film


def test_mlp_shapes_and_options():
    x = jnp.ones((5, 3))
    for init in ("lecun", "orthogonal"):
        m = MLP((16, 8), out_dim=2, layer_norm=True, dropout=0.1, init_kind=init, activation="silu")
        p = m.init(jax.random.key(0), x)
        assert m.apply(p, x).shape == (5, 2)
        y = m.apply(p, x, deterministic=False, rngs={"dropout": jax.random.key(1)})
        assert y.shape == (5, 2) and np.all(np.isfinite(y))
    assert "LayerNorm_0" in p["params"]


def test_mlp_zero_film_is_identity_and_film_changes_output():
    x = jax.random.normal(jax.random.key(0), (4, 3))
    m = MLP((8, 8))
    p = m.init(jax.random.key(1), x)
    zeros = tuple((jnp.zeros((4, 8)), jnp.zeros((4, 8))) for _ in range(2))
    np.testing.assert_array_equal(m.apply(p, x), m.apply(p, x, zeros))
    ones = tuple((jnp.ones((4, 8)), jnp.ones((4, 8))) for _ in range(2))
    assert not np.allclose(m.apply(p, x), m.apply(p, x, ones))
    with pytest.raises(ValueError, match="FiLM layers"):
        m.apply(p, x, zeros[:1])
    np.testing.assert_allclose(apply_film(jnp.ones(2), (jnp.ones(2), jnp.ones(2))), [3.0, 3.0])


@pytest.mark.parametrize("n_outputs", [1, 5])
def test_critics_differ_at_init(n_outputs):
    # Field report 003: identical q1/q2 was a bug; each member must be initialised on its own.
    feats, act = jax.random.normal(jax.random.key(0), (32, 4)), jnp.zeros((32, 2))
    ens = CriticEnsemble(n_critics=3, hidden=(16, 16), n_outputs=n_outputs)
    p = ens.init(jax.random.key(1), feats, act)
    q = ens.apply(p, feats, act)
    assert q.shape == ((3, 32) if n_outputs == 1 else (3, 32, n_outputs))
    k = p["params"]["q"]["mlp"]["Dense_0"]["kernel"]
    assert k.shape == (3, 6, 16)
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.allclose(k[i], k[j])
            assert np.mean(np.isclose(q[i], q[j])) < 0.05


def test_critic_dropout_masks_differ_per_member():
    feats, act = jnp.ones((8, 4)), jnp.zeros((8, 1))
    ens = CriticEnsemble(n_critics=2, hidden=(64,), layer_norm=True, dropout=0.5)
    p = ens.init(jax.random.key(0), feats, act)
    # Same weights for both members, so any difference comes from the dropout masks.
    p = jax.tree.map(lambda x: jnp.broadcast_to(x[:1], x.shape), p)
    det = ens.apply(p, feats, act)
    np.testing.assert_allclose(det[0], det[1])
    sto = ens.apply(p, feats, act, False, rngs={"dropout": jax.random.key(3)})
    assert not np.allclose(sto[0], sto[1])
