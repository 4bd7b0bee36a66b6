"""Tests for rlstab_jax.stability.normalizer (percentile EMA return normalisation)."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rlstab_jax.stability.normalizer import (
    PercentileEmaState,
    normalize_advantages,
    percentile_ema_init,
    percentile_ema_scale,
    percentile_ema_update,
)

_update = jax.jit(percentile_ema_update)


def test_init_and_first_update_sets_percentiles():
    state = percentile_ema_init()
    assert not bool(state.initialised) and percentile_ema_scale(state) == 1.0
    returns = jnp.arange(101.0)  # 5th percentile = 5, 95th = 95 exactly
    state = percentile_ema_update(state, returns)
    assert bool(state.initialised)
    np.testing.assert_allclose([state.low, state.high], [5.0, 95.0], rtol=1e-6)
    np.testing.assert_allclose(percentile_ema_scale(state), 90.0, rtol=1e-6)


def test_ema_update_hand_case():
    # Second batch percentiles (15, 105): low = 0.9 * 5 + 0.1 * 15 = 6; high = 0.9 * 95 + 0.1 * 105 = 96.
    state = percentile_ema_update(percentile_ema_init(), jnp.arange(101.0), decay=0.9)
    state = percentile_ema_update(state, jnp.arange(101.0) + 10.0, decay=0.9)
    np.testing.assert_allclose([state.low, state.high], [6.0, 96.0], rtol=1e-6)
    np.testing.assert_allclose(normalize_advantages(jnp.array([9.0, -4.5]), state), [0.1, -0.05],
                               rtol=1e-6)


def test_scale_never_amplifies_small_returns():
    # Sparse rewards: range 0.5 < 1, so advantages are left unscaled (max(1, S)).
    state = percentile_ema_update(percentile_ema_init(), jnp.array([0.0, 0.0, 0.0, 0.5]))
    assert percentile_ema_scale(state) == 1.0
    adv = jnp.array([0.3, -0.2])
    np.testing.assert_array_equal(normalize_advantages(adv, state), adv)


def test_custom_percentiles_match_numpy():
    x = jax.random.normal(jax.random.key(0), (8, 16)) * 30.0
    state = percentile_ema_update(percentile_ema_init(), x, low_pct=10.0, high_pct=80.0)
    np.testing.assert_allclose([state.low, state.high], np.percentile(np.asarray(x), [10, 80]),
                               rtol=1e-5)


@settings(max_examples=50, deadline=None)
@given(
    batches=st.lists(st.lists(st.floats(-100, 100, width=32), min_size=32, max_size=32),
                     min_size=1, max_size=3),
    shift=st.floats(-1000, 1000, width=32),
)
def test_scale_is_invariant_to_shifting_all_returns(batches, shift):
    a, b = percentile_ema_init(), percentile_ema_init()
    for batch in batches:
        x = jnp.asarray(batch, jnp.float32)
        a, b = _update(a, x), _update(b, x + shift)
    np.testing.assert_allclose(percentile_ema_scale(a), percentile_ema_scale(b), rtol=1e-4, atol=2e-3)
    np.testing.assert_allclose(b.low - a.low, shift, rtol=1e-4, atol=2e-3)


def test_state_is_a_fixed_pytree_that_vmaps_and_scans():
    x = jax.random.normal(jax.random.key(1), (3, 5, 20)) * jnp.array([1.0, 10.0, 100.0])[:, None, None]
    init = jax.vmap(lambda _: percentile_ema_init())(jnp.arange(3))

    def run(state, seq):
        return jax.lax.scan(lambda s, r: (percentile_ema_update(s, r), None), state, seq)[0]

    batched = jax.jit(jax.vmap(run))(init, x)
    assert jax.tree.structure(batched) == jax.tree.structure(percentile_ema_init())
    for i in range(3):
        single = percentile_ema_init()
        for t in range(5):
            single = percentile_ema_update(single, x[i, t])
        np.testing.assert_allclose(batched.high[i], single.high, rtol=1e-5)
        np.testing.assert_allclose(batched.low[i], single.low, rtol=1e-5)
    assert isinstance(batched, PercentileEmaState)


def test_no_gradient_through_scale():
    state = percentile_ema_update(percentile_ema_init(), jnp.arange(101.0))
    g = jax.grad(lambda a: normalize_advantages(a, state).sum())(jnp.ones(3))
    np.testing.assert_allclose(g, 1.0 / 90.0, rtol=1e-6)


def test_default_decay_is_the_reports_0_99():
    # Report 002 ("Return Normalization Implementation"): decay 0.99 by default. Second batch
    # percentiles (105, 195): low = 0.99 * 5 + 0.01 * 105 = 6, high = 0.99 * 95 + 0.01 * 195 = 96.
    state = percentile_ema_update(percentile_ema_init(), jnp.arange(101.0))
    state = percentile_ema_update(state, jnp.arange(101.0) + 100.0)
    np.testing.assert_allclose([state.low, state.high], [6.0, 96.0], rtol=1e-5)
