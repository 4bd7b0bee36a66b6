"""Tests for rlstab_jax.stability.overshoot (open-loop targets: validity mask, time shift)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlstab_jax.stability.overshoot import masked_mean, overshoot_valid, shift_time


def _valid_loop(is_first: np.ndarray, depth: int) -> np.ndarray:
    B, T = is_first.shape
    out = np.zeros((depth, B, T), np.float32)
    for d in range(1, depth + 1):
        for b in range(B):
            for t in range(T):
                if t + d < T and not is_first[b, t + 1:t + d + 1].any():
                    out[d - 1, b, t] = 1.0
    return out


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 3), st.integers(2, 12), st.integers(1, 6), st.floats(0.0, 0.5),
       st.integers(0, 2**31 - 1))
def test_valid_matches_a_python_loop(B, T, depth, p_first, seed):
    rng = np.random.default_rng(seed)
    is_first = rng.random((B, T)) < p_first
    got = np.asarray(jax.jit(overshoot_valid, static_argnums=1)(jnp.asarray(is_first), depth))
    assert got.shape == (depth, B, T) and got.dtype == np.float32
    np.testing.assert_array_equal(got, _valid_loop(is_first, depth))


def test_hand_case_episode_boundary_and_sequence_end():
    # one row of 6; a new episode starts at row 3 (row 2 was terminal)
    is_first = jnp.array([[True, False, False, True, False, False]])
    v = np.asarray(overshoot_valid(is_first, 2))
    # depth 1: start t predicts row t+1; rows 3 (new episode) and past the end are out
    np.testing.assert_array_equal(v[0, 0], [1, 1, 0, 1, 1, 0])
    # depth 2: rows t+1..t+2 must stay in the episode and t+2 < 6
    np.testing.assert_array_equal(v[1, 0], [1, 0, 0, 1, 0, 0])


def test_valid_is_a_prefix_over_depth():
    rng = np.random.default_rng(0)
    v = np.asarray(overshoot_valid(jnp.asarray(rng.random((4, 20)) < 0.2), 8))
    assert np.all(v[1:] <= v[:-1])  # once a target is out, every deeper one is too


def test_depth_below_one_is_rejected():
    with pytest.raises(ValueError, match="depth must be >= 1"):
        overshoot_valid(jnp.zeros((1, 4), bool), 0)


def test_shift_time_lines_up_rows_d_ahead_with_a_traced_shift():
    x = jnp.arange(2 * 5 * 3, dtype=jnp.float32).reshape(2, 5, 3)

    def shifted(d):
        return shift_time(x, d)

    for d in (0, 1, 3):
        got = np.asarray(jax.jit(shifted)(jnp.int32(d)))
        np.testing.assert_array_equal(got[:, :5 - d], np.asarray(x)[:, d:])


def test_masked_mean_ignores_invalid_entries_and_is_zero_without_any():
    err = jnp.array([[1.0, 100.0], [3.0, -7.0]])
    valid = jnp.array([[1.0, 0.0], [1.0, 0.0]])
    assert float(masked_mean(err, valid)) == pytest.approx(2.0)
    assert float(masked_mean(err, jnp.zeros_like(err))) == 0.0
    g = jax.grad(lambda e: masked_mean(e, valid))(err)
    np.testing.assert_array_equal(np.asarray(g), [[0.5, 0.0], [0.5, 0.0]])
