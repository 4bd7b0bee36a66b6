"""How do a CartPole run's greedy and sampled episodes end? Pole angle or cart off the track.

Restores a checkpoint of a gymnax CartPole-v1 run (any agent, e.g. ``dreamer/cartpole``, all
vmapped seeds), plays ``--episodes`` episodes per seed with the deterministic and with the
sampled policy, and reports per seed: mean return, how many episodes ended before 500 and, of
those, how many ended with the cart beyond the track edge (``|x| > 2.0`` just before the end;
the limit is 2.4) or the pole beyond ``--angle`` rad (limit 0.21), plus the mean ``|x|`` over
the episodes.

    python bench/cartpole_failure_modes.py RUN_DIR [--step 30000] [--episodes 20]
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


def play(agent, env, episodes: int, max_steps: int = 500):
    """``(agent_state, key, hparams, deterministic) -> (returns [E], last [E, 2], |x| [E])``."""

    def run(astate, key, hp, det):
        k_reset, k_loop = jax.random.split(key)
        es, obs = jax.vmap(env.reset)(jax.random.split(k_reset, episodes))

        def body(c, _):
            es, obs, ret, done, key, rc, first, last, xsum, n = c
            key, ka, ke = jax.random.split(key, 3)
            a, rc, _ = act_step(agent, astate, obs, ka, hp, det, rc, first)
            es2, obs2, r, term, trunc, _ = jax.vmap(env.step)(
                jax.random.split(ke, episodes), es, a)
            live = ~done
            ret = ret + jnp.where(live, r, 0.0)
            ended = live & (term | trunc)
            last = jnp.where(ended[:, None], jnp.stack([es.x, es.theta], -1), last)
            xsum = xsum + jnp.where(live, jnp.abs(es.x), 0.0)
            n = n + live
            return (es2, obs2, ret, done | term | trunc, key, rc, term | trunc, last, xsum,
                    n), None

        z = jnp.zeros(episodes)
        init = (es, obs, z, jnp.zeros(episodes, bool), k_loop, init_carry(agent, episodes),
                jnp.ones(episodes, bool), jnp.zeros((episodes, 2)), z, z)
        (_, _, ret, _, _, _, _, last, xsum, n), _ = jax.lax.scan(body, init, None,
                                                                 length=max_steps)
        return ret, last, xsum / jnp.maximum(n, 1.0)

    return jax.jit(jax.vmap(run, in_axes=(0, 0, 0, None)), static_argnums=3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run")
    ap.add_argument("--step", type=int, default=None, help="checkpoint step (default newest)")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--angle", type=float, default=0.18)
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
    for det in (True, False):
        ret, last, xmean = (np.asarray(x) for x in fn(state.agent, keys, sess.hparams, det))
        for s in range(sess.n_seeds):
            failed = ret[s] < 500
            cart = int((np.abs(last[s, failed, 0]) > 2.0).sum())
            pole = int((np.abs(last[s, failed, 1]) > a.angle).sum())
            print(f"| {'greedy' if det else 'sampled'} | {s} | {ret[s].mean():.1f} | "
                  f"{int(failed.sum())} | {cart} | {pole} | {xmean[s].mean():.2f} |")


if __name__ == "__main__":
    main()
