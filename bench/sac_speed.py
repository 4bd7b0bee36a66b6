"""SAC / TQC / DroQ training speed of rlstab_jax against sbx, stable-baselines3 and rejax.

    python bench/sac_speed.py                       # each of ours next to its peer, then the table
    python bench/sac_speed.py --only ours           # rlstab_jax only
    python bench/sac_speed.py --only peers --skip-peer sb3
    python bench/sac_speed.py --steps 4000 --droq-steps 400

Matched settings (issue 4, "Targets"): Pendulum-v1, 1 seed, UTD 1, batch 256, a 256x256 actor and
two 256x256 critics, learning starts 1000, no evaluation, checkpoints or progress output inside
the timed part. Every run reports *steady* env steps/s, measured over env steps after warm-up and
after the first learning chunk (which holds the jit compile), and its compile / start-up overhead
separately. Our variants run in this process through the public API (``load_config`` ->
``build_session`` -> ``session.chunk`` again and again); each peer runs in its own venv
(``bench/setup_peers.sh``) via ``bench/peers/<peer>_run.py``, one after another, so all numbers
come from one run; by default each of our runs goes right before the peer run it is compared
with (``--order interleaved``), so the VM's drift over a run hits both sides of a ratio alike.
Writes ``bench/results/sac_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
VENVS = HERE / ".venvs"
LEARNING_STARTS = 1000

# Our variants: (name, preset, overrides, kind) -- kind selects the step budget.
OURS: list[tuple[str, str, list[str], str]] = [
    ("ours SAC gymnasium", "sac/pendulum", ["env.backend=gymnasium"], "sac"),
    # sbx's SAC: one std head on the shared trunk, clamped log-std, scalar alpha (our preset's
    # decoupled std net costs ~17% of an update at 256x256).
    ("ours SAC gymnasium, sbx recipe", "sac/pendulum",
     ["env.backend=gymnasium", "agent.std_head=coupled", "agent.log_std_param=clamp",
      "agent.alpha_mode=scalar"], "sac"),
    # The Python host loop (one jitted call per env step) instead of the in-scan callback.
    ("ours SAC gymnasium, host loop", "sac/pendulum",
     ["env.backend=gymnasium", "env.host_step=loop"], "sac"),
    ("ours TQC gymnasium", "tqc/pendulum", ["env.backend=gymnasium"], "sac"),
    ("ours DroQ gymnasium", "droq/pendulum",
     ["env.backend=gymnasium", "agent.utd=20", "agent.policy_delay=20", "agent.dropout=0.01",
      "agent.layer_norm=true"], "droq"),
    ("ours SAC gymnax", "sac/pendulum", ["env.backend=gymnax"], "sac"),
    ("ours SAC gymnax x16 seeds", "sac/pendulum", ["env.backend=gymnax", "train.seeds=16"],
     "vmap"),
]

# Peers: (name, venv, script, args, kind).
PEERS: list[tuple[str, str, str, list[str], str]] = [
    ("sbx SAC", "sbx", "sbx_run.py", ["--algo", "sac"], "sac"),
    ("sbx TQC", "sbx", "sbx_run.py", ["--algo", "tqc"], "sac"),
    ("sbx DroQ", "sbx", "sbx_run.py", ["--algo", "droq"], "droq"),
    ("sb3 SAC", "sb3", "sb3_run.py", [], "sb3"),
    ("rejax SAC gymnax", "rejax", "rejax_run.py", [], "sac"),
    ("rejax SAC gymnax x16 seeds", "rejax", "rejax_run.py", ["--seeds", "16"], "vmap"),
]

# Run order with --order interleaved: each ratio's two runs back to back (this VM's speed drifts
# by 15-30% over tens of minutes, more than some of the differences measured).
INTERLEAVED: list[str] = [
    "ours SAC gymnasium", "sbx SAC", "ours SAC gymnasium, sbx recipe",
    "ours SAC gymnasium, host loop", "sb3 SAC", "ours TQC gymnasium", "sbx TQC",
    "ours DroQ gymnasium", "sbx DroQ", "ours SAC gymnax", "rejax SAC gymnax",
    "ours SAC gymnax x16 seeds", "rejax SAC gymnax x16 seeds",
]

# Ratios of the issue: (label, ours, peer, goal).
RATIOS: list[tuple[str, str, str, float | None]] = [
    ("SAC / sbx SAC", "ours SAC gymnasium", "sbx SAC", 1.5),
    ("SAC / sb3 SAC", "ours SAC gymnasium", "sb3 SAC", 2.5),
    ("SAC, sbx recipe / sbx SAC", "ours SAC gymnasium, sbx recipe", "sbx SAC", 1.5),
    ("SAC, in-scan env / host loop", "ours SAC gymnasium", "ours SAC gymnasium, host loop",
     None),
    ("TQC / sbx TQC", "ours TQC gymnasium", "sbx TQC", 1.8),
    ("DroQ / sbx DroQ", "ours DroQ gymnasium", "sbx DroQ", 2.5),
    ("gymnax SAC / rejax SAC", "ours SAC gymnax", "rejax SAC gymnax", 1.0),
]


# ---------------------------------------------------------------------------------------
# rlstab_jax
# ---------------------------------------------------------------------------------------
def run_ours(name: str, preset: str, overrides: list[str], learn_steps: int,
             chunk_steps: int) -> dict[str, Any]:
    """Time ``session.chunk`` calls; steady = chunks after the first learning chunk."""
    import jax

    from rlstab_jax.config.loader import load_config
    from rlstab_jax.train.session import build_session

    t_start = time.perf_counter()
    total = LEARNING_STARTS + chunk_steps + learn_steps  # timed: the last learn_steps
    cfg = load_config(preset, [
        *overrides, f"train.learning_starts={LEARNING_STARTS}", f"train.chunk_steps={chunk_steps}",
        f"train.total_steps={total}", "train.eval_every=0", "checkpoint.enabled=false",
        "log.progress=false", "log.plot=false", "agent.batch_size=256",
        "agent.actor_hidden=[256,256]", "agent.critic_hidden=[256,256]", "agent.n_critics=2"])
    session = build_session(cfg)
    state = session.init_state()
    hp = session.hparams
    jax.block_until_ready(state)
    t_built = time.perf_counter()
    S = session.n_seeds
    chunks: list[tuple[int, int, float]] = []  # (env steps per seed before, after, seconds)
    steps = 0
    while steps < total:
        t0 = time.perf_counter()
        state, metrics = session.chunk(state, hp)
        jax.block_until_ready((state, metrics))
        dt = time.perf_counter() - t0
        before, steps = steps, int(jax.device_get(state.env_steps).reshape(-1)[0])
        chunks.append((before, steps, dt))
    t_end = time.perf_counter()
    out = {"name": name, "steps": steps, "seeds": S, "chunk_steps": chunk_steps,
           "backend": session.backend, "overrides": overrides, "preset": preset,
           **timing_summary(chunks, t_start, t_built, t_end, S)}
    out["jit_cache_sizes"] = jit_cache_sizes(session)
    if session.runner is not None:
        session.runner.venv.close()
    return out


def timing_summary(chunks: list[tuple[int, int, float]], t_start: float, t_built: float,
                   t_end: float, seeds: int) -> dict[str, Any]:
    """Steady rate and compile / start-up overhead from ``(steps before, after, seconds)``.

    Steady: learning chunks after the first (the first learning chunk may hold the update's
    compile). Overhead: wall time before the steady window minus what its steps cost at the
    steady rate (learning steps) and at the fastest warm-up chunk's rate (warm-up steps; the
    fastest one holds no compile).
    """
    learn = [c for c in chunks if c[0] >= LEARNING_STARTS]
    warm = [c for c in chunks if c[0] < LEARNING_STARTS]
    timed = learn[1:]
    steady_steps = sum(c[1] - c[0] for c in timed)
    steady_s = sum(c[2] for c in timed)
    steady = steady_steps / steady_s  # env steps per second per seed
    warm_sps = max((c[1] - c[0]) / c[2] for c in warm) if warm else float("inf")
    before_window = (t_end - steady_s) - t_start
    expected = sum(c[1] - c[0] for c in warm) / warm_sps + (learn[0][1] - learn[0][0]) / steady
    return {
        "seconds_total": round(t_end - t_start, 3),
        "steady_sps": round(steady, 2), "steady_sps_aggregate": round(steady * seeds, 2),
        "steady_window_steps": steady_steps, "steady_window_s": round(steady_s, 3),
        "compile_or_startup_s": round(max(before_window - expected, 0.0), 3),
        "build_s": round(t_built - t_start, 3), "first_chunk_s": round(chunks[0][2], 3),
        "first_learning_chunk_s": round(learn[0][2], 3),
        "warmup_sps": round(warm_sps, 1),
        "chunk_s": [round(c[2], 3) for c in chunks]}


def jit_cache_sizes(session: Any) -> dict[str, int]:
    """Compiled variants per jitted entry point (> 1 per static-arg value = a recompile)."""
    fns = {"chunk": session.chunk}
    if session.runner is not None:
        fns = {"act": getattr(session.runner, "_act", None),
               "step": getattr(session.runner, "_step", None),
               "scan": getattr(session.runner, "_scan", None)}
    out = {}
    for k, f in fns.items():
        size = getattr(f, "_cache_size", None)
        if callable(size):
            out[k] = int(size())
    return out


def matmul_ceiling(reps: int = 200) -> dict[str, Any]:
    """Achieved GFLOP/s of a 256x256 x batch-256 matmul chain (forward and both backward forms)."""
    import jax
    import jax.numpy as jnp

    x = jax.random.normal(jax.random.key(0), (256, 256), jnp.float32)
    w = jax.random.normal(jax.random.key(1), (256, 256), jnp.float32) / 16.0

    @jax.jit
    def chain(x, w):
        def body(h, _):
            y = jnp.tanh(h @ w)             # forward      [B, in] @ [in, out]
            gw = h.T @ y                    # weight grad  [in, B] @ [B, out]
            gx = y @ w.T                    # input grad   [B, out] @ [out, in]
            return jnp.tanh(gx + 1e-3 * gw), None
        h, _ = jax.lax.scan(body, x, None, length=reps)
        return h

    chain(x, w).block_until_ready()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        chain(x, w).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    flops = 3 * 2 * 256 ** 3 * reps
    return {"gflops": round(flops / best / 1e9, 1), "matmul_shape": "256x256 @ 256x256 (x3 forms)"}


def sac_update_rate(n_updates: int = 100) -> dict[str, Any]:
    """Update-only speed of our SAC (no env, no replay): U updates in one jitted scan."""
    import jax
    import jax.numpy as jnp

    from rlstab_jax.agents import registry
    from rlstab_jax.agents.base import Batch
    from rlstab_jax.config.loader import load_config
    from rlstab_jax.config.split import extract_hparams
    from rlstab_jax.envs import registry as env_registry

    cfg = load_config("sac/pendulum", ["env.backend=gymnax"])
    env = env_registry.make_jax(cfg.env.id, cfg.env.kwargs, 0, 0)
    agent = registry.get("sac").make_agent(cfg.agent, env.spec)
    hp = {k: jnp.asarray(v, jnp.float32) for k, v in extract_hparams(cfg.agent).items()}
    state = agent.init(jax.random.key(0), hp)
    B, D = 256, env.spec.action_dim
    obs_dim = env.spec.obs_shape[0]

    def batch(u):
        k = jax.random.split(jax.random.key(1), 3)
        return Batch(obs=jax.random.normal(k[0], (u, B, obs_dim)),
                     action=jax.random.uniform(k[1], (u, B, D), minval=-1, maxval=1),
                     reward=jax.random.normal(k[2], (u, B)),
                     next_obs=jax.random.normal(k[0], (u, B, obs_dim)),
                     terminated=jnp.zeros((u, B), bool), discount=jnp.full((u, B), 0.99),
                     is_demo=jnp.zeros((u, B)))

    one = jax.jit(agent.update).lower(state, batch(1), jax.random.key(2), hp).compile()
    cost = one.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops = float(cost.get("flops", 0.0)) if cost else 0.0
    upd = jax.jit(agent.update)
    b = batch(n_updates)
    jax.block_until_ready(upd(state, b, jax.random.key(3), hp))
    best = float("inf")
    for i in range(3):
        t0 = time.perf_counter()
        jax.block_until_ready(upd(state, b, jax.random.key(4 + i), hp))
        best = min(best, time.perf_counter() - t0)
    rate = n_updates / best
    # Analytic count of the 256x256 hidden-layer matmuls (the dominant term): critic step 9
    # (target actor fwd 1, target critics fwd 2, critics fwd 2 + bwd 4), actor step 7 (actor fwd
    # 1 + bwd 2, critics fwd 2 + input-grad bwd 2) -> 16 x 2*256^3 FLOPs.
    analytic = 16 * 2 * 256 ** 3
    return {"updates_per_s": round(rate, 1), "xla_flops_per_update": flops,
            "analytic_hidden_flops_per_update": analytic,
            "achieved_gflops_xla": round(flops * rate / 1e9, 1) if flops else None,
            "achieved_gflops_analytic": round(analytic * rate / 1e9, 1)}


# ---------------------------------------------------------------------------------------
# peers
# ---------------------------------------------------------------------------------------
def run_peer(name: str, venv: str, script: str, args: list[str], learn_steps: int,
             skip: int, timeout: float) -> dict[str, Any]:
    py = VENVS / venv / "bin" / "python"
    if not py.exists():
        failed = VENVS / f"{venv}.FAILED"
        why = failed.read_text().strip().splitlines()[-1] if failed.exists() else \
            f"{py} missing: run bash bench/setup_peers.sh"
        return {"name": name, "error": f"venv not installed: {why}"}
    # Same window as ours: learning_starts, then `skip` learning steps (compile), then the
    # `learn_steps` timed ones.
    cmd = [str(py), str(HERE / "peers" / script), *args, "--learning-starts",
           str(LEARNING_STARTS), "--steps", str(LEARNING_STARTS + skip + learn_steps),
           "--skip", str(skip), "--name", name]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"name": name, "error": f"timeout after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        err = (p.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        return {"name": name, "error": f"exit {p.returncode}: {err}", "cmd": " ".join(cmd)}
    out = json.loads(lines[-1])
    out["name"] = name
    if not out.get("steady_sps", 0) > 0:  # NaN or 0: the timing window was not recorded
        return {"name": name, "error": f"no steady rate measured: {lines[-1][:200]}"}
    out["process_wall_s"] = round(wall, 2)
    return out


# ---------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------
def load_avg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def ratios(rows: dict[str, dict[str, Any]], ceiling: dict[str, Any] | None) -> list[dict]:
    out = []
    for label, ours, peer, goal in RATIOS:
        a, b = rows.get(ours, {}), rows.get(peer, {})
        r = (a["steady_sps"] / b["steady_sps"]) if a.get("steady_sps") and b.get("steady_sps") \
            else None
        out.append({"ratio": label, "value": None if r is None else round(r, 2), "goal": goal,
                    "met": None if r is None or goal is None else r >= goal})
    for ours_single, ours_multi, label in (
            ("ours SAC gymnax", "ours SAC gymnax x16 seeds",
             "ours: 16-seed vmap aggregate / single seed"),
            ("rejax SAC gymnax", "rejax SAC gymnax x16 seeds",
             "rejax: 16-seed vmap aggregate / single seed")):
        a, b = rows.get(ours_single, {}), rows.get(ours_multi, {})
        if a.get("steady_sps") and b.get("steady_sps_aggregate"):
            r = b["steady_sps_aggregate"] / a["steady_sps"]
            out.append({"ratio": label, "value": round(r, 2), "goal": None, "met": None,
                        "note": f"vs 16x single: {r / 16:.3f} of linear"})
    if ceiling and ceiling.get("sac_updates_per_s_at_ceiling"):
        sac = rows.get("ours SAC gymnasium", {})
        if sac.get("steady_sps"):
            r = sac["steady_sps"] / ceiling["sac_updates_per_s_at_ceiling"]
            out.append({"ratio": "ours SAC gymnasium / matmul ceiling", "value": round(r, 2),
                        "goal": 0.9, "met": r >= 0.9})
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# SAC speed, {result['date']}", "",
             "Steady env steps/s per seed after warm-up and compile (see bench/README.md).", "",
             f"Machine: {result['machine']}; load average at start {result['load_start']}, "
             f"at end {result['load_end']}. jax {result.get('jax')}.", "",
             "| run | steady env steps/s | aggregate | compile / start-up s | timed steps "
             "| total s | load after (1/5/15 min) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in result["runs"]:
        load = "/".join(f"{x:.2f}" for x in r.get("load_after", []))
        if "error" in r:
            lines.append(f"| {r['name']} | error: {r['error']} | | | | | {load} |")
            continue
        agg = r.get("steady_sps_aggregate", r["steady_sps"])
        lines.append(f"| {r['name']} | {r['steady_sps']:.1f} | {agg:.1f} | "
                     f"{r['compile_or_startup_s']:.1f} | {r.get('steady_window_steps', '')} | "
                     f"{r['seconds_total']:.1f} | {load} |")
    for m in result.get("merged_from", []):
        lines.append(f"\nRows {', '.join(m['rows'])} come from the run of {m['date']} (load "
                     f"average at start {m['load_start']}, at end {m['load_end']}).")
    lines += ["", "| ratio | value | goal | met |", "| --- | ---: | ---: | --- |"]
    for q in result["ratios"]:
        v = "n/a" if q["value"] is None else f"{q['value']:.2f}"
        g = "" if q["goal"] is None else f">= {q['goal']}"
        m = "" if q["met"] is None else ("yes" if q["met"] else "**no**")
        note = f" ({q['note']})" if q.get("note") else ""
        lines.append(f"| {q['ratio']}{note} | {v} | {g} | {m} |")
    c = result.get("ceiling")
    if c:
        lines += ["", "Matmul ceiling: " + json.dumps(c)]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4000,
                    help="env steps after learning_starts for SAC/TQC runs (default 4000)")
    ap.add_argument("--droq-steps", type=int, default=400,
                    help="env steps after learning_starts for DroQ (UTD 20) runs (default 400)")
    ap.add_argument("--sb3-steps", type=int, default=2000,
                    help="timed env steps for stable-baselines3 (slow, and very slow under load)")
    ap.add_argument("--vmap-steps", type=int, default=2000,
                    help="env steps per seed after learning_starts for the 16-seed runs")
    ap.add_argument("--only", choices=("ours", "peers"), default=None)
    ap.add_argument("--skip-peer", action="append", default=[],
                    help="skip peers whose name contains this (sbx, sb3, rejax, 'sbx DroQ', ...)")
    ap.add_argument("--skip-ours", action="append", default=[],
                    help="skip our runs whose name contains this (DroQ, x16, ...)")
    ap.add_argument("--no-ceiling", action="store_true")
    ap.add_argument("--order", choices=("interleaved", "grouped"), default="interleaved",
                    help="interleaved (default): each of our runs right before the peer runs it "
                         "is compared with, so machine drift between them stays small; grouped: "
                         "all of ours, then all peers")
    ap.add_argument("--peer-timeout", type=float, default=900.0)
    ap.add_argument("--out", default=str(RESULTS / "sac_speed"))
    ap.add_argument("--merge", action="store_true",
                    help="keep the other rows of an existing --out JSON (re-run only some rows, "
                         "e.g. after a peer failed); every row records its own date and load")
    ap.add_argument("--prng", default=None, choices=("threefry2x32", "rbg", "unsafe_rbg"),
                    help="jax_default_prng_impl for our side (an experiment; default: JAX's)")
    args = ap.parse_args()
    import jax

    if args.prng:
        jax.config.update("jax_default_prng_impl", args.prng)
    budget = {"sac": args.steps, "droq": args.droq_steps, "vmap": args.vmap_steps,
              "sb3": args.sb3_steps}
    # Chunk = the skipped first learning window as well (peers skip the same number of steps);
    # 250 leaves clean (compile-free) warm-up chunks to measure the warm-up rate on.
    chunk = {"sac": 250, "droq": 100, "vmap": 250, "sb3": 250}

    result: dict[str, Any] = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, {platform.python_version()}",
        "jax": jax.__version__, "prng_impl": str(jax.config.jax_default_prng_impl),
        "load_start": load_avg(), "settings": {
            "env": "Pendulum-v1", "seeds": 1, "utd": 1, "batch": 256, "actor": [256, 256],
            "critics": "2 x [256, 256]", "learning_starts": LEARNING_STARTS,
            "learn_steps": budget, "evaluation": "none"}, "runs": []}
    rows: dict[str, dict[str, Any]] = {}

    def record(r: dict[str, Any]) -> None:
        r["load_after"] = load_avg()
        r["date"] = _dt.datetime.now().isoformat(timespec="seconds")
        result["runs"].append(r)
        rows[r["name"]] = r
        agg = r.get("steady_sps_aggregate", r.get("steady_sps"))
        msg = r.get("error") or (f"{r['steady_sps']:8.1f} steps/s steady"
                                 f" (aggregate {agg:.1f}),"
                                 f" compile/start-up {r['compile_or_startup_s']:.1f} s,"
                                 f" total {r['seconds_total']:.1f} s")
        print(f"{r['name']:28s} {msg}  [load {r['load_after']}]", flush=True)

    if args.only != "peers":
        if not args.no_ceiling:
            c = matmul_ceiling()
            u = sac_update_rate()
            c.update(u)
            # SAC update at the ceiling: the analytic hidden-layer FLOPs at the measured GFLOP/s.
            c["sac_updates_per_s_at_ceiling"] = round(
                c["gflops"] * 1e9 / u["analytic_hidden_flops_per_update"], 1)
            c["update_only_fraction_of_ceiling"] = round(
                u["updates_per_s"] / c["sac_updates_per_s_at_ceiling"], 2)
            result["ceiling"] = c
            print("matmul ceiling:", json.dumps(c), flush=True)
    jobs: dict[str, Any] = {}
    if args.only != "peers":
        for name, preset, overrides, kind in OURS:
            if not any(s.lower() in name.lower() for s in args.skip_ours):
                jobs[name] = (lambda preset=preset, overrides=overrides, kind=kind, name=name:
                              run_ours(name, preset, overrides, budget[kind], chunk[kind]))
    if args.only != "ours":
        for name, venv, script, pargs, kind in PEERS:
            if not any(s.lower() in name.lower() for s in args.skip_peer):
                jobs[name] = (lambda venv=venv, script=script, pargs=pargs, kind=kind, name=name:
                              run_peer(name, venv, script, pargs, budget[kind], chunk[kind],
                                       args.peer_timeout))
    order = INTERLEAVED if args.order == "interleaved" else [n for n, *_ in OURS + PEERS]
    for name in order:
        if name not in jobs:
            continue
        try:
            record(jobs[name]())
        except Exception as e:  # report and continue: one failure must not hide the rest
            record({"name": name, "error": f"{type(e).__name__}: {e}"})
    result["load_end"] = load_avg()
    out = Path(args.out)
    if args.merge and out.with_suffix(".json").exists():
        old = json.loads(out.with_suffix(".json").read_text())
        kept = [r for r in old.get("runs", []) if r["name"] not in rows]
        for r in kept:
            rows[r["name"]] = r
        order = [n for n, *_ in OURS] + [n for n, *_ in PEERS]
        result["runs"] = sorted(kept + result["runs"], key=lambda r: order.index(r["name"])
                                if r["name"] in order else len(order))
        result["merged_from"] = old.get("merged_from", []) + [
            {"date": old.get("date"), "load_start": old.get("load_start"),
             "load_end": old.get("load_end"), "rows": [r["name"] for r in kept]}]
        result.setdefault("ceiling", old.get("ceiling"))
    result["ratios"] = ratios(rows, result.get("ceiling"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    md = markdown(result)
    out.with_suffix(".md").write_text(md)
    print()
    print(md)


if __name__ == "__main__":
    sys.exit(main())
