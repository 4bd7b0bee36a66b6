"""Tests for rlstab_jax.stability.gradients (field reports 002, 003)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlstab_jax.stability.gradients import (
    adaptive_grad_clip,
    all_finite,
    clip_by_global_norm_logged,
    clip_by_global_norm_with_norm,
    logged_grad_norm,
    nonfinite_count,
    skip_nonfinite,
)

GRADS = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([[4.0]])}  # global norm 5


# ---------------------------------------------------------------- global-norm clip
def test_clip_hand_values():
    clipped, norm = clip_by_global_norm_with_norm(GRADS, 1.0)
    np.testing.assert_allclose(norm, 5.0)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(clipped["b"], [[0.8]], rtol=1e-6)
    for off in (0.0, -1.0, 10.0):  # off, off, below threshold
        same, norm = clip_by_global_norm_with_norm(GRADS, off)
        np.testing.assert_array_equal(same["a"], GRADS["a"])
        np.testing.assert_allclose(norm, 5.0)


@settings(max_examples=50, deadline=None)
@given(
    g=st.lists(st.floats(-1e3, 1e3, width=32), min_size=1, max_size=6),
    max_norm=st.floats(2.0**-10, 1e3, width=32),
)
def test_clip_matches_optax_and_bounds_norm(g, max_norm):
    grads = {"g": jnp.asarray(g, jnp.float32)}
    clipped, norm = clip_by_global_norm_with_norm(grads, max_norm)
    ref, _ = optax.clip_by_global_norm(max_norm).update(grads, optax.EmptyState())
    np.testing.assert_allclose(clipped["g"], ref["g"], rtol=1e-5, atol=1e-6)
    # XLA on CPU flushes subnormal float32 to 0: squares of |g| < ~1e-19 vanish from the norm.
    np.testing.assert_allclose(norm, np.linalg.norm(np.asarray(g, np.float32)), rtol=1e-5,
                               atol=1e-18)
    assert float(optax.tree.norm(clipped)) <= max_norm * (1 + 1e-5) + 1e-6


def test_clip_vmaps_over_thresholds():
    maxes = jnp.array([0.0, 1.0, 2.5])
    clipped, norms = jax.jit(jax.vmap(clip_by_global_norm_with_norm, in_axes=(None, 0)))(GRADS, maxes)
    np.testing.assert_allclose(norms, [5.0, 5.0, 5.0])
    np.testing.assert_allclose(clipped["a"][:, 0], [3.0, 0.6, 1.5], rtol=1e-6)


def test_logged_transform_records_norm():
    opt = optax.chain(clip_by_global_norm_logged(1.0), optax.sgd(1.0))
    params = jax.tree.map(jnp.zeros_like, GRADS)
    state = opt.init(params)
    np.testing.assert_allclose(logged_grad_norm(state), 0.0)
    upd, state = jax.jit(opt.update)(GRADS, state, params)
    np.testing.assert_allclose(logged_grad_norm(state), 5.0)
    np.testing.assert_allclose(upd["a"], [-0.6, 0.0], rtol=1e-6)
    with pytest.raises(ValueError, match=r"^logged_grad_norm: expected exactly 1 "
                                         r"clip_by_global_norm_logged state, found 0$"):
        logged_grad_norm(optax.sgd(1.0).init(params))


# ---------------------------------------------------------------- AGC
def test_agc_tensorwise_hand_values():
    params = {"w": jnp.array([[3.0, 4.0]]), "z": jnp.zeros(2)}
    grads = {"w": jnp.array([[0.0, 10.0]]), "z": jnp.array([1.0, 0.0])}
    agc = adaptive_grad_clip(0.1, eps=1e-3)
    out, _ = agc.update(grads, agc.init(params), params)
    # ||w|| = 5 -> bound 0.5; ||g_w|| = 10 -> scale 0.05
    np.testing.assert_allclose(out["w"], [[0.0, 0.5]], rtol=1e-6)
    # zero params: bound 0.1 * eps = 1e-4
    np.testing.assert_allclose(out["z"], [1e-4, 0.0], rtol=1e-5)
    small = {"w": jnp.array([[0.1, 0.1]]), "z": jnp.array([1e-5, 0.0])}
    out_small, _ = agc.update(small, agc.init(params), params)
    np.testing.assert_array_equal(out_small["w"], small["w"])
    off, _ = adaptive_grad_clip(0.0).update(grads, optax.EmptyState(), params)
    np.testing.assert_array_equal(off["w"], grads["w"])


def test_agc_tensorwise_differs_from_optax_unitwise():
    # Column 0 of w is large, column 1 tiny: unit-wise clips column 1 hard, tensor-wise
    # sees one norm for the whole matrix.
    params = {"w": jnp.array([[10.0, 0.01], [0.0, 0.0]])}
    grads = {"w": jnp.array([[0.1, 0.1], [0.1, 0.1]])}
    tensor, _ = adaptive_grad_clip(0.3).update(grads, optax.EmptyState(), params)
    unit, _ = adaptive_grad_clip(0.3, unitwise=True).update(grads, optax.EmptyState(), params)
    ref, _ = optax.adaptive_grad_clip(0.3).update(grads, optax.EmptyState(), params)
    np.testing.assert_array_equal(unit["w"], ref["w"])
    np.testing.assert_array_equal(tensor["w"], grads["w"])  # 0.2 <= 0.3 * 10.0
    assert not np.allclose(unit["w"], grads["w"])
    with pytest.raises(ValueError, match=r"^adaptive_grad_clip needs params: call "
                                         r"update\(grads, state, params\)$"):
        adaptive_grad_clip(0.3).update(grads, optax.EmptyState())


# ---------------------------------------------------------------- non-finite guard
def test_skip_nonfinite_injection():
    params = {"w": jnp.array([1.0, 2.0])}
    opt = skip_nonfinite(optax.adam(0.1))
    state = opt.init(params)
    step = jax.jit(lambda g, s, p: opt.update(g, s, p))

    good = {"w": jnp.array([1.0, -1.0])}
    bad = {"w": jnp.array([jnp.nan, 1.0])}
    inf = {"w": jnp.array([1.0, jnp.inf])}

    upd, state = step(good, state, params)
    params = optax.apply_updates(params, upd)
    after_good = params["w"]
    adam_count = state.inner_state[0].count

    for i, g in enumerate([bad, inf], start=1):
        upd, state = step(g, state, params)
        params = optax.apply_updates(params, upd)
        np.testing.assert_array_equal(params["w"], after_good)  # unchanged
        assert int(nonfinite_count(state)) == i
        assert int(nonfinite_count(state, consecutive=True)) == i
        assert int(state.inner_state[0].count) == int(adam_count)  # Adam state untouched

    upd, state = step(good, state, params)
    params = optax.apply_updates(params, upd)
    assert np.all(np.isfinite(params["w"])) and not np.array_equal(params["w"], after_good)
    assert int(nonfinite_count(state)) == 2
    assert int(nonfinite_count(state, consecutive=True)) == 0


def test_skip_nonfinite_optax_give_up_semantics():
    # max_consecutive=1: the 2nd consecutive bad step is applied (documented optax caveat).
    params = jnp.zeros(2)
    opt = skip_nonfinite(optax.sgd(1.0), max_consecutive=1)
    state = opt.init(params)
    bad = jnp.array([jnp.nan, 0.0])
    upd1, state = opt.update(bad, state, params)
    upd2, state = opt.update(bad, state, params)
    np.testing.assert_array_equal(upd1, [0.0, 0.0])
    assert np.isnan(upd2[0])


def test_nonfinite_count_nested_and_missing():
    opt = optax.chain(clip_by_global_norm_logged(1.0), skip_nonfinite(optax.sgd(0.1)))
    state = opt.init(jnp.zeros(2))
    _, state = opt.update(jnp.array([jnp.nan, 0.0]), state, jnp.zeros(2))
    assert int(nonfinite_count(state)) == 1
    # Several guards in one state (e.g. actor and critic optimisers): the counts add up.
    three = (state, state, state)
    assert int(nonfinite_count(three)) == 3
    with pytest.raises(ValueError, match=r"^nonfinite_count: opt_state holds no "
                                         r"skip_nonfinite / apply_if_finite state$"):
        nonfinite_count(optax.sgd(0.1).init(jnp.zeros(2)))


def test_all_finite():
    assert bool(all_finite(GRADS))
    assert not bool(all_finite({"a": jnp.array([1.0, jnp.nan])}))
    assert not bool(all_finite([jnp.ones(2), jnp.array(-jnp.inf)]))
    assert bool(all_finite({}))
    assert bool(all_finite({"i": jnp.arange(3)}))
    assert not bool(jax.jit(all_finite)({"a": jnp.array([jnp.inf])}))
