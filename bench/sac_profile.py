"""Where the time of an rlstab_jax SAC step goes (evidence for bench/README.md "Findings").

    python bench/sac_profile.py [--section update|gym|gymnax|droq|calls|tqc|all]

* ``update``: update-only throughput (U updates in one jitted scan on a fixed batch, no env, no
  replay) of our SAC/TQC/DroQ updates and of config variants, against a lean reference SAC
  update written here in plain JAX (same sizes, same algorithm, no telemetry/guards), and the
  256x256 matmul ceiling; GFLOP/s from XLA's cost analysis.
* ``gym``: per-step breakdown of the gymnasium driver (``GymOffPolicyRunner``): action
  (dispatch + device->host), replay add + update dispatch, simulator step, and the update's own
  execution time when the loop is made synchronous.
* ``gymnax``: the pure-JAX chunk per env step against update-only per update: the cost of
  collect + replay add + replay sample inside the scan.
* ``droq``: the DroQ update with dropout / LayerNorm switched off (and ``--prng rbg``).
* ``calls``: one standalone update call vs per update inside a scan, and under ``vmap`` over
  one seed (run again with ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``).
* ``tqc``: the selection of the kept pooled target atoms (top_k vs the former full sort) and
  the pairwise quantile Huber loss.

Writes ``--out`` (default ``bench/results/sac_profile.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
B, H, OBS, ACT = 256, 256, 3, 1


def _best(fn, reps: int = 3) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t0)
    return best


def _flops(compiled) -> float:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost.get("flops", 0.0)) if cost else 0.0


# ---------------------------------------------------------------------------------------
# matmul ceilings
# ---------------------------------------------------------------------------------------
def matmul(reps: int = 200, batched: int = 0) -> float:
    """GFLOP/s of a chain of [256,256]@[256,256] in forward and both backward forms.

    ``batched=N`` runs N independent chains as one batched dot (the vmapped-ensemble form)."""
    shape = (batched, H, H) if batched else (H, H)
    x = jax.random.normal(jax.random.key(0), shape)
    w = jax.random.normal(jax.random.key(1), shape) / 16.0

    def mm(a, b):
        return jnp.einsum("nij,njk->nik", a, b) if batched else a @ b

    def tr(a):
        return jnp.swapaxes(a, -1, -2)

    @jax.jit
    def chain(x, w):
        def body(h, _):
            y = jnp.tanh(mm(h, w))
            gw = mm(tr(h), y)
            gx = mm(y, tr(w))
            return jnp.tanh(gx + 1e-3 * gw), None
        return jax.lax.scan(body, x, None, length=reps)[0]

    chain(x, w).block_until_ready()
    t = _best(lambda: chain(x, w), 5)
    return 3 * 2 * H ** 3 * reps * max(batched, 1) / t / 1e9


# ---------------------------------------------------------------------------------------
# lean reference SAC update (plain JAX, written for this benchmark)
# ---------------------------------------------------------------------------------------
def _dense_init(key, n_in, n_out):
    return {"w": jax.random.normal(key, (n_in, n_out)) * (1.0 / np.sqrt(n_in)),
            "b": jnp.zeros((n_out,))}


def _mlp_init(key, sizes):
    keys = jax.random.split(key, len(sizes) - 1)
    return [_dense_init(k, a, b) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def _mlp(params, x):
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def _adam_init(p):
    z = jax.tree.map(jnp.zeros_like, p)
    return {"m": z, "v": z, "t": jnp.zeros((), jnp.int32)}


def _adam(p, g, s, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    t = s["t"] + 1
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, s["m"], g)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, s["v"], g)
    c1, c2 = 1 - b1 ** t, 1 - b2 ** t
    p = jax.tree.map(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), p, m, v)
    return p, {"m": m, "v": v, "t": t}


def lean_sac(stacked: bool):
    """``(init, update)`` of a minimal SAC; ``stacked`` puts both critics in one vmapped MLP."""
    def q_apply(qp, o, a):
        x = jnp.concatenate([o, a], -1)
        if stacked:
            return jax.vmap(_mlp, (0, None))(qp, x)[..., 0]
        return jnp.stack([_mlp(p, x)[..., 0] for p in qp])

    def pi_apply(pp, o, key):
        out = _mlp(pp, o)
        mean, log_std = out[:, :ACT], jnp.clip(out[:, ACT:], -20, 2)
        eps = jax.random.normal(key, mean.shape)
        u = mean + jnp.exp(log_std) * eps
        a = jnp.tanh(u)
        logp = (-0.5 * eps ** 2 - log_std - 0.5 * np.log(2 * np.pi)
                - jnp.log(1 - a ** 2 + 1e-6)).sum(-1)
        return a, logp

    def init(key):
        kp, kq = jax.random.split(key)
        pp = _mlp_init(kp, [OBS, H, H, 2 * ACT])
        qk = jax.random.split(kq, 2)
        qs = [_mlp_init(k, [OBS + ACT, H, H, 1]) for k in qk]
        qp = jax.tree.map(lambda *x: jnp.stack(x), *qs) if stacked else qs
        return {"pi": pp, "q": qp, "qt": qp, "la": jnp.zeros(()), "opi": _adam_init(pp),
                "oq": _adam_init(qp), "ola": _adam_init(jnp.zeros(()))}

    def step(s, xs):
        (o, a, r, o2, d), key = xs
        k1, k2 = jax.random.split(key)
        alpha = jnp.exp(s["la"])
        a2, logp2 = pi_apply(s["pi"], o2, k1)
        tq = q_apply(s["qt"], o2, a2).min(0) - alpha * logp2
        y = jax.lax.stop_gradient(r + 0.99 * (1 - d) * tq)
        gq = jax.grad(lambda qp: ((q_apply(qp, o, a) - y) ** 2).mean(1).sum())(s["q"])
        q, oq = _adam(s["q"], gq, s["oq"])
        qt = jax.tree.map(lambda t, p: 0.995 * t + 0.005 * p, s["qt"], q)

        def pi_loss(pp):
            an, logp = pi_apply(pp, o, k2)
            return (alpha * logp - q_apply(q, o, an).min(0)).mean(), logp
        gpi, logp = jax.grad(pi_loss, has_aux=True)(s["pi"])
        pi, opi = _adam(s["pi"], gpi, s["opi"])
        gla = jax.grad(lambda la: -(jnp.exp(la) * jax.lax.stop_gradient(logp - ACT)).mean())(
            s["la"])
        la, ola = _adam(s["la"], gla, s["ola"])
        return {"pi": pi, "q": q, "qt": qt, "la": la, "opi": opi, "oq": oq, "ola": ola}, None

    def update(s, batch, keys):
        return jax.lax.scan(step, s, (batch, keys))[0]

    return init, update


def _lean_batch(u):
    k = jax.random.split(jax.random.key(1), 3)
    return (jax.random.normal(k[0], (u, B, OBS)), jax.random.uniform(k[1], (u, B, ACT), minval=-1),
            jax.random.normal(k[2], (u, B)), jax.random.normal(k[0], (u, B, OBS)),
            jnp.zeros((u, B)))


def update_section(n: int) -> dict[str, Any]:
    from rlstab_jax.agents import registry
    from rlstab_jax.agents.base import Batch
    from rlstab_jax.config.loader import load_config
    from rlstab_jax.config.split import extract_hparams
    from rlstab_jax.envs import registry as env_registry

    out: dict[str, Any] = {"matmul_gflops": round(matmul(), 1),
                           "matmul_gflops_batched2": round(matmul(batched=2), 1)}
    print("matmul GFLOP/s", out["matmul_gflops"], "batched x2", out["matmul_gflops_batched2"],
          flush=True)
    analytic = 16 * 2 * H ** 3  # hidden-layer FLOPs of one SAC update (see sac_speed.py)

    for stacked in (True, False):
        init, upd = lean_sac(stacked)
        s = jax.jit(init)(jax.random.key(0))
        b1, bn = _lean_batch(1), _lean_batch(n)
        k1, kn = jax.random.split(jax.random.key(3), 1), jax.random.split(jax.random.key(3), n)
        t0 = time.perf_counter()
        fl = _flops(jax.jit(upd).lower(s, b1, k1).compile())
        compile_s = time.perf_counter() - t0
        f = jax.jit(upd)
        jax.block_until_ready(f(s, bn, kn))
        t = _best(lambda f=f, s=s, bn=bn, kn=kn: f(s, bn, kn))
        name = f"lean SAC ({'vmapped' if stacked else 'separate'} critics)"
        out[name] = {"updates_per_s": round(n / t, 1), "xla_gflop": round(fl / 1e9, 3),
                     "gflops": round(fl * n / t / 1e9, 1),
                     "fraction_of_ceiling": round(n / t * analytic / 1e9 / out["matmul_gflops"], 2),
                     "compile_s_one_call": round(compile_s, 2)}
        print(name, out[name], flush=True)

    variants = [
        ("ours SAC preset", "sac/pendulum", []),
        ("ours SAC coupled std, clamp, scalar alpha", "sac/pendulum",
         ["agent.std_head=coupled", "agent.log_std_param=clamp", "agent.alpha_mode=scalar"]),
        ("ours TQC preset", "tqc/pendulum", []),
        ("ours DroQ preset (per env step = 20 critic + 1 actor)", "droq/pendulum", []),
    ]
    for name, preset, ov in variants:
        cfg = load_config(preset, ["env.backend=gymnax", *ov])
        env = env_registry.make_jax(cfg.env.id, cfg.env.kwargs, 0, 0)
        agent = registry.get(cfg.agent_name).make_agent(cfg.agent, env.spec)
        hp = {k: jnp.asarray(v, jnp.float32) for k, v in extract_hparams(cfg.agent).items()}
        s = agent.init(jax.random.key(0), hp)
        u_step = cfg.agent.utd
        u = n if u_step == 1 else u_step * max(1, n // (5 * u_step))

        def batch(u):
            o, a, r, o2, d = _lean_batch(u)
            return Batch(obs=o, action=a, reward=r, next_obs=o2, terminated=d.astype(bool),
                         discount=jnp.full((u, B), 0.99), is_demo=jnp.zeros((u, B)))

        t0 = time.perf_counter()
        c1 = jax.jit(agent.update).lower(s, batch(u_step), jax.random.key(2), hp).compile()
        compile_s = time.perf_counter() - t0
        fl = _flops(c1)
        f = jax.jit(agent.update)
        bu = batch(u)
        jax.block_until_ready(f(s, bu, jax.random.key(3), hp))
        t = _best(lambda f=f, s=s, bu=bu, hp=hp: f(s, bu, jax.random.key(4), hp))
        rate = u / t  # critic updates per second
        # Hidden-layer matmuls per env step: 9 per critic update, 7 per actor update (XLA's
        # cost analysis counts a scan body once, so it is only used for U = 1).
        per_step = (9 * u_step + 7 * u_step // cfg.agent.policy_delay) * 2 * H ** 3
        out[name] = {"critic_updates_per_s": round(rate, 1),
                     "env_steps_per_s_update_only": round(rate / u_step, 2),
                     "xla_gflop_per_call": round(fl / 1e9, 3) if u_step == 1 else None,
                     "gflops_analytic": round(per_step * rate / u_step / 1e9, 1),
                     "fraction_of_ceiling": round(per_step * rate / u_step / 1e9
                                                  / out["matmul_gflops"], 2),
                     "compile_s_one_call": round(compile_s, 2)}
        print(name, out[name], flush=True)
    return out


# ---------------------------------------------------------------------------------------
# gymnasium driver breakdown
# ---------------------------------------------------------------------------------------
def gym_section(preset: str, overrides: list[str], steps: int) -> dict[str, Any]:
    """Wrap the runner's jitted calls and the simulator step with timers, then run chunks.

    Works by instrumenting the attributes ``runner._step`` (one fused call per env step: replay
    add + update + next action) and ``runner.venv.step``; the device->host read of the action
    (where the host waits for the call to finish) lands in "other host work". In the
    synchronous variant the call is waited for right after dispatch.
    """
    from rlstab_jax.config.loader import load_config
    from rlstab_jax.train.session import build_session

    cfg = load_config(preset, ["env.backend=gymnasium", "train.learning_starts=1000",
                               f"train.chunk_steps={steps}", "checkpoint.enabled=false",
                               "log.progress=false", *overrides])
    sess = build_session(cfg)
    runner = sess.runner
    st, hp = sess.init_state(), sess.hparams
    while int(np.asarray(st.env_steps).reshape(-1)[0]) < 1000 + steps:  # compile everything
        st, m = sess.chunk(st, hp)
    jax.block_until_ready(st)
    obs0, step0 = runner._step, runner.venv.step
    t: dict[str, float] = {}
    sync = {"on": False}

    def timed(key, fn, block=None):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            out = fn(*a, **k)
            if block is not None:
                out = block(out)
            t[key] = t.get(key, 0.0) + time.perf_counter() - t0
            return out
        return wrapper

    def obs_block(out):
        if sync["on"]:
            t1 = time.perf_counter()
            jax.block_until_ready(out)
            t["update wait (sync only)"] = t.get("update wait (sync only)", 0.0) + \
                time.perf_counter() - t1
        return out

    runner._step = timed("add + update + act dispatch", obs0, obs_block)
    runner.venv.step = timed("env.step (host)", step0)
    out: dict[str, Any] = {}
    for label, on in (("async (as the runner does)", False),
                      ("synchronous (update time visible)", True)):
        sync["on"] = on
        t.clear()
        t0 = time.perf_counter()
        st, m = sess.chunk(st, hp)
        jax.block_until_ready((st, m))
        total = time.perf_counter() - t0
        if "update wait (sync only)" in t:  # the wrapper's time includes the wait: split it
            t["add + update + act dispatch"] -= t["update wait (sync only)"]
        res = {k: round(v / steps * 1e3, 3) for k, v in t.items()}
        res["other host work"] = round((total - sum(t.values())) / steps * 1e3, 3)
        res["total ms/step"] = round(total / steps * 1e3, 3)
        res["steps/s"] = round(steps / total, 1)
        out[label] = res
    runner._step, runner.venv.step = obs0, step0
    out["state_MB"] = round(sum(x.nbytes for x in jax.tree.leaves(st)) / 2 ** 20, 2)
    out["replay_MB"] = round(sum(x.nbytes for x in jax.tree.leaves(st.replay)) / 2 ** 20, 2)
    out["state_leaves"] = len(jax.tree.leaves(st))
    runner.venv.close()
    return out


# ---------------------------------------------------------------------------------------
# gymnax driver: chunk per env step vs update-only
# ---------------------------------------------------------------------------------------
def gymnax_section(seeds: int, chunk: int) -> dict[str, Any]:
    from rlstab_jax.config.loader import load_config
    from rlstab_jax.train.session import build_session

    cfg = load_config("sac/pendulum", ["env.backend=gymnax", f"train.seeds={seeds}",
                                       "train.learning_starts=1000", f"train.chunk_steps={chunk}",
                                       "checkpoint.enabled=false", "log.progress=false"])
    sess = build_session(cfg)
    st, hp = sess.init_state(), sess.hparams
    t0 = time.perf_counter()
    while int(np.asarray(st.env_steps).reshape(-1)[0]) < 1000:
        st, m = sess.chunk(st, hp)
        jax.block_until_ready(st)
    first = time.perf_counter() - t0
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        st, m = sess.chunk(st, hp)
        jax.block_until_ready((st, m))
        times.append(time.perf_counter() - t0)
    t = min(times)
    # Update alone on replay samples, vmapped over seeds, U=chunk in one scan.
    upd = jax.jit(lambda s: jax.lax.scan(
        lambda c, _: jax.vmap(sess.driver.update)(c, hp), s, None, length=chunk)[0])
    jax.block_until_ready(upd(st))
    tu = _best(lambda: upd(st))
    return {"seeds": seeds, "first_chunks_s (compile + warm-up)": round(first, 2),
            "chunk env steps/s per seed": round(chunk / t, 1),
            "chunk env steps/s aggregate": round(chunk * seeds / t, 1),
            "replay sample + update only, updates/s per seed": round(chunk / tu, 1),
            "collect + add share of a step": round(1 - tu / t, 3)}


def droq_section(reps: int = 2) -> dict[str, Any]:
    """DroQ update (20 critic + 1 actor update per env step) with its parts switched off.

    Every variant is the same compiled scan shape (U = 20, policy delay 20); the differences
    isolate the cost of dropout (random bits for the masks), LayerNorm and the PRNG."""
    from rlstab_jax.agents import registry
    from rlstab_jax.agents.base import Batch
    from rlstab_jax.config.loader import load_config
    from rlstab_jax.config.split import extract_hparams
    from rlstab_jax.envs import registry as env_registry

    out: dict[str, Any] = {"prng_impl": str(jax.config.jax_default_prng_impl)}
    variants = [("DroQ preset (dropout 0.01 + LayerNorm)", []),
                ("no dropout (LayerNorm only)", ["agent.dropout=0.0"]),
                ("no LayerNorm (dropout only)", ["agent.layer_norm=false"]),
                ("neither (plain SAC critics, UTD 20)", ["agent.dropout=0.0",
                                                         "agent.layer_norm=false"])]
    for name, ov in variants:
        cfg = load_config("droq/pendulum", ["env.backend=gymnax", *ov])
        env = env_registry.make_jax(cfg.env.id, cfg.env.kwargs, 0, 0)
        agent = registry.get(cfg.agent_name).make_agent(cfg.agent, env.spec)
        hp = {k: jnp.asarray(v, jnp.float32) for k, v in extract_hparams(cfg.agent).items()}
        st = agent.init(jax.random.key(0), hp)
        o, a, r, o2, d = _lean_batch(20)
        b = Batch(obs=o, action=a, reward=r, next_obs=o2, terminated=d.astype(bool),
                  discount=jnp.full((20, B), 0.99), is_demo=jnp.zeros((20, B)))
        f = jax.jit(agent.update)
        jax.block_until_ready(f(st, b, jax.random.key(1), hp))
        t = _best(lambda f=f, st=st, b=b, hp=hp: f(st, b, jax.random.key(2), hp), reps)
        out[name] = {"ms_per_env_step": round(t * 1e3, 1), "env_steps_per_s": round(1 / t, 2)}
        print(name, out[name], flush=True)
    # Random bits alone: the dropout masks of one env step (20 critic updates: target + online
    # forward, 2 critics x 2 hidden layers x [256, 256]; plus the actor update's forward).
    n_bits = (20 * 2 + 1) * 2 * 2 * B * H
    bits = jax.jit(lambda k: jax.random.bernoulli(k, 0.99, (n_bits,)).sum())
    bits(jax.random.key(0)).block_until_ready()
    t = _best(lambda: bits(jax.random.key(1)), 3)
    out["dropout masks of one env step alone"] = {"n_random": n_bits,
                                                  "ms": round(t * 1e3, 1)}
    print("masks alone", out["dropout masks of one env step alone"], flush=True)
    # The same masks from rlstab_jax.nn.layers.dropout_keep_mask (what the Q-nets now use).
    from rlstab_jax.nn.layers import dropout_keep_mask

    fast = jax.jit(lambda k: dropout_keep_mask(k, 0.01, (n_bits,)).sum())
    fast(jax.random.key(0)).block_until_ready()
    t = _best(lambda: fast(jax.random.key(1)), 3)
    out["dropout masks of one env step, dropout_keep_mask"] = {"n_random": n_bits,
                                                               "ms": round(t * 1e3, 1)}
    print("fast masks alone", out["dropout masks of one env step, dropout_keep_mask"],
          flush=True)
    return out


def _agent(preset: str, overrides: list[str]):
    from rlstab_jax.agents import registry
    from rlstab_jax.config.loader import load_config
    from rlstab_jax.config.split import extract_hparams
    from rlstab_jax.envs import registry as env_registry

    cfg = load_config(preset, ["env.backend=gymnax", *overrides])
    env = env_registry.make_jax(cfg.env.id, cfg.env.kwargs, 0, 0)
    agent = registry.get(cfg.agent_name).make_agent(cfg.agent, env.spec)
    hp = {k: jnp.asarray(v, jnp.float32) for k, v in extract_hparams(cfg.agent).items()}
    return cfg, agent, hp, jax.jit(agent.init)(jax.random.key(0), hp)


def _batch(u: int):
    from rlstab_jax.agents.base import Batch

    o, a, r, o2, d = _lean_batch(u)
    return Batch(obs=o, action=a, reward=r, next_obs=o2, terminated=d.astype(bool),
                 discount=jnp.full((u, B), 0.99), is_demo=jnp.zeros((u, B)))


def calls_section() -> dict[str, Any]:
    """Per-call cost: the same update as one standalone call (U=1, what the gymnasium driver
    launches per env step) vs per update inside a scan of 50; and under ``vmap`` over a seed
    axis of size 1 (what both drivers do with ``train.seeds=1``). Run it once more with
    ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`` to see the thread-pool share."""
    out: dict[str, Any] = {"XLA_FLAGS": os.environ.get("XLA_FLAGS", "")}
    for name, preset, ov in (("SAC", "sac/pendulum", []),
                             ("DroQ preset", "droq/pendulum", []),
                             ("DroQ LayerNorm only", "droq/pendulum", ["agent.dropout=0.0"]),
                             ("DroQ dropout only", "droq/pendulum", ["agent.layer_norm=false"])):
        cfg, agent, hp, st = _agent(preset, ov)
        u = cfg.agent.utd
        b = _batch(u)
        f = jax.jit(agent.update)
        row = {"standalone call ms": round(_best(
            lambda f=f, st=st, b=b, hp=hp: f(st, b, jax.random.key(1), hp), 5) * 1e3, 2)}
        sv, bv, hv = jax.tree.map(lambda x: x[None], (st, b, hp))
        fv = jax.jit(jax.vmap(agent.update))
        kv = jax.random.split(jax.random.key(1), 1)
        row["vmap over 1 seed, call ms"] = round(_best(
            lambda fv=fv, sv=sv, bv=bv, hv=hv, kv=kv: fv(sv, bv, kv, hv), 5) * 1e3, 2)
        if u == 1:
            n = 50
            bn = _batch(n)
            row["per update inside a scan of 50, ms"] = round(_best(
                lambda f=f, st=st, bn=bn, hp=hp: f(st, bn, jax.random.key(2), hp), 3) / n * 1e3, 2)
        out[name] = row
        print(name, row, flush=True)
    return out


def tqc_section(n: int = 50) -> dict[str, Any]:
    """The two TQC-only parts of an update: the selection of the kept pooled target atoms
    (``tqc_target_quantiles``, now ``top_k``; the former full sort is timed next to it) and the
    pairwise quantile Huber loss (forward + backward, 2 critics), per update, inside a scan."""
    from rlstab_jax.stability import critic as C

    x = jax.random.normal(jax.random.key(0), (2, B, 25))
    ar0 = jnp.arange(n, dtype=jnp.float32)

    def full_sort(q):
        return jnp.sort(jnp.transpose(q, (1, 0, 2)).reshape(B, 50), axis=-1)[:, :46]

    s0 = jax.jit(lambda x: jax.lax.scan(
        lambda c, i: (c + full_sort(x + i).sum(), None), 0.0, ar0)[0])
    t_full_sort = _best(lambda: s0(x), 5)
    pred = jax.random.normal(jax.random.key(1), (B, 25))
    tgt = jax.random.normal(jax.random.key(2), (B, 46))
    ar = jnp.arange(n, dtype=jnp.float32)
    s = jax.jit(lambda x: jax.lax.scan(
        lambda c, i: (c + C.tqc_target_quantiles(x + i, 2).sum(), None), 0.0, ar)[0])

    def loss_grad(p, i):
        def loss(q):
            return jax.vmap(C.quantile_huber_loss, (0, None))(q, tgt + i).mean()
        return jax.grad(loss)(jnp.stack([p, p])).sum()

    g = jax.jit(lambda p: jax.lax.scan(lambda c, i: (c + loss_grad(p, i), None), 0.0, ar)[0])
    t_sort = _best(lambda: s(x), 5)
    out = {"tqc_target_quantiles (top_k [256, 50] -> 46) ms": round(t_sort / n * 1e3, 3),
           "former full sort [256, 50] ms": round(t_full_sort / n * 1e3, 3),
           "quantile Huber loss fwd+bwd, 2 critics, ms": round(_best(lambda: g(pred), 5) / n
                                                               * 1e3, 3)}
    print(out, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--section", default="all",
                    choices=("update", "gym", "gymnax", "droq", "calls", "tqc", "all"))
    ap.add_argument("--updates", type=int, default=100)
    ap.add_argument("--gym-steps", type=int, default=300)
    ap.add_argument("--out", default=str(RESULTS / "sac_profile.json"))
    ap.add_argument("--prng", default=None, choices=("threefry2x32", "rbg", "unsafe_rbg"),
                    help="jax_default_prng_impl for our side (an experiment; default: JAX's)")
    args = ap.parse_args()
    if args.prng:
        jax.config.update("jax_default_prng_impl", args.prng)
    res: dict[str, Any] = {"load_start": list(os.getloadavg()), "jax": jax.__version__}
    if args.section in ("update", "all"):
        res["update"] = update_section(args.updates)
    if args.section in ("gym", "all"):
        res["gym SAC"] = gym_section("sac/pendulum", [], args.gym_steps)
        print("gym SAC", json.dumps(res["gym SAC"], indent=1), flush=True)
    if args.section in ("calls", "all"):
        res["calls"] = calls_section()
    if args.section in ("tqc", "all"):
        res["tqc"] = tqc_section()
    if args.section in ("droq", "all"):
        res["droq"] = droq_section()
    if args.section in ("gymnax", "all"):
        for seeds in (1, 16):
            res[f"gymnax SAC x{seeds}"] = gymnax_section(seeds, 500)
            print(f"gymnax x{seeds}", res[f"gymnax SAC x{seeds}"], flush=True)
    res["load_end"] = list(os.getloadavg())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
