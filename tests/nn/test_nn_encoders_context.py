"""Encoder and context tests: GroupNorm CNN (report 001 §2), no-dropout transformer (§3)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.nn import (CNNEncoder, ContextEncoder, FiLMGenerator, VectorEncoder,
                           context_obs_dim, split_context_obs)

def test_vector_encoder_identity_and_mlp():
    x = jnp.arange(12.0).reshape(2, 2, 3)
    enc = VectorEncoder()
    p = enc.init(jax.random.key(0), x)
    np.testing.assert_array_equal(enc.apply(p, x), x.reshape(2, 6))
    enc = VectorEncoder(hidden=(8,))
    assert enc.apply(enc.init(jax.random.key(0), x), x).shape == (2, 8)

def test_cnn_uses_groupnorm_not_batchnorm_and_scales_pixels():
    obs = jax.random.randint(jax.random.key(0), (3, 16, 16, 6), 0, 256).astype(jnp.uint8)
    enc = CNNEncoder(channels=(8, 8), kernels=(4, 3), strides=(2, 1), feature_dim=10)
    variables = enc.init(jax.random.key(1), obs)
    assert set(variables) == {"params"}  # no batch_stats collection: no BatchNorm
    names = str(jax.tree_util.tree_structure(variables))
    assert "GroupNorm" in names and "BatchNorm" not in names
    f = enc.apply(variables, obs)
    assert f.shape == (3, 10) and np.all(np.abs(f) <= 1.0)
    # uint8 and the same pixels as float 0..255 give the same features.
    np.testing.assert_allclose(f, enc.apply(variables, obs.astype(jnp.float32)), atol=1e-6)
    # Per-sample normalisation: a sample's features do not depend on the rest of the batch.
    np.testing.assert_allclose(enc.apply(variables, obs[:1]), f[:1], atol=1e-5)
    with pytest.raises(ValueError, match="expects"):
        enc.apply(variables, obs[0])

def test_context_split_roundtrip_and_errors():
    o, d, k = 3, 2, 4
    assert context_obs_dim(o + k * (o + d), d, k) == o
    obs = jnp.arange(2 * (o + k * (o + d)), dtype=jnp.float32).reshape(2, -1)
    cur, hist = split_context_obs(obs, d, k)
    assert cur.shape == (2, o) and hist.shape == (2, k, o + d)
    np.testing.assert_array_equal(jnp.concatenate([cur, hist.reshape(2, -1)], -1), obs)
    with pytest.raises(ValueError, match="HistoryContext"):
        context_obs_dim(10, d, k)

def test_context_encoder_has_no_dropout_and_is_deterministic():
    hist = jax.random.normal(jax.random.key(0), (2, 5, 7))
    enc = ContextEncoder(d_model=16, n_heads=2, ff_dim=32)
    p = enc.init(jax.random.key(1), hist)
    z1 = enc.apply(p, hist)
    z2 = enc.apply(p, hist, rngs={"dropout": jax.random.key(9)})
    assert z1.shape == (2, 16)
    np.testing.assert_array_equal(z1, z2)
    # The order of the history matters (positional embedding).
    assert not np.allclose(enc.apply(p, hist[:, ::-1]), z1)

def test_film_generator_starts_at_identity():
    z = jnp.ones((3, 4))
    gen = FiLMGenerator(widths=(8, 6))
    film = gen.apply(gen.init(jax.random.key(0), z), z)
    assert [g.shape for g, _ in film] == [(3, 8), (3, 6)]
    assert all(np.all(g == 0) and np.all(b == 0) for g, b in film)
