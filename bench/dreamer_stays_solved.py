"""Issue 16's learning target from a Dreamer CartPole run's ``metrics.jsonl``.

Per seed: env steps (and wall-clock seconds, summed from the logged chunk rates) to the first
greedy eval of 500, the share of that seed's later evaluations >= 475 (target >= 0.90 up to
100k steps), the worst later evaluation, and the last one. Also works on an ablation cell's
directory (``cells/<cell>/seeds0-4``).

    python bench/dreamer_stays_solved.py RUN_DIR [RUN_DIR ...] [--up-to 100000] [--json OUT]

Wall-clock is ``sum(chunk_steps / sps)`` over the chunks up to the first 500; it excludes the
first chunk's compile only if that chunk's ``sps`` did (the loop times each chunk call, so the
first one includes compilation). Runs that shared the machine say so in their notes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rlstab_jax.train.metrics import read_metrics


def analyse(run_dir: Path, up_to: int, solved: float = 500.0, stay: float = 475.0) -> dict:
    rows = [r for r in read_metrics(Path(run_dir) / "metrics.jsonl") if r["step"] <= up_to]
    seeds = sorted({int(r["seed"]) for r in rows})
    steps = sorted({int(r["step"]) for r in rows})
    chunk = steps[0] if steps else 0
    out = {"run": str(run_dir), "up_to": up_to, "last_step": steps[-1] if steps else 0,
           "seeds": []}
    for s in seeds:
        mine = sorted((r for r in rows if int(r["seed"]) == s), key=lambda r: r["step"])
        evals = [(int(r["step"]), float(r["eval/return"])) for r in mine if "eval/return" in r]
        wall = np.cumsum([chunk / max(float(r["sps"]), 1e-9) for r in mine])
        first = next((i for i, (_, v) in enumerate(evals) if v >= solved), None)
        rec: dict = {"seed": s, "evals": len(evals)}
        if first is None:
            rec.update(first_500_step=None, stays_solved=None)
        else:
            step0 = evals[first][0]
            later = [v for _, v in evals[first + 1:]]
            idx = next(i for i, r in enumerate(mine) if int(r["step"]) == step0)
            rec.update(first_500_step=step0, first_500_wall_s=round(float(wall[idx]), 1),
                       later_evals=len(later),
                       stays_solved=round(float(np.mean([v >= stay for v in later])), 3)
                       if later else None,
                       worst_later=round(min(later), 1) if later else None)
        rec["last_eval"] = round(evals[-1][1], 1) if evals else None
        out["seeds"].append(rec)
    recs = out["seeds"]
    out["solved_seeds"] = sum(r["first_500_step"] is not None for r in recs)
    out["seeds_staying_solved_0.9"] = sum((r.get("stays_solved") or 0) >= 0.9 for r in recs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--up-to", type=int, default=100_000)
    ap.add_argument("--json", default=None, help="write the analyses to this file")
    a = ap.parse_args()
    results = [analyse(Path(r), a.up_to) for r in a.runs]
    for res in results:
        print(f"{res['run']} (evaluations up to step {res['last_step']}): "
              f"{res['solved_seeds']} seeds reach 500, "
              f"{res['seeds_staying_solved_0.9']} stay >= 475 on >= 90% of later evals")
        print("| seed | first 500 (env steps) | wall s to it | later evals >= 475 | worst later "
              "| last |")
        print("| --- | --- | --- | --- | --- | --- |")
        for r in res["seeds"]:
            print(f"| {r['seed']} | {r['first_500_step']} | {r.get('first_500_wall_s')} | "
                  f"{r.get('stays_solved')} ({r.get('later_evals')}) | {r.get('worst_later')} | "
                  f"{r['last_eval']} |")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
