"""On-policy driver on pure-JAX envs: rollout of T steps x n_envs, then one update, in a scan.

Same shape as the off-policy driver: seed-batched state ``[S, ...]``, a jitted chunk of
``chunk_iters`` rollout+update iterations, host-side logging between chunks.

Recurrent agents (``agent.init_carry`` set; docs/design.md "Recurrent agents") are called
through ``act_step``: the per-env ``carry`` and the ``is_first[N]`` flags live in the driver
state (vmapped over seeds, checkpointed), ``is_first`` is True at the first step of every
episode and the agent resets its carry there itself. What the agent needs to replay the
rollout (initial carries, ``is_first``) it returns in ``policy_info``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from rlstab_jax.agents.base import OnPolicyAgent, Rollout, act_step
from rlstab_jax.envs.jax_env import JaxEnv
from rlstab_jax.train.dtypes import strong_types
from rlstab_jax.train.episodes import EpisodeStats, episode_update, nonfinite_streak


@flax.struct.dataclass
class OnPolicyState:
    agent: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    env_steps: jax.Array
    episodes: EpisodeStats
    nonfinite_streak: jax.Array
    carry: Any = None  # recurrent agents' per-env carry (None for feedforward agents)
    is_first: jax.Array | None = None  # [n_envs] True where an episode starts


def initial_carry(agent: Any, n_envs: int) -> tuple[Any, jax.Array]:
    """``(carry, is_first)`` at the start of a run: every env starts an episode."""
    carry = None if agent.init_carry is None else agent.init_carry(n_envs)
    return carry, jnp.ones((n_envs,), bool)


@dataclasses.dataclass(frozen=True)
class OnPolicyDriver:
    agent: OnPolicyAgent
    env: JaxEnv
    n_envs: int
    chunk_iters: int

    def init_one(self, key: jax.Array, hparams: Any) -> OnPolicyState:
        k_agent, k_env, k_state = jax.random.split(key, 3)
        env_state, obs = jax.vmap(self.env.reset)(jax.random.split(k_env, self.n_envs))
        # Strong dtypes (gymnax reset states carry weak leaves): the chunk compiles once.
        return strong_types(OnPolicyState(
            self.agent.init(k_agent, hparams),
            env_state,
            obs,
            k_state,
            jnp.zeros((), jnp.int32),
            EpisodeStats.zeros(self.n_envs),
            jnp.zeros((), jnp.int32),
            *initial_carry(self.agent, self.n_envs),
        ))

    def init(self, keys: jax.Array, hparams: Any) -> OnPolicyState:
        return jax.vmap(self.init_one)(keys, hparams)

    def iteration(self, s: OnPolicyState, hparams: Any) -> tuple[OnPolicyState, dict]:
        def step(carry, _):
            s = carry
            key, k_act, k_env = jax.random.split(s.key, 3)
            action, rc, info = act_step(self.agent, s.agent, s.obs, k_act, hparams, False,
                                        s.carry, s.is_first)
            env_state, obs, reward, term, trunc, final_obs = jax.vmap(self.env.step)(
                jax.random.split(k_env, self.n_envs), s.env_state, action
            )
            row = Rollout(
                obs=s.obs,
                action=action,
                reward=reward,
                terminated=term,
                truncated=trunc,
                final_obs=final_obs,
                policy_info=info,
            )
            eps = episode_update(s.episodes, reward, jnp.logical_or(term, trunc))
            s = s.replace(
                env_state=env_state,
                obs=obs,
                key=key,
                env_steps=s.env_steps + self.n_envs,
                episodes=eps,
                carry=rc,
                is_first=jnp.logical_or(term, trunc),
            )
            return s, row

        s, rollout = jax.lax.scan(step, s, None, length=self.agent.rollout_len)
        key, k_up = jax.random.split(s.key)
        agent_state, metrics = self.agent.update(s.agent, rollout, s.obs, k_up, hparams)
        streak, metrics = nonfinite_streak(s.nonfinite_streak, metrics)
        return s.replace(agent=agent_state, key=key, nonfinite_streak=streak), metrics

    def chunk(self, states: OnPolicyState, hparams: Any):
        states = states.replace(episodes=jax.vmap(EpisodeStats.reset_chunk)(states.episodes))

        def body(st, _):
            return jax.vmap(self.iteration)(st, hparams)

        states, metrics = jax.lax.scan(body, states, None, length=self.chunk_iters)
        out = {k: v.astype(jnp.float32).mean(0) for k, v in metrics.items()}
        out["nonfinite/streak"] = metrics["nonfinite/streak"][-1]
        out.update(jax.vmap(EpisodeStats.summary)(states.episodes))
        return states, out


def make_onpolicy_driver(
    agent: OnPolicyAgent, env: JaxEnv, *, n_envs: int, chunk_steps: int
) -> OnPolicyDriver:
    per_iter = agent.rollout_len * n_envs
    return OnPolicyDriver(agent, env, n_envs, max(1, chunk_steps // per_iter))
