"""rejax PPO on gymnax CartPole-v1 at rejax's own CartPole settings; prints one JSON line.

    bench/.venvs/rejax/bin/python bench/peers/rejax_ppo_run.py [--steps 500000] [--seeds 16]

Settings (rejax configs/gymnax/cartpole.yaml): 5 envs x 100 steps, 5 epochs x 5 minibatches,
lr 7.5e-4, tanh 64x64, gamma 0.99, lambda 0.95, clip 0.2, ent 0.01, vf 0.5, grad norm 0.5.
The whole run is one ``jit(train)`` (vmapped over seeds); ``eval_freq = total steps`` so both
sides evaluate once. Compile time (lower + compile) is reported apart from the run time.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import statistics
import time

import jax
import rejax


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=500_000)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=1, help="timed runs (median reported)")
    a = ap.parse_args()
    algo = rejax.PPO.create(
        env="CartPole-v1", num_envs=5, num_steps=100, num_epochs=5, num_minibatches=5,
        learning_rate=7.5e-4, max_grad_norm=0.5, total_timesteps=a.steps, eval_freq=a.steps,
        gamma=0.99, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01, vf_coef=0.5,
        agent_kwargs={"activation": "tanh"}, skip_initial_evaluation=True)
    keys = jax.random.split(jax.random.key(a.seed), a.seeds)
    train = jax.jit(jax.vmap(algo.train)) if a.seeds > 1 else jax.jit(algo.train)
    arg = keys if a.seeds > 1 else keys[0]
    t0 = time.perf_counter()
    compiled = train.lower(arg).compile()
    t_compile = time.perf_counter() - t0
    runs = []
    for _ in range(a.repeats):  # the same pure call again; median of the timings
        t0 = time.perf_counter()
        out = compiled(arg)
        jax.block_until_ready(out)
        runs.append(time.perf_counter() - t0)
    t_run = statistics.median(runs)
    _, (_, returns) = out
    print(json.dumps({"name": "rejax ppo", "seeds": a.seeds, "steps": a.steps,
                      "compile_s": t_compile, "run_s": t_run,
                      "env_steps_per_s": a.steps * a.seeds / t_run,
                      "final_eval_return": float(returns.mean()),
                      "library": f"rejax {md.version('rejax')}", "jax": jax.__version__,
                      "repeats": a.repeats, "run_s_all": runs}))


if __name__ == "__main__":
    main()
