"""Learning targets of issue 4: SAC/DroQ/TQC presets on Pendulum-v1, 5 vmapped seeds.

Target: mean deterministic eval return >= -200 within 20k env steps on >= 4 of 5 seeds, and no
seed collapses (falls > 30% below its best for 3 consecutive evals) up to --collapse-steps.

    python bench/pendulum_learning.py --agents sac tqc --steps 20000
    python bench/pendulum_learning.py --agents sac --steps 100000     # collapse check
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from rlstab_jax.config.loader import load_config
from rlstab_jax.stability.telemetry import collapse_detector, stability_score
from rlstab_jax.train.loop import run
from rlstab_jax.train.metrics import read_metrics


def evals_by_seed(rows, seeds):
    steps = sorted({r["step"] for r in rows if r.get("eval/return") is not None})
    table = np.full((seeds, len(steps)), np.nan)
    for r in rows:
        if r.get("eval/return") is not None:
            table[r["seed"], steps.index(r["step"])] = r["eval/return"]
    return steps, table


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--agents", nargs="+", default=["sac", "tqc", "droq"])
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--target", type=float, default=-200.0)
    p.add_argument("--target-steps", type=int, default=20_000)
    p.add_argument("--baseline", type=float, default=-1200.0,
                   help="return of a policy that learned nothing (random Pendulum ~ -1200); a "
                        "collapse is a fall of > 30%% of the improvement over it")
    p.add_argument("--rescore", metavar="RUN_DIR", nargs="*", default=[],
                   help="score existing run directories instead of training")
    p.add_argument("--out", default="bench/results")
    args = p.parse_args()
    results = {}
    jobs = [(a, None) for a in args.agents] if not args.rescore else \
        [(Path(d).name, Path(d)) for d in args.rescore]
    for agent, run_dir in jobs:
        t0 = time.time()
        if run_dir is None:
            cfg = load_config(f"{agent}/pendulum", [
                f"train.total_steps={args.steps}", f"train.seeds={args.seeds}",
                "train.eval_every=2000", "train.eval_episodes=5", "log.progress=false",
                "checkpoint.enabled=false", f"run.dir=runs/bench-learning-{agent}-{args.steps}"])
            rows = run(cfg).rows
        else:
            rows = read_metrics(run_dir / "metrics.jsonl")
        steps, table = evals_by_seed(rows, args.seeds)
        within = [i for i, s in enumerate(steps) if s <= args.target_steps]
        best_within = np.nanmax(table[:, within], axis=1)
        reached = int(np.sum(best_within >= args.target))
        collapsed = np.asarray(collapse_detector(np.nan_to_num(table, nan=-1e9), 0.3, 3,
                                                 baseline=args.baseline))
        score = np.asarray(stability_score(table[:, -5:]))
        results[agent] = {
            "steps": args.steps, "seeds": args.seeds, "wall_s": round(time.time() - t0, 1),
            "eval_steps": steps, "eval_return": table.round(1).tolist(),
            "best_within_target_steps": best_within.round(1).tolist(),
            "seeds_reaching_target": reached, "collapsed": collapsed.tolist(),
            "stability_score_last5": score.round(3).tolist(),
            "pass": bool(reached >= args.seeds - 1 and not collapsed.any()),
        }
        print(json.dumps({agent: {k: v for k, v in results[agent].items()
                                  if k not in ("eval_return", "eval_steps")}}))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "rescore" if args.rescore else "_".join(args.agents)
    (out / f"pendulum_learning_{name}_{args.steps}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
