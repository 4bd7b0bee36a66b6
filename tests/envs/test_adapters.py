"""gymnax and gymnasium adapters: spaces, action rescaling, true final observations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.config.loader import load_config
from rlstab_jax.envs import registry
from rlstab_jax.envs.gym_env import GymVecEnv
from rlstab_jax.train.session import build_session


def test_resolve_backends():
    assert registry.resolve("Pendulum-v1", "auto").backend == "jax"
    assert registry.resolve("Pendulum-v1", "gymnasium").backend == "gymnasium"
    assert registry.resolve("probe/obs-discrete", "auto").backend == "jax"
    assert registry.resolve("MountainCarContinuous-v0", "gymnasium").backend == "gymnasium"
    with pytest.raises(ConfigError, match="did you mean 'Pendulum-v1'"):
        registry.resolve("Pendulum-v2", "auto")
    with pytest.raises(ConfigError, match="no pure-JAX implementation"):
        registry.resolve("CarRacing-v3", "gymnax")


def test_gymnax_env_rescales_actions_and_reports_spec():
    env = registry.make_jax("Pendulum-v1", {})
    assert env.spec.action_kind == "continuous" and env.spec.action_dim == 1
    assert env.spec.action_low == (-2.0,) and env.spec.action_high == (2.0,)
    np.testing.assert_allclose(
        env.to_env_action(jnp.array([-1.0, 0.0, 1.0, 3.0])), [-2.0, 0.0, 2.0, 2.0]
    )
    state, obs = env.reset(jax.random.PRNGKey(0))
    assert obs.shape == (3,) and obs.dtype == jnp.float32


def test_gymnax_truncation_returns_true_final_obs():
    env = registry.make_jax("probe/never-ending-continuous", {"max_steps_in_episode": 3})
    state, obs = env.reset(jax.random.PRNGKey(0))
    outs = []
    for t in range(3):
        state, obs, r, term, trunc, final = env.step(jax.random.PRNGKey(t), state, jnp.zeros(1))
        outs.append((bool(term), bool(trunc)))
    assert outs == [(False, False), (False, False), (False, True)]


def test_gymnasium_truncation_gives_final_obs_and_is_not_terminal():
    venv = GymVecEnv("Pendulum-v1", 2)
    obs = venv.reset(seed=0)
    assert obs.shape == (2, 3)
    for t in range(200):
        obs, r, term, trunc, final = venv.step(np.zeros((2, 1), np.float32))
        if t < 199:
            np.testing.assert_array_equal(final, obs)
            assert not trunc.any()
        prev_final = final
    assert trunc.all() and not term.any()
    # the returned obs is a fresh reset; final_obs is the true last state (|theta_dot| <= 8)
    assert not np.allclose(prev_final, obs)
    venv.close()


def test_gymnasium_unknown_id_is_config_error():
    with pytest.raises(ConfigError):
        load_config(overrides=["env.id=NoSuchEnv-v0"]).env and build_session(
            load_config(overrides=["env.id=NoSuchEnv-v0", "env.backend=gymnasium"])
        )


@pytest.mark.parametrize(
    "env_id, backend",
    [("CartPole-v1", "auto"), ("CartPole-v1", "gymnasium"), ("probe/obs-discrete", "auto")],
)
def test_sac_on_discrete_is_a_clear_startup_error(env_id, backend):
    cfg = load_config(overrides=[f"env.id={env_id}", f"env.backend={backend}"])
    with pytest.raises(ConfigError, match="needs a continuous"):
        build_session(cfg)
