"""Statistics users trust: rliable aggregates with stratified bootstrap CIs, stability metrics.

Aggregates (Agarwal et al. 2021, via ``rliable``) over each variant's per-seed final scores
(mean of the last ``stats.final_evals`` evaluations): IQM, mean, optimality gap (on
scores normalised to ``[min_score, max_score]``, default the grid's min and max), and per
comparison ``a vs b``: the IQM difference and the probability of improvement ``P(a > b)``,
each with a stratified (independent per variant) bootstrap CI. A comparison "excludes zero"
when the CI of the IQM difference does not contain 0 (and the PoI CI does not contain 0.5).

rliable's bootstrap draws its indices from NumPy's global RNG (``np.random.choice``) whatever
``random_state`` says, so :func:`_seeded` seeds it for reproducible CIs and restores it.

Stability metrics per variant (field reports 000 step 10, 002, 003 §11):
collapse rate (``stability.telemetry.collapse_detector``: eval return ``collapse_drop`` below the
seed's best for ``collapse_patience`` consecutive evals), stability score
(``stability.telemetry.stability_score`` over each seed's eval curve), time to threshold (first
eval step at or above ``threshold``; default the midpoint between the grid's lowest first
evaluation and its highest evaluation), final return, entropy-floor incidence (share of seeds
whose ``log_std/frac_at_floor`` exceeded ``floor_frac`` at some log step: log-std pinned at
its lower bound), Q drift (``|Q_final - Q_at_best_eval|`` of the critics' mean Q, field report
003 "debug/q_a1 drifting") and non-finite updates (skipped by ``skip_nonfinite``).
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from rlstab_jax.ablate.curves import Curves
from rlstab_jax.ablate.spec import StatsSpec


def _rliable():
    try:
        from rliable import library as rly
        from rliable import metrics
    except ImportError:
        from rlstab_jax.config.errors import ConfigError

        raise ConfigError("ablation statistics need the 'stats' extra: "
                          "pip install 'rlstab_jax[stats]'") from None
    return rly, metrics


@contextlib.contextmanager
def _seeded(seed: int):
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def final_scores(c: Curves, final_evals: int) -> np.ndarray:
    """``[S]`` mean of each seed's last ``final_evals`` finite evaluations (NaN if none)."""
    out = np.full(len(c.seeds), np.nan)
    for i, row in enumerate(c.eval_return):
        vals = row[np.isfinite(row)]
        if vals.size:
            out[i] = vals[-final_evals:].mean()
    return out


def aggregates(scores: dict[str, np.ndarray], norm: tuple[float, float], reps: int, ci: float,
               seed: int) -> dict[str, dict[str, Any]]:
    """IQM, mean and optimality gap with CIs, per variant (scores ``[S]``).

    (rliable's median is a median over *tasks* of per-task means; a grid has one task, so it
    would equal the mean and is not reported.)
    """
    rly, metrics = _rliable()
    lo, hi = norm
    span = hi - lo if hi > lo else 1.0

    def agg(x):
        return np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x),
                         metrics.aggregate_optimality_gap((x - lo) / span)])

    data = {k: np.asarray(v, np.float64)[:, None] for k, v in scores.items()}
    with _seeded(seed):
        point, interval = rly.get_interval_estimates(data, agg, reps=reps,
                                                     confidence_interval_size=ci)
    out = {}
    for k in data:
        out[k] = {name: {"value": float(point[k][i]),
                         "ci": [float(interval[k][0, i]), float(interval[k][1, i])]}
                  for i, name in enumerate(("iqm", "mean", "optimality_gap"))}
    return out


def comparisons(scores: dict[str, np.ndarray], pairs: list[tuple[str, str]], reps: int,
                ci: float, seed: int) -> list[dict[str, Any]]:
    """IQM difference and probability of improvement of ``a`` over ``b`` with CIs."""
    rly, metrics = _rliable()

    def diff(x, y):
        return np.array([metrics.aggregate_iqm(x) - metrics.aggregate_iqm(y),
                         metrics.probability_of_improvement(x, y)])

    data = {f"{a} vs {b}": (np.asarray(scores[a], np.float64)[:, None],
                            np.asarray(scores[b], np.float64)[:, None])
            for a, b in pairs if a in scores and b in scores}
    if not data:
        return []
    with _seeded(seed):
        point, interval = rly.get_interval_estimates(data, diff, reps=reps,
                                                     confidence_interval_size=ci)
    out = []
    for key in data:
        a, b = key.split(" vs ", 1)
        d_ci = [float(interval[key][0, 0]), float(interval[key][1, 0])]
        p_ci = [float(interval[key][0, 1]), float(interval[key][1, 1])]
        out.append({
            "comparison": key, "a": a, "b": b,
            "iqm_diff": {"value": float(point[key][0]), "ci": d_ci},
            "iqm_diff_ci_excludes_zero": bool(d_ci[0] > 0 or d_ci[1] < 0),
            "prob_improvement": {"value": float(point[key][1]), "ci": p_ci},
            "prob_improvement_ci_excludes_half": bool(p_ci[0] > 0.5 or p_ci[1] < 0.5),
        })
    return out


def iqm_curve(c: Curves, reps: int, ci: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """IQM across seeds at every eval step ``[E]`` and its CI ``[2, E]``."""
    rly, metrics = _rliable()
    x = np.nan_to_num(c.eval_return, nan=np.nanmin(c.eval_return)
                      if np.isfinite(c.eval_return).any() else 0.0)[:, None, :]

    def per_step(s):
        return np.array([metrics.aggregate_iqm(s[..., e]) for e in range(s.shape[-1])])

    with _seeded(seed):
        point, interval = rly.get_interval_estimates({"c": x}, per_step, reps=reps,
                                                     confidence_interval_size=ci)
    return point["c"], interval["c"]


def default_threshold(curves: dict[str, Curves]) -> float:
    firsts, highs = [], []
    for c in curves.values():
        r = c.eval_return
        if r.size and np.isfinite(r).any():
            firsts.append(np.nanmin(r[:, 0]) if np.isfinite(r[:, 0]).any() else np.nanmin(r))
            highs.append(np.nanmax(r))
    if not firsts:
        return 0.0
    return float((min(firsts) + max(highs)) / 2)


def stability(c: Curves, s: StatsSpec, threshold: float) -> dict[str, Any]:
    """Stability metrics of one variant (see the module docstring)."""
    import jax.numpy as jnp

    from rlstab_jax.stability.telemetry import collapse_detector, stability_score

    r = c.eval_return
    S = r.shape[0]
    fill = np.nanmin(r) if np.isfinite(r).any() else 0.0
    x = np.nan_to_num(r, nan=fill).astype(np.float32)
    if x.shape[1]:
        collapsed = np.asarray(collapse_detector(
            jnp.asarray(x), drop_frac=s.collapse_drop, patience=s.collapse_patience,
            baseline=s.collapse_baseline))
        score = np.asarray(stability_score(jnp.asarray(x)))
    else:
        collapsed, score = np.zeros(S, bool), np.ones(S, np.float32)
    reached = x >= threshold
    tt = np.where(reached.any(axis=1), c.eval_steps[np.argmax(reached, axis=1)]
                  if x.shape[1] else np.nan, np.nan)
    floor = c.series.get("log_std/frac_at_floor")
    floor_hit = (np.nanmax(np.nan_to_num(floor, nan=0.0), axis=1) > s.floor_frac
                 if floor is not None else np.zeros(S, bool))
    drift = np.full(S, np.nan)
    q = c.series.get("q_mean")
    if q is not None and x.shape[1]:
        best_step = c.eval_steps[np.argmax(x, axis=1)]
        for i in range(S):
            qi = q[i]
            ok = np.isfinite(qi)
            if ok.any():
                at_best = qi[np.searchsorted(c.log_steps, best_step[i])] if best_step[i] in \
                    c.log_steps else np.nan
                drift[i] = abs(qi[ok][-1] - at_best)
    finals = final_scores(c, s.final_evals)
    return {
        "seeds": int(S),
        "collapse_rate": float(collapsed.mean()) if S else float("nan"),
        "collapsed_seeds": [int(v) for v in c.seeds[collapsed]],
        "stability_score": float(np.mean(score)),
        "time_to_threshold_median": float(np.nanmedian(tt)) if np.isfinite(tt).any() else None,
        "reached_threshold": float(np.mean(np.isfinite(tt))),
        "final_return_mean": float(np.nanmean(finals)) if np.isfinite(finals).any() else None,
        "final_return_std": float(np.nanstd(finals)) if np.isfinite(finals).any() else None,
        "entropy_floor_incidence": float(np.mean(floor_hit)),
        "q_drift_mean": float(np.nanmean(drift)) if np.isfinite(drift).any() else None,
        "nonfinite_updates": int(np.sum(c.nonfinite_count)),
    }
