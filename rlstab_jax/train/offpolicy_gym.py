"""Off-policy driver for host-side gymnasium envs, sharing the pure-JAX driver's update.

Two ways to step the simulator (``env.host_step``):

* ``scan`` (default): the whole chunk is one jitted ``lax.scan``, as on the pure-JAX path; the
  simulator steps from inside it through an ordered ``io_callback``
  (:mod:`rlstab_jax.train.host_callback`).
* ``loop``: a Python loop with one jitted call per vector-env step. Same transitions, updates
  and random streams (``tests/train/test_gym_host_step.py``); kept for debugging (a breakpoint
  between env steps) and as the reference the scan is tested against. With the seed axis
  sharded over devices the scan still works: XLA runs the callback on one device and
  replicates its (small) outputs, with a compile-time "involuntary full rematerialization"
  warning.

In ``loop`` mode, per vector-env step there is one jitted call (replay add + UTD updates for
the transition just observed, then the next action) and one device->host transfer (that
action). In both modes a single seed's state loses its seed axis for the length of a chunk
(one squeeze before, one expand after), so every step runs the plain single-seed program.
Update metrics and episode statistics accumulate on device and are read once per chunk.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.agents.base import act_step
from rlstab_jax.envs.gym_env import GymVecEnv
from rlstab_jax.replay.buffer import ReplayRow
from rlstab_jax.train.host_callback import HostEnvStep
from rlstab_jax.train.dtypes import strong_types
from rlstab_jax.train.episodes import EpisodeStats, episode_update
from rlstab_jax.train.offpolicy import (
    OffPolicyDriver,
    OffPolicyState,
    initial_carry,
    random_actions,
    seed_squeezed,
)


@dataclasses.dataclass
class GymOffPolicyRunner:
    """Host loop around a :class:`OffPolicyDriver` whose env lives in gymnasium.

    ``driver.env`` is only used for its spec; env state in the pytree is a placeholder.
    """

    driver: OffPolicyDriver
    venv: GymVecEnv
    n_seeds: int
    seed: int | list[int]  # reset seed: int (sub-env i gets seed + i) or one per sub-env
    in_scan: bool = True

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
        self._fresh = True  # start new episodes (first chunk, and after a resume)
        self._env_step: HostEnvStep | None = None  # set when the scan is traced
        self._scan = jax.jit(self._scan_chunk, static_argnames=("iters",), donate_argnums=0)
        # Fresh episodes after a resume: the compact replay stores no next_obs, so the newest
        # rows are ended (truncated, bootstrapping from their stored next frame) before the
        # new episodes are appended (replay.compact.CompactReplay.cut).
        self._cut = jax.jit(lambda st: st.replace(replay=jax.vmap(self.driver.replay.cut)(
            st.replay)), donate_argnums=0)

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
                carry=initial_carry(d.agent, d.n_envs),
                is_first=jnp.ones((d.n_envs,), bool),
            ))

        return jax.jit(jax.vmap(one))(keys, hparams)

    def _act_one(self, s: OffPolicyState, o: jax.Array, hp: Any):
        """The next action for observation ``o``: ``(state with the key advanced, action, carry)``.

        A recurrent agent's new ``carry`` is *pending*: it is committed to the state together
        with the env step it belongs to (``_observe_one``). A chunk drops its last action, and
        the next chunk acts on the same observation from the committed carry again, so the
        latent never advances twice for one observation.
        """
        d = self.driver
        key, k_act, k_rand = jax.random.split(s.key, 3)
        pol, carry, _ = act_step(d.agent, s.agent, o, k_act, hp, False, s.carry, s.is_first)
        rnd = random_actions(k_rand, d.env.spec, d.n_envs)
        action = jnp.where(s.env_steps >= d.learning_starts, pol, rnd)
        return s.replace(key=key), action, carry

    def _seedwise(self, fn):
        # One seed: the chunk squeezed the seed axis away, so per-step calls are unbatched.
        # (A squeeze/expand inside each call made XLA copy every replay array per env step.)
        return fn if self.n_seeds == 1 else jax.vmap(fn)

    def _act_impl(self, states: OffPolicyState, obs: jax.Array, hparams: Any):
        states, action, carry = self._seedwise(self._act_one)(states, obs, hparams)
        return states.key, action, carry

    def _observe_one(self, s: OffPolicyState, r: ReplayRow, obs: jax.Array,
                     carry: Any = None) -> OffPolicyState:
        """Replay add, step counter, episode statistics and the (pending) carry of the action
        that produced this transition."""
        eps = episode_update(s.episodes, r.reward, jnp.logical_or(r.terminated, r.truncated))
        return s.replace(
            replay=self.driver.replay.add(s.replay, r),
            obs=obs,
            env_steps=s.env_steps + self.driver.n_envs,
            episodes=eps,
            is_first=jnp.logical_or(r.terminated, r.truncated),
            carry=carry,
        )

    def _step_one(self, s: OffPolicyState, r: ReplayRow, obs: jax.Array, hp: Any,
                  carry: Any, do_update: bool, index: jax.Array):
        d = self.driver
        s = self._observe_one(s, r, obs, carry)
        metrics = None
        if do_update:
            s, metrics = d.update(s, hp, index)
        s, action, carry = self._act_one(s, obs, hp)
        return s, metrics, action, carry

    def _step_impl(self, states: OffPolicyState, row: ReplayRow, obs: jax.Array, hparams: Any,
                   msum: Any, carry: Any, do_update: bool, index: jax.Array):
        # ``index`` (the update call's number, the same for every seed) is closed over, so it
        # stays unbatched under the seed vmap (a lax.cond on it in the agent stays a branch).
        def one(s, r, o, hp, c):
            return self._step_one(s, r, o, hp, c, do_update, index)

        states, metrics, action, carry = self._seedwise(one)(states, row, obs, hparams, carry)
        if do_update:
            msum = jax.tree.map(jnp.add, msum, metrics)
        return states, msum, action, carry

    def _metric_template(self, states: OffPolicyState, hparams: Any) -> Any:
        """Zeros shaped like one env step's update metrics (traced once, then cached)."""
        if self._metric_zeros is None:
            update = self._seedwise(self.driver.update)
            shapes = jax.eval_shape(update, states, hparams)[1]
            self._metric_zeros = jax.tree.map(lambda m: np.zeros(m.shape, m.dtype), shapes)
        return jax.tree.map(jnp.asarray, self._metric_zeros)

    def _scan_impl(self, states: OffPolicyState, hparams: Any, batched: bool, iters: int):
        """``iters`` vector-env steps in one ``lax.scan``; the simulator steps by callback."""
        d = self.driver
        seedwise = self._seedwise
        env_step = self._env_step = HostEnvStep(
            self.venv, (self.n_seeds, d.n_envs) if batched else (d.n_envs,))
        states = states.replace(episodes=seedwise(EpisodeStats.reset_chunk)(states.episodes))
        metric_shapes = d.metric_shapes(states, hparams, batched)

        def body(carry, _):
            st, action, pending = carry
            obs, reward, term, trunc, final = env_step(action)
            row = ReplayRow(obs=st.obs, action=action, reward=reward, next_obs=final,
                            terminated=term, truncated=trunc,
                            is_demo=jnp.zeros(reward.shape, bool))
            st = seedwise(self._observe_one)(st, row, obs, pending)
            st, ys = d.learn_step(st, hparams, batched, metric_shapes)
            st, action, pending = seedwise(self._act_one)(st, st.obs, hparams)
            return (st, action, pending), ys

        # The chunk's first action comes from its initial state and its last one (with its
        # pending carry) is dropped, exactly as in the host loop (and as a resumed run starts).
        states, action, pending = seedwise(self._act_one)(states, states.obs, hparams)
        (states, _, _), (metrics, learned) = jax.lax.scan(
            body, (states, action, pending), None, length=iters)
        return states, d.summarize(states, metrics, learned, batched)

    def _scan_chunk(self, states: OffPolicyState, hparams: Any, iters: int):
        return seed_squeezed(functools.partial(self._scan_impl, iters=iters), states, hparams)

    # ---- host loop --------------------------------------------------------------------
    def chunk(self, states: OffPolicyState, hparams: Any, iters: int):
        if not self.in_scan:
            return self._chunk_loop(states, hparams, iters)
        if self._fresh:  # fresh episodes at start and after a resume
            obs = self.venv.reset(seed=self.seed)
            # Placed like the leaf it replaces (committed or not, same sharding): otherwise the
            # call signature changes and the chunk compiles a second time.
            obs = obs.reshape(states.obs.shape)
            old = states.obs
            obs = jax.device_put(obs, old.sharding) if old.committed else jnp.asarray(obs)
            first = states.is_first
            first = jax.device_put(np.ones(first.shape, bool), first.sharding) if \
                first.committed else jnp.ones(first.shape, bool)
            states = states.replace(obs=obs, is_first=first)
            if _stores_no_next_obs(self.driver):
                states = self._cut(states)
            self._fresh = False
        try:
            return self._scan(states, hparams, iters=iters)
        except Exception:  # the simulator's own error, not XLA's wrapper of it
            if self._env_step is not None:
                self._env_step.reraise()
            raise

    def _chunk_loop(self, states: OffPolicyState, hparams: Any, iters: int):
        d = self.driver
        S, n = self.n_seeds, d.n_envs
        shape = (S, n) if S != 1 else (n,)
        fresh = self._obs is None
        if fresh:  # fresh episodes at start and after a resume
            self._obs = self.venv.reset(seed=self.seed).reshape(shape + d.env.spec.obs_shape)
            if _stores_no_next_obs(d):
                states = self._cut(states)
        if S == 1:
            states, hparams = self._squeeze(states), self._squeeze_hp(hparams)
        if fresh:
            states = states.replace(is_first=jnp.ones(states.is_first.shape, bool))
        seedwise = self._seedwise
        states = states.replace(episodes=seedwise(EpisodeStats.reset_chunk)(states.episodes))
        msum = self._metric_template(states, hparams)
        steps = int(np.asarray(states.env_steps).reshape(-1)[0])
        updates = 0
        keys, action, pending = self._act(states, self._obs, hparams)
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
            # Same schedule as OffPolicyDriver.learn_step (warm-up, then every update_period).
            do_update = steps + n >= d.learning_starts and (
                ((steps + n) // n) % d.update_period == 0)
            # The next action comes back from the same call. The chunk's last one is dropped
            # and the next chunk starts with _act, exactly as a resumed run does.
            index = np.int32(d.update_index(int(steps + n)))
            states, msum, action, pending = self._step(states, row, self._obs, hparams, msum,
                                                       pending, do_update=do_update, index=index)
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
        self._fresh = True


def _stores_no_next_obs(driver: OffPolicyDriver) -> bool:
    """True if the driver's replay rebuilds next_obs (then fresh episodes need a ``cut``)."""
    return bool(getattr(driver.replay, "compact", False))
