"""Issue 17 learning target on Scaffold-v0: multi-head recurrent PPO vs the heuristic baseline.

The runs are the cells of the report 004 ablation preset (``ppo_scaffold_004``: the full
recipe, per-head entropy coefficients off, causal masks off); this script trains one variant's
cells (so the three variants can run as three processes on one results directory) and adds
the issue's own checks to the ablation tool's analysis:

- the heuristic and random baselines' mean return with a 95% bootstrap CI (rliable's
  stratified bootstrap of the mean) over ``--baseline-episodes`` episodes;
- per variant: final deterministic eval return per seed (mean of the grid's ``final_evals``
  last evaluations), its mean with the same CI, and whether the CI's low end is above the
  heuristic's high end;
- whether any head's entropy fell below the report's critical level before that head had been
  causally active in >= 10% of the steps so far (cumulative usage), per seed.

    python bench/scaffold_learning.py train --out DIR --variant full      # one per variant
    python bench/scaffold_learning.py analyse DIR                          # + ablation report

``train`` accepts dotted overrides after the variant (``train.total_steps=262144``); the first
``train`` call on a directory records them (``grid_overrides.json``) and ``analyse`` and
``python -m rlstab_jax.ablate --resume DIR`` read them back.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import numpy as np

from rlstab_jax.ablate import runner
from rlstab_jax.ablate.__main__ import _overrides
from rlstab_jax.ablate.cells import cell_dir, is_done, plan, read_cell_rows, run_cell
from rlstab_jax.ablate.report import analyse
from rlstab_jax.ablate.spec import load_grid
from rlstab_jax.ablate.stats import aggregates
from rlstab_jax.agents.ppo.heads import MIN_USAGE
from rlstab_jax.envs.scaffold import make_scaffold
from rlstab_jax.envs.scaffold.baselines import evaluate_policy, heuristic_policy, random_policy
from rlstab_jax.envs.scaffold.env import HEADS

GRID = "ppo_scaffold_004"


def mean_ci(x: np.ndarray, reps: int = 2000) -> tuple[float, float, float]:
    """Mean and 95% stratified-bootstrap CI of a 1-d sample (the ablation tool's seeded rliable
    aggregates, so a re-analysis gives the same CI)."""
    m = aggregates({"m": np.asarray(x, np.float64)}, (0.0, 1.0), reps, 0.95, seed=0)["m"]["mean"]
    return m["value"], m["ci"][0], m["ci"][1]


def early_collapse(rows: list[dict], seeds: list[int]) -> dict[str, list[int]]:
    """Per head: the seeds whose entropy went critical before cumulative usage >= 10%."""
    out: dict[str, list[int]] = {}
    for h in HEADS:
        bad = []
        for s in seeds:
            use = [r for r in rows if r["seed"] == s and f"head_usage/{h}" in r]
            cum = np.cumsum([r[f"head_usage/{h}"] for r in use]) / np.arange(1, len(use) + 1)
            if any(r.get(f"entropy/{h}/critical", 0) > 0 and c < MIN_USAGE
                   for r, c in zip(use, cum)):
                bad.append(s)
        out[h] = bad
    return out


def entropy_trace(rows: list[dict], seeds: list[int], head: str) -> dict[str, list]:
    """Per seed: (step, entropy, usage, valid-action max entropy) of ``head`` at each log row."""
    out = {}
    for s in seeds:
        out[str(s)] = [[r["step"], r.get(f"entropy/{head}"), r.get(f"head_usage/{head}"),
                        r.get(f"entropy/{head}/valid_max")]
                       for r in rows if r["seed"] == s and f"entropy/{head}" in r]
    return out


def ci_vs(x: np.ndarray, baseline_high: float) -> dict:
    """Mean, 95% CI and whether the CI's low end is above ``baseline_high``."""
    m, lo, hi = mean_ci(x)
    return dict(mean=m, ci_low=lo, ci_high=hi, beats_heuristic_ci=lo > baseline_high)


def eval_curves(rows: list[dict], seeds: list[int], key: str) -> dict[int, list]:
    """Per seed: the (step, value) pairs of evaluation metric ``key``."""
    return {s: [(r["step"], r[key]) for r in rows if r["seed"] == s and key in r] for s in seeds}


def final_returns(evals: dict[int, list], seeds: list[int], k: int) -> np.ndarray:
    """Per seed: the mean of the last ``k`` evaluations (NaN for a seed without any)."""
    return np.array([np.mean([v for _, v in evals[s][-k:]]) if evals[s] else np.nan
                     for s in seeds])


def train(a: argparse.Namespace) -> None:
    out = Path(a.out)
    if (out / "grid.yaml").is_file():
        spec, _ = runner.load_resumed(out)
    else:
        overrides = _overrides(a.overrides)
        spec = load_grid(a.grid, overrides)
        runner.prepare(spec, out, overrides)
    for cell in plan(spec):
        if a.variant not in {v.name for v in cell.program.variants} or is_done(out, cell):
            continue
        rec = run_cell(cell, cell_dir(out, cell))
        print(json.dumps(rec), flush=True)


def analyse_dir(a: argparse.Namespace) -> None:
    out = Path(a.dir)
    spec, _ = runner.load_resumed(out)
    cells = plan(spec)
    missing = [c.name for c in cells if not is_done(out, c)]
    summary = analyse(spec, cells, out) if not missing else None
    _, params = make_scaffold()
    key = jax.random.PRNGKey(12345)
    result: dict = {"grid": spec.name, "dir": str(out), "unfinished_cells": missing,
                    "steps": spec.variants[0].cfg.train.total_steps, "seeds": list(spec.seeds),
                    "final_evals": spec.stats.final_evals, "baselines": {}, "variants": {}}
    for name, pol in (("heuristic", heuristic_policy), ("random", random_policy)):
        ret = np.asarray(jax.jit(lambda k, pol=pol: evaluate_policy(
            pol, params, k, a.baseline_episodes))(key))
        result["baselines"][name] = dict(zip(("mean", "ci_low", "ci_high"), mean_ci(ret)))
    k = spec.stats.final_evals
    by_variant: dict[str, list] = {}  # a variant's seeds may span several cells (seed blocks)
    for cell in cells:
        by_variant.setdefault(cell.program.variants[0].name, []).append(cell)
    for v, vcells in by_variant.items():
        have = [c for c in vcells if (cell_dir(out, c) / "metrics.jsonl").is_file()]
        if not have:
            continue
        rows = [r for c in have for r in read_cell_rows(cell_dir(out, c))]
        seeds = [s for c in have for s in c.block]
        evals = eval_curves(rows, seeds, "eval/return")
        final = final_returns(evals, seeds, k)
        entry = {"done": all(is_done(out, c) for c in vcells),
                 "last_eval_step": [evals[s][-1][0] if evals[s] else None for s in seeds],
                 "final_eval_per_seed": final.tolist(),
                 "eval_curves": {str(s): evals[s] for s in seeds},
                 "entropy_critical_before_10pct_use": early_collapse(rows, seeds),
                 "op_entropy_trace": entropy_trace(rows, seeds, "op")}
        heur_hi = result["baselines"]["heuristic"]["ci_high"]
        if np.isfinite(final).all():
            entry.update(ci_vs(final, heur_hi))
        # PPO trains a stochastic policy; the mode of each factored head is a different
        # policy. The driver logs both evaluations; report the sampled one with the same CI.
        sto = final_returns(eval_curves(rows, seeds, "eval/return_stochastic"), seeds, k)
        entry["stochastic_final_eval_per_seed"] = sto.tolist()
        if np.isfinite(sto).all():
            entry["stochastic"] = ci_vs(sto, heur_hi)
        if summary is not None:
            entry["iqm"] = summary["aggregates"].get(v, {}).get("iqm")
        result["variants"][v] = entry
    if summary is not None:
        result["comparisons"] = summary["comparisons"]
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(result, indent=1, default=str))
    for name, b in result["baselines"].items():
        print(f"{name:22s} mean {b['mean']:.2f} [{b['ci_low']:.2f}, {b['ci_high']:.2f}]")
    for v, e in result["variants"].items():
        ci = f"{e['mean']:.2f} [{e['ci_low']:.2f}, {e['ci_high']:.2f}]" if "mean" in e else "-"
        st = e.get("stochastic")
        if st:
            print(f"{v + ' (sampled)':22s} mean {st['mean']:.2f} [{st['ci_low']:.2f}, "
                  f"{st['ci_high']:.2f}]  per seed "
                  f"{np.round(e['stochastic_final_eval_per_seed'], 2).tolist()}")
        per_seed = np.round(e["final_eval_per_seed"], 2).tolist()
        print(f"{v + ' (mode)':22s} mean {ci}  per seed {per_seed}"
              f"  at {e['last_eval_step']}  early entropy collapse: "
              f"{ {h: s for h, s in e['entropy_critical_before_10pct_use'].items() if s} }")
    if missing:
        print(f"unfinished cells: {missing} (no ablation report yet)")
    else:
        print(f"ablation report: {out / 'report.md'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train one variant's cells of the grid into --out")
    t.add_argument("--out", required=True)
    t.add_argument("--grid", default=GRID)
    t.add_argument("--variant", required=True)
    t.add_argument("overrides", nargs="*", help="dotted key=value overrides for the grid")
    an = sub.add_parser("analyse", help="baselines, CIs, early entropy collapse, ablation report")
    an.add_argument("dir")
    an.add_argument("--baseline-episodes", type=int, default=500)
    an.add_argument("--json", default="bench/results/scaffold_learning.json")
    a = p.parse_args()
    train(a) if a.cmd == "train" else analyse_dir(a)


if __name__ == "__main__":
    main()
