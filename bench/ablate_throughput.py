"""Grid throughput: one vmapped cell (N numeric variants x S seeds) vs N*S separate runs.

Both sides are what a user would type, timed end to end (process start, compile, training,
evaluation, writing results):

- vmapped: ``python -m rlstab_jax.ablate GRID`` on a grid of N ``agent.actor_lr`` values x S
  seeds: one program, one compile, one process;
- separate: N*S runs of ``python -m rlstab_jax.train ... train.seeds=1``, one after another
  (each its own process and compile), the way a shell loop over seeds and values runs them.

    python bench/ablate_throughput.py                  # 4 numeric x 8 seeds (issue 15 target)
    python bench/ablate_throughput.py --tiny           # 2 x 2, 300 steps: checks the script

Writes ``bench/results/ablate_throughput[_tiny].json`` with both wall-clocks and the ratio.
On 2 CPU cores the vmapped cell wins mostly compile and process overhead (the members share the
same cores); on a GPU the members also run concurrently. Measure on an idle machine only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LRS = [1e-3, 5e-4, 3e-4, 1e-4]


def _common(steps: int, tiny: bool) -> dict[str, object]:
    width = [8] if tiny else [64, 64]
    return {"agent.actor_hidden": width, "agent.critic_hidden": width,
            "agent.batch_size": 8 if tiny else 128, "train.total_steps": steps,
            "train.learning_starts": min(1000, steps // 3), "train.chunk_steps": 100 if tiny
            else 1000, "train.eval_every": steps, "train.eval_episodes": 1 if tiny else 4,
            "replay.capacity": steps, "checkpoint.every": steps}


def _run(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="sac/racer")
    ap.add_argument("--numeric", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--tiny", action="store_true", help="2 x 2, 300 steps, 8-unit nets")
    args = ap.parse_args()
    if args.tiny:
        args.numeric, args.seeds, args.steps = 2, 2, 300
        args.config = "sac/pendulum"
    common = _common(args.steps, args.tiny)
    lrs = LRS[: args.numeric]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory() as tmp:
        import yaml

        grid = {"name": "throughput", "base": args.config, "set": common, "seeds": args.seeds,
                "grid": {"agent.actor_lr": lrs}, "stats": {"reps": 200}}
        gpath = Path(tmp) / "grid.yaml"
        gpath.write_text(yaml.safe_dump(grid))
        t_vmap = _run([sys.executable, "-m", "rlstab_jax.ablate", str(gpath), "--out",
                       f"{tmp}/grid", "--no-progress"], env)
        t_sep = 0.0
        for lr in lrs:
            for seed in range(args.seeds):
                over = [f"{k}={json.dumps(v) if isinstance(v, list) else v}"
                        for k, v in common.items()]
                t_sep += _run([sys.executable, "-m", "rlstab_jax.train", "--config", args.config,
                               *over, f"agent.actor_lr={lr}", f"train.seed={seed}",
                               "train.seeds=1", "log.plot=false", f"run.dir={tmp}/r{lr}-{seed}",
                               "--no-progress"], env)
    result = {"config": args.config, "numeric_variants": args.numeric, "seeds": args.seeds,
              "env_steps_per_member": args.steps, "vmapped_seconds": round(t_vmap, 2),
              "separate_seconds": round(t_sep, 2), "ratio_separate_over_vmapped":
              round(t_sep / t_vmap, 2), "load_avg_1min": os.getloadavg()[0]}
    out = Path(__file__).parent / "results" / (
        "ablate_throughput_tiny.json" if args.tiny else "ablate_throughput.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
