"""gymnasium wrapper: registration, env_checker, render, pixels."""

import gymnasium
import jax
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rlstab_jax.envs.racer  # noqa: F401  (registers Racer-v0)
from rlstab_jax.envs.racer import controller as C

ACT = jax.jit(C.scripted_action)


@pytest.mark.filterwarnings("ignore:.*infinity.*")
def test_check_env_vector_obs():
    env = gymnasium.make("Racer-v0", render_mode="rgb_array")
    check_env(env.unwrapped)
    assert env.unwrapped.action_names == ("steer", "gas", "brake")


def test_scripted_episode_and_render():
    env = gymnasium.make("Racer-v0", render_mode="rgb_array", max_steps_in_episode=40)
    obs, info = env.reset(seed=0)
    u = env.unwrapped
    total, steps, done = 0.0, 0, False
    while not done:
        a = np.asarray(ACT(u._state, u.params))
        obs, r, term, trunc, info = env.step(a)
        total, steps, done = total + r, steps + 1, term or trunc
    assert trunc and not term and steps == 40  # truncation at the step limit, not termination
    assert 5.0 < total < 30.0 and info["speed"] > 10.0
    frame = env.render()
    assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8
    assert (frame == np.array([250, 210, 40], np.uint8)).all(-1).sum() > 5  # the trail


def test_pixels_variant():
    env = gymnasium.make("Racer-v0", pixels=True)
    obs, _ = env.reset(seed=1)
    assert obs.shape == (48, 48, 3) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
