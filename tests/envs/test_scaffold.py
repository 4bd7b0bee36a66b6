"""Scaffold-v0: masks, determinism, episode end, jit/vmap, spec, baselines, render, gymnasium."""

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.envs import registry
from rlstab_jax.envs.scaffold import make_scaffold
from rlstab_jax.envs.scaffold.baselines import (
    evaluate_policy, heuristic_policy, random_policy, split_masks,
)
from rlstab_jax.envs.scaffold.env import (
    ADVANCE, BLENDING, EMPTY, FOSSILIZE, GERMINATE, HEADS, TRAINING, WAIT, action_masks,
)
from rlstab_jax.envs.scaffold.render import render_frame

ENV, P = make_scaffold()


def _act(op, slot=0, bp=0, style=0, tempo=1, target=2, speed=1, curve=2):
    return jnp.array([op, slot, bp, style, tempo, target, speed, curve], jnp.int32)


def test_obs_layout_matches_spec_and_masks_in_obs_equal_env_masks():
    spec = registry.make_jax("Scaffold-v0", {}).spec
    obs, s = ENV.reset_env(jax.random.PRNGKey(0), P)
    assert obs.shape == spec.obs_shape and spec.action_kind == "factored"
    assert spec.action_names == HEADS
    assert spec.max_episode_steps >= 150
    m = split_masks(obs[None], P)
    for h, v in action_masks(s, P).items():
        np.testing.assert_array_equal(m[h][0], v)
    # at reset only WAIT and GERMINATE are possible; every slot is empty and valid
    assert action_masks(s, P)["op"].tolist() == [True, True, False, False, False, False]
    assert bool(action_masks(s, P)["blueprint"][0])


def test_lifecycle_and_invalid_actions_fail_without_effect():
    _, s = ENV.reset_env(jax.random.PRNGKey(1), P)
    k = jax.random.PRNGKey(0)
    obs, s2, r, _, info = ENV.step_env(k, s, _act(ADVANCE, 0), P)  # nothing to advance
    assert not bool(info["success"]) and s2.stage.tolist() == [EMPTY] * 3
    assert obs[2] == 0.0  # last_action_success feature
    _, s, _, _, info = ENV.step_env(k, s, _act(GERMINATE, 1), P)
    assert bool(info["success"]) and int(s.stage[1]) == TRAINING
    assert bool(action_masks(s, P)["op"][ADVANCE]) is False  # not trained long enough
    for _ in range(P.min_train_steps):
        _, s, _, _, _ = ENV.step_env(k, s, _act(WAIT), P)
    assert float(s.q[1]) > 0 and bool(action_masks(s, P)["op"][ADVANCE])
    _, s, _, _, _ = ENV.step_env(k, s, _act(ADVANCE, 1), P)
    assert int(s.stage[1]) == BLENDING
    while float(s.alpha[1]) < 0.5:
        _, s, _, _, _ = ENV.step_env(k, s, _act(WAIT), P)
    _, s, r, _, info = ENV.step_env(k, s, _act(FOSSILIZE, 1), P)
    assert bool(info["success"]) and float(s.frozen[1]) > 0
    assert float(s.acc) > P.base_acc


def test_deterministic_given_keys_and_jit_vmap():
    keys = jax.random.split(jax.random.PRNGKey(2), 4)

    def episode(key):
        obs, s = ENV.reset_env(key, P)

        def body(c, k):
            obs, s = c
            a = random_policy(k, obs[None], P)[0]
            obs, s, r, term, trunc, _ = ENV.step(k, s, a, P)
            return (obs, s), (r, term | trunc)

        _, (r, d) = jax.lax.scan(body, (obs, s), jax.random.split(key, 160))
        return r, d

    run = jax.jit(jax.vmap(episode))
    r1, d1 = run(keys)
    np.testing.assert_array_equal(r1, run(keys)[0])  # same keys, same episode
    r2, _ = jax.vmap(episode)(keys)  # eager: same up to float rounding
    np.testing.assert_allclose(r1, r2, rtol=1e-4, atol=1e-5)
    assert not np.allclose(r1[0], r1[1])
    # the episode ends (truncation) exactly at the horizon, then auto-resets
    assert d1[:, : P.max_steps_in_episode - 1].sum() == 0
    assert bool(jnp.all(d1[:, P.max_steps_in_episode - 1]))


def test_heuristic_beats_random_and_unknown_param_is_one_line():
    key = jax.random.PRNGKey(0)
    rand = jax.jit(lambda k: evaluate_policy(random_policy, P, k, 64))(key)
    heur = jax.jit(lambda k: evaluate_policy(heuristic_policy, P, k, 64))(key)
    assert float(heur.mean()) > float(rand.mean()) + 1.0
    with pytest.raises(ConfigError, match="unknown Scaffold parameter 'n_slot'"):
        make_scaffold(n_slot=4)


def test_render_and_gymnasium_env():
    env = gymnasium.make("Scaffold-v0", render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    for _ in range(5):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        assert np.isfinite(r) and not term
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape == (3 * 40, 2 * 150, 3)
    _, s = ENV.reset_env(jax.random.PRNGKey(0), P)
    _, s, _, _, _ = ENV.step_env(jax.random.PRNGKey(0), s, _act(GERMINATE, 0), P)
    img = np.asarray(render_frame(s, P))
    assert (img[:40, :2] != 15).any()  # slot 0 drawn at step 0
    env.close()


def test_gymnasium_driver_sees_the_factored_spec():
    """The gymnasium vector env reports the pure-JAX env's factored EnvSpec (not bare
    MultiDiscrete), so ``env.backend=gymnasium`` trains the multi-head PPO."""
    from rlstab_jax.envs.gym_env import GymVecEnv

    venv = GymVecEnv("Scaffold-v0", 2)
    assert venv.spec == ENV.env_spec(P, "Scaffold-v0")
    obs = venv.reset(seed=0)
    a = np.zeros((2, len(HEADS)), np.int32)  # WAIT
    obs2, r, term, trunc, _ = venv.step(a)
    assert obs2.shape == obs.shape == (2,) + venv.spec.obs_shape and np.isfinite(r).all()
    venv.close()
