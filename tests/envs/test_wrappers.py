"""FrameStack and HistoryContext wrappers: layouts, resets and final observations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

from rlstab_jax.envs.wrappers import FrameStack, HistoryContext
from rlstab_jax.nn.context import split_context_obs


@struct.dataclass
class _State(environment.EnvState):
    time: jax.Array


class _Counter(environment.Environment):
    """obs = time (as a [2, 2, 1] image or a [2] vector); terminates after 3 steps."""

    def __init__(self, pixels=True, discrete=False):
        super().__init__()
        self.pixels, self.discrete = pixels, discrete

    def _obs(self, t):
        shape = (2, 2, 1) if self.pixels else (2,)
        return jnp.full(shape, t, jnp.float32)

    def reset_env(self, key, params):
        return self._obs(0.0), _State(time=jnp.zeros((), jnp.int32))

    def step_env(self, key, state, action, params):
        t = state.time + 1
        return self._obs(t.astype(jnp.float32)), _State(time=t), 1.0, t >= 3, {}

    def observation_space(self, params):
        return spaces.Box(0.0, 10.0, (2, 2, 1) if self.pixels else (2,), jnp.float32)

    def action_space(self, params):
        return spaces.Discrete(3) if self.discrete else spaces.Box(-2.0, 2.0, (1,), jnp.float32)

    @property
    def default_params(self):
        return environment.EnvParams(max_steps_in_episode=100)


def _run(env, actions):
    obs, state = env.reset(jax.random.key(0))
    out = [(obs, None)]
    for i, a in enumerate(actions):
        obs, state, _, term, trunc, info = env.step(jax.random.key(i + 1), state, a)
        out.append((obs, info["final_observation"]))
    return out


def test_frame_stack_channels_oldest_first_and_reset():
    env = FrameStack(_Counter(), 3)
    assert env.observation_space(env.default_params).shape == (2, 2, 3)
    steps = _run(env, [jnp.zeros(1)] * 4)
    np.testing.assert_array_equal(steps[0][0][0, 0], [0, 0, 0])  # reset: tiled first obs
    np.testing.assert_array_equal(steps[2][0][0, 0], [0, 1, 2])  # after 2 steps
    # Step 3 terminates: the final obs holds the true last frames, the new obs is a fresh stack.
    np.testing.assert_array_equal(steps[3][1][0, 0], [1, 2, 3])
    np.testing.assert_array_equal(steps[3][0][0, 0], [0, 0, 0])
    np.testing.assert_array_equal(steps[4][0][0, 0], [0, 0, 1])
    with pytest.raises(ValueError, match="k >= 1"):
        FrameStack(_Counter(), 0)


def test_history_context_layout_matches_split():
    k = 3
    env = HistoryContext(_Counter(pixels=False), k)
    assert env.observation_space(env.default_params).shape == (2 + k * 3,)
    acts = [jnp.array([2.0]), jnp.array([-1.0]), jnp.array([0.0]), jnp.array([1.0])]
    steps = _run(env, acts)
    cur, hist = split_context_obs(steps[2][0][None], 1, k)
    np.testing.assert_array_equal(cur[0], [2, 2])
    # Oldest first, zero-filled; actions mapped from the Box [-2, 2] back to [-1, 1].
    np.testing.assert_allclose(hist[0], [[0, 0, 0], [0, 0, 1.0], [1, 1, -0.5]])
    # Termination at step 3: final obs keeps the history, the new episode starts empty.
    _, final_hist = split_context_obs(steps[3][1][None], 1, k)
    np.testing.assert_allclose(final_hist[0], [[0, 0, 1.0], [1, 1, -0.5], [2, 2, 0.0]])
    _, new_hist = split_context_obs(steps[3][0][None], 1, k)
    assert np.all(new_hist == 0)
    _, hist4 = split_context_obs(steps[4][0][None], 1, k)
    np.testing.assert_allclose(hist4[0, -1], [0, 0, 0.5])


def test_history_context_discrete_one_hot():
    env = HistoryContext(_Counter(pixels=False, discrete=True), 1)
    steps = _run(env, [jnp.int32(2)])
    np.testing.assert_array_equal(steps[1][0], [1, 1, 0, 0, 0, 0, 1])


def test_wrapped_pendulum_is_accepted_by_sac_context():
    from rlstab_jax.agents.sac import SACConfig, make_agent
    from rlstab_jax.envs.registry import make_jax

    env = make_jax("Pendulum-v1", {}, 0, 2)
    assert env.spec.obs_shape == (3 + 2 * (3 + 1),)
    make_agent(SACConfig(context_len=2, context_dim=8, context_heads=2), env.spec)
