"""Learning target of issue 5: the SAC Racer preset against the scripted controller.

Target: >= 80% of the scripted controller's mean episode return (same env kwargs as the preset,
64 seeds, no steering noise) on >= 4 of 5 vmapped seeds within the preset's step budget.

    python bench/racer_learning.py                          # sac/racer, 5 seeds, preset budget
    python bench/racer_learning.py --preset tqc/racer --steps 30000

Reports per seed the best and the final deterministic eval return, the wall time of the whole
run (compile and evaluation included) and whether any seed collapsed afterwards (falls > 30% of
its improvement over the do-nothing return for 3 consecutive evals). Writes
``bench/results/racer_learning_<preset>.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np
from pendulum_learning import evals_by_seed

from rlstab_jax.config.loader import load_config
from rlstab_jax.envs.racer import controller as C
from rlstab_jax.envs.racer import make_racer
from rlstab_jax.stability.telemetry import collapse_detector
from rlstab_jax.train.loop import run


def scripted_return(env_kwargs: dict, n_seeds: int = 64) -> dict:
    """Mean first-episode return / lap rate / lap time of the scripted controller."""
    _, params = make_racer(**env_kwargs)
    st = C.evaluate(jax.random.key(0), n_seeds, params, 0.0)
    laps = st["lap"]
    return {"return": float(st["return"].mean()), "lap_rate": float(laps.mean()),
            "lap_steps": float(st["length"][laps].mean()) if laps.any() else None,
            # Standing still for the whole episode: the do-nothing baseline of the collapse rule.
            "do_nothing": -float(params.constant_penalty) * int(params.max_steps_in_episode)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="sac/racer")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=None, help="default: the preset's total_steps")
    p.add_argument("--fraction", type=float, default=0.8)
    p.add_argument("--out", default="bench/results")
    args = p.parse_args()
    overrides = [f"train.seeds={args.seeds}", "log.progress=false", "checkpoint.enabled=false",
                 f"run.dir=runs/bench-{args.preset.replace('/', '-')}-{args.seeds}s"]
    if args.steps:
        overrides.append(f"train.total_steps={args.steps}")
    cfg = load_config(args.preset, overrides)
    ref = scripted_return(dict(cfg.env.kwargs))
    target = args.fraction * ref["return"]
    print(f"scripted controller: {ref}; target {args.fraction:.0%} = {target:.1f}", flush=True)
    t0 = time.time()
    rows = run(cfg).rows
    wall = time.time() - t0
    steps, table = evals_by_seed(rows, args.seeds)
    best, final = np.nanmax(table, axis=1), table[:, -1]
    first = [next((s for s, v in zip(steps, row) if v >= target), None) for row in table]
    collapsed = np.asarray(collapse_detector(np.nan_to_num(table, nan=-1e9), 0.3, 3,
                                             baseline=ref["do_nothing"]))
    result = {
        "preset": args.preset, "seeds": args.seeds, "total_steps": cfg.train.total_steps,
        "env_kwargs": dict(cfg.env.kwargs), "scripted": ref, "target": round(target, 2),
        "wall_s": round(wall, 1), "eval_steps": steps, "eval_return": table.round(1).tolist(),
        "best": best.round(1).tolist(), "final": final.round(1).tolist(),
        "first_step_at_target": first,
        "seeds_reaching_target": int(np.sum(best >= target)),
        "seeds_final_at_target": int(np.sum(final >= target)),
        "collapsed": collapsed.tolist(),
    }
    result["pass"] = bool(result["seeds_reaching_target"] >= args.seeds - 1)
    print(json.dumps({k: v for k, v in result.items() if k != "eval_return"}), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"racer_learning_{args.preset.replace('/', '_')}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
