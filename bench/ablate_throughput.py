"""Grid throughput: one vmapped cell (N numeric variants x S seeds) vs N*S separate runs.

Both sides are what a user would type, timed end to end (process start, compile, training,
evaluation, writing results):

- vmapped: ``python -m rlstab_jax.ablate GRID`` on a grid of N ``agent.actor_lr`` values x S
  seeds: one program, one compile, one process;
- separate: N*S runs of ``python -m rlstab_jax.train ... train.seeds=1``, one after another
  (each its own process and compile), the way a shell loop over seeds and values runs them.

    python bench/ablate_throughput.py                  # 4 numeric x 8 seeds (issue 15 target)
    python bench/ablate_throughput.py --separate-sample 4   # time 4 of the 32 separate runs
    python bench/ablate_throughput.py --tiny           # 2 x 2, 300 steps: checks the script

``--separate-sample K`` times only K of the N*S separate runs (spread over the values and
seeds; every separate run is the same program size, so they cost the same up to noise) and
reports ``separate_seconds`` as their mean x N*S, flagged ``separate_extrapolated``. It keeps a
benchmark short on a shared machine (32 sequential processes each pay start-up and compile).
CPU seconds (user + system of the child processes) are recorded next to the wall-clock.

Writes ``bench/results/ablate_throughput[_tiny].json`` with both wall-clocks and the ratio.
On 2 CPU cores the vmapped cell wins mostly compile and process overhead (the members share the
same cores); on a GPU the members also run concurrently. Measure on an idle machine only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (user + system) of one child process."""
    t0, c0 = time.perf_counter(), _cpu()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return time.perf_counter() - t0, _cpu() - c0


def _sample(pairs: list[tuple[float, int]], k: int | None) -> list[tuple[float, int]]:
    """``k`` of the (value, seed) pairs, evenly spread (all of them when k is None)."""
    if k is None or k >= len(pairs):
        return pairs
    return [pairs[(j * len(pairs)) // k] for j in range(k)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="sac/racer")
    ap.add_argument("--numeric", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--separate-sample", type=int, metavar="K",
                    help="time only K of the separate runs and extrapolate (see above)")
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
        load0 = os.getloadavg()[0]
        t_vmap, c_vmap = _run([sys.executable, "-m", "rlstab_jax.ablate", str(gpath), "--out",
                               f"{tmp}/grid", "--no-progress"], env)
        programs = json.loads(Path(f"{tmp}/grid/summary.json").read_text())["programs"]
        pairs = [(lr, seed) for lr in lrs for seed in range(args.seeds)]
        timed = []
        for lr, seed in _sample(pairs, args.separate_sample):
            over = [f"{k}={json.dumps(v) if isinstance(v, list) else v}"
                    for k, v in common.items()]
            w, c = _run([sys.executable, "-m", "rlstab_jax.train", "--config", args.config,
                         *over, f"agent.actor_lr={lr}", f"train.seed={seed}", "train.seeds=1",
                         "log.plot=false", f"run.dir={tmp}/r{lr}-{seed}", "--no-progress"], env)
            timed.append({"actor_lr": lr, "seed": seed, "wall_seconds": round(w, 2),
                          "cpu_seconds": round(c, 2)})
    n_runs = len(pairs)
    scale = n_runs / len(timed)
    t_sep = sum(r["wall_seconds"] for r in timed) * scale
    c_sep = sum(r["cpu_seconds"] for r in timed) * scale
    prog = next(iter(programs.values()))
    result = {"config": args.config, "numeric_variants": args.numeric, "seeds": args.seeds,
              "env_steps_per_member": args.steps, "common_overrides": common,
              "vmapped_seconds": round(t_vmap, 2), "vmapped_cpu_seconds": round(c_vmap, 2),
              "vmapped_compiles": prog["compiles"],
              "vmapped_compile_seconds": round(prog["compile_seconds"], 2),
              "vmapped_cell_train_seconds": round(prog["wall_seconds"], 2),
              "separate_runs": n_runs, "separate_timed": timed,
              "separate_extrapolated": len(timed) < n_runs,
              "separate_seconds": round(t_sep, 2), "separate_cpu_seconds": round(c_sep, 2),
              "ratio_separate_over_vmapped": round(t_sep / t_vmap, 2),
              "load_avg_1min_before": load0, "load_avg_1min_after": os.getloadavg()[0]}
    out = Path(__file__).parent / "results" / (
        "ablate_throughput_tiny.json" if args.tiny else "ablate_throughput.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
