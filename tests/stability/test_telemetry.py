"""Tests for rlstab_jax.stability.telemetry (field reports 000, 003, 004)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlstab_jax.stability.telemetry import (
    collapse_detector,
    explained_variance,
    identical_fraction,
    per_dim_metrics,
    q_stats,
    stability_score,
)


# ---------------------------------------------------------------- stability score
def test_stability_score_hand_values():
    x = jnp.array(
        [
            [5.0, 5.0, 5.0, 5.0],  # constant -> 1
            [1.0, 2.0, 3.0, 4.0],  # steady improvement -> 1 (no drawdown, constant steps)
            # best stays 10, scale 10: drawdown mean([0,0,1,1]) = .5;
            # diffs [0,-10,0]: mean -10/3, pop. std sqrt(600/27) = 4.7140 -> rough .47140
            [10.0, 10.0, 0.0, 0.0],
            # drawdown .5; diffs [-10,10,-10]: std sqrt(2400/27) = 9.4281 -> rough .94281
            [10.0, 0.0, 10.0, 0.0],
        ]
    )
    expected = [1.0, 1.0, 0.5 / (1 + np.sqrt(600 / 27) / 10), 0.5 / (1 + np.sqrt(2400 / 27) / 10)]
    np.testing.assert_allclose(stability_score(x), expected, rtol=1e-5)
    np.testing.assert_allclose(stability_score(jnp.array([[3.0]])), [1.0])
    # negative returns: best -10 ... drop to -20: scale 20, drawdown mean([0, 10]) / 20 = .25,
    # one diff -> std 0 -> score .75
    np.testing.assert_allclose(stability_score(jnp.array([-10.0, -20.0])), 0.75, rtol=1e-6)
    # A fall from +10 to -10 held twice: mean(best - x) / scale = 40 / 3 / 10 > 1 is clipped
    # to 1, so the score is 0, not negative.
    assert float(stability_score(jnp.array([10.0, -10.0, -10.0]))) == 0.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e4, 1e4, width=32), min_size=1, max_size=12))
def test_stability_score_in_unit_interval(xs):
    s = float(stability_score(jnp.asarray(xs, jnp.float32)))
    assert 0.0 <= s <= 1.0


def test_stability_score_scale_invariant_and_vmaps():
    x = jnp.array([3.0, 7.0, 2.0, 9.0, 8.0])
    np.testing.assert_allclose(stability_score(x), stability_score(100.0 * x), rtol=1e-5)
    batch = jnp.stack([x, x[::-1], jnp.ones(5)])
    np.testing.assert_allclose(
        jax.jit(jax.vmap(stability_score))(batch), [stability_score(b) for b in batch], rtol=1e-6
    )


# ---------------------------------------------------------------- collapse detector
def test_collapse_detector_hand_cases():
    x = jnp.array(
        [
            [10.0, 12.0, 8.0, 8.0, 8.0, 12.0],  # best 12, threshold 8.4: three evals down -> True
            [10.0, 12.0, 8.0, 8.0, 12.0, 8.0],  # only runs of 2 -> False
            [10.0, 12.0, 8.5, 8.5, 8.5, 8.5],  # 8.5 > 8.4 never down -> False
            [-100.0, -50.0, -70.0, -70.0, -70.0, -50.0],  # best -50, thr -65: down x3 -> True
            [-100.0, -120.0, -140.0, -160.0, -180.0, -200.0],  # thr -130: -140,-160,-180 -> True
            [0.0, 0.0, -1.0, -1.0, -1.0, -1.0],  # best 0 -> eps scale: -1 < -3e-9 -> True
        ]
    )
    out = collapse_detector(x, drop_frac=0.3, patience=3)
    np.testing.assert_array_equal(out, [True, False, False, True, True, True])
    np.testing.assert_array_equal(collapse_detector(x, 0.3, 4), [False, False, False, False, True, True])


def test_score_and_detector_defaults_and_eps_floors():
    # Returns ~0 everywhere are measured against the 1e-6 floor: [0, -1e-7] has drawdown
    # 0.5 * 1e-7 / 1e-6 = 0.05 and one diff (roughness 0), score 0.95.
    np.testing.assert_allclose(stability_score(jnp.array([0.0, -1e-7])), 0.95, rtol=1e-5)
    # Defaults drop_frac 0.3, patience 3 (the hand cases above distinguish 3 from 4 and a
    # drop of 0.3 from any larger one), and the 1e-8 floor of the scale: best 0, -4.5e-9 is
    # below 0 - 0.3 * 1e-8 but not below 0 - 0.3 * 2e-8.
    x = jnp.array([[10.0, 12.0, 8.0, 8.0, 8.0, 12.0], [10.0, 12.0, 8.0, 8.0, 12.0, 8.0],
                   [0.0, -4.5e-9, -4.5e-9, -4.5e-9, 0.0, 0.0]])
    np.testing.assert_array_equal(collapse_detector(x), [True, False, True])
    # "Down" is strictly below the threshold: 5 = 10 - 0.5 * 10 exactly is not down.
    at = jnp.array([[10.0, 5.0, 5.0, 5.0], [10.0, 4.9, 4.9, 4.9]])
    np.testing.assert_array_equal(collapse_detector(at, 0.5, 3), [False, True])


def _collapse_loop(x, drop, patience, eps=1e-8):
    out = []
    for row in x:
        best, run, hit = -np.inf, 0, False
        for v in row:
            best = max(best, v)
            run = run + 1 if v < best - drop * max(abs(best), eps) else 0
            hit |= run >= patience
        out.append(hit)
    return out


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), patience=st.integers(1, 4))
def test_collapse_detector_matches_loop(seed, patience):
    x = np.random.default_rng(seed).normal(5.0, 5.0, size=(4, 10)).astype(np.float32)
    out = jax.jit(collapse_detector)(x, 0.3, patience)
    np.testing.assert_array_equal(out, _collapse_loop(x, 0.3, patience))


# ---------------------------------------------------------------- critic diagnostics
def test_explained_variance():
    t = jnp.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(explained_variance(t, t), 1.0)
    np.testing.assert_allclose(explained_variance(jnp.full(4, 2.5), t), 0.0, atol=1e-7)
    # residual t - p = [1,-1,1,-1]: var 1; var t = 1.25 -> 1 - 0.8 = 0.2
    np.testing.assert_allclose(explained_variance(t - jnp.array([1.0, -1, 1, -1]), t), 0.2, rtol=1e-5)
    np.testing.assert_allclose(explained_variance(-t, t), 1 - 4.0, rtol=1e-5)  # var(2t)/var(t)=4
    assert float(explained_variance(jnp.zeros(3), jnp.ones(3))) == 0.0  # undefined -> 0
    small = jnp.array([0.0, 0.5, 1.0])  # Var = 1/6 < 1 is still defined
    np.testing.assert_allclose(explained_variance(small, small), 1.0)
    np.testing.assert_allclose(explained_variance(jnp.full(3, 0.5), small), 0.0, atol=1e-7)


def test_identical_fraction():
    q1 = jnp.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(identical_fraction(q1, q1), 1.0)
    np.testing.assert_allclose(identical_fraction(q1, q1 + jnp.array([0, 0, 1e-3, 1.0])), 0.5)
    np.testing.assert_allclose(identical_fraction(q1, q1 + jnp.array([0, 0, 1e-3, 1.0]), 1e-2), 0.75)


def test_q_stats():
    q = jnp.array([[1.0, 3.0], [2.0, 2.0]])
    m = q_stats(q)
    np.testing.assert_allclose(m["critic/q0_mean"], 2.0)
    np.testing.assert_allclose(m["critic/q0_std"], 1.0)
    np.testing.assert_allclose(m["critic/q1_mean"], 2.0)
    np.testing.assert_allclose(m["critic/q1_std"], 0.0)
    np.testing.assert_allclose(m["critic/q_mean"], 2.0)
    np.testing.assert_allclose(m["critic/q_ensemble_std"], 0.5)  # std([1,2])=.5, std([3,2])=.5
    assert set(jax.jit(q_stats)(q)) == set(m)
    # N = 3 critics != B = 2 rows, and TQC quantiles [N, B, M]: per-critic stats over the rest.
    q3 = jnp.array([[0.0, 2.0], [1.0, 1.0], [5.0, 5.0]])
    m3 = q_stats(q3, prefix="c")
    assert set(m3) == {"c/q0_mean", "c/q0_std", "c/q1_mean", "c/q1_std", "c/q2_mean",
                       "c/q2_std", "c/q_mean", "c/q_ensemble_std"}
    np.testing.assert_allclose([m3["c/q2_mean"], m3["c/q0_std"]], [5.0, 1.0])
    np.testing.assert_allclose(m3["c/q_ensemble_std"], np.std(q3, axis=0).mean(), rtol=1e-6)
    quant = jnp.stack([q3, q3 + 1.0], axis=-1)  # [3, 2, 2]
    mq = q_stats(quant)
    np.testing.assert_allclose(mq["critic/q0_mean"], 1.5)
    np.testing.assert_allclose(mq["critic/q_ensemble_std"], np.std(np.asarray(quant), axis=0).mean(),
                               rtol=1e-6)


def test_per_dim_metrics():
    a = jnp.array([0.1, 0.2, 0.3])
    m = per_dim_metrics("alpha", a, ("steer", "gas", "brake"))
    assert list(m) == ["alpha/steer", "alpha/gas", "alpha/brake"]
    np.testing.assert_allclose(m["alpha/gas"], 0.2)
    assert list(per_dim_metrics("alpha", a)) == ["alpha/0", "alpha/1", "alpha/2"]
    with pytest.raises(ValueError, match=r"^per_dim_metrics: 1 names for 3 values \(alpha\)$"):
        per_dim_metrics("alpha", a, ("steer",))


def test_collapse_detector_with_baseline_measures_drop_of_improvement():
    # Pendulum-like: random -1200, best -50. Evals at -150 are 8.7% of the improvement
    # below best (not a collapse); -600 is 47.8% below (a collapse after 3 evals).
    import jax.numpy as jnp

    from rlstab_jax.stability.telemetry import collapse_detector

    noisy = jnp.array([[-900.0, -50.0, -150.0, -160.0, -140.0, -150.0]])
    fell = jnp.array([[-900.0, -50.0, -600.0, -650.0, -700.0, -100.0]])
    assert bool(collapse_detector(noisy)[0])  # relative-to-|best| rule flags noise
    assert not bool(collapse_detector(noisy, baseline=-1200.0)[0])
    assert bool(collapse_detector(fell, baseline=-1200.0)[0])
    # two seeds, per-seed baselines
    both = jnp.concatenate([noisy, fell])
    np.testing.assert_array_equal(
        np.asarray(collapse_detector(both, baseline=jnp.array([-1200.0, -1200.0]))),
        [False, True])
