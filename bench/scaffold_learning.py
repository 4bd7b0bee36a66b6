"""Issue 17 learning target on Scaffold-v0: multi-head recurrent PPO vs the heuristic baseline.

For each variant (the full report 004 recipe, per-head entropy coefficients off, causal masks
off) train ``--seeds`` vmapped seeds of ``ppo/scaffold`` and report the final deterministic
eval return per seed with a 95% bootstrap CI (rliable's stratified bootstrap of the mean), the
heuristic and random baselines' mean return with the same CI over ``--baseline-episodes``
episodes, and whether any head's entropy fell below the report's critical level before that
head had been causally active in >= 10% of the steps so far (cumulative usage).

    python bench/scaffold_learning.py --steps 1000000 --seeds 5
    python bench/scaffold_learning.py --variants full --steps 262144
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import numpy as np
from rliable import library as rly

from rlstab_jax.agents.ppo.heads import MIN_USAGE
from rlstab_jax.config.loader import load_config
from rlstab_jax.envs.scaffold import make_scaffold
from rlstab_jax.envs.scaffold.baselines import evaluate_policy, heuristic_policy, random_policy
from rlstab_jax.envs.scaffold.env import HEADS
from rlstab_jax.train.loop import run

VARIANTS = {
    "full": [],
    "no_per_head_entropy": ["agent.per_head_entropy=false"],
    "no_causal_masks": ["agent.causal_masks=false"],
}


def mean_ci(x: np.ndarray, reps: int = 2000) -> tuple[float, float, float]:
    """Mean and 95% stratified-bootstrap CI (rliable) of a 1-d sample."""
    scores = {"m": np.asarray(x, np.float64).reshape(-1, 1)}
    point, ci = rly.get_interval_estimates(scores, lambda s: np.array([s.mean()]), reps=reps)
    return float(point["m"][0]), float(ci["m"][0, 0]), float(ci["m"][1, 0])


def early_collapse(rows: list[dict], seeds: int) -> dict[str, list[int]]:
    """Per head: the seeds whose entropy went critical before cumulative usage >= 10%."""
    out: dict[str, list[int]] = {}
    for h in HEADS:
        bad = []
        for s in range(seeds):
            use = [r for r in rows if r["seed"] == s and f"head_usage/{h}" in r]
            cum = np.cumsum([r[f"head_usage/{h}"] for r in use]) / np.arange(1, len(use) + 1)
            if any(r.get(f"entropy/{h}/critical", 0) > 0 and c < MIN_USAGE
                   for r, c in zip(use, cum)):
                bad.append(s)
        out[h] = bad
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--baseline-episodes", type=int, default=1000)
    p.add_argument("--out", default="bench/results/scaffold_learning.json")
    a = p.parse_args()
    _, params = make_scaffold()
    key = jax.random.PRNGKey(12345)
    result: dict = {"steps": a.steps, "seeds": a.seeds, "baselines": {}, "variants": {}}
    for name, pol in (("heuristic", heuristic_policy), ("random", random_policy)):
        ret = np.asarray(jax.jit(lambda k, pol=pol: evaluate_policy(
            pol, params, k, a.baseline_episodes))(key))
        result["baselines"][name] = dict(zip(("mean", "ci_low", "ci_high"), mean_ci(ret)))
        print(name, result["baselines"][name], flush=True)
    for v in a.variants:
        cfg = load_config("ppo/scaffold", [
            f"train.total_steps={a.steps}", f"agent.anneal_steps={a.steps}",
            f"train.seeds={a.seeds}", "log.progress=false", "checkpoint.enabled=false",
            f"run.dir=runs/bench-scaffold-{v}", *VARIANTS[v]])
        res = run(cfg)
        final = np.asarray(res.final_eval["eval/return"])
        m, lo, hi = mean_ci(final)
        result["variants"][v] = {
            "final_eval_per_seed": final.tolist(), "mean": m, "ci_low": lo, "ci_high": hi,
            "beats_heuristic_ci": lo > result["baselines"]["heuristic"]["ci_high"],
            "entropy_critical_before_10pct_use": early_collapse(res.rows, a.seeds),
        }
        print(v, json.dumps(result["variants"][v]), flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
