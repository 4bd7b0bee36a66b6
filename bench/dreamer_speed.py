"""Dreamer world-model training throughput against the matmul ceiling (issue 16, report 002).

    flock /work/wt/bench.lock env RLSTAB_BENCH=1 python bench/dreamer_speed.py
    python bench/dreamer_speed.py --updates 2 --repeats 2 --seeds 5 --out /tmp/dreamer_speed.json

Setting (field report 002's best throughput figure, 4,192 transitions/s on a GPU): batch 128 x
seq_len 25 replayed transitions per update, GRU 256, 32x32 categorical latents, MLPs 2 x 256,
255 twohot bins, CartPole's 4-dim state and 2 actions (the state-only model). Measured, all in
one process (no env, no replay: random ``SeqBatch`` input, the agent's own jitted ``update``):

* ``wm``: the world-model update alone (actor-critic off through ``wm_warmup``; the skipped
  ``lax.cond`` branch is not executed);
* ``full``: world model + imagination actor-critic (horizon 15 from all B x T posterior starts);
* each for 1 seed and for ``--seeds`` seeds vmapped (aggregate transitions/s);
* compile time (``lower().compile()``) separately from the timed calls;
* the matmul ceiling in the same run: GFLOP/s of a large f32 matmul (1024^3) and of the
  256-wide chain that ``bench/sac_speed.py`` uses; the ratio of our achieved FLOP rate to it,
  with FLOPs counted analytically from the parameter shapes (dense layers only: 2 x in x out per
  row forward, x3 with the backward pass; the GRU's elementwise work, LayerNorm, softmax,
  sampling and the optimiser are not counted, so the ratio is a lower bound of the efficiency).
  XLA's own ``cost_analysis`` is printed too; it counts a ``lax.scan`` body once, not per step.
* the floor: analytic FLOPs per transition / ceiling = the best transitions/s this CPU could
  reach if every counted matmul ran at the ceiling.

Writes JSON to ``--out`` (default ``bench/results/dreamer_speed.json``) and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

REPORT_TPS = 4192.0  # field report 002, batch 128 x seq 25 on a GPU
HERE = Path(__file__).resolve().parent


def matmul_ceiling(n: int = 1024, reps: int = 8) -> dict[str, float]:
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32) / n ** 0.5

    @jax.jit
    def chain(x):
        def body(h, _):
            return jnp.tanh(h @ b), None
        return jax.lax.scan(body, x, None, length=reps)[0]

    chain(a).block_until_ready()
    best = min(_timed(lambda: chain(a).block_until_ready()) for _ in range(5))
    return {"large_gflops": round(2 * n ** 3 * reps / best / 1e9, 1), "large_shape": f"{n}^3"}


def chain256() -> float:
    import importlib.util
    spec = importlib.util.spec_from_file_location("sac_speed", HERE / "sac_speed.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return float(mod.matmul_ceiling()["gflops"])


def _timed(f) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def dense_macs(params: Any, uses: dict[str, int]) -> int:
    """Sum of in x out over every Dense kernel of the top-level modules, times their uses."""
    import jax

    total = 0
    for name, sub in params["params"].items():
        n = uses.get(name, 1)
        for path, leaf in jax.tree_util.tree_flatten_with_path(sub)[0]:
            if str(path[-1].key) == "kernel" and leaf.ndim == 2:
                total += n * int(leaf.shape[0]) * int(leaf.shape[1])
    return total


def analytic_flops(state: Any, cfg: Any) -> dict[str, float]:
    """Dense-layer FLOPs per replayed transition: world model, and the actor-critic on top."""
    # World model per row: encoder on obs and next_obs, the reset posterior for every step and
    # the scanned posterior (post_net x2), one GRU step, prior, and the three heads.
    wm_fwd = 2 * dense_macs(state.wm_params, {"encoder": 2, "post_net": 2})
    wm = 3 * wm_fwd  # forward + backward (input and weight gradients)
    H = cfg.horizon
    # Imagination per start: H x (actor fwd, img_in + GRU + prior); heads (reward, continue) on
    # H states; critic fwd+bwd and slow critic fwd on H + 1; actor fwd+bwd on H.
    img = dense_macs(state.wm_params, {"encoder": 0, "post_net": 0, "decoder": 0,
                                       "reward_head": 0, "cont_head": 0})
    heads = dense_macs(state.wm_params, {"encoder": 0, "post_net": 0, "img_in": 0, "gru": 0,
                                         "prior_net": 0, "decoder": 0})
    actor = dense_macs(state.actor_params, {})
    critic = dense_macs(state.critic_params, {})
    ac = 2 * (H * (actor + img) + H * heads + (H + 1) * critic * (1 + 1 + 3) + H * actor * 3)
    return {"wm": float(wm), "ac": float(ac), "full": float(wm + ac)}


def build(seeds: int, warmup: int, args):
    import jax

    from rlstab_jax.agents.dreamer.config import DreamerConfig
    from rlstab_jax.agents.dreamer.testing import DISCRETE_SPEC, build as build_agent, make_seq

    cfg = DreamerConfig(deter=256, stoch_groups=32, stoch_classes=32, hidden=256, layers=2,
                        num_bins=255, batch_size=args.batch, seq_len=args.seq_len, horizon=15,
                        train_ratio=float(args.batch * args.seq_len), wm_warmup=warmup)
    agent, hp, state = build_agent(cfg, DISCRETE_SPEC)
    ends = ((0, args.seq_len // 2), (args.batch - 1, args.seq_len - 2))  # two episode ends
    seq = make_seq(DISCRETE_SPEC, args.batch, args.seq_len, ends=ends)
    batch = jax.tree.map(lambda x: jax.numpy.broadcast_to(x, (args.updates,) + x.shape), seq)
    update = agent.update
    if seeds > 1:
        keys = jax.random.split(jax.random.key(1), seeds)
        state = jax.vmap(agent.init, in_axes=(0, None))(keys, hp)
        batch = jax.tree.map(lambda x: jax.numpy.broadcast_to(x, (seeds,) + x.shape), batch)
        # update_index is seed-independent (the driver passes it unbatched)
        update = jax.vmap(agent.update, in_axes=(0, 0, 0, None, None))
        key = keys
    else:
        key = jax.random.key(1)
    return cfg, state, batch, key, hp, update


def measure(seeds: int, mode: str, args) -> dict[str, Any]:
    import jax

    warmup = 10 ** 9 if mode == "wm" else 0
    cfg, state, batch, key, hp, update = build(seeds, warmup, args)
    t0 = time.perf_counter()
    index = jax.numpy.int32(0)
    compiled = jax.jit(update).lower(state, batch, key, hp, index).compile()
    compile_s = time.perf_counter() - t0
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    xla_flops = float(cost.get("flops", 0.0)) if cost else 0.0
    jax.block_until_ready(compiled(state, batch, key, hp, index))  # first call (allocations)
    best = min(_timed(lambda: jax.block_until_ready(compiled(state, batch, key, hp, index)))
               for _ in range(args.repeats))
    n_trans = seeds * args.updates * args.batch * args.seq_len
    one_state = jax.tree.map(lambda x: x[0], state) if seeds > 1 else state
    flops = analytic_flops(one_state, cfg)[mode]
    tps = n_trans / best
    return {"mode": mode, "seeds": seeds, "updates": args.updates, "compile_s": round(compile_s, 1),
            "call_s": round(best, 3), "transitions_per_s": round(tps, 1),
            "updates_per_s": round(seeds * args.updates / best, 3),
            "analytic_flops_per_transition": flops,
            "achieved_gflops": round(flops * tps / 1e9, 1),
            "xla_cost_analysis_flops": xla_flops}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seq-len", type=int, default=25)
    ap.add_argument("--updates", type=int, default=2, help="updates per timed call (one scan)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--modes", default="wm,full")
    ap.add_argument("--out", default=str(HERE / "results" / "dreamer_speed.json"))
    args = ap.parse_args()

    import jax

    result: dict[str, Any] = {"devices": [str(d) for d in jax.devices()],
                              "cpu_count": os.cpu_count(), "load_avg_start": os.getloadavg(),
                              "bench_env": os.environ.get("RLSTAB_BENCH"),
                              "setting": f"B={args.batch} x T={args.seq_len}, GRU 256, 32x32 "
                                         "latents, MLP 2x256, 255 bins, obs 4, 2 actions"}
    ceil = matmul_ceiling()
    ceil["chain256_gflops"] = chain256()
    result["ceiling"] = ceil
    print("ceiling:", json.dumps(ceil), flush=True)
    rows = []
    for mode in args.modes.split(","):
        for seeds in sorted({1, args.seeds}):
            r = measure(seeds, mode, args)
            r["fraction_of_large_ceiling"] = round(r["achieved_gflops"] / ceil["large_gflops"], 3)
            r["vs_report_4192"] = round(r["transitions_per_s"] / REPORT_TPS, 3)
            r["floor_tps_at_ceiling"] = round(ceil["large_gflops"] * 1e9
                                              / r["analytic_flops_per_transition"], 1)
            rows.append(r)
            print(json.dumps(r), flush=True)
    result["rows"] = rows
    result["load_avg_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    lines = ["| mode | seeds | transitions/s (aggregate) | x report 4,192 | achieved GFLOP/s | "
             "/ ceiling | at-ceiling floor tps | compile s |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['seeds']} | {r['transitions_per_s']} | "
                     f"{r['vs_report_4192']} | {r['achieved_gflops']} | "
                     f"{r['fraction_of_large_ceiling']} | {r['floor_tps_at_ceiling']} | "
                     f"{r['compile_s']} |")
    lines.append(f"\nceiling: {json.dumps(ceil)}")
    md = "\n".join(lines)
    Path(args.out).with_suffix(".md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
