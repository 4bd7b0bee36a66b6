"""PPO speed on gymnax CartPole-v1 against rejax (issue 17), plus the LSTM PPO on Scaffold-v0.

Ours runs rejax's CartPole settings (5 envs x 100 steps, 5 epochs x 5 minibatches, lr 7.5e-4,
tanh 64x64) through the normal session: the chunk covers the whole run (one compiled call,
seeds vmapped) and one evaluation of 128 episodes runs at the end, as rejax's
``eval_freq = total`` does inside its timed call; both are in ``run_s`` (``train_only_s``
without the evaluation). Compile (``lower().compile()`` of chunk and evaluation) is timed
apart. rejax runs in its own venv (``bench/setup_peers.sh``) via
``bench/peers/rejax_ppo_run.py``; 1 and 16 seeds each.

    python bench/ppo_speed.py --steps 500000 --seeds 1 16
    python bench/ppo_speed.py --only ours --scaffold-steps 65536
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import jax

from rlstab_jax.config.loader import load_config
from rlstab_jax.train.session import build_session

HERE = Path(__file__).resolve().parent
REJAX_PY = HERE / ".venvs" / "rejax" / "bin" / "python"
REJAX_SETTINGS = ["agent.rollout_len=100", "agent.epochs=5", "agent.minibatches=5",
                  "agent.lr=0.00075", "env.n_envs=5", "agent.anneal_steps=0",
                  "train.eval_episodes=128"]  # rejax's evaluation: 128 episodes at the end


def time_ours(preset: str, steps: int, seeds: int, extra: list[str], repeats: int = 1) -> dict:
    cfg = load_config(preset, [f"train.total_steps={steps}", f"train.chunk_steps={steps}",
                               f"train.seeds={seeds}", "log.progress=false",
                               "checkpoint.enabled=false", *extra])
    sess = build_session(cfg)
    state = sess.init_state()
    jax.block_until_ready(state)
    t0 = time.perf_counter()
    compiled = sess.chunk.lower(state, sess.hparams).compile()
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    ev_compiled = sess.evaluate.lower(state, sess.keys, sess.hparams).compile()
    t_compile += time.perf_counter() - t0
    done = sess.steps_per_chunk
    # timed: the training chunk and one evaluation (rejax's eval_freq = total steps evaluates
    # 128 episodes inside its timed train call; ``cfg.train.eval_episodes`` matches that)
    # ``repeats`` back-to-back chunks, each continuing from the last state (same work per
    # step); the median is reported, a single 1-16 s sample is noisy on a shared 2-core VM.
    runs, totals = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state, metrics = compiled(state, sess.hparams)
        jax.block_until_ready(state)
        runs.append(time.perf_counter() - t0)
        ev = jax.device_get(ev_compiled(state, sess.keys, sess.hparams))
        totals.append(time.perf_counter() - t0)
    t_run, t_total = statistics.median(runs), statistics.median(totals)
    return {"name": f"rlstab_jax {preset}", "seeds": seeds, "steps": done,
            "eval_episodes": cfg.train.eval_episodes, "compile_s": t_compile,
            "run_s": t_total, "train_only_s": t_run, "env_steps_per_s": done * seeds / t_total,
            "train_only_env_steps_per_s": done * seeds / t_run,
            "final_eval_return": float(ev["eval/return"].mean()), "repeats": repeats,
            "run_s_all": totals}


def time_rejax(steps: int, seeds: int, repeats: int = 1) -> dict:
    if not REJAX_PY.exists():
        return {"name": "rejax ppo", "seeds": seeds, "error": "run bench/setup_peers.sh first"}
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    p = subprocess.run([str(REJAX_PY), str(HERE / "peers" / "rejax_ppo_run.py"), "--steps",
                        str(steps), "--seeds", str(seeds), "--repeats", str(repeats)], capture_output=True, text=True,
                       env=env, timeout=3600)
    if p.returncode:
        return {"name": "rejax ppo", "seeds": seeds, "error": p.stderr.strip()[-500:]}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=500_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--only", choices=["ours", "rejax", "both"], default="both")
    ap.add_argument("--scaffold-steps", type=int, default=131_072)
    ap.add_argument("--out", default=str(HERE / "results" / "ppo_speed.json"))
    ap.add_argument("--repeats", type=int, default=1, help="timed runs per row (median)")
    a = ap.parse_args()
    rows = []
    for s in a.seeds:  # interleaved: each of ours next to its peer
        if a.only in ("ours", "both"):
            # rejax's step count is a multiple of 5 x 100; ours rounds to whole iterations too
            rows.append(time_ours("ppo/cartpole", a.steps, s, REJAX_SETTINGS, a.repeats))
            print(json.dumps(rows[-1]), flush=True)
        if a.only in ("rejax", "both"):
            rows.append(time_rejax(a.steps, s, a.repeats))
            print(json.dumps(rows[-1]), flush=True)
    if a.only in ("ours", "both") and a.scaffold_steps:
        for s in a.seeds:
            rows.append(time_ours("ppo/scaffold", a.scaffold_steps, s, [], a.repeats))
            print(json.dumps(rows[-1]), flush=True)
    for ours in rows:
        peer = [r for r in rows if r["name"] == "rejax ppo" and r.get("seeds") == ours["seeds"]
                and "env_steps_per_s" in r]
        if ours["name"].endswith("cartpole") and peer:
            ours["ratio_vs_rejax"] = ours["env_steps_per_s"] / peer[0]["env_steps_per_s"]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"load_avg": os.getloadavg(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
