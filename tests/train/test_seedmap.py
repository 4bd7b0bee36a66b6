"""seed_map: vmap over seeds, or the unbatched program for a single seed (same results)."""

import chex
import jax
import jax.numpy as jnp
import pytest

from rlstab_jax.train.seedmap import seed_map


def _fn(params, x, key):
    h = jnp.tanh(x @ params["w"])
    noise = jax.random.normal(key, h.shape)
    mu, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
    return {"y": (h - mu) / jnp.sqrt(var + 1e-6) + noise, "n": jnp.sum(x)}


@pytest.mark.parametrize("n_seeds", [1, 3])
def test_seed_map_matches_vmap(n_seeds):
    k = jax.random.split(jax.random.key(0), 3)
    params = {"w": jax.random.normal(k[0], (n_seeds, 4, 5))}
    x = jax.random.normal(k[1], (n_seeds, 7, 4))
    keys = jax.random.split(k[2], n_seeds)
    got = jax.jit(seed_map(_fn, n_seeds))(params, x, keys)
    want = jax.vmap(_fn)(params, x, keys)
    chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-5)
    chex.assert_shape(got["y"], (n_seeds, 7, 5))
    chex.assert_shape(got["n"], (n_seeds,))


def test_single_seed_traces_unbatched():
    seen = []

    def fn(x):
        seen.append(x.shape)
        return x * 2

    out = seed_map(fn, 1)(jnp.ones((1, 3)))
    assert seen == [(3,)]
    chex.assert_shape(out, (1, 3))
