"""Off-policy driver on pure-JAX envs: warm-up, collect, replay add and UTD updates in one scan.

The per-seed state is a pytree with a leading seed axis ``[S, ...]``; a chunk is
``lax.scan`` over env steps of ``vmap(collect)`` then (past ``learning_starts``) ``vmap(update)``.
The warm-up switch is a real ``lax.cond`` on the (seed-independent) step counter, so warm-up steps
cost no update FLOPs. The host calls the same compiled chunk again and again, so a resumed run
executes exactly the code of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from rlstab_jax.agents.base import OffPolicyAgent, act_step
from rlstab_jax.config.errors import ConfigError
from rlstab_jax.envs.jax_env import JaxEnv
from rlstab_jax.replay.buffer import Replay, ReplayRow, make_replay
from rlstab_jax.train.demo_mix import DemoMixer
from rlstab_jax.train.dtypes import strong_types
from rlstab_jax.train.episodes import EpisodeStats, episode_update, nonfinite_streak


@flax.struct.dataclass
class OffPolicyState:
    """Everything a seed needs to continue training bit-exactly (checkpointed as a whole).

    ``carry`` is a recurrent agent's per-env state (``None`` for feedforward agents) and
    ``is_first[n_envs]`` flags envs whose current observation starts an episode; both ride
    the scan, vmap over seeds and are checkpointed with the rest (docs/design.md,
    "Recurrent agents").
    """

    agent: Any
    replay: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    env_steps: jax.Array
    episodes: EpisodeStats
    nonfinite_streak: jax.Array
    carry: Any = None
    is_first: jax.Array | None = None


def random_actions(key: jax.Array, spec: Any, n: int) -> jax.Array:
    """Uniform warm-up actions in the agent's action space (``[-1, 1]`` or indices)."""
    if spec.action_kind == "discrete":
        return jax.random.randint(key, (n,), 0, spec.action_dim)
    return jax.random.uniform(key, (n, spec.action_dim), minval=-1.0, maxval=1.0)


@dataclasses.dataclass(frozen=True)
class OffPolicyDriver:
    """Builds ``init(keys, hparams)`` and ``chunk(states, hparams)`` for a pure-JAX env."""

    agent: OffPolicyAgent
    env: JaxEnv
    replay: Replay
    n_envs: int
    learning_starts: int
    chunk_iters: int
    demos: DemoMixer | None = None
    update_period: int = 1  # vector-env steps per update call (agent.update_every / n_envs)

    @property
    def steps_per_iter(self) -> int:
        return self.n_envs

    def init_one(self, key: jax.Array, hparams: Any) -> OffPolicyState:
        k_agent, k_env, k_state = jax.random.split(key, 3)
        agent_state = self.agent.init(k_agent, hparams)
        env_state, obs = jax.vmap(self.env.reset)(jax.random.split(k_env, self.n_envs))
        example = ReplayRow(
            obs=obs[0],
            action=random_actions(k_env, self.env.spec, 1)[0],
            reward=jnp.zeros((), jnp.float32),
            next_obs=obs[0],
            terminated=jnp.zeros((), bool),
            truncated=jnp.zeros((), bool),
            is_demo=jnp.zeros((), bool),
        )
        # Strong dtypes everywhere (gymnax reset states carry weakly typed leaves, e.g.
        # Pendulum's ``last_u``): the chunk then sees one input signature and compiles once.
        return strong_types(OffPolicyState(
            agent=agent_state,
            replay=self.replay.init(example),
            env_state=env_state,
            obs=obs,
            key=k_state,
            env_steps=jnp.zeros((), jnp.int32),
            episodes=EpisodeStats.zeros(self.n_envs),
            nonfinite_streak=jnp.zeros((), jnp.int32),
            carry=initial_carry(self.agent, self.n_envs),
            is_first=jnp.ones((self.n_envs,), bool),
        ))

    def init(self, keys: jax.Array, hparams: Any) -> OffPolicyState:
        """Seed-batched initial state; ``keys`` is ``[S]``, ``hparams`` leaves ``[S]``."""
        return jax.vmap(self.init_one)(keys, hparams)

    def collect(self, s: OffPolicyState, hparams: Any) -> tuple[OffPolicyState, jax.Array]:
        key, k_act, k_rand, k_env = jax.random.split(s.key, 4)
        # A recurrent agent's carry advances with its own action even during warm-up (the
        # random action is what the env sees): only the episode running at learning_starts
        # starts with a slightly stale latent.
        policy_a, carry, _ = act_step(self.agent, s.agent, s.obs, k_act, hparams, False,
                                      s.carry, s.is_first)
        rand_a = random_actions(k_rand, self.env.spec, self.n_envs)
        action = jnp.where(s.env_steps >= self.learning_starts, policy_a, rand_a)
        env_state, obs, reward, term, trunc, final_obs = jax.vmap(self.env.step)(
            jax.random.split(k_env, self.n_envs), s.env_state, action
        )
        row = ReplayRow(
            obs=s.obs,
            action=action,
            reward=reward,
            next_obs=final_obs,
            terminated=term,
            truncated=trunc,
            is_demo=jnp.zeros((self.n_envs,), bool),
        )
        episodes = episode_update(s.episodes, reward, jnp.logical_or(term, trunc))
        return s.replace(
            replay=self.replay.add(s.replay, row),
            env_state=env_state,
            obs=obs,
            key=key,
            env_steps=s.env_steps + self.n_envs,
            episodes=episodes,
            carry=carry,
            is_first=jnp.logical_or(term, trunc),
        ), reward

    def update_index(self, steps: jax.Array) -> jax.Array:
        """How many ``update`` calls came before the one at ``steps`` env steps (after collect).

        A function of the step counter alone, so it is the same for every seed: the driver
        computes it outside the seed ``vmap`` and passes it unbatched to agents with
        ``takes_update_index`` (docs/design.md, "Update schedules inside an update").
        """
        first_vec = -(-self.learning_starts // self.n_envs)  # first vector step that learns
        first = -(-first_vec // self.update_period) * self.update_period
        if isinstance(steps, int):  # the host loop of the gymnasium runner
            return max(steps // self.n_envs - first, 0) // self.update_period
        return jnp.maximum(steps // self.n_envs - first, 0) // self.update_period

    def update(self, s: OffPolicyState, hparams: Any, update_index: jax.Array | None = None
               ) -> tuple[OffPolicyState, dict]:
        """Replay sample + one agent ``update`` call for one seed.

        ``update_index`` (unbatched under the seed ``vmap``) reaches agents that declare
        ``takes_update_index``; ``None`` derives it from this seed's own step counter.
        """
        key, k_sample, k_mix, k_update = jax.random.split(s.key, 4)
        prioritised = self.replay.prioritised
        if prioritised:
            batch, indices = self.replay.sample_indexed(s.replay, k_sample, hparams["gamma"])
            update = self.agent.update_with_priorities
        else:
            batch = self.replay.sample(s.replay, k_sample, hparams["gamma"])
            update = self.agent.update
        metrics = {}
        if self.demos is not None:
            batch, metrics = self.demos.mix(k_mix, batch, s.env_steps, hparams["gamma"])
        args = (s.agent, batch, k_update, hparams)
        if self.agent.takes_update_index:
            index = self.update_index(s.env_steps) if update_index is None else update_index
            args = args + (index,)
        out = update(*args)
        agent_state, agent_metrics = out[0], out[1]
        metrics.update(agent_metrics)
        replay = s.replay
        if prioritised:  # docs/design.md, "Prioritised replay"
            priorities = out[2]
            replay = self.replay.set_priorities(replay, indices, priorities)
            metrics["replay/priority_mean"] = jnp.mean(priorities)
            metrics["replay/priority_max"] = jnp.max(priorities)
        if self.replay.compact:  # below 1 when the episode-end side store dropped old ends
            metrics["replay/usable_fraction"] = self.replay.usable_fraction(s.replay)
        streak, metrics = nonfinite_streak(s.nonfinite_streak, metrics)
        return s.replace(agent=agent_state, key=key, nonfinite_streak=streak,
                         replay=replay), metrics

    def chunk(self, states: OffPolicyState, hparams: Any):
        """Run ``chunk_iters`` vector-env steps for all seeds.

        Returns ``(states, metrics)`` where ``metrics`` maps names to ``[S]`` arrays: means of the
        update metrics over the steps that updated, plus episode statistics of the chunk.
        """
        return seed_squeezed(self._chunk, states, hparams)

    def metric_shapes(self, states: OffPolicyState, hparams: Any, batched: bool) -> Any:
        """Shapes of one ``update`` call's metrics (traced, not run)."""
        update = jax.vmap(self.update) if batched else self.update
        return jax.eval_shape(update, states, hparams)[1]

    def learn_step(self, st: OffPolicyState, hparams: Any, batched: bool, metric_shapes: Any):
        """Replay sample + update once ``learning_starts`` is reached; zeros as metrics before.

        The step counter is the same for every seed, so this is a real ``lax.cond`` (warm-up
        steps cost no update FLOPs), and it returns only what an update changes: routing the
        whole state (with the replay buffer) through both branches invites XLA to copy the
        buffer. Returns ``(state, (metrics, learning))``.
        """
        steps = st.env_steps[0] if batched else st.env_steps
        index = self.update_index(steps)  # seed-independent: closed over, not vmapped

        def update(s, hp):
            one = lambda s_, hp_: self.update(s_, hp_, index)  # noqa: E731
            return jax.vmap(one)(s, hp) if batched else one(s, hp)

        def changed(s):  # the sum tree of a prioritised replay, never its stored rows
            return s.agent, s.key, s.nonfinite_streak, self.replay.sum_tree(s.replay)

        def with_update(s):
            new, metrics = update(s, hparams)
            return changed(new), metrics

        def no_update(s):
            return changed(s), jax.tree.map(lambda m: jnp.zeros(m.shape, m.dtype), metric_shapes)

        learning = steps >= self.learning_starts
        if self.update_period > 1:  # train ratio below one update per vector-env step
            learning = learning & ((steps // self.n_envs) % self.update_period == 0)
        (agent, key, streak, tree), metrics = jax.lax.cond(learning, with_update, no_update,
                                                           st)
        replay = self.replay.with_sum_tree(st.replay, tree)
        return (st.replace(agent=agent, key=key, nonfinite_streak=streak, replay=replay),
                (metrics, learning))

    @staticmethod
    def summarize(states: OffPolicyState, metrics: dict, learned: jax.Array,
                  batched: bool) -> dict:
        """Chunk metrics from per-step ``metrics`` ``[T, ...]`` and ``learned`` flags ``[T]``."""
        n = jnp.maximum(learned.sum(), 1).astype(jnp.float32)
        w = learned.astype(jnp.float32)
        out = {
            k: jnp.tensordot(w, v.astype(jnp.float32), axes=(0, 0)) / n for k, v in metrics.items()
        }
        out["nonfinite/streak"] = (
            metrics["nonfinite/streak"][-1]
            if "nonfinite/streak" in metrics
            else jnp.zeros(states.env_steps.shape)
        )
        summary = jax.vmap(EpisodeStats.summary) if batched else EpisodeStats.summary
        out.update(summary(states.episodes))
        out["updates/fraction"] = jnp.broadcast_to(w.mean(), states.env_steps.shape)
        return out

    def _chunk(self, states: OffPolicyState, hparams: Any, batched: bool):
        """The chunk scan on seed-batched (``vmap``) or single-seed (unbatched) states."""
        vmap = jax.vmap if batched else (lambda f: f)
        collect_v = vmap(self.collect)
        metric_shapes = self.metric_shapes(states, hparams, batched)

        def body(st, _):
            st, _ = collect_v(st, hparams)
            return self.learn_step(st, hparams, batched, metric_shapes)

        states = states.replace(episodes=vmap(EpisodeStats.reset_chunk)(states.episodes))
        states, (metrics, learned) = jax.lax.scan(body, states, None, length=self.chunk_iters)
        return states, self.summarize(states, metrics, learned, batched)


def initial_carry(agent: Any, n_envs: int) -> Any:
    """A recurrent agent's initial carry (leaves ``[n_envs, ...]``), ``None`` if feedforward."""
    return None if agent.init_carry is None else agent.init_carry(n_envs)


def seed_squeezed(fn: Any, states: Any, hparams: Any):
    """``fn(states, hparams, batched)``; a single seed runs without its seed axis.

    Squeezing and re-adding the seed axis inside a scan (at every step) made XLA copy every
    replay array on every env step; here it happens once per chunk.
    """
    if states.env_steps.shape[0] == 1:
        squeeze = lambda x: x[0]  # noqa: E731
        st, out = fn(jax.tree.map(squeeze, states), jax.tree.map(squeeze, hparams), False)
        return jax.tree.map(lambda x: x[None], (st, out))
    return fn(states, hparams, True)


def make_offpolicy_driver(
    agent: OffPolicyAgent,
    env: JaxEnv,
    *,
    n_envs: int,
    capacity: int,
    learning_starts: int,
    chunk_steps: int,
    demos: DemoMixer | None = None,
    compact: bool = False,
    frame_stack: int = 1,
    final_fraction: float = 0.01,
    priority_exponent: float | None = None,
) -> OffPolicyDriver:
    """Assemble the pure-JAX off-policy driver (``chunk_steps`` env steps per seed per chunk).

    ``compact``: one frame per replay row (``frame_stack`` frames per observation), ``next_obs``
    and stacks rebuilt at sample time (``replay/compact.py``); same rows in, same batches out.
    """
    if agent.seq_len and demos is not None:
        raise ConfigError("replay.demos is not supported by sequence agents (agent.seq_len > 0)")
    if priority_exponent is not None and agent.update_with_priorities is None:
        raise ConfigError("replay.priority=true needs an agent that reports replay priorities "
                          "(dreamer); this agent samples its replay uniformly")
    if priority_exponent is not None and demos is not None:
        raise ConfigError("replay.priority=true cannot be combined with replay.demos")
    update_period = max(1, agent.update_every // n_envs)
    # Several updates per vector step with n_envs > 1 (updates_per_step is per env), one update
    # call every update_period vector steps otherwise.
    updates = agent.updates_per_step * (n_envs if agent.update_every == 1 else 1)
    replay = make_replay(capacity, n_envs, updates, agent.batch_size, agent.n_step, agent.seq_len,
                         compact=compact, frame_stack=frame_stack, final_fraction=final_fraction,
                         priority_exponent=priority_exponent)
    chunk_iters = max(1, chunk_steps // n_envs)
    # The replay must hold at least one full n-step window (or subsequence) before sampling.
    learning_starts = max(learning_starts, n_envs * max(agent.n_step, agent.seq_len))
    return OffPolicyDriver(agent, env, replay, n_envs, learning_starts, chunk_iters, demos,
                           update_period)
