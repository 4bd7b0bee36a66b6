"""How do a CartPole run's greedy and sampled episodes end? Pole angle or cart off the track.

Restores a checkpoint of a gymnax CartPole-v1 run (any agent, e.g. ``dreamer/cartpole``, all
vmapped seeds), plays ``--episodes`` episodes per seed with the deterministic and with the
sampled policy, and reports per seed: mean return, how many episodes ended before 500 and, of
those, how many ended with the cart beyond the track edge (``|x| > 2.0`` just before the end;
the limit is 2.4) or the pole beyond ``--angle`` rad (limit 0.21), plus the mean ``|x|`` over
the episodes.

``--values`` (agents whose ``act`` reports the critic's ``value``, e.g. Dreamer) adds, per seed,
the greedy policy's critic value by cart position ``|x|`` beside the discounted return each state
actually got (``(1 - gamma^(T - t)) / (1 - gamma)`` for an episode that ended at ``T``,
``1 / (1 - gamma)`` for one still alive at 500): does the critic see the drift coming?

``--imagine K`` (Dreamer) rolls the world model's prior open-loop for ``K`` steps from every 25th
step of the greedy episodes, with the greedy actor choosing the actions, and compares the decoded
cart position with the real one ``K`` steps later: does imagination drift the cart as the real
episode does, or does the model keep it centred (dynamics the actor can exploit)?

    python bench/cartpole_failure_modes.py RUN_DIR [--step 30000] [--episodes 20] [--values]
        [--imagine 50]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.agents.base import act_step
from rlstab_jax.config.loader import load_config
from rlstab_jax.envs import registry as env_registry
from rlstab_jax.train.checkpoint import CheckpointStore
from rlstab_jax.train.evaluate import init_carry
from rlstab_jax.train.session import build_session


X_EDGES = (0.0, 0.5, 1.0, 1.5, 2.0, 2.4)


def play(agent, env, episodes: int, max_steps: int = 500):
    """``(agent_state, key, hparams, deterministic) -> (returns [E], last [E, 2], |x| [E], trace)``.

    ``trace``: per step ``x [T, E]``, ``live [T, E]`` (the state was part of the episode),
    ``ended [T, E]`` (the episode terminated on this step, not truncated), and where the agent
    reports them, the critic's ``value [T, E]`` (zeros otherwise) and ``cont_next [T, E]``, the
    world model's continue probability for the next step (ones otherwise).
    """

    def run(astate, key, hp, det):
        k_reset, k_loop = jax.random.split(key)
        es, obs = jax.vmap(env.reset)(jax.random.split(k_reset, episodes))

        def body(c, _):
            es, obs, ret, done, key, rc, first, last, xsum, n = c
            key, ka, ke = jax.random.split(key, 3)
            a, rc, info = act_step(agent, astate, obs, ka, hp, det, rc, first)
            es2, obs2, r, term, trunc, _ = jax.vmap(env.step)(
                jax.random.split(ke, episodes), es, a)
            live = ~done
            trace = {"x": es.x, "live": live, "ended": live & term & ~trunc, "carry": rc,
                     "value": info.get("value", jnp.zeros(episodes)),
                     "cont_next": info.get("cont_next", jnp.ones(episodes))}
            ret = ret + jnp.where(live, r, 0.0)
            ended = live & (term | trunc)
            last = jnp.where(ended[:, None], jnp.stack([es.x, es.theta], -1), last)
            xsum = xsum + jnp.where(live, jnp.abs(es.x), 0.0)
            n = n + live
            return (es2, obs2, ret, done | term | trunc, key, rc, term | trunc, last, xsum,
                    n), trace

        z = jnp.zeros(episodes)
        init = (es, obs, z, jnp.zeros(episodes, bool), k_loop, init_carry(agent, episodes),
                jnp.ones(episodes, bool), jnp.zeros((episodes, 2)), z, z)
        (_, _, ret, _, _, _, _, last, xsum, n), trace = jax.lax.scan(body, init, None,
                                                                     length=max_steps)
        return ret, last, xsum / jnp.maximum(n, 1.0), trace

    return jax.jit(jax.vmap(run, in_axes=(0, 0, 0, None)), static_argnums=3)


def realised_returns(live: np.ndarray, ended: np.ndarray, gamma: float) -> np.ndarray:
    """Discounted return each state got, ``[T, E]``: ``(1 - gamma^(T_end - t)) / (1 - gamma)``
    for an episode that terminated at ``T_end``, ``1 / (1 - gamma)`` for one that did not."""
    steps = live.shape[0]
    t = np.arange(steps)[:, None]
    term = ended.any(0)
    t_end = np.where(term, ended.argmax(0) + 1, np.inf)[None, :]
    return (1.0 - gamma ** (t_end - t)) / (1.0 - gamma)


def value_table(trace: dict, gamma: float, seeds: int) -> list[str]:
    """Markdown rows: per seed and ``|x|`` bucket, states, mean critic value, mean realised
    return, and the mean ``cont_next`` (on every step; on the steps that terminated)."""
    rows = ["| seed | abs(x) | states | critic value | realised return | value - realised "
            "| cont_next | cont_next where it ended |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in range(seeds):
        live, x = trace["live"][s], np.abs(trace["x"][s])
        g = realised_returns(live, trace["ended"][s], gamma)
        for lo, hi in zip(X_EDGES[:-1], X_EDGES[1:]):
            m = live & (x >= lo) & (x < hi)
            if m.sum() == 0:
                continue
            v, r = trace["value"][s][m].mean(), g[m].mean()
            c = trace["cont_next"][s]
            end = m & trace["ended"][s]
            c_end = f"{c[end].mean():.3f} ({int(end.sum())})" if end.any() else "-"
            rows.append(f"| {s} | {lo:.1f}-{hi:.1f} | {int(m.sum())} | {v:.1f} | {r:.1f} | "
                        f"{v - r:+.1f} | {c[m].mean():.3f} | {c_end} |")
    return rows


def open_loop(cfg, spec, horizon: int):
    """``(agent_state, h [seeds, N, D], z [seeds, N, Z], hparams) -> x [seeds, horizon, N]``:
    the cart position the world model decodes after each of ``horizon`` prior steps (mode
    latents), the greedy actor acting on the imagined latents. Greedy = the weight-averaged
    world model and actor with ``agent.eval_ema``, the online ones without."""
    from rlstab_jax.agents.dreamer.agent import acting_params, build_networks
    from rlstab_jax.agents.dreamer.behavior import sample_action
    from rlstab_jax.agents.dreamer.networks import WorldModel
    from rlstab_jax.agents.dreamer.world_model import encode_action, mode_latent
    from rlstab_jax.stability.symlog import symexp

    wm, actor, _, _ = build_networks(cfg.agent, spec)
    discrete = spec.action_kind == "discrete"

    def run(astate, h, z, hp):
        p, actor_params = acting_params(astate, True)

        def step(c, _):
            h, z = c
            out = actor.apply(actor_params, jnp.concatenate([h, z], -1))
            a = sample_action(jax.random.key(0), out, hp, discrete, True)
            g = wm.apply(p, h, z, encode_action(a, discrete, spec.action_dim),
                         method=WorldModel.step)
            z2 = mode_latent(wm.apply(p, g, method=WorldModel.prior))
            x = symexp(wm.apply(p, jnp.concatenate([g, z2], -1), method=WorldModel.decode)[..., 0])
            return (g, z2), x

        return jax.lax.scan(step, (h, z), None, length=horizon)[1]

    return jax.jit(jax.vmap(run))


def imagine_table(trace: dict, fn, astate, hparams, horizon: int, seeds: int) -> list[str]:
    """Markdown rows per seed: from every 25th step whose episode is still alive ``horizon``
    steps later, the real and the imagined move of the cart towards the nearer edge
    (``sign(x_t) * (x_{t+K} - x_t)``) and the mean ``|x_imagined - x_real|`` at ``t + K``."""
    live, x = trace["live"], trace["x"]  # [S, T, E]
    steps = x.shape[1]
    starts = list(range(0, steps - horizon, 25))
    rows = [f"| seed | starts | real move to the edge in {horizon} steps | imagined move | "
            f"mean abs(imagined x - real x) |", "| --- | --- | --- | --- | --- |"]
    h, z = trace["carry"].h, trace["carry"].z  # [S, T, E, D]
    hs = np.stack([h[:, t] for t in starts], 1)  # [S, n, E, D]
    zs = np.stack([z[:, t] for t in starts], 1)
    s_, n, e = hs.shape[:3]
    xi = np.asarray(fn(astate, jnp.asarray(hs.reshape(s_, n * e, -1)),
                       jnp.asarray(zs.reshape(s_, n * e, -1)), hparams))[:, -1].reshape(s_, n, e)
    for s in range(seeds):
        x0 = np.stack([x[s, t] for t in starts])
        xr = np.stack([x[s, t + horizon] for t in starts])
        ok = np.stack([live[s, t + horizon] for t in starts])
        if not ok.any():
            rows.append(f"| {s} | 0 | - | - | - |")
            continue
        sign = np.sign(x0)
        real, imag = (sign * (xr - x0))[ok], (sign * (xi[s] - x0))[ok]
        rows.append(f"| {s} | {int(ok.sum())} | {real.mean():+.3f} | {imag.mean():+.3f} | "
                    f"{np.abs(xi[s] - xr)[ok].mean():.3f} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run")
    ap.add_argument("--step", type=int, default=None, help="checkpoint step (default newest)")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--angle", type=float, default=0.18)
    ap.add_argument("--imagine", type=int, default=0, metavar="K",
                    help="open-loop imagination K steps vs the real cart (Dreamer)")
    ap.add_argument("--values", action="store_true",
                    help="critic value vs realised return by cart position (greedy policy)")
    a = ap.parse_args()
    run_dir = Path(a.run)
    cfg = load_config(str(run_dir / "config.yaml"), [])
    if cfg.env.id != "CartPole-v1":
        raise SystemExit(f"{run_dir} trains on {cfg.env.id}, not CartPole-v1")
    sess = build_session(cfg)
    with CheckpointStore(run_dir / "checkpoints", keep=2, fingerprint=sess.fingerprint()) as st:
        state, meta = st.restore(sess.abstract_state(), a.step)
    env = env_registry.make_jax(cfg.env.id, cfg.env.kwargs, cfg.env.frame_stack, cfg.env.history)
    fn = play(sess.agent, env, a.episodes)
    keys = jax.random.split(jax.random.PRNGKey(123), sess.n_seeds)
    print(f"{run_dir} at step {meta.get('env_steps')}, {a.episodes} episodes per seed")
    print("| policy | seed | mean return | ended < 500 | cart off track | pole fell "
          "| mean abs(x) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    greedy_trace = None
    for det in (True, False):
        ret, last, xmean, trace = fn(state.agent, keys, sess.hparams, det)
        ret, last, xmean = np.asarray(ret), np.asarray(last), np.asarray(xmean)
        if det:
            greedy_trace = jax.tree.map(np.asarray, trace)
        for s in range(sess.n_seeds):
            failed = ret[s] < 500
            cart = int((np.abs(last[s, failed, 0]) > 2.0).sum())
            pole = int((np.abs(last[s, failed, 1]) > a.angle).sum())
            print(f"| {'greedy' if det else 'sampled'} | {s} | {ret[s].mean():.1f} | "
                  f"{int(failed.sum())} | {cart} | {pole} | {xmean[s].mean():.2f} |")
    if a.values:
        gamma = getattr(cfg.agent, "gamma", None)
        if gamma is None or not np.any(greedy_trace["value"]):
            raise SystemExit(f"{type(cfg.agent).__name__} reports no critic value from act "
                             "(--values)")
        print(f"\nGreedy policy, critic value by cart position (gamma {gamma}):")
        print("\n".join(value_table(greedy_trace, float(gamma), sess.n_seeds)))
    if a.imagine:
        if type(cfg.agent).__name__ != "DreamerConfig":
            raise SystemExit(f"--imagine needs a dreamer run, not {type(cfg.agent).__name__}")
        fn = open_loop(cfg, sess.spec, a.imagine)
        print(f"\nGreedy episodes, world model open-loop for {a.imagine} steps:")
        print("\n".join(imagine_table(greedy_trace, fn, state.agent, sess.hparams, a.imagine,
                                       sess.n_seeds)))


if __name__ == "__main__":
    main()
