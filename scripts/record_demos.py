"""Record demonstration transitions from a policy into the demo ``.npz`` format.

Field report 003 §9 mixes human runs (tagged ``is_demo``) into replay; this script produces such
files from any policy for a pure-JAX env, in the schema ``rlstab_jax.replay.demos`` validates:

    python scripts/record_demos.py --env Pendulum-v1 --policy random --steps 2000 --out d.npz
    python scripts/record_demos.py --env Pendulum-v1 --policy mypkg.experts:swing_up ...
    python scripts/record_demos.py --env Pendulum-v1 --checkpoint runs/sac/ckpt ...

A policy is a callable ``policy(obs [*obs_shape], key) -> action [act_dim]`` in ``[-1, 1]``
(the env adapter rescales to the env's Box). ``--checkpoint`` goes through
``load_checkpoint_policy``, the hook that connects to the training checkpoints.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.envs.spec import EnvSpec
from rlstab_jax.replay.demos import load_demos, save_demos

Policy = Callable[[np.ndarray, jax.Array], Any]


def random_policy(spec: EnvSpec) -> Policy:
    """Uniform actions in ``[-1, 1]^D``."""
    def policy(obs: np.ndarray, key: jax.Array) -> jax.Array:
        del obs
        return jax.random.uniform(key, (spec.action_dim,), minval=-1.0, maxval=1.0)
    return policy


def import_policy(target: str) -> Policy:
    """A scripted policy given as ``"package.module:function"``.

    Raises:
      ConfigError: if the target cannot be imported or is not callable.
    """
    module, _, name = target.partition(":")
    if not module or not name:
        raise ConfigError(f"--policy {target!r}: expected 'random' or 'package.module:function'")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"--policy {target!r}: cannot import ({e})") from None
    if not callable(fn):
        raise ConfigError(f"--policy {target!r} is not callable")
    return fn


def load_checkpoint_policy(path: str, spec: EnvSpec, deterministic: bool = True) -> Policy:
    """A policy from a training run directory (best checkpoint, else latest; seed 0)."""
    from rlstab_jax.train.policy_io import load_policy

    batched = load_policy(path, spec, deterministic)
    return lambda obs, key: batched(jax.numpy.asarray(obs)[None], key)[0]


def record(env: Any, policy: Policy, n_steps: int, key: jax.Array) -> dict[str, np.ndarray]:
    """Roll ``policy`` in a ``JaxEnv`` for ``n_steps`` transitions (auto-resetting).

    Args:
      env: ``rlstab_jax.envs.jax_env.JaxEnv`` (``reset(key)``, ``step(key, state, action)``).
      policy: ``(obs, key) -> action`` in ``[-1, 1]``.
      n_steps: number of transitions N.
      key: PRNG key.

    Returns:
      Demo arrays (schema of ``rlstab_jax.replay.demos``) incl. ``episode_id``, ``env_id``
      and ``action_names``.
    """
    spec = env.spec
    reset, step = jax.jit(env.reset), jax.jit(env.step)
    key, k_reset = jax.random.split(key)
    state, obs = reset(k_reset)
    rows: dict[str, list] = {k: [] for k in ("obs", "action", "reward", "next_obs",
                                             "terminated", "truncated", "episode_id")}
    episode = 0
    for _ in range(int(n_steps)):
        key, k_act, k_step, k_reset = jax.random.split(key, 4)
        action = np.clip(np.asarray(policy(np.asarray(obs), k_act), np.float32), -1.0, 1.0)
        action = action.reshape(spec.action_dim)
        state, next_obs, reward, term, trunc, final_obs = step(k_step, state, jnp.asarray(action))
        for k, v in (("obs", obs), ("action", action), ("reward", reward),
                     ("next_obs", final_obs), ("terminated", term), ("truncated", trunc),
                     ("episode_id", episode)):
            rows[k].append(np.asarray(v))
        if bool(term) or bool(trunc):
            episode += 1
        obs = next_obs
    out = {k: np.stack(v) for k, v in rows.items()}
    out["env_id"] = np.asarray(spec.env_id)
    out["action_names"] = np.asarray(spec.action_names)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, help="pure-JAX env id, e.g. Pendulum-v1")
    parser.add_argument("--policy", default="random", help="'random' or 'module:function'")
    parser.add_argument("--checkpoint", default=None, help="training checkpoint directory")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output .npz path")
    args = parser.parse_args(argv)
    try:
        from rlstab_jax.envs.registry import make_jax

        env = make_jax(args.env, {})
        spec = env.spec
        spec.require_continuous("record_demos")
        if args.checkpoint:
            policy = load_checkpoint_policy(args.checkpoint, spec)
        elif args.policy == "random":
            policy = random_policy(spec)
        else:
            policy = import_policy(args.policy)
        data = record(env, policy, args.steps, jax.random.key(args.seed))
        save_demos(args.out, **data)
        load_demos(args.out, spec)  # the file we wrote must pass the loader
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n_eps = int(data["episode_id"][-1]) + 1
    print(f"wrote {args.steps} transitions ({n_eps} episodes, mean reward "
          f"{float(data['reward'].mean()):.3f}) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
