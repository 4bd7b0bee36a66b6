"""The vmap-safe orthogonal initialiser (rlstab_jax/nn/init.py)."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.nn.init import orthogonal, sequential_under_vmap


@pytest.mark.parametrize("shape,column_axis", [((6, 4), -1), ((4, 6), -1), ((3, 3, 5), -1),
                                               ((5, 2, 3), 0)])
def test_values_equal_jax_orthogonal_single_and_vmapped(shape, column_axis):
    ref = jax.nn.initializers.orthogonal(1.3, column_axis)
    ours = orthogonal(1.3, column_axis)
    key = jax.random.PRNGKey(3)
    np.testing.assert_array_equal(ours(key, shape), ref(key, shape))
    keys = jax.random.split(key, 3)
    got = jax.jit(jax.vmap(lambda k: ours(k, shape)))(keys)
    chex.assert_shape(got, (3,) + shape)
    np.testing.assert_allclose(got, jax.vmap(lambda k: ref(k, shape))(keys), atol=1e-6)
    m = np.moveaxis(np.asarray(got[1]), column_axis, -1).reshape(-1, shape[column_axis])
    small = min(m.shape)
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, 1.3**2 * np.eye(small), atol=1e-5)


def test_vmapped_init_has_no_batched_qr():
    """The property that prevents the CPU deadlock: under vmap, every QR stays unbatched."""
    f = jax.vmap(lambda k: orthogonal()(k, (8, 8)))
    hlo = jax.jit(f).lower(jax.random.split(jax.random.PRNGKey(0), 4)).as_text()
    qr_lines = [ln for ln in hlo.splitlines() if "qr" in ln.lower() and "tensor<" in ln]
    assert qr_lines, "expected a QR in the lowered init"
    assert all("tensor<4x8x8" not in ln for ln in qr_lines), qr_lines
    ref = jax.vmap(lambda k: jax.nn.initializers.orthogonal()(k, (8, 8)))
    ref_hlo = jax.jit(ref).lower(jax.random.split(jax.random.PRNGKey(0), 4)).as_text()
    assert any("tensor<4x8x8" in ln for ln in ref_hlo.splitlines() if "qr" in ln.lower())


def test_nested_vmap_and_unbatched_key_under_vmap():
    init = orthogonal()
    keys = jax.random.split(jax.random.PRNGKey(1), 6).reshape(2, 3, 2)
    got = jax.vmap(jax.vmap(lambda k: init(k, (4, 4))))(keys)
    chex.assert_shape(got, (2, 3, 4, 4))
    np.testing.assert_allclose(got[1, 2], init(keys[1, 2], (4, 4)), atol=1e-6)
    # key closed over, something else vmapped: the init is computed once, not per member
    k = jax.random.PRNGKey(2)
    out = jax.vmap(lambda x: init(k, (4, 4)) * x)(jnp.arange(3.0))
    np.testing.assert_allclose(out[2], 2 * init(k, (4, 4)), atol=1e-6)


def test_generic_wrapper_and_flax_module_init_under_vmap():
    normal = sequential_under_vmap(jax.nn.initializers.normal(0.5))
    key = jax.random.PRNGKey(4)
    np.testing.assert_array_equal(normal(key, (3, 2)), jax.nn.initializers.normal(0.5)(key, (3, 2)))
    cell = nn.OptimizedLSTMCell(8, recurrent_kernel_init=orthogonal())
    x = jnp.zeros((1, 5))
    carry = (jnp.zeros((1, 8)), jnp.zeros((1, 8)))
    params = jax.jit(jax.vmap(lambda k: cell.init(k, carry, x)))(jax.random.split(key, 3))
    ref = nn.OptimizedLSTMCell(8).init(jax.random.split(key, 3)[2], carry, x)
    chex.assert_trees_all_close(jax.tree.map(lambda a: a[2], params), ref, atol=1e-6)
