"""Pixel SAC speed (issue 14): ours (per conv_impl) vs plain PyTorch and SB3 ``CnnPolicy``.

    flock /work/wt/bench.lock env RLSTAB_BENCH=1 python bench/pixel_speed.py \
        [--envs racer,carracing] [--impls matmul,onednn] [--repeats 5] [--sections ...]

Sections (``--sections``, comma list; default all):

* ``update``: one SAC update at batch 128 with the preset's CNN and heads on a random uint8
  batch, ours as a top-level jitted call (one critic step + one actor step, no loop) and as
  ``agent.update`` (the critic/actor steps inside ``lax.scan``, as in the driver), per
  ``conv_impl``; ms per update (median of ``--repeats`` timed calls after a warm-up call).
* ``torch``: the same network and update in plain PyTorch (``peers/torch_pixel_sac.py``, sb3
  venv) — ms per update.
* ``sb3``: stable-baselines3 SAC ``CnnPolicy`` gradient steps on a filled replay buffer
  (``peers/sb3_pixel_run.py``, sb3 venv) — ms per gradient step incl. replay sample.
* ``envstep``: ours end to end through the public API (driver chunk: env step + replay add +
  sample + update, 1 env, UTD 1) — ms per env step after learning starts.

Results: ``bench/results/pixel_speed.json`` (``--out``), rows merged by key.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SB3_PY = HERE / ".venvs" / "sb3" / "bin" / "python"
PRESETS = {"racer": ("sac/racer_pixels", (32, 32, 6), "RacerPixels-v0"),
           "carracing": ("sac/carracing", (96, 96, 3), "CarRacing-v3")}


def _load():
    return os.getloadavg()[0]


def ours_update(env: str, impl: str, repeats: int, batch: int = 128,
                actor_features: str = "recompute") -> dict:
    import jax
    import jax.numpy as jnp

    from rlstab_jax.agents.sac import agent as sac_agent
    from rlstab_jax.agents.sac.networks import make_networks
    from rlstab_jax.agents.sac.testing import make_batch
    from rlstab_jax.config.loader import load_config
    from rlstab_jax.config.split import extract_hparams
    from rlstab_jax.envs.spec import EnvSpec

    preset, shape, env_id = PRESETS[env]
    cfg = load_config(preset, [f"agent.conv_impl={impl}", f"agent.batch_size={batch}",
                               f"agent.actor_features={actor_features}"]).agent
    spec = EnvSpec(env_id, shape, "uint8", "continuous", 3, (-1.0,) * 3, (1.0,) * 3,
                   ("steer", "gas", "brake"))
    agent = sac_agent.make_agent(cfg, spec)
    nets = make_networks(cfg, spec)
    names = tuple(spec.action_names)
    hp = extract_hparams(cfg)
    state = jax.jit(agent.init)(jax.random.key(0), hp)
    b = make_batch(spec, 1, batch, dtype=jnp.uint8)
    b1 = jax.tree.map(lambda x: x[0], b)

    def top(s, k):  # one critic + one actor step, no loop around them
        k1, k2 = jax.random.split(k)
        s, m, feats = sac_agent.critic_step_features(nets, s, b1, k1, hp)
        s, m2 = sac_agent.actor_step(nets, names, s, b1.obs, k2, hp,
                                     feats if actor_features == "reuse" else None)
        return s, {**m, **m2}

    def scanned(s, k):  # what the driver runs: agent.update scans over the U=1 updates
        return agent.update(s, b, k, hp)

    out = {}
    for mode, fn in (("top", top), ("scan", scanned)):
        f = jax.jit(fn)
        t0 = time.perf_counter()
        jax.block_until_ready(f(state, jax.random.key(1)))
        compile_s = time.perf_counter() - t0
        ts = []
        for i in range(repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(f(state, jax.random.key(2 + i)))
            ts.append(time.perf_counter() - t0)
        out[mode] = {"ms": 1e3 * statistics.median(ts), "ms_min": 1e3 * min(ts),
                     "first_call_s": compile_s}
    return {"side": "ours", "env": env, "conv_impl": impl, "batch": batch,
            "actor_features": actor_features,
            "obs_shape": list(shape), "top_ms": out["top"]["ms"], "scan_ms": out["scan"]["ms"],
            "top_ms_min": out["top"]["ms_min"], "scan_ms_min": out["scan"]["ms_min"],
            "first_call_s": {m: round(v["first_call_s"], 1) for m, v in out.items()},
            "scan_over_top": out["scan"]["ms"] / out["top"]["ms"], "repeats": repeats}


def ours_envstep(env: str, impl: str, steps: int) -> dict:
    import jax

    from rlstab_jax.config.loader import load_config
    from rlstab_jax.train.session import build_session

    preset, _, _ = PRESETS[env]
    chunk = 50
    over = [f"agent.conv_impl={impl}", "env.n_envs=1", "train.seeds=1", "train.eval_every=0",
            "train.learning_starts=200", f"train.chunk_steps={chunk}",
            "checkpoint.enabled=false", "log.progress=false", "replay.capacity=5000",
            f"train.total_steps={200 + chunk * (steps + 2)}"]
    cfg = load_config(preset, over)
    sess = build_session(cfg)
    st, hp = sess.place(sess.init_state()), sess.hparams
    t0 = time.perf_counter()
    # learning starts at 200: 4 chunks of 50 warm-up steps, then compile the learning chunk
    for _ in range(200 // chunk + 1):
        st = sess.chunk(st, hp)[0]
    jax.block_until_ready(st)
    warm = time.perf_counter() - t0
    ts = []
    for _ in range(steps):
        t0 = time.perf_counter()
        st = sess.chunk(st, hp)[0]
        jax.block_until_ready(st)
        ts.append((time.perf_counter() - t0) / chunk)
    return {"side": "ours", "section": "envstep", "env": env, "conv_impl": impl,
            "ms_per_env_step": 1e3 * statistics.median(ts), "chunks_timed": steps,
            "chunk_steps": chunk, "warmup_s": round(warm, 1)}


def peer(script: str, env: str, repeats: int) -> dict:
    cmd = [str(SB3_PY), str(HERE / "peers" / script), "--env", env, "--repeats", str(repeats)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE / "peers")
    if res.returncode != 0:
        return {"side": script, "env": env, "error": res.stderr.strip().splitlines()[-1:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def save(rows: list[dict], out: Path) -> None:
    """Merge ``rows`` into ``out`` by (side, section, env, conv_impl, actor_features); called
    after every row."""
    old = json.loads(out.read_text())["rows"] if out.exists() else []
    key = lambda r: (r.get("side"), r.get("section", "update"), r.get("env"),  # noqa: E731
                     r.get("conv_impl"), r.get("actor_features", "recompute"))
    merged = {key(r): r for r in old}
    merged.update({key(r): r for r in rows})
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": platform.processor() or platform.machine(),
                               "cpus": os.cpu_count(), "rows": list(merged.values())},
                              indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--envs", default="racer,carracing")
    ap.add_argument("--impls", default="matmul,onednn")  # xla: ~4 s/update in scan
    ap.add_argument("--sections", default="update,torch,sb3,envstep")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--envstep-chunks", type=int, default=3)
    ap.add_argument("--actor-features", default="recompute",
                    help="comma list of agent.actor_features values for the update rows")
    ap.add_argument("--out", default=str(HERE / "results" / "pixel_speed.json"))
    args = ap.parse_args()
    sections = args.sections.split(",")
    rows = []
    for env in args.envs.split(","):
        for impl in args.impls.split(","):
            for feats in args.actor_features.split(",") if "update" in sections else ():
                rows.append(ours_update(env, impl, args.repeats, actor_features=feats))
                rows[-1].update(load=_load(), date=time.strftime("%Y-%m-%d %H:%M UTC",
                                                                 time.gmtime()))
                print(json.dumps(rows[-1]), flush=True)
                save(rows, Path(args.out))
            if "envstep" in sections:
                try:
                    rows.append(ours_envstep(env, impl, args.envstep_chunks))
                except Exception as e:  # noqa: BLE001 - e.g. Box2D missing: keep the others
                    rows.append({"side": "ours", "section": "envstep", "env": env,
                                 "conv_impl": impl, "error": f"{type(e).__name__}: {e}"})
                rows[-1].update(load=_load(), date=time.strftime("%Y-%m-%d %H:%M UTC",
                                                                 time.gmtime()))
                print(json.dumps(rows[-1]), flush=True)
                save(rows, Path(args.out))
        for sec, script in (("torch", "torch_pixel_sac.py"), ("sb3", "sb3_pixel_run.py")):
            if sec in sections:
                rows.append(peer(script, env, args.repeats))
                rows[-1].update(load=_load(), date=time.strftime("%Y-%m-%d %H:%M UTC",
                                                                 time.gmtime()))
                print(json.dumps(rows[-1]), flush=True)
                save(rows, Path(args.out))
    save(rows, Path(args.out))

if __name__ == "__main__":
    main()
