"""Tests for rlstab_jax.stability.symlog (symlog/symexp and the two-hot head)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.stability.symlog import (
    symexp,
    symexp_bins,
    symlog,
    twohot_decode,
    twohot_decode_logits,
    twohot_encode,
    twohot_loss,
)

BINS = symexp_bins()  # 255 bins, symlog range [-20, 20]
SPACES = ("symlog", "linear")
_finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)
_vec = st.lists(_finite, min_size=16, max_size=16)

_encode = jax.jit(twohot_encode, static_argnums=2)
_decode = jax.jit(twohot_decode, static_argnums=2)
_roundtrip = jax.jit(lambda x: (symexp(symlog(x)), symlog(x), symlog(-x), symexp(x), symexp(-x)))


def test_symlog_symexp_hand_values():
    # symlog(e - 1) = log(e) = 1; symlog(-(e^2 - 1)) = -2; symexp inverts.
    x = jnp.array([0.0, np.e - 1.0, -(np.e**2 - 1.0), 9.0])
    np.testing.assert_allclose(symlog(x), [0.0, 1.0, -2.0, np.log(10.0)], rtol=1e-6)
    np.testing.assert_allclose(symexp(jnp.array([0.0, 1.0, -2.0])), [0.0, np.e - 1, -(np.e**2 - 1)],
                               rtol=1e-6)


@settings(max_examples=50, deadline=None)
@given(_vec)
def test_symexp_inverts_symlog_and_both_are_odd(values):
    x = jnp.asarray(values, jnp.float32)
    back, sl, sl_neg, se, se_neg = _roundtrip(x)
    np.testing.assert_allclose(back, x, rtol=2e-6, atol=1e-6)
    np.testing.assert_array_equal(sl_neg, -sl)
    np.testing.assert_array_equal(np.asarray(se_neg)[np.isfinite(se)], -np.asarray(se)[np.isfinite(se)])


def test_gradients_are_exact_including_zero():
    # Naive sign(x) * log1p(|x|) has derivative 0 at x=0 under autodiff; the true value is 1.
    assert jax.grad(symlog)(0.0) == 1.0
    assert jax.grad(symexp)(0.0) == 1.0
    x = jnp.array([-7.0, -0.3, 0.2, 4.0])
    np.testing.assert_allclose(jax.vmap(jax.grad(symlog))(x), 1.0 / (1.0 + np.abs(x)), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(jax.grad(symexp))(x), np.exp(np.abs(x)), rtol=1e-6)
    for f in (symlog, symexp):  # finite differences away from the kink, 2nd order too
        check_grads(f, (x,), order=2, modes=["fwd", "rev"], eps=1e-2, atol=1e-2, rtol=1e-2)


def test_symexp_bins_layout():
    assert BINS.shape == (255,) and BINS.dtype == jnp.float32
    assert np.all(np.diff(np.asarray(BINS)) > 0)
    np.testing.assert_array_equal(BINS, -BINS[::-1])  # exactly antisymmetric
    assert BINS[127] == 0.0
    np.testing.assert_allclose([BINS[0], BINS[-1]], [-np.expm1(20.0), np.expm1(20.0)], rtol=1e-6)
    small = symexp_bins(12, -5.0, 6.0)  # the report's CartPole range
    np.testing.assert_allclose(symlog(small), np.linspace(-5.0, 6.0, 12), atol=1e-5)
    even = symexp_bins(256)
    np.testing.assert_array_equal(even, -even[::-1])


def test_symexp_bins_are_exactly_antisymmetric_where_linspace_is_not():
    # np.linspace(-7.5, 7.5, 23) is not exactly antisymmetric in float64 (rounding of
    # start + i * step): the bins must be symmetrised so symmetric distributions decode to 0.
    grid = np.linspace(-7.5, 7.5, 23)
    assert not np.array_equal(grid, -grid[::-1])
    bins = symexp_bins(23, -7.5, 7.5)
    np.testing.assert_array_equal(bins, -bins[::-1])
    assert bins[11] == 0.0


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("num_bins", [2, 3, 5])
def test_decode_matches_plain_expectation_for_any_bin_count(space, num_bins):
    # Asymmetric range: the middle bin of an odd count is not 0 and must be counted once.
    bins = symexp_bins(num_bins, -1.0, 3.0)
    assert bins.shape == (num_bins,)
    p = jnp.asarray(np.random.default_rng(num_bins).dirichlet(np.ones(num_bins), size=3),
                    jnp.float32)
    coords = np.asarray(symlog(bins) if space == "symlog" else bins, np.float64)
    mean = np.asarray(p, np.float64) @ coords
    want = np.sign(mean) * np.expm1(np.abs(mean)) if space == "symlog" else mean
    np.testing.assert_allclose(twohot_decode(p, bins, space), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs, msg", [
    (dict(num_bins=1), r"num_bins=1 must be an integer >= 2"),
    (dict(low=3.0, high=3.0), r"low=3\.0 must be < high=3\.0"),
    (dict(num_bins=2.5), r"num_bins=2\.5 must be an integer >= 2"),
])
def test_symexp_bins_rejects_bad_arguments(kwargs, msg):
    with pytest.raises(ConfigError, match=rf"^symexp_bins: {msg}$"):
        symexp_bins(**kwargs)


def test_twohot_encode_hand_cases():
    bins = jnp.array([-1.0, 0.0, 1.0, 2.0])
    x = jnp.array([0.25, -5.0, 5.0, 1.0, 2.0])
    expected = [[0, 0.75, 0.25, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1]]
    np.testing.assert_allclose(twohot_encode(x, bins, "linear"), expected, atol=1e-7)
    # symlog space: halfway between symlog coordinates 0 and 1 is x = symexp(0.5).
    sbins = symexp(jnp.array([-1.0, 0.0, 1.0]))
    np.testing.assert_allclose(twohot_encode(symexp(jnp.array(0.5)), sbins), [0, 0.5, 0.5], atol=1e-6)


@pytest.mark.parametrize("space", SPACES)
@settings(max_examples=50, deadline=None)
@given(values=_vec)
def test_twohot_weights_and_round_trip(space, values):
    x = jnp.asarray(values, jnp.float32)
    w = np.asarray(_encode(x, BINS, space))
    assert w.shape == (16, 255) and np.all(w >= 0)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)
    nz = [np.flatnonzero(row) for row in w]
    assert all(len(i) <= 2 and (len(i) < 2 or i[1] == i[0] + 1) for i in nz)
    np.testing.assert_allclose(_decode(jnp.asarray(w), BINS, space), x, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("space", SPACES)
def test_twohot_clips_outside_range_and_small_bins(space):
    bins = symexp_bins(12, -5.0, 6.0)
    x = jnp.array([-1e4, 1e4, 0.0, 3.0, -100.0, 400.0])
    out = twohot_decode(twohot_encode(x, bins, space), bins, space)
    np.testing.assert_allclose(out, [bins[0], bins[-1], 0.0, 3.0, -100.0, 400.0], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("num_bins", [255, 256, 41])
def test_uniform_logits_decode_to_exactly_zero(space, num_bins):
    bins = symexp_bins(num_bins)
    assert np.all(np.asarray(twohot_decode_logits(jnp.zeros((4, num_bins)), bins, space)) == 0.0)
    # Also symmetric (not uniform) distributions decode to exactly 0.
    logits = jnp.asarray(-0.1 * np.abs(np.arange(num_bins) - (num_bins - 1) / 2), jnp.float32)
    assert twohot_decode_logits(logits, bins, space) == 0.0


def test_decode_averages_in_symlog_space_by_default():
    # 50/50 on bins symexp(0) = 0 and symexp(2): symlog space gives symexp(1), linear the mean.
    bins = symexp(jnp.array([0.0, 2.0]))
    p = jnp.array([0.5, 0.5])
    np.testing.assert_allclose(twohot_decode(p, bins), np.e - 1.0, rtol=1e-6)
    np.testing.assert_allclose(twohot_decode(p, bins, "linear"), (np.e**2 - 1.0) / 2, rtol=1e-6)
    with pytest.raises(ConfigError, match=r"^two-hot space='log' is not one of "
                                          r"\('symlog', 'linear'\)$"):
        twohot_decode(p, bins, "log")


def test_twohot_loss_matches_reference_and_gradient():
    logits = jax.random.normal(jax.random.key(0), (3, 5, 255))
    target = jnp.array([[0.0, 1.0, -7.0, 250.0, 1e9]] * 3)  # raw targets; 1e9 clips
    w = np.asarray(twohot_encode(target, BINS))
    log_p = np.asarray(jax.nn.log_softmax(logits))
    np.testing.assert_allclose(twohot_loss(logits, target, BINS), -(w * log_p).sum(-1), rtol=1e-5)
    # d CE / d logits = softmax - twohot; no gradient into the target.
    g_logits, g_target = jax.grad(lambda lg, t: twohot_loss(lg, t, BINS).sum(), (0, 1))(logits, target)
    np.testing.assert_allclose(g_logits, np.asarray(jax.nn.softmax(logits)) - w, atol=1e-6)
    assert np.all(np.asarray(g_target) == 0.0)


def test_twohot_loss_target_is_raw_not_symlogged():
    # The loss is minimal where softmax(logits) equals the two-hot of the RAW target.
    target = jnp.array(37.0)
    best = jnp.log(twohot_encode(target, BINS) + 1e-12)
    wrong = jnp.log(twohot_encode(symlog(target), BINS) + 1e-12)  # a double symlog
    assert twohot_loss(best, target, BINS) < twohot_loss(wrong, target, BINS)
    np.testing.assert_allclose(twohot_decode_logits(best, BINS), 37.0, rtol=1e-4)


def test_jit_and_vmap_match_python_loop():
    x = jnp.array([[-3.0, 0.5], [12.0, 1e3], [-1e5, 2.0]])
    logits = jax.random.normal(jax.random.key(1), (3, 2, 255))
    batched = jax.jit(jax.vmap(lambda lg, t: (twohot_encode(t, BINS), twohot_loss(lg, t, BINS),
                                               twohot_decode_logits(lg, BINS))))(logits, x)
    for i in range(3):
        single = (twohot_encode(x[i], BINS), twohot_loss(logits[i], x[i], BINS),
                  twohot_decode_logits(logits[i], BINS))
        for a, b in zip(batched, single):
            np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-6)
