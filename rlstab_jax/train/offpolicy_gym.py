"""Off-policy driver for host-side gymnasium envs, sharing the pure-JAX driver's update.

Per vector-env step there is one device->host transfer (the action). The replay add and the UTD
updates for the previous step are dispatched asynchronously right after the action is read, so
the device updates while the host steps the simulator (JAX asynchronous dispatch).
Update metrics and episode statistics accumulate on device and are read once per chunk.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.envs.gym_env import GymVecEnv
from rlstab_jax.replay.buffer import ReplayRow
from rlstab_jax.train.episodes import EpisodeStats, episode_update
from rlstab_jax.train.offpolicy import OffPolicyDriver, OffPolicyState, random_actions


@dataclasses.dataclass
class GymOffPolicyRunner:
    """Host loop around a :class:`OffPolicyDriver` whose env lives in gymnasium.

    ``driver.env`` is only used for its spec; env state in the pytree is a placeholder.
    """

    driver: OffPolicyDriver
    venv: GymVecEnv
    n_seeds: int
    seed: int

    def __post_init__(self) -> None:
        self._obs: np.ndarray | None = None
        # act reads only the agent and returns only keys + actions; observe donates the state
        # (without donation XLA would copy the whole replay buffer on every env step).
        self._act = jax.jit(self._act_impl)
        self._observe = jax.jit(
            self._observe_impl, static_argnames=("do_update",), donate_argnums=(0, 3)
        )

    # ---- device functions -------------------------------------------------------------
    def init(self, keys: jax.Array, hparams: Any) -> OffPolicyState:
        d = self.driver
        obs = jnp.zeros(
            (d.n_envs,) + d.env.spec.obs_shape,
            jnp.uint8 if d.env.spec.obs_dtype == "uint8" else jnp.float32,
        )

        def one(key, hp):
            k_agent, k_state = jax.random.split(key)
            example = ReplayRow(
                obs=obs[0],
                action=random_actions(key, d.env.spec, 1)[0],
                reward=jnp.zeros(()),
                next_obs=obs[0],
                terminated=jnp.zeros((), bool),
                truncated=jnp.zeros((), bool),
                is_demo=jnp.zeros((), bool),
            )
            return OffPolicyState(
                agent=d.agent.init(k_agent, hp),
                replay=d.replay.init(example),
                env_state=jnp.zeros(()),
                obs=obs,
                key=k_state,
                env_steps=jnp.zeros((), jnp.int32),
                episodes=EpisodeStats.zeros(d.n_envs),
                nonfinite_streak=jnp.zeros((), jnp.int32),
            )

        return jax.jit(jax.vmap(one))(keys, hparams)

    def _act_impl(self, agent: Any, keys: jax.Array, env_steps: jax.Array, obs: jax.Array,
                  hparams: Any):
        d = self.driver

        def one(a, k, steps, o, hp):
            key, k_act, k_rand = jax.random.split(k, 3)
            pol = d.agent.act(a, o, k_act, hp, deterministic=False)
            rnd = random_actions(k_rand, d.env.spec, d.n_envs)
            return key, jnp.where(steps >= d.learning_starts, pol, rnd)

        return jax.vmap(one)(agent, keys, env_steps, obs, hparams)

    def _observe_impl(
        self, states: OffPolicyState, row: ReplayRow, hparams: Any, msum: Any, do_update: bool
    ):
        d = self.driver

        def add(s, r):
            eps = episode_update(s.episodes, r.reward, jnp.logical_or(r.terminated, r.truncated))
            return s.replace(
                replay=d.replay.add(s.replay, r),
                obs=r.next_obs,
                env_steps=s.env_steps + d.n_envs,
                episodes=eps,
            )

        states = jax.vmap(add)(states, row)
        if not do_update:
            return states, msum
        states, metrics = jax.vmap(d.update)(states, hparams)
        return states, jax.tree.map(jnp.add, msum, metrics)

    # ---- host loop --------------------------------------------------------------------
    def chunk(self, states: OffPolicyState, hparams: Any, iters: int):
        d = self.driver
        S, n = self.n_seeds, d.n_envs
        if self._obs is None:  # fresh episodes at start and after a resume
            self._obs = self.venv.reset(seed=self.seed).reshape((S, n) + d.env.spec.obs_shape)
        states = states.replace(episodes=jax.vmap(EpisodeStats.reset_chunk)(states.episodes))
        msum = jax.tree.map(
            lambda m: jnp.zeros(m.shape, m.dtype),
            jax.eval_shape(jax.vmap(d.update), states, hparams)[1],
        )
        steps = int(np.asarray(states.env_steps)[0])
        updates = 0
        pending = None
        for _ in range(iters):
            keys, action = self._act(states.agent, states.key, states.env_steps, self._obs,
                                     hparams)
            states = states.replace(key=keys)
            a_np = np.asarray(action)
            if pending is not None:
                states, msum = self._flush(states, pending, hparams, msum, steps)
                updates += int(steps + n >= d.learning_starts)
                steps += n
            obs, reward, term, trunc, final = self.venv.step(
                a_np.reshape((S * n,) + a_np.shape[2:])
            )
            shape = (S, n)
            pending = ReplayRow(
                obs=self._obs,
                action=a_np,
                reward=reward.reshape(shape),
                next_obs=final.reshape(shape + final.shape[1:]),
                terminated=term.reshape(shape),
                truncated=trunc.reshape(shape),
                is_demo=np.zeros(shape, bool),
            )
            self._obs = obs.reshape(shape + obs.shape[1:])
        states, msum = self._flush(states, pending, hparams, msum, steps)
        updates += int(steps + n >= d.learning_starts)
        # The replay row stores next_obs = final obs; the live obs continues the episodes.
        states = states.replace(obs=jnp.asarray(self._obs))
        out = {k: v / max(updates, 1) for k, v in msum.items()}
        out.update(jax.vmap(EpisodeStats.summary)(states.episodes))
        out["updates/fraction"] = jnp.full((S,), updates / iters)
        out["nonfinite/streak"] = states.nonfinite_streak.astype(jnp.float32)
        return states, out

    def _flush(self, states, row, hparams, msum, steps):
        do_update = steps + self.driver.n_envs >= self.driver.learning_starts
        return self._observe(states, row, hparams, msum, do_update=do_update)

    def reset_episodes(self) -> None:
        """Start fresh episodes (used after a resume: simulator state is not checkpointed)."""
        self._obs = None
