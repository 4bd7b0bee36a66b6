"""rliable aggregates and stability metrics against hand computations on synthetic curves."""

import numpy as np
import pytest

from rlstab_jax.ablate import stats
from rlstab_jax.ablate.curves import Curves
from rlstab_jax.ablate.spec import StatsSpec

pytest.importorskip("rliable")


def _curves(name, returns, series=None):
    r = np.asarray(returns, float)
    S, E = r.shape
    steps = np.arange(1, E + 1) * 100
    return Curves(name, np.arange(S), steps, r, steps, series or {}, np.zeros(S))


def _iqm_by_hand(x):
    # 25% trimmed mean: with 8 runs drop the 2 lowest and 2 highest
    x = np.sort(np.asarray(x, float))
    k = int(0.25 * len(x))
    return x[k:len(x) - k].mean()


def test_aggregates_match_hand_computation():
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 100.0])
    b = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
    out = stats.aggregates({"a": a, "b": b}, norm=(0.0, 10.0), reps=300, ci=0.95, seed=0)
    assert out["a"]["iqm"]["value"] == pytest.approx(_iqm_by_hand(a))  # (3+4+5+6)/4 = 4.5
    assert out["a"]["iqm"]["value"] == pytest.approx(4.5)
    assert out["a"]["mean"]["value"] == pytest.approx(a.mean())
    # optimality gap at gamma=1 on normalised scores: 1 - mean(min(x/10, 1))
    assert out["a"]["optimality_gap"]["value"] == pytest.approx(
        1 - np.minimum(a / 10, 1).mean())
    assert out["b"]["optimality_gap"]["value"] == pytest.approx(1 - (b / 10).mean())
    for k in ("a", "b"):
        for m in ("iqm", "mean", "optimality_gap"):
            lo, hi = out[k][m]["ci"]
            assert lo <= out[k][m]["value"] <= hi


def test_bootstrap_ci_equals_hand_percentile_bootstrap():
    """The percentile CI equals resampling runs by hand with the same NumPy stream."""
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0])
    reps = 200
    out = stats.aggregates({"x": x}, norm=(0.0, 10.0), reps=reps, ci=0.9, seed=7)
    np.random.seed(7)
    means = []
    for _ in range(reps):
        idx = np.random.choice(len(x), (len(x), 1), replace=True)
        means.append(x[:, None][idx, np.arange(1)[None, :]].mean())
    lo, hi = np.percentile(means, [5, 95])
    assert out["x"]["mean"]["ci"] == pytest.approx([lo, hi])


def test_constant_scores_have_zero_width_ci():
    out = stats.aggregates({"c": np.full(6, 2.0)}, norm=(0, 4), reps=100, ci=0.95, seed=0)
    assert out["c"]["iqm"]["ci"] == pytest.approx([2.0, 2.0])


def test_comparisons_probability_of_improvement_by_hand():
    a = np.array([5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    b = np.array([1.0, 2.0, 3.0, 5.0, 6.0, 7.0])
    (c,) = stats.comparisons({"a": a, "b": b}, [("a", "b")], reps=300, ci=0.95, seed=0)
    # P(a > b): count pairs, ties count 1/2
    wins = sum((x > y) + 0.5 * (x == y) for x in a for y in b) / (len(a) * len(b))
    assert c["prob_improvement"]["value"] == pytest.approx(wins)
    assert c["iqm_diff"]["value"] == pytest.approx(_iqm_by_hand(a) - _iqm_by_hand(b))
    # clearly separated samples: the IQM difference CI excludes zero
    (d,) = stats.comparisons({"a": a + 100, "b": b}, [("a", "b")], reps=300, ci=0.95, seed=0)
    assert d["iqm_diff_ci_excludes_zero"] and d["prob_improvement"]["value"] == 1.0
    assert d["prob_improvement_ci_excludes_half"]
    # identical samples: not resolved
    (e,) = stats.comparisons({"a": a, "b": a.copy()}, [("a", "b")], reps=300, ci=0.95, seed=0)
    assert not e["iqm_diff_ci_excludes_zero"] and e["prob_improvement"]["value"] == 0.5


def test_stability_metrics_by_hand():
    # seed 0 climbs steadily; seed 1 peaks at 100 then stays at 10 for 3 evals (collapse)
    r = [[10, 20, 30, 40, 50, 60], [10, 100, 10, 10, 10, 10]]
    floor = np.array([[0.0, 0.0, 0.9, 0.0, 0.0, 0.0], [0.0] * 6])
    q = np.array([[1.0, 2, 3, 4, 5, 6], [1.0, 2, 3, 4, 5, 9]])
    c = _curves("v", r, {"log_std/frac_at_floor": floor, "q_mean": q})
    c.nonfinite_count = np.array([0.0, 3.0])
    m = stats.stability(c, StatsSpec(collapse_drop=0.3, collapse_patience=3), threshold=45.0)
    assert m["collapse_rate"] == 0.5 and m["collapsed_seeds"] == [1]
    # seed 0 reaches 45 at step 500 (value 50); seed 1 at step 200 (value 100)
    assert m["reached_threshold"] == 1.0
    assert m["time_to_threshold_median"] == pytest.approx(np.median([500, 200]))
    assert m["final_return_mean"] == pytest.approx((60 + 10) / 2)
    assert m["entropy_floor_incidence"] == 0.5
    # Q drift: seed 0 best at the last eval (drift 0); seed 1 best at step 200 (q 2 -> 9)
    assert m["q_drift_mean"] == pytest.approx((0 + 7) / 2)
    assert m["nonfinite_updates"] == 3
    from rlstab_jax.stability.telemetry import stability_score

    import jax.numpy as jnp

    assert m["stability_score"] == pytest.approx(
        float(np.mean(stability_score(jnp.asarray(np.asarray(r, np.float32))))), rel=1e-6)
