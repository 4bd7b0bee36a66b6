"""Evaluation with the deterministic and the stochastic policy, logged separately.

Pure-JAX envs: ``episodes`` episodes per seed run in parallel inside one ``lax.scan`` (no host
round-trip). Gymnasium envs: a host loop over a vector env of ``S * episodes`` copies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.agents.base import act_step
from rlstab_jax.envs.jax_env import JaxEnv


def _act(agent: Any, state: Any, obs: jax.Array, key: jax.Array, hparams: Any,
         deterministic: bool, carry: Any = None, is_first: Any = None) -> tuple[jax.Array, Any]:
    """``(action, carry)`` for any agent (feedforward agents pass ``carry`` through)."""
    action, carry, _ = act_step(agent, state, obs, key, hparams, deterministic, carry, is_first)
    return action, carry


def init_carry(agent: Any, n: int) -> Any:
    """The agent's initial per-env carry for ``n`` envs, or ``None`` (feedforward)."""
    return None if agent.init_carry is None else agent.init_carry(n)


def make_jax_evaluate(agent: Any, env: JaxEnv, episodes: int, max_steps: int
                      ) -> Callable[[Any, jax.Array, Any], dict[str, jax.Array]]:
    """``evaluate(agent_state, key, hparams) -> {eval/return, eval/return_stochastic, ...}``.

    One seed's agent state; vmap over seeds. Each of the ``episodes`` copies runs its first
    episode to the end (or ``max_steps``).
    """

    def run(agent_state, key, hparams, deterministic: bool):
        k_reset, k_loop = jax.random.split(key)
        env_state, obs = jax.vmap(env.reset)(jax.random.split(k_reset, episodes))

        def body(carry, _):
            env_state, obs, ret, length, done, key, rc, first = carry
            key, k_act, k_env = jax.random.split(key, 3)
            action, rc = _act(agent, agent_state, obs, k_act, hparams, deterministic, rc, first)
            env_state, obs, reward, term, trunc, _ = jax.vmap(env.step)(
                jax.random.split(k_env, episodes), env_state, action)
            live = ~done
            ret = ret + jnp.where(live, reward, 0.0)
            length = length + live.astype(jnp.int32)
            first = term | trunc
            done = done | first
            return (env_state, obs, ret, length, done, key, rc, first), None

        init = (env_state, obs, jnp.zeros(episodes), jnp.zeros(episodes, jnp.int32),
                jnp.zeros(episodes, bool), k_loop, init_carry(agent, episodes),
                jnp.ones(episodes, bool))
        (_, _, ret, length, *_), _ = jax.lax.scan(body, init, None, length=max_steps)
        return ret.mean(), length.astype(jnp.float32).mean()

    def evaluate(agent_state, key, hparams):
        k_det, k_sto = jax.random.split(key)
        ret, length = run(agent_state, k_det, hparams, True)
        ret_s, _ = run(agent_state, k_sto, hparams, False)
        return {"eval/return": ret, "eval/length": length, "eval/return_stochastic": ret_s}

    return evaluate


def evaluate_gym(make_vec: Callable[[int], Any], act_fn: Callable[..., Any], agent_states: Any,
                 hparams: Any, key: jax.Array, n_seeds: int, episodes: int,
                 seed: int | list[int],
                 max_steps: int = 100_000, init_carry_fn: Callable[[], Any] | None = None
                 ) -> dict[str, np.ndarray]:
    """Host-side evaluation on a fresh vector env of ``n_seeds * episodes`` copies.

    ``act_fn(states[S], obs[S, E, ...], key, hparams, deterministic, carry, is_first[S, E])
    -> (actions[S, E, ...], carry)``; ``carry`` starts as ``init_carry()`` (``None`` for
    feedforward agents). ``seed``: the vector env's reset seed (an int seeds copy ``i`` with
    ``seed + i``; a list gives one seed per copy). Returns per-seed arrays ``[S]``.
    """
    out: dict[str, np.ndarray] = {}
    for deterministic, name in ((True, "eval/return"), (False, "eval/return_stochastic")):
        env = make_vec(n_seeds * episodes)
        obs = env.reset(seed=seed)
        ret = np.zeros(n_seeds * episodes)
        length = np.zeros(n_seeds * episodes)
        done = np.zeros(n_seeds * episodes, bool)
        first = np.ones((n_seeds, episodes), bool)
        carry = init_carry_fn() if init_carry_fn is not None else None
        for _ in range(max_steps):
            key, k = jax.random.split(key)
            a, carry = act_fn(agent_states, obs.reshape((n_seeds, episodes) + obs.shape[1:]), k,
                              hparams, deterministic, carry, first)
            a = np.asarray(a).reshape((n_seeds * episodes,) + np.asarray(a).shape[2:])
            obs, reward, term, trunc, _ = env.step(a)
            ret += np.where(done, 0.0, reward)
            length += ~done
            first = (term | trunc).reshape(n_seeds, episodes)
            done |= term | trunc
            if done.all():
                break
        env.close()
        out[name] = ret.reshape(n_seeds, episodes).mean(1)
        if deterministic:
            out["eval/length"] = length.reshape(n_seeds, episodes).mean(1)
    return out
