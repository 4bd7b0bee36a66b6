"""Probe envs: rewards/termination/obs by hand, auto-reset via gymnax `step`, jit+vmap, spaces."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import spaces

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.envs import probes
from rlstab_jax.envs.probes import (
    ACTION_PROBES, PROBES, ProbeState, expected_q, expected_value, make_probe, optimal_action)

ONE_STEP = ("probe/constant", "probe/obs", "probe/action", "probe/obs-action")
KINDS = ("discrete", "continuous")


def _state(obs, time=0):
    return ProbeState(time=jnp.asarray(time, jnp.int32), obs=jnp.asarray([obs], jnp.float32))


def _act(env, a):
    return jnp.asarray([a], jnp.float32) if env.continuous else jnp.asarray(a, jnp.int32)


def _step(env, params, state, a, key=0):
    """Public gymnax step (auto-reset); returns python/numpy values."""
    obs, st, r, term, trunc, info = env.step(jax.random.key(key), state, _act(env, a), params)
    return np.asarray(obs), st, float(r), bool(term), bool(trunc), info


def test_registry_names_and_unknown_name():
    bases = ("constant", "obs", "delayed", "action", "obs-action", "never-ending")
    assert set(PROBES) == {f"probe/{b}-{k}" for b in bases for k in KINDS}
    assert set(ACTION_PROBES) == {f"probe/{b}-{k}" for b in ("action", "obs-action") for k in KINDS}
    with pytest.raises(ConfigError, match=r"unknown probe env 'probe/obs-actoin-discrete'.*did"):
        make_probe("probe/obs-actoin-discrete")
    env, params = make_probe("probe/never-ending-discrete", max_steps_in_episode=5)
    assert params.max_steps_in_episode == 5
    assert make_probe("probe/never-ending-discrete")[1].max_steps_in_episode == 20
    assert env == make_probe("probe/never-ending-discrete")[0]  # same jit cache entry
    assert hash(env) == hash(make_probe("probe/never-ending-discrete")[0])
    assert env != make_probe("probe/never-ending-continuous")[0]


@pytest.mark.parametrize("name", sorted(PROBES))
def test_spaces_and_reset(name):
    env, params = make_probe(name)
    assert env.name == name
    obs_space, act_space = env.observation_space(params), env.action_space(params)
    assert isinstance(obs_space, spaces.Box) and obs_space.shape == (1,)
    if name.endswith("-continuous"):
        assert isinstance(act_space, spaces.Box)
        assert (act_space.low, act_space.high, act_space.shape) == (-1.0, 1.0, (1,))
        assert env.num_actions == 1
    else:
        assert isinstance(act_space, spaces.Discrete) and act_space.n == 2 and env.num_actions == 2
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.shape == (1,) and obs.dtype == jnp.float32 and bool(obs_space.contains(obs))
    assert int(state.time) == 0
    assert bool(act_space.contains(act_space.sample(jax.random.key(1))))


@pytest.mark.parametrize("kind", KINDS)
def test_constant(kind):
    env, params = make_probe(f"probe/constant-{kind}")
    for a in (0, 1) if kind == "discrete" else (-1.0, 0.3, 1.0):
        obs, st, r, term, trunc, info = _step(env, params, _state(0.0), a)
        assert (r, term, trunc) == (1.0, True, False)
        assert np.asarray(info["final_observation"]).tolist() == [0.0] and obs.tolist() == [0.0]
        assert int(st.time) == 0  # auto-reset
    assert float(expected_value(env.name, jnp.zeros((1,)), 0.9)) == 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_obs_dependent(kind):
    env, params = make_probe(f"probe/obs-{kind}")
    obs = jax.vmap(env.reset, (0, None))(jax.random.split(jax.random.key(0), 64), params)[0]
    assert set(np.asarray(obs).ravel().tolist()) == {-1.0, 1.0}
    for o in (-1.0, 1.0):
        a = 0 if kind == "discrete" else 0.5
        _, st, r, term, trunc, info = _step(env, params, _state(o), a)
        assert (r, term, trunc) == (o, True, False)
        # The final obs repeats the obs: bootstrapping through `terminated` shows up as o/(1-g).
        assert np.asarray(info["final_observation"]).tolist() == [o]
        assert int(st.time) == 0
    np.testing.assert_array_equal(expected_value(env.name, jnp.array([[1.0], [-1.0]]), 0.9),
                                  [1.0, -1.0])


@pytest.mark.parametrize("kind", KINDS)
def test_delayed(kind):
    env, params = make_probe(f"probe/delayed-{kind}")
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.tolist() == [0.0]
    obs, state, r, term, trunc, _ = _step(env, params, state, 1 if kind == "discrete" else 0.0)
    assert obs.tolist() == [1.0] and (r, term, trunc) == (0.0, False, False)
    assert int(state.time) == 1
    obs, state, r, term, trunc, info = _step(env, params, state, 0 if kind == "discrete" else -1.0)
    assert (r, term, trunc) == (1.0, True, False)
    assert np.asarray(info["final_observation"]).tolist() == [1.0]
    assert obs.tolist() == [0.0] and int(state.time) == 0  # auto-reset to the first obs
    np.testing.assert_allclose(expected_value(env.name, jnp.array([[0.0], [1.0]]), 0.9),
                               [0.9, 1.0])


def test_action_dependent_discrete():
    env, params = make_probe("probe/action-discrete")
    assert _step(env, params, _state(0.0), 1)[2:5] == (1.0, True, False)
    assert _step(env, params, _state(0.0), 0)[2:5] == (-1.0, True, False)
    assert int(optimal_action(env.name, jnp.zeros((1,)))) == 1
    assert optimal_action(env.name, jnp.zeros((3, 1))).shape == (3,)


def test_action_dependent_continuous():
    env, params = make_probe("probe/action-continuous")
    # r = 1 - (clip(a) - 0.5)^2
    for a, want in ((0.5, 1.0), (0.0, 0.75), (-1.0, -1.25), (1.0, 0.75), (7.0, 0.75)):
        _, _, r, term, trunc, _ = _step(env, params, _state(0.0), a)
        assert (term, trunc) == (True, False)
        np.testing.assert_allclose(r, want, rtol=1e-6)
    np.testing.assert_allclose(optimal_action(env.name, jnp.zeros((2, 1))), [[0.5], [0.5]])


def test_obs_action_dependent_discrete():
    env, params = make_probe("probe/obs-action-discrete")
    for o, good in ((1.0, 1), (-1.0, 0)):
        assert _step(env, params, _state(o), good)[2:5] == (1.0, True, False)
        assert _step(env, params, _state(o), 1 - good)[2:5] == (-1.0, True, False)
    np.testing.assert_array_equal(optimal_action(env.name, jnp.array([[1.0], [-1.0]])), [1, 0])


def test_obs_action_dependent_continuous():
    env, params = make_probe("probe/obs-action-continuous")
    # r = 1 - (a - 0.5*obs)^2
    for o, a, want in ((1.0, 0.5, 1.0), (-1.0, -0.5, 1.0), (1.0, -0.5, 0.0), (-1.0, 1.0, -1.25)):
        _, _, r, term, trunc, _ = _step(env, params, _state(o), a)
        assert (term, trunc) == (True, False)
        np.testing.assert_allclose(r, want, rtol=1e-6)
    np.testing.assert_allclose(optimal_action(env.name, jnp.array([[1.0], [-1.0]])),
                               [[0.5], [-0.5]])


@pytest.mark.parametrize("kind", KINDS)
def test_never_ending_truncates_and_auto_resets(kind):
    env, params = make_probe(f"probe/never-ending-{kind}")
    obs, state = env.reset(jax.random.key(0), params)
    for t in range(1, 21):
        a = 0 if kind == "discrete" else 0.2
        obs, state, r, term, trunc, info = _step(env, params, state, a)
        assert (r, term) == (1.0, False)
        assert trunc == (t == 20)
        assert obs.tolist() == [0.0]
        assert np.asarray(info["final_observation"]).tolist() == [0.0]
    assert int(state.time) == 0  # reset after truncation
    np.testing.assert_allclose(expected_value(env.name, jnp.zeros((1,)), 0.99), 100.0, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(n for n in PROBES if n.rsplit("-", 1)[0] in ONE_STEP))
def test_jit_vmap_rollout_matches_expected_q(name):
    """Scanned, vmapped rollout of random actions: every reward equals expected_q(obs, a)."""
    env, params = make_probe(name)
    n_envs, n_steps = 8, 4

    @jax.jit
    def rollout(key):
        k_reset, k_run = jax.random.split(key)
        obs, state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, n_envs), params)

        def body(carry, k):
            obs, state = carry
            k_act, k_step = jax.random.split(k)
            act = jax.vmap(env.action_space(params).sample)(jax.random.split(k_act, n_envs))
            nobs, nstate, r, term, trunc, _ = jax.vmap(env.step, (0, 0, 0, None))(
                jax.random.split(k_step, n_envs), state, act, params)
            return (nobs, nstate), (obs, act, r, term, trunc)

        return jax.lax.scan(body, (obs, state), jax.random.split(k_run, n_steps))[1]

    obs, act, r, term, trunc = rollout(jax.random.key(3))
    assert obs.shape == (n_steps, n_envs, 1) and r.shape == term.shape == (n_steps, n_envs)
    assert r.dtype == jnp.float32 and term.dtype == jnp.bool_
    assert bool(term.all()) and not bool(trunc.any())
    np.testing.assert_allclose(r, expected_q(name, obs, act, 0.9), rtol=1e-6)
    if name in ACTION_PROBES:  # the optimal action earns the optimal value
        best = optimal_action(name, obs)
        np.testing.assert_allclose(expected_q(name, obs, best, 0.9), expected_value(name, obs, 0.9))
        assert bool((expected_q(name, obs, act, 0.9) <= 1.0 + 1e-6).all())


def test_step_env_under_vmap_matches_loop():
    env, params = make_probe("probe/obs-action-continuous")
    states = ProbeState(time=jnp.zeros((3,), jnp.int32), obs=jnp.array([[1.0], [-1.0], [1.0]]))
    acts = jnp.array([[0.5], [0.5], [-1.0]])
    keys = jax.random.split(jax.random.key(0), 3)
    _, _, r, term, _ = jax.jit(jax.vmap(env.step_env, (0, 0, 0, None)))(keys, states, acts, params)
    for i in range(3):
        st = jax.tree.map(lambda x: x[i], states)
        np.testing.assert_allclose(r[i], env.step_env(keys[i], st, acts[i], params)[2])
    np.testing.assert_allclose(r, [1.0, 0.0, -1.25], rtol=1e-6)
    assert bool(term.all())


@pytest.mark.parametrize("name", ["probe/constant-discrete", "probe/obs-continuous",
                                  "probe/delayed-discrete", "probe/never-ending-continuous"])
def test_optimal_action_rejected_for_action_independent_probes(name):
    with pytest.raises(ValueError, match="action-independent"):
        optimal_action(name, jnp.zeros((1,)))


def test_expected_q_action_independent_probes():
    obs = jnp.array([[0.0], [1.0]])
    np.testing.assert_allclose(expected_q("probe/delayed-discrete", obs, jnp.array([0, 1]), 0.5),
                               [0.5, 1.0])
    np.testing.assert_allclose(
        expected_q("probe/never-ending-continuous", obs, jnp.zeros((2, 1)), 0.9), [10.0, 10.0],
        rtol=1e-5)
    assert probes.NeverEndingConstant().default_params.max_steps_in_episode == 20
