"""Evaluation of seed-batched agents on fresh gymnasium vector envs."""

from __future__ import annotations

from typing import Any

import jax

from rlstab_jax.envs.gym_env import GymVecEnv
from rlstab_jax.train.evaluate import _act, evaluate_gym, init_carry


def make_gym_evaluate(cfg: Any, agent: Any, n_seeds: int,
                      member_seeds: tuple[int, ...] | None = None):
    """``evaluate(states, key, hparams) -> {name: [S]}`` using host-side envs.

    Evaluation episode ``e`` of a single run is seeded ``train.seed + 10_000 + e``; with
    ``member_seeds`` (numeric variants x seeds in one batch) member ``k``'s episodes use its own
    seed the same way, so its deterministic evaluation equals the single run with
    ``train.seed=member_seeds[k]``.
    """
    episodes = cfg.train.eval_episodes
    reset_seed: int | list[int] = cfg.train.seed + 10_000 if member_seeds is None else [
        s + 10_000 + e for s in member_seeds for e in range(episodes)]

    def make_act(deterministic: bool):
        @jax.jit
        def act(agent_states, obs, key, hp, carry, first):
            keys = jax.random.split(key, n_seeds)
            return jax.vmap(lambda s, o, k, h, c, f: _act(agent, s, o, k, h, deterministic, c, f))(
                agent_states, obs, keys, hp, carry, first
            )

        return act

    act_det, act_sto = make_act(True), make_act(False)

    def act_fn(agent_states, obs, key, hp, deterministic, carry, first):
        return (act_det if deterministic else act_sto)(agent_states, obs, key, hp, carry, first)

    def init_carry_fn():
        if agent.init_carry is None:
            return None
        return jax.vmap(lambda _: init_carry(agent, episodes))(jax.numpy.arange(n_seeds))

    def make_vec(n):
        return GymVecEnv(cfg.env.id, n, kwargs=cfg.env.kwargs)

    def evaluate(states, keys, hp):
        key = keys[0]
        return evaluate_gym(
            make_vec, act_fn, states.agent, hp, key, n_seeds, episodes,
            seed=reset_seed, init_carry_fn=init_carry_fn,
        )

    return evaluate
