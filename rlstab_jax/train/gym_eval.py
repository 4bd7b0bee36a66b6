"""Evaluation of seed-batched agents on fresh gymnasium vector envs."""

from __future__ import annotations

from typing import Any

import jax

from rlstab_jax.envs.gym_env import GymVecEnv
from rlstab_jax.train.evaluate import _act, evaluate_gym


def make_gym_evaluate(cfg: Any, agent: Any, n_seeds: int):
    """``evaluate(states, key, hparams) -> {name: [S]}`` using host-side envs."""
    episodes = cfg.train.eval_episodes

    @jax.jit
    def act_det(agent_states, obs, key, hp):
        keys = jax.random.split(key, n_seeds)
        return jax.vmap(lambda s, o, k, h: _act(agent, s, o, k, h, True))(
            agent_states, obs, keys, hp
        )

    @jax.jit
    def act_sto(agent_states, obs, key, hp):
        keys = jax.random.split(key, n_seeds)
        return jax.vmap(lambda s, o, k, h: _act(agent, s, o, k, h, False))(
            agent_states, obs, keys, hp
        )

    def act_fn(agent_states, obs, key, hp, deterministic):
        return (act_det if deterministic else act_sto)(agent_states, obs, key, hp)

    def make_vec(n):
        return GymVecEnv(cfg.env.id, n, kwargs=cfg.env.kwargs)

    def evaluate(states, keys, hp):
        key = keys[0]
        return evaluate_gym(
            make_vec, act_fn, states.agent, hp, key, n_seeds, episodes, seed=cfg.train.seed + 10_000
        )

    return evaluate
