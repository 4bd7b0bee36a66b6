"""On-policy driver for host-side gymnasium envs, sharing the pure-JAX driver's update.

Per env step one jitted ``act`` (the action is the only device->host transfer); the rollout is
stacked on the host and shipped to the device once per update. Recurrent agents get their
carry from the driver state and ``is_first`` from the host (True after a reset and after each
episode end; a resumed run starts fresh episodes, so every env starts with ``is_first``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.agents.base import Rollout, act_step
from rlstab_jax.envs.gym_env import GymVecEnv
from rlstab_jax.train.episodes import EpisodeStats, episode_update, nonfinite_streak
from rlstab_jax.train.onpolicy import OnPolicyDriver, OnPolicyState, initial_carry


@dataclasses.dataclass
class GymOnPolicyRunner:
    driver: OnPolicyDriver
    venv: GymVecEnv
    n_seeds: int
    seed: int | list[int]  # reset seed: int (sub-env i gets seed + i) or one per sub-env

    def __post_init__(self) -> None:
        self._obs: np.ndarray | None = None
        self._first: np.ndarray | None = None
        self._act = jax.jit(self._act_impl)
        self._update = jax.jit(self._update_impl)

    def init(self, keys: jax.Array, hparams: Any) -> OnPolicyState:
        d = self.driver
        dtype = jnp.uint8 if d.env.spec.obs_dtype == "uint8" else jnp.float32
        obs = jnp.zeros((d.n_envs,) + d.env.spec.obs_shape, dtype)

        def one(key, hp):
            k_agent, k_state = jax.random.split(key)
            return OnPolicyState(d.agent.init(k_agent, hp), jnp.zeros(()), obs, k_state,
                                 jnp.zeros((), jnp.int32), EpisodeStats.zeros(d.n_envs),
                                 jnp.zeros((), jnp.int32), *initial_carry(d.agent, d.n_envs))

        return jax.jit(jax.vmap(one))(keys, hparams)

    def _act_impl(self, states: OnPolicyState, obs: jax.Array, first: jax.Array, hparams: Any):
        def one(s, o, f, hp):
            key, k_act = jax.random.split(s.key)
            action, carry, info = act_step(self.driver.agent, s.agent, o, k_act, hp, False,
                                           s.carry, f)
            return s.replace(key=key, carry=carry, is_first=f), action, info

        return jax.vmap(one)(states, obs, first, hparams)

    def _update_impl(self, states: OnPolicyState, rollout: Rollout, last_obs: jax.Array,
                     hparams: Any):
        d = self.driver

        def one(s, ro, last, hp):
            eps = s.episodes
            for t in range(d.agent.rollout_len):  # static unroll of the episode bookkeeping
                eps = episode_update(eps, ro.reward[t], ro.terminated[t] | ro.truncated[t])
            key, k_up = jax.random.split(s.key)
            agent_state, metrics = d.agent.update(s.agent, ro, last, k_up, hp)
            streak, metrics = nonfinite_streak(s.nonfinite_streak, metrics)
            steps = s.env_steps + d.n_envs * d.agent.rollout_len
            return s.replace(agent=agent_state, key=key, obs=last, env_steps=steps,
                             episodes=eps, nonfinite_streak=streak), metrics

        return jax.vmap(one)(states, rollout, last_obs, hparams)

    def chunk(self, states: OnPolicyState, hparams: Any, iters: int):
        d = self.driver
        S, n, T = self.n_seeds, d.n_envs, d.agent.rollout_len
        shape = (S, n)
        if self._obs is None:
            self._obs = self.venv.reset(seed=self.seed).reshape(shape + d.env.spec.obs_shape)
            self._first = np.ones(shape, bool)
        states = states.replace(episodes=jax.vmap(EpisodeStats.reset_chunk)(states.episodes))
        all_metrics = []
        for _ in range(iters):
            rows = []
            for _ in range(T):
                states, action, info = self._act(states, self._obs, self._first, hparams)
                a_np = np.asarray(action)
                obs, reward, term, trunc, final = self.venv.step(
                    a_np.reshape((S * n,) + a_np.shape[2:]))
                rows.append((self._obs, a_np, reward.reshape(shape), term.reshape(shape),
                             trunc.reshape(shape), final.reshape(shape + final.shape[1:]), info))
                self._obs = obs.reshape(shape + obs.shape[1:])
                self._first = (term | trunc).reshape(shape)
            # [T, S, n, ...] -> per seed [S, T, n, ...]
            stack = lambda i, rows=rows: jnp.swapaxes(jnp.stack([r[i] for r in rows]), 0, 1)  # noqa: E731
            info = jax.tree.map(lambda *x: jnp.swapaxes(jnp.stack(x), 0, 1), *[r[6] for r in rows])
            rollout = Rollout(obs=stack(0), action=stack(1), reward=stack(2), terminated=stack(3),
                              truncated=stack(4), final_obs=stack(5), policy_info=info)
            states, metrics = self._update(states, rollout, jnp.asarray(self._obs), hparams)
            all_metrics.append(metrics)
        out = {k: jnp.mean(jnp.stack([m[k] for m in all_metrics]), 0) for k in all_metrics[0]}
        out["nonfinite/streak"] = all_metrics[-1]["nonfinite/streak"]
        out.update(jax.vmap(EpisodeStats.summary)(states.episodes))
        return states, out

    def reset_episodes(self) -> None:
        self._obs = None
