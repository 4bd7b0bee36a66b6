"""Baseline policies for ``Scaffold-v0``: uniform random over valid actions and a heuristic.

Both are pure functions ``(key, obs[N, D]) -> action[N, 8]`` reading only the observation
(the validity masks it ends with), so they run inside ``jax.vmap``/``lax.scan`` like an agent.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rlstab_jax.envs.scaffold.env import (
    ADVANCE, BASE_FEATURES, BLENDING, FOSSILIZE, GERMINATE, HEADS, SLOT_FEATURES, TRAINING,
    WAIT, EnvParams, head_sizes,
)


def split_masks(obs: jax.Array, params: EnvParams) -> dict[str, jax.Array]:
    """``{head: [N, k] bool}`` from the observation's trailing masks."""
    sizes = head_sizes(params)
    off = obs.shape[-1] - sum(sizes)
    out = {}
    for h, k in zip(HEADS, sizes):
        out[h] = obs[..., off:off + k] > 0.5
        off += k
    return out


def random_policy(key: jax.Array, obs: jax.Array, params: EnvParams) -> jax.Array:
    """Each head uniform over its valid entries (invalid op/slot pairs simply fail)."""
    masks = split_masks(obs, params)
    keys = jax.random.split(key, len(HEADS))
    acts = [jax.random.categorical(k, jnp.where(masks[h], 0.0, -1e9)) for k, h in
            zip(keys, HEADS)]
    return jnp.stack(acts, -1).astype(jnp.int32)


def heuristic_policy(key: jax.Array, obs: jax.Array, params: EnvParams) -> jax.Array:
    """A sensible hand-written schedule, one rule per priority:

    1. FOSSILIZE a blending seed whose alpha reached 0.95;
    2. ADVANCE a seed that has trained ``min_train_steps`` (blend to alpha 1.0, default speed);
    3. GERMINATE into the first empty slot when fewer than 2 seeds are live: the first
       available blueprint, style 0, tempo x1, alpha target 1.0;
    4. otherwise WAIT.
    It does not read the task style hint and never scaffolds on purpose.
    """
    del key
    S = params.n_slots
    masks = split_masks(obs, params)
    slots = obs[..., BASE_FEATURES:BASE_FEATURES + S * SLOT_FEATURES].reshape(
        obs.shape[:-1] + (S, SLOT_FEATURES))
    stage = jnp.argmax(slots[..., :5], -1)
    alpha = slots[..., 6]
    trained = slots[..., 9] > 0.5
    live = (stage == TRAINING) | (stage == BLENDING)
    can_fossil = (stage == BLENDING) & (alpha >= 0.95)
    can_adv = (stage == TRAINING) & trained
    empty = stage == 0
    can_germ = empty.any(-1) & (live.sum(-1) < 2)
    op = jnp.where(can_fossil.any(-1), FOSSILIZE,
                   jnp.where(can_adv.any(-1), ADVANCE, jnp.where(can_germ, GERMINATE, WAIT)))
    slot = jnp.where(op == FOSSILIZE, jnp.argmax(can_fossil, -1),
                     jnp.where(op == ADVANCE, jnp.argmax(can_adv, -1), jnp.argmax(empty, -1)))
    blueprint = jnp.argmax(masks["blueprint"], -1)
    z = jnp.zeros_like(op)
    return jnp.stack([op, slot, blueprint, z, z + 1, z + 2, z + 1, z + 2], -1).astype(jnp.int32)


def evaluate_policy(policy, params: EnvParams, key: jax.Array, n_episodes: int) -> jax.Array:
    """Undiscounted returns ``[n_episodes]`` of ``policy(key, obs[N, D], params)``."""
    from rlstab_jax.envs.scaffold.env import Scaffold

    env = Scaffold()
    k_reset, k_run = jax.random.split(key)
    obs, state = jax.vmap(env.reset_env, (0, None))(jax.random.split(k_reset, n_episodes), params)

    def body(carry, k):
        obs, state, ret = carry
        k_pol, k_env = jax.random.split(k)
        a = policy(k_pol, obs, params)
        obs, state, r, _, _ = jax.vmap(env.step_env, (0, 0, 0, None))(
            jax.random.split(k_env, n_episodes), state, a, params)
        return (obs, state, ret + r), None

    (_, _, ret), _ = jax.lax.scan(body, (obs, state, jnp.zeros(n_episodes)),
                                  jax.random.split(k_run, int(params.max_steps_in_episode)))
    return ret
