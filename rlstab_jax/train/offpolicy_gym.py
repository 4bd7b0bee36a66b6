"""Off-policy driver for host-side gymnasium envs, sharing the pure-JAX driver's update.

Per vector-env step there is one jitted call (replay add + UTD updates for the transition just
observed, then the next action) and one device->host transfer (that action). With one seed the
state loses its seed axis for the length of a chunk (one squeeze before, one expand after), so
every per-step call is the plain single-seed program. Update metrics and episode statistics
accumulate on device and are read once per chunk.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.envs.gym_env import GymVecEnv
from rlstab_jax.replay.buffer import ReplayRow
from rlstab_jax.train.dtypes import strong_types
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
        self._metric_zeros: Any = None
        # One jitted call per env step: replay add + UTD updates for the previous transition,
        # then the action for the current observation (sampled with the updated actor, the
        # collect-then-train order of SAC). A standalone call costs dispatch per pytree leaf
        # and per output buffer, so fusing the two former calls (act; add+update) halves that.
        # The state and the metric sums are donated: without donation XLA would copy the whole
        # replay buffer and optimiser state on every env step.
        self._act = jax.jit(self._act_impl)
        # With one seed, a chunk squeezes the seed axis once and adds it back once.
        self._squeeze = jax.jit(lambda t: jax.tree.map(lambda x: x[0], t), donate_argnums=0)
        self._squeeze_hp = jax.jit(lambda t: jax.tree.map(lambda x: x[0], t))
        self._expand = jax.jit(lambda t: jax.tree.map(lambda x: x[None], t), donate_argnums=0)
        self._expand_metrics = jax.jit(lambda t: jax.tree.map(lambda x: x[None], t))
        self._step = jax.jit(
            self._step_impl, static_argnames=("do_update",), donate_argnums=(0, 4)
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
            # Strong dtypes (flashbax's replay index starts weakly typed), as in the pure-JAX
            # driver: otherwise the first env step compiles the step call a second time.
            return strong_types(OffPolicyState(
                agent=d.agent.init(k_agent, hp),
                replay=d.replay.init(example),
                env_state=jnp.zeros(()),
                obs=obs,
                key=k_state,
                env_steps=jnp.zeros((), jnp.int32),
                episodes=EpisodeStats.zeros(d.n_envs),
                nonfinite_streak=jnp.zeros((), jnp.int32),
            ))

        return jax.jit(jax.vmap(one))(keys, hparams)

    def _act_one(self, a: Any, k: jax.Array, steps: jax.Array, o: jax.Array, hp: Any):
        d = self.driver
        key, k_act, k_rand = jax.random.split(k, 3)
        pol = d.agent.act(a, o, k_act, hp, deterministic=False)
        rnd = random_actions(k_rand, d.env.spec, d.n_envs)
        return key, jnp.where(steps >= d.learning_starts, pol, rnd)

    def _seedwise(self, fn):
        # One seed: the chunk squeezed the seed axis away, so per-step calls are unbatched.
        # (A squeeze/expand inside each call made XLA copy every replay array per env step.)
        return fn if self.n_seeds == 1 else jax.vmap(fn)

    def _act_impl(self, agent: Any, keys: jax.Array, env_steps: jax.Array, obs: jax.Array,
                  hparams: Any):
        return self._seedwise(self._act_one)(agent, keys, env_steps, obs, hparams)

    def _step_one(self, s: OffPolicyState, r: ReplayRow, obs: jax.Array, hp: Any,
                  do_update: bool):
        d = self.driver
        eps = episode_update(s.episodes, r.reward, jnp.logical_or(r.terminated, r.truncated))
        s = s.replace(
            replay=d.replay.add(s.replay, r),
            obs=r.next_obs,
            env_steps=s.env_steps + d.n_envs,
            episodes=eps,
        )
        metrics = None
        if do_update:
            s, metrics = d.update(s, hp)
        key, action = self._act_one(s.agent, s.key, s.env_steps, obs, hp)
        return s.replace(key=key), metrics, action

    def _step_impl(self, states: OffPolicyState, row: ReplayRow, obs: jax.Array, hparams: Any,
                   msum: Any, do_update: bool):
        def one(s, r, o, hp):
            return self._step_one(s, r, o, hp, do_update)

        states, metrics, action = self._seedwise(one)(states, row, obs, hparams)
        if do_update:
            msum = jax.tree.map(jnp.add, msum, metrics)
        return states, msum, action

    def _metric_template(self, states: OffPolicyState, hparams: Any) -> Any:
        """Zeros shaped like one env step's update metrics (traced once, then cached)."""
        if self._metric_zeros is None:
            update = self._seedwise(self.driver.update)
            shapes = jax.eval_shape(update, states, hparams)[1]
            self._metric_zeros = jax.tree.map(lambda m: np.zeros(m.shape, m.dtype), shapes)
        return jax.tree.map(jnp.asarray, self._metric_zeros)

    # ---- host loop --------------------------------------------------------------------
    def chunk(self, states: OffPolicyState, hparams: Any, iters: int):
        d = self.driver
        S, n = self.n_seeds, d.n_envs
        shape = (S, n) if S != 1 else (n,)
        if self._obs is None:  # fresh episodes at start and after a resume
            self._obs = self.venv.reset(seed=self.seed).reshape(shape + d.env.spec.obs_shape)
        if S == 1:
            states, hparams = self._squeeze(states), self._squeeze_hp(hparams)
        seedwise = self._seedwise
        states = states.replace(episodes=seedwise(EpisodeStats.reset_chunk)(states.episodes))
        msum = self._metric_template(states, hparams)
        steps = int(np.asarray(states.env_steps).reshape(-1)[0])
        updates = 0
        keys, action = self._act(states.agent, states.key, states.env_steps, self._obs, hparams)
        states = states.replace(key=keys)
        for _ in range(iters):
            a_np = np.asarray(action)
            obs, reward, term, trunc, final = self.venv.step(
                a_np.reshape((S * n,) + a_np.shape[len(shape):])
            )
            row = ReplayRow(
                obs=self._obs,
                action=a_np,
                reward=reward.reshape(shape),
                next_obs=final.reshape(shape + final.shape[1:]),
                terminated=term.reshape(shape),
                truncated=trunc.reshape(shape),
                is_demo=np.zeros(shape, bool),
            )
            self._obs = obs.reshape(shape + obs.shape[1:])
            do_update = steps + n >= d.learning_starts
            # The next action comes back from the same call. The chunk's last one is dropped
            # and the next chunk starts with _act, exactly as a resumed run does.
            states, msum, action = self._step(states, row, self._obs, hparams, msum,
                                              do_update=do_update)
            updates += int(do_update)
            steps += n
        # The replay row stores next_obs = final obs; the live obs continues the episodes.
        states = states.replace(obs=jnp.asarray(self._obs))
        out = {k: v / max(updates, 1) for k, v in msum.items()}
        out.update(seedwise(EpisodeStats.summary)(states.episodes))
        out["updates/fraction"] = jnp.full(states.env_steps.shape, updates / iters)
        out["nonfinite/streak"] = states.nonfinite_streak.astype(jnp.float32)
        if S == 1:
            # The metrics share buffers with the state (episode counts): expanded first and
            # without donation, then the state (donated).
            out = self._expand_metrics(out)
            states = self._expand(states)
        return states, out

    def reset_episodes(self) -> None:
        """Start fresh episodes (used after a resume: simulator state is not checkpointed)."""
        self._obs = None
