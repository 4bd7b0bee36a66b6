"""The CPU floor of PPO at rejax's CartPole settings (issue 17's ">= 1.5x rejax" target).

Question this answers: how fast can *any* JAX PPO run rejax's CartPole configuration on this
CPU? If a minimal PPO with nothing but the algorithm (no telemetry, no guards, no truncation
bootstrap, no masks, no config plumbing) is not 1.5x rejax, the target is below the machine's
floor for that algorithm at these shapes, and the library cannot reach it by trimming extras.

Settings (rejax ``configs/gymnax/cartpole.yaml``, as ``bench/ppo_speed.py``): gymnax
CartPole-v1, 5 envs x 100 steps, 5 epochs x 5 minibatches of 100 rows, lr 7.5e-4, Adam
eps 1e-5, global-norm clip 0.5, gamma 0.99, lambda 0.95, clip 0.2 (policy and value), entropy
0.01, value coef 0.5, advantage normalisation per minibatch, tanh 64x64 actor and critic.
The whole run is one ``jit`` (vmapped over seeds), timed after ``lower().compile()``, and
ends with a greedy evaluation of 128 episodes inside the timed call, as rejax's does.

Variants of the minimal PPO (same algorithm and random streams; they differ in layout only):

* ``pytree``: actor and critic as separate parameter pytrees; optax over the pytree.
* ``pytree_eclip``: the same with rejax's element-wise gradient clipping (``optax.clip``)
  instead of global-norm clipping.
* ``flat``: the same, with the optimiser on one raveled vector (``ravel_pytree``).
* ``stacked``: actor and critic layers stacked on a leading axis of 2, so each layer of both
  networks is one batched matmul (critic head padded to 2 outputs, the unused column's
  gradient is zero), optimiser on one raveled vector.

Plus two parts of the ``flat`` variant alone: the rollout+GAE without updates, and the
4,000 minibatch updates on a fixed batch without the environment.

    python bench/ppo_floor.py --steps 100000 --seeds 1 16 --repeats 5
    python bench/ppo_floor.py --steps 100000 --seeds 1 --with-ours --with-rejax

Rows go to ``results/ppo_floor.json``. Never asserts timings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import gymnax
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from rlstab_jax.nn.init import orthogonal

HERE = Path(__file__).resolve().parent

N_ENVS, N_STEPS, EPOCHS, MINIBATCHES = 5, 100, 5, 5
LR, CLIP, ENT, VF, MAX_GRAD = 7.5e-4, 0.2, 0.01, 0.5, 0.5
GAMMA, LAM, HIDDEN = 0.99, 0.95, 64
EVAL_EPISODES = 128  # rejax's end-of-run evaluation, inside the timed call on both sides


# ---------------------------------------------------------------------------- networks

def _ortho(key, shape, gain):
    # The library's vmap-safe wrapper of jax.nn.initializers.orthogonal (same values): a
    # vmapped batched QR deadlocks XLA:CPU's 2-thread pool (rlstab_jax/nn/init.py).
    return orthogonal(gain)(key, shape, jnp.float32)


def init_separate(key: jax.Array, obs_dim: int, n_act: int) -> dict:
    """Actor and critic as separate lists of (W, b)."""
    ks = jax.random.split(key, 6)
    sizes_a = [(obs_dim, HIDDEN, 2 ** 0.5), (HIDDEN, HIDDEN, 2 ** 0.5), (HIDDEN, n_act, 0.01)]
    sizes_c = [(obs_dim, HIDDEN, 2 ** 0.5), (HIDDEN, HIDDEN, 2 ** 0.5), (HIDDEN, 1, 1.0)]
    actor = [(_ortho(k, (i, o), g), jnp.zeros(o)) for k, (i, o, g) in zip(ks[:3], sizes_a)]
    critic = [(_ortho(k, (i, o), g), jnp.zeros(o)) for k, (i, o, g) in zip(ks[3:], sizes_c)]
    return {"actor": actor, "critic": critic}


def _mlp(layers, x):
    for w, b in layers[:-1]:
        x = jnp.tanh(x @ w + b)
    w, b = layers[-1]
    return x @ w + b


def apply_separate(params: dict, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    return _mlp(params["actor"], obs), _mlp(params["critic"], obs)[..., 0]


def init_stacked(key: jax.Array, obs_dim: int, n_act: int) -> dict:
    """The same two networks with each layer stacked on a leading axis (0 actor, 1 critic)."""
    sep = init_separate(key, obs_dim, n_act)
    out = []

    def pad(a, width):
        return jnp.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, width - a.shape[-1])])

    for (wa, ba), (wc, bc) in zip(sep["actor"], sep["critic"]):
        w = max(wa.shape[1], wc.shape[1])
        out.append((jnp.stack([pad(wa, w), pad(wc, w)]), jnp.stack([pad(ba, w), pad(bc, w)])))
    return {"layers": out}


def apply_stacked(params: dict, obs: jax.Array, n_act: int) -> tuple[jax.Array, jax.Array]:
    """``obs [B, D]`` -> (logits ``[B, n_act]``, value ``[B]``): one batched matmul per layer."""
    (w1, b1), *mid, (wo, bo) = params["layers"]
    x = jnp.tanh(jnp.einsum("bi,nio->nbo", obs, w1) + b1[:, None])
    for w, b in mid:
        x = jnp.tanh(jnp.einsum("nbi,nio->nbo", x, w) + b[:, None])
    out = jnp.einsum("nbi,nio->nbo", x, wo) + bo[:, None]
    return out[0][:, :n_act], out[1][:, 0]


# ---------------------------------------------------------------------------- PPO

def make_train(variant: str, total_steps: int) -> Callable[[jax.Array], Any]:
    """``train(key) -> final mean episode return of the last rollout`` for one variant."""
    env, env_params = gymnax.make("CartPole-v1")
    obs_dim = env.observation_space(env_params).shape[0]
    n_act = env.action_space(env_params).n
    n_iters = total_steps // (N_ENVS * N_STEPS)
    rows = N_ENVS * N_STEPS
    mb = rows // MINIBATCHES
    # Global-norm clipping is the algorithm of this library (issue 17). rejax 0.1.3's
    # ``max_grad_norm`` is ``optax.clip``: element-wise clipping of each gradient entry, no
    # global reduction; ``pytree_eclip`` measures what that difference costs.
    clip = (optax.clip(MAX_GRAD) if variant == "pytree_eclip"
            else optax.clip_by_global_norm(MAX_GRAD))
    tx = optax.chain(clip, optax.adam(LR, eps=1e-5))

    if variant in ("pytree", "pytree_eclip"):
        init_fn, flat = init_separate, False
        apply_fn = apply_separate
    elif variant in ("flat", "rollout_only", "update_only"):
        init_fn, flat = init_separate, True
        apply_fn = apply_separate
    elif variant == "stacked":
        init_fn, flat = init_stacked, True
        apply_fn = lambda p, x: apply_stacked(p, x, n_act)  # noqa: E731
    else:
        raise ValueError(f"unknown variant {variant!r}")

    def loss_fn(params, batch):
        obs, act, logp_old, v_old, adv, ret = batch
        logits, value = apply_fn(params, obs)
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, act[:, None], axis=-1)[:, 0]
        entropy = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1).mean()
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        ratio = jnp.exp(logp - logp_old)
        pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - CLIP, 1 + CLIP) * adv).mean()
        v_clip = v_old + jnp.clip(value - v_old, -CLIP, CLIP)
        vl = 0.5 * jnp.maximum(jnp.square(value - ret), jnp.square(v_clip - ret)).mean()
        return pg + VF * vl - ENT * entropy

    def train(key):
        k_init, k_env, key = jax.random.split(key, 3)
        params = init_fn(k_init, obs_dim, n_act)
        if flat:
            vec, unravel = ravel_pytree(params)
            opt_state = tx.init(vec)
            grad_fn = jax.grad(lambda v, b: loss_fn(unravel(v), b))
            to_net = unravel
            learn = vec
        else:
            opt_state = tx.init(params)
            grad_fn = jax.grad(loss_fn)
            to_net = lambda p: p  # noqa: E731
            learn = params
        obs, env_state = jax.vmap(env.reset, (0, None))(jax.random.split(k_env, N_ENVS),
                                                         env_params)

        def env_step(carry, _):
            learn, obs, env_state, ep_ret, last_ret, key = carry
            key, k_act, k_step = jax.random.split(key, 3)
            logits, value = apply_fn(to_net(learn), obs)
            action = jax.random.categorical(k_act, logits)
            logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], -1)[:, 0]
            obs2, env_state, reward, term, trunc, _ = jax.vmap(
                env.step, (0, 0, 0, None))(jax.random.split(k_step, N_ENVS), env_state,
                                           action, env_params)
            done = jnp.logical_or(term, trunc)
            ep_ret = ep_ret + reward
            last_ret = jnp.where(done, ep_ret, last_ret)
            ep_ret = jnp.where(done, 0.0, ep_ret)
            tr = (obs, action, logp, value, reward, done)
            return (learn, obs2, env_state, ep_ret, last_ret, key), tr

        def gae(traj, last_value):
            _, _, _, value, reward, done = traj

            def back(carry, x):
                adv_next, v_next = carry
                v, r, d = x
                nonterm = 1.0 - d.astype(jnp.float32)
                delta = r + GAMMA * v_next * nonterm - v
                adv = delta + GAMMA * LAM * nonterm * adv_next
                return (adv, v), adv

            _, adv = jax.lax.scan(back, (jnp.zeros_like(last_value), last_value),
                                  (value, reward, done), reverse=True)
            return adv, adv + value

        def sgd(learn, opt_state, batch, key):
            def epoch(carry, k):
                learn, opt_state = carry
                perm = jax.random.permutation(k, rows)
                shuf = jax.tree.map(lambda a: a[perm].reshape((MINIBATCHES, mb) + a.shape[1:]),
                                    batch)

                def minibatch(carry, b):
                    learn, opt_state = carry
                    g = grad_fn(learn, b)
                    upd, opt_state = tx.update(g, opt_state, learn)
                    return (optax.apply_updates(learn, upd), opt_state), None

                return jax.lax.scan(minibatch, (learn, opt_state), shuf)[0], None

            return jax.lax.scan(epoch, (learn, opt_state), jax.random.split(key, EPOCHS))[0]

        def iteration(carry, _):
            learn, opt_state, obs, env_state, ep_ret, last_ret, key = carry
            key, k_sgd = jax.random.split(key)
            (learn, obs, env_state, ep_ret, last_ret, key), traj = jax.lax.scan(
                env_step, (learn, obs, env_state, ep_ret, last_ret, key), None, N_STEPS)
            if variant != "rollout_only":
                _, last_value = apply_fn(to_net(learn), obs)
                adv, ret = gae(traj, last_value)
                o, a, lp, v, _, _ = traj
                batch = jax.tree.map(lambda x: x.reshape((rows,) + x.shape[2:]),
                                     (o, a, lp, v, adv, ret))
                learn, opt_state = sgd(learn, opt_state, batch, k_sgd)
            return (learn, opt_state, obs, env_state, ep_ret, last_ret, key), None

        zeros = jnp.zeros(N_ENVS)
        if variant == "update_only":  # the same number of minibatch steps on one fixed batch
            k_b, key = jax.random.split(key)
            batch = (jax.random.normal(k_b, (rows, obs_dim)),
                     jax.random.randint(k_b, (rows,), 0, n_act),
                     jnp.full(rows, -jnp.log(float(n_act))), jnp.zeros(rows),
                     jax.random.normal(k_b, (rows,)), jnp.ones(rows))

            def only(carry, k):
                learn, opt_state = carry
                return sgd(learn, opt_state, batch, k), None

            (learn, _), _ = jax.lax.scan(only, (learn, opt_state), jax.random.split(key, n_iters))
            return jnp.sum(ravel_pytree(learn)[0])
        carry = (learn, opt_state, obs, env_state, zeros, zeros, key)
        carry, _ = jax.lax.scan(iteration, carry, None, n_iters)
        if variant == "rollout_only" or not EVAL_EPISODES:
            return carry[5].mean()
        return evaluate(to_net(carry[0]), carry[-1])

    def evaluate(net_params, key):
        """Greedy return of ``EVAL_EPISODES`` episodes run side by side to their end (rejax
        evaluates 128 episodes inside its timed call; this matches that load)."""
        k_reset, key = jax.random.split(key)
        obs, st = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, EVAL_EPISODES),
                                                 env_params)
        max_len = env_params.max_steps_in_episode

        def step(carry, k):
            obs, st, ret, alive = carry
            logits, _ = apply_fn(net_params, obs)
            obs, st, r, term, trunc, _ = jax.vmap(env.step, (0, 0, 0, None))(
                jax.random.split(k, EVAL_EPISODES), st, jnp.argmax(logits, -1), env_params)
            ret = ret + r * alive
            alive = alive * (1.0 - jnp.logical_or(term, trunc).astype(jnp.float32))
            return (obs, st, ret, alive), None

        z = jnp.zeros(EVAL_EPISODES)
        (_, _, ret, _), _ = jax.lax.scan(step, (obs, st, z, z + 1.0),
                                         jax.random.split(key, max_len))
        return ret.mean()

    return train


def time_variant(variant: str, steps: int, seeds: int, repeats: int) -> dict:
    train = make_train(variant, steps)
    keys = jax.random.split(jax.random.key(0), seeds)
    fn = jax.jit(jax.vmap(train)) if seeds > 1 else jax.jit(train)
    arg = keys if seeds > 1 else keys[0]
    t0 = time.perf_counter()
    compiled = fn.lower(arg).compile()
    t_compile = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(arg))
        runs.append(time.perf_counter() - t0)
    t = statistics.median(runs)
    done = steps // (N_ENVS * N_STEPS) * N_ENVS * N_STEPS
    return {"name": f"minimal ppo ({variant})", "seeds": seeds, "steps": done,
            "compile_s": t_compile, "run_s": t, "env_steps_per_s": done * seeds / t,
            "final": float(jnp.mean(out)), "repeats": repeats, "run_s_all": runs}


def flops_per_seed(steps: int) -> dict:
    """Dense-layer FLOPs of one seed's run (2 per multiply-add; backward = 2x forward)."""
    def fwd(rows: int, out: int) -> int:  # one tanh 64x64 MLP on CartPole's 4-dim obs
        return 2 * rows * (4 * HIDDEN + HIDDEN * HIDDEN + HIDDEN * out)
    both = fwd(1, 2) + fwd(1, 1)  # actor + critic, per row
    iters = steps // (N_ENVS * N_STEPS)
    mb_rows = N_ENVS * N_STEPS // MINIBATCHES
    update = iters * EPOCHS * MINIBATCHES * 3 * both * mb_rows
    rollout = iters * N_ENVS * N_STEPS * both + iters * N_ENVS * both
    evaluation = EVAL_EPISODES * 500 * fwd(1, 2)  # upper bound: every episode runs 500 steps
    return {"update": update, "rollout": rollout, "eval": evaluation,
            "total": update + rollout + evaluation}


def matmul_ceiling(seeds: int, rows: int = 100, chain: int = 8, iters: int = 2000,
                   repeats: int = 3) -> float:
    """GFLOP/s of a chain of ``tanh([rows, 64] @ [64, 64])`` layers (one chain per seed)
    inside a ``fori_loop``: the rate the minibatch step's own shapes can reach on this CPU
    (matmul FLOPs only; the tanh is counted as free, so this is a generous ceiling)."""
    key = jax.random.key(1)
    ws = jax.random.orthogonal(key, HIDDEN, (seeds, chain))  # norm-preserving: no overflow
    x0 = jax.random.normal(key, (seeds, rows, HIDDEN))

    @jax.jit
    def run(x, ws):
        def body(_, x):
            for c in range(chain):
                # tanh keeps XLA from reassociating the chain into one matmul, and is the
                # MLP's own activation
                x = jnp.tanh(jnp.einsum("sri,sio->sro", x, ws[:, c]))
            return x
        return jax.lax.fori_loop(0, iters, body, x)

    jax.block_until_ready(run(x0, ws))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(run(x0, ws))
        times.append(time.perf_counter() - t0)
    return 2 * seeds * rows * HIDDEN * HIDDEN * chain * iters / statistics.median(times) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--variants", nargs="+",
                    default=["pytree", "pytree_eclip", "flat", "stacked", "rollout_only",
                             "update_only"])
    ap.add_argument("--with-ours", action="store_true", help="also time ppo/cartpole (ours)")
    ap.add_argument("--with-rejax", action="store_true", help="also time rejax (its venv)")
    ap.add_argument("--out", default=str(HERE / "results" / "ppo_floor.json"))
    a = ap.parse_args()
    sys.path.insert(0, str(HERE))
    rows = []
    for seeds in a.seeds:
        if a.with_rejax:
            from ppo_speed import time_rejax
            rows.append(time_rejax(a.steps, seeds, a.repeats))
            print(json.dumps(rows[-1]), flush=True)
        if a.with_ours:
            from ppo_speed import REJAX_SETTINGS, time_ours
            # run_s includes one 128-episode evaluation, as rejax's and the minimal PPO's do
            rows.append(time_ours("ppo/cartpole", a.steps, seeds, REJAX_SETTINGS, a.repeats))
            print(json.dumps(rows[-1]), flush=True)
        for v in a.variants:
            rows.append(time_variant(v, a.steps, seeds, a.repeats))
            print(json.dumps(rows[-1]), flush=True)
    ceilings = {str(n): matmul_ceiling(n) for n in a.seeds}
    fl = flops_per_seed(a.steps)
    for r in rows:
        if "run_s" in r and r.get("steps"):
            part = ("rollout" if "rollout_only" in r["name"] else
                    "update" if "update_only" in r["name"] else "total")
            r["gflop_per_s"] = flops_per_seed(r["steps"])[part] * r["seeds"] / r["run_s"] / 1e9
            r["of_ceiling"] = r["gflop_per_s"] / ceilings[str(r["seeds"])]
    meta = {"jax": jax.__version__, "devices": str(jax.devices()), "flops_per_seed": fl,
            "matmul_ceiling_gflops": ceilings,
            "time": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    Path(a.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    print(f"FLOPs per seed: {fl}; tanh([100,64]@[64,64]) ceiling GFLOP/s by seeds: {ceilings}")
    print("| seeds | what | run s | env steps/s | GFLOP/s | of ceiling | compile s |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if "run_s" in r:
            print(f"| {r['seeds']} | {r['name']} | {r['run_s']:.3f} | {r['env_steps_per_s']:,.0f}"
                  f" | {r.get('gflop_per_s', float('nan')):.1f}"
                  f" | {r.get('of_ceiling', float('nan')):.2f} | {r['compile_s']:.1f} |")


if __name__ == "__main__":
    main()
