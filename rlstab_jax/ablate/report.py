"""Analyse a grid's results directory: curves -> statistics -> summary.json, plots, report.md."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from rlstab_jax.ablate import plots, stats
from rlstab_jax.ablate.cells import CELL_DONE, Cell, cell_dir
from rlstab_jax.ablate.curves import variant_curves, write_curves
from rlstab_jax.ablate.spec import GridSpec


def _fmt(v: Any, ci: Any = None, nd: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    s = f"{v:.{nd}f}"
    if ci is not None:
        s += f" [{ci[0]:.{nd}f}, {ci[1]:.{nd}f}]"
    return s


def compile_table(spec: GridSpec, cells: list[Cell], out: Path) -> dict[str, Any]:
    """Compile count/seconds and wall-clock per program (structural variant)."""
    table: dict[str, Any] = {}
    for p in spec.programs:
        recs = [json.loads((cell_dir(out, c) / CELL_DONE).read_text()) for c in cells
                if c.program.index == p.index and (cell_dir(out, c) / CELL_DONE).is_file()]
        table[p.slug] = {
            "variants": [v.name for v in p.variants], "structural": p.structural,
            "cells": len(recs), "compiles": int(sum(r["compiles"] for r in recs)),
            "compile_seconds": float(sum(r["compile_seconds"] for r in recs)),
            "wall_seconds": float(sum(r["wall_seconds"] for r in recs)),
            "stopped": [r["stopped"] for r in recs if r.get("stopped")],
        }
    return table


def analyse(spec: GridSpec, cells: list[Cell], out: Path) -> dict[str, Any]:
    """Write ``curves/``, ``summary.json``, ``plots/*.png`` and ``report.md``; return it."""
    s = spec.stats
    curves = variant_curves(spec, cells, out, s.metric)
    paths = write_curves(curves, out)
    finals = {k: stats.final_scores(c, s.final_evals) for k, c in curves.items()}
    finals = {k: v for k, v in finals.items() if np.isfinite(v).any()}
    for k, v in finals.items():  # a seed with no finite eval scores as the grid's worst
        low = np.nanmin(np.concatenate(list(finals.values())))
        finals[k] = np.where(np.isfinite(v), v, low)
    allv = np.concatenate(list(finals.values())) if finals else np.zeros(1)
    norm = (s.min_score if s.min_score is not None else float(allv.min()),
            s.max_score if s.max_score is not None else float(allv.max()))
    agg = stats.aggregates(finals, norm, s.reps, s.ci, s.bootstrap_seed) if finals else {}
    comps = stats.comparisons(finals, list(spec.compare), s.reps, s.ci, s.bootstrap_seed)
    for c in comps:
        c["claim"] = spec.claims.get(c["comparison"], "")
    thr = s.threshold if s.threshold is not None else stats.default_threshold(curves)
    stab = {k: stats.stability(c, s, thr) for k, c in curves.items()}
    summary = {
        "name": spec.name, "grid_file": spec.path, "description": spec.description,
        "base": spec.base, "seeds": list(spec.seeds), "metric": s.metric,
        "final_evals": s.final_evals, "normalisation": list(norm), "threshold": thr,
        "bootstrap": {"reps": s.reps, "ci": s.ci, "seed": s.bootstrap_seed},
        "variants": {v.name: {"overrides": v.overrides, "numeric": v.numeric,
                              "curves": paths.get(v.name)} for v in spec.variants},
        "aggregates": agg, "comparisons": comps, "stability": stab,
        "programs": compile_table(spec, cells, out),
        "final_scores": {k: [float(x) for x in v] for k, v in finals.items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    pdir = out / "plots"
    pdir.mkdir(exist_ok=True)
    if curves:
        cur = {}
        for k, c in curves.items():
            if c.eval_return.shape[1]:
                iqm, ci = stats.iqm_curve(c, min(s.reps, 500), s.ci, s.bootstrap_seed)
                cur[k] = (c.eval_steps, iqm, ci)
        plots.plot_curves(cur, pdir / "curves.png", spec.name, s.metric)
    if agg:
        plots.plot_bars({k: v["iqm"] for k, v in agg.items()}, pdir / "iqm.png",
                        f"{spec.name}: IQM of final {s.metric}", "IQM (95% CI)")
    if stab:
        plots.plot_bars({k: {"value": v["collapse_rate"], "ci": None} for k, v in stab.items()},
                        pdir / "collapse_rate.png", f"{spec.name}: collapse rate",
                        "share of seeds collapsed", ylim=(0.0, 1.05))
    (out / "report.md").write_text(render(spec, summary))
    return summary


def render(spec: GridSpec, summary: dict[str, Any]) -> str:
    s = spec.stats
    L = [f"# Ablation `{spec.name}`", ""]
    if spec.description:
        L += [spec.description.strip(), ""]
    L += [f"Grid file `{spec.path}`, base preset `{spec.base}`, {len(spec.seeds)} seeds per "
          f"variant ({spec.seeds[0]}..{spec.seeds[-1]}). Score: mean of the last "
          f"{s.final_evals} `{s.metric}` evaluation(s) per seed. CIs: {int(s.ci * 100)}% "
          f"stratified bootstrap ({s.reps} reps, rliable). Optimality gap on scores normalised "
          f"to [{summary['normalisation'][0]:.2f}, {summary['normalisation'][1]:.2f}].", ""]
    L += ["## Aggregates", "",
          "| variant | IQM | mean | optimality gap |", "|---|---|---|---|"]
    for k, a in summary["aggregates"].items():
        L.append(f"| {k} | " + " | ".join(_fmt(a[m]["value"], a[m]["ci"]) for m in
                                          ("iqm", "mean", "optimality_gap")) + " |")
    L += ["", "![IQM](plots/iqm.png)", "", "![curves](plots/curves.png)", ""]
    L += ["## Comparisons", "",
          "| comparison | IQM difference [CI] | CI excludes 0? | P(a > b) [CI] | "
          "excludes 0.5? | claim |", "|---|---|---|---|---|---|"]
    for c in summary["comparisons"]:
        claim = spec.claims.get(c["comparison"], "")
        L.append(f"| {c['comparison']} | {_fmt(c['iqm_diff']['value'], c['iqm_diff']['ci'])} | "
                 f"{'yes' if c['iqm_diff_ci_excludes_zero'] else 'no'} | "
                 f"{_fmt(c['prob_improvement']['value'], c['prob_improvement']['ci'])} | "
                 f"{'yes' if c['prob_improvement_ci_excludes_half'] else 'no'} | {claim} |")
    L += ["", "A difference whose CI excludes zero is resolved at this budget; otherwise the "
          "grid cannot tell the variants apart (more seeds or a longer budget needed).", ""]
    L += ["## Stability", "",
          f"Collapse: eval return more than {s.collapse_drop:.0%} below the seed's best for "
          f"{s.collapse_patience} consecutive evaluations. Time to threshold: first eval step "
          f">= {summary['threshold']:.2f}. Entropy floor: `log_std/frac_at_floor` > "
          f"{s.floor_frac}. Q drift: |Q_final - Q at the best eval|.", "",
          "| variant | collapse rate | stability score | time to threshold (median) | reached "
          "| final return | entropy-floor incidence | Q drift | non-finite updates |",
          "|---|---|---|---|---|---|---|---|---|"]
    for k, v in summary["stability"].items():
        L.append(f"| {k} | {_fmt(v['collapse_rate'])} | {_fmt(v['stability_score'])} | "
                 f"{_fmt(v['time_to_threshold_median'], nd=0)} | {_fmt(v['reached_threshold'])} "
                 f"| {_fmt(v['final_return_mean'])} ± {_fmt(v['final_return_std'])} | "
                 f"{_fmt(v['entropy_floor_incidence'])} | {_fmt(v['q_drift_mean'])} | "
                 f"{v['nonfinite_updates']} |")
    L += ["", "![collapse rate](plots/collapse_rate.png)", ""]
    L += ["## Programs (structural variants)", "",
          "| program | variants (vmapped) | cells | compiles | compile s | wall s |",
          "|---|---|---|---|---|---|"]
    for k, p in summary["programs"].items():
        L.append(f"| {k} | {', '.join(p['variants'])} | {p['cells']} | {p['compiles']} | "
                 f"{p['compile_seconds']:.1f} | {p['wall_seconds']:.1f} |")
    L += ["", "Per-seed curves: `curves/<variant>.npz`; all numbers: `summary.json`.", ""]
    return "\n".join(L)
