"""Assemble a training session from a config: env, agent, driver, evaluation, hparams, keys.

The session is pure set-up; ``rlstab_jax.train.loop`` runs it. Seed ``i`` of a run with
``train.seeds=N`` gets key ``PRNGKey(train.seed + i)``, so it equals a single run with
``train.seed=train.seed+i``. When several devices are visible, the seed axis is sharded over
them with ``jax.sharding`` (``NamedSharding(Mesh(devices, ("seed",)), P("seed"))``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from rlstab_jax.agents import registry
from rlstab_jax.config.errors import ConfigError
from rlstab_jax.config.loader import Config
from rlstab_jax.config.split import extract_hparams
from rlstab_jax.envs import registry as env_registry
from rlstab_jax.envs.spec import EnvSpec
from rlstab_jax.train.evaluate import make_jax_evaluate
from rlstab_jax.train.fingerprint import run_fingerprint


@dataclasses.dataclass
class Session:
    cfg: Config
    spec: EnvSpec
    backend: str  # "jax" | "gymnasium"
    agent: Any
    kind: str
    hparams: Any  # leaves [S]
    keys: jax.Array  # [S, 2]
    driver: Any
    runner: Any  # GymOffPolicyRunner or None
    evaluate: Any  # jitted (states, key, hparams) -> dict of [S]
    chunk: Any  # jitted chunk
    steps_per_chunk: int
    sharding: Any = None
    # Per-member seed and extra metric-row columns when the batch is not simply seeds
    # train.seed + i (an ablation cell vmaps numeric variants x seeds: member j*S + k runs
    # seed k of numeric variant j and equals a single run with that seed and those values).
    seed_ids: tuple[int, ...] | None = None
    labels: tuple[dict[str, Any], ...] | None = None

    @property
    def n_seeds(self) -> int:
        return self.cfg.train.seeds

    @property
    def member_seeds(self) -> tuple[int, ...]:
        """The seed of each batch member (default ``train.seed + i``)."""
        if self.seed_ids is not None:
            return self.seed_ids
        return tuple(self.cfg.train.seed + i for i in range(self.n_seeds))

    def init_state(self) -> Any:
        if self.runner is not None:
            return self.runner.init(self.keys, self.hparams)
        return jax.jit(self.driver.init)(self.keys, self.hparams)

    def abstract_state(self) -> Any:
        if self.runner is not None:
            return jax.eval_shape(self.runner.init, self.keys, self.hparams)
        return jax.eval_shape(self.driver.init, self.keys, self.hparams)

    def place(self, tree: Any) -> Any:
        """Put a seed-batched pytree on the devices (sharded over the seed axis if possible)."""
        if self.sharding is None:
            return tree
        return jax.device_put(tree, self.sharding)

    def fingerprint(self) -> dict[str, Any]:
        """Config keys a checkpoint depends on (``train.fingerprint.run_fingerprint``)."""
        return run_fingerprint(self.cfg, self.spec, self.backend)


def seed_keys(seed: int, n: int) -> jax.Array:
    return jnp.stack([jax.random.PRNGKey(seed + i) for i in range(n)])


def keys_for(seeds: tuple[int, ...]) -> jax.Array:
    """``PRNGKey(s)`` for each member seed, stacked ``[S, 2]``."""
    return jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])


def batch_hparams(hparams: dict[str, jax.Array], n: int) -> dict[str, jax.Array]:
    return {k: jnp.broadcast_to(jnp.asarray(v, jnp.float32), (n,)) for k, v in hparams.items()}


def _sharding(n_seeds: int) -> Any:
    devices = jax.devices()
    if len(devices) < 2 or n_seeds % len(devices):
        return None
    return NamedSharding(Mesh(np.array(devices), ("seed",)), PartitionSpec("seed"))


def _demo_mixer(cfg: Config, spec: EnvSpec) -> Any:
    if not cfg.replay.demos:
        return None
    from rlstab_jax.replay.demos import load_demos
    from rlstab_jax.train.demo_mix import DemoMixer

    data = load_demos(cfg.replay.demos, spec)
    return DemoMixer.from_arrays(
        data, cfg.replay.demo_weight, cfg.replay.demo_decay_samples, cfg.replay.demo_repeat,
        cfg.replay.capacity,
    )


def build_session(
    cfg: Config,
    hparams: dict[str, Any] | None = None,
    seeds: tuple[int, ...] | None = None,
    labels: tuple[dict[str, Any], ...] | None = None,
) -> Session:
    """Build everything a run needs.

    Args:
      cfg: resolved config; ``train.seeds`` is the batch size S.
      hparams: overrides the config's hyper-parameters (leaves ``[S]``).
      seeds: the seed of each member (default ``train.seed + i``); member i trains with
        ``PRNGKey(seeds[i])`` and evaluates like a single run with ``train.seed=seeds[i]``.
      labels: extra per-member columns for the metric rows (e.g. the variant name).
    """
    entry = registry.get(cfg.agent_name)
    choice = env_registry.resolve(cfg.env.id, cfg.env.backend)
    S, n_envs = cfg.train.seeds, cfg.env.n_envs
    hp = hparams if hparams is not None else batch_hparams(extract_hparams(cfg.agent), S)
    if seeds is not None and len(seeds) != S:
        raise ConfigError(f"build_session: {len(seeds)} member seeds for train.seeds={S}")
    # gymnasium: sub-env j of member i resets with seed seeds[i] + j, as in a single run with
    # train.seed=seeds[i] (an int reset seed gives sub-env j of the whole vector env seed + j)
    env_seed: int | list[int] = cfg.train.seed if seeds is None else [
        int(s) + j for s in seeds for j in range(n_envs)]
    keys = seed_keys(cfg.train.seed, S) if seeds is None else keys_for(tuple(seeds))
    sharding = _sharding(S)
    runner = None
    if choice.backend == "jax":
        env = env_registry.make_jax(
            cfg.env.id, cfg.env.kwargs, cfg.env.frame_stack, cfg.env.history
        )
        spec = env.spec
    else:
        if cfg.env.frame_stack or cfg.env.history:
            raise ConfigError(
                "env.frame_stack/env.history need a pure-JAX env (env.backend=gymnax)"
            )
        from rlstab_jax.envs.gym_env import GymVecEnv

        venv = GymVecEnv(
            cfg.env.id, S * n_envs, asynchronous=cfg.env.async_vector, kwargs=cfg.env.kwargs
        )
        spec = venv.spec
        env = _SpecOnly(spec)
    agent = entry.make_agent(cfg.agent, spec)
    max_steps = spec.max_episode_steps or 1000
    if entry.kind == "off_policy":
        from rlstab_jax.replay.compact import compact_layout
        from rlstab_jax.train.offpolicy import make_offpolicy_driver

        compact, frames = compact_layout(cfg.replay.layout, spec.obs_dtype,
                                         cfg.env.frame_stack, cfg.env.history)
        driver = make_offpolicy_driver(
            agent,
            env,
            n_envs=n_envs,
            capacity=cfg.replay.capacity,
            learning_starts=cfg.train.learning_starts,
            chunk_steps=cfg.train.chunk_steps,
            demos=_demo_mixer(cfg, spec),
            compact=compact,
            frame_stack=frames,
            final_fraction=cfg.replay.final_fraction,
            priority_exponent=cfg.replay.priority_exponent if cfg.replay.priority else None,
        )
        steps_per_chunk = driver.chunk_iters * n_envs
        if choice.backend == "gymnasium":
            from rlstab_jax.train.offpolicy_gym import GymOffPolicyRunner

            runner = GymOffPolicyRunner(driver, venv, S, env_seed,
                                        in_scan=cfg.env.host_step == "scan")
            chunk = lambda st, hp_: runner.chunk(st, hp_, driver.chunk_iters)  # noqa: E731
        else:
            chunk = jax.jit(driver.chunk, donate_argnums=0)
    else:
        from rlstab_jax.train.onpolicy import make_onpolicy_driver

        driver = make_onpolicy_driver(agent, env, n_envs=n_envs, chunk_steps=cfg.train.chunk_steps)
        steps_per_chunk = driver.chunk_iters * agent.rollout_len * n_envs
        if choice.backend == "gymnasium":
            from rlstab_jax.train.onpolicy_gym import GymOnPolicyRunner

            runner = GymOnPolicyRunner(driver, venv, S, env_seed)
            chunk = lambda st, hp_: runner.chunk(st, hp_, driver.chunk_iters)  # noqa: E731
        else:
            chunk = jax.jit(driver.chunk, donate_argnums=0)
    if choice.backend == "jax":
        ev = make_jax_evaluate(agent, env, cfg.train.eval_episodes, max_steps)
        evaluate = jax.jit(lambda st, keys, hp_: jax.vmap(ev)(st.agent, keys, hp_))
    else:
        from rlstab_jax.train.gym_eval import make_gym_evaluate

        evaluate = make_gym_evaluate(cfg, agent, S, seeds)
    return Session(
        cfg,
        spec,
        choice.backend,
        agent,
        entry.kind,
        hp,
        keys,
        driver,
        runner,
        evaluate,
        chunk,
        steps_per_chunk,
        sharding,
        tuple(int(x) for x in seeds) if seeds is not None else None,
        tuple(labels) if labels is not None else None,
    )


@dataclasses.dataclass(frozen=True)
class _SpecOnly:
    """Stands in for a JaxEnv where only the spec is needed (gymnasium backend)."""

    spec: EnvSpec
