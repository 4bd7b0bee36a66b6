"""Dreamer's weight-averaged greedy policy (``agent.eval_ema``): EMA world model + actor."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.agents.dreamer.testing import DISCRETE_SPEC, build, make_seq, tiny_cfg
from rlstab_jax.config.errors import ConfigError
from rlstab_jax.train.testing import assert_cli_rejects

N_ENVS = 6


def _update(agent, state, hp, seed, index=0):
    seq = make_seq(DISCRETE_SPEC, 4, 8, seed=seed, ends=((0, 3),))
    return jax.jit(agent.update)(state, jax.tree.map(lambda x: x[None], seq),
                                 jax.random.key(seed), hp, jnp.int32(index))[0]


def _max_diff(a, b) -> float:
    return max(jax.tree.leaves(jax.tree.map(lambda x, y: float(jnp.abs(x - y).max()), a, b)))


def _flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])


def test_off_keeps_no_averaged_copy_and_the_off_state_tree():
    _, _, off = build(tiny_cfg())
    _, _, on = build(tiny_cfg(eval_ema=True))
    assert off.eval_wm_params is None and off.eval_actor_params is None
    n_off, n_on = len(jax.tree.leaves(off)), len(jax.tree.leaves(on))
    assert n_on == n_off + len(jax.tree.leaves(on.wm_params)) + len(
        jax.tree.leaves(on.actor_params))
    assert "eval_ema" not in tiny_cfg().architecture_keys()
    assert "eval_ema" in tiny_cfg(eval_ema=True).architecture_keys()


def test_rate_one_keeps_the_averaged_weights_equal_to_the_online_weights():
    agent, hp, state = build(tiny_cfg(eval_ema=True))
    hp = dict(hp, eval_ema_tau=jnp.float32(1.0))
    for i in range(2):
        state = _update(agent, state, hp, seed=i, index=i)
    assert _max_diff(state.eval_wm_params, state.wm_params) == 0.0
    assert _max_diff(state.eval_actor_params, state.actor_params) == 0.0


def test_rate_below_one_is_the_polyak_average_of_each_update():
    agent, hp, state0 = build(tiny_cfg(eval_ema=True))
    hp = dict(hp, eval_ema_tau=jnp.float32(0.25))
    state1 = _update(agent, state0, hp, seed=3)
    assert int(state1.ac_steps) == 1  # the actor-critic ran, so the actor moved too
    for ema, old, online in ((state1.eval_wm_params, state0.wm_params, state1.wm_params),
                             (state1.eval_actor_params, state0.actor_params,
                              state1.actor_params)):
        want = jax.tree.map(lambda o, n: 0.75 * o + 0.25 * n, old, online)
        np.testing.assert_allclose(_flat(ema), _flat(want), rtol=1e-6, atol=1e-7)
        assert _max_diff(ema, online) > 0.0


def test_update_with_the_average_on_leaves_the_online_weights_unchanged():
    agent_off, hp, state_off = build(tiny_cfg())
    agent_on, hp_on, state_on = build(tiny_cfg(eval_ema=True))
    new_off = _update(agent_off, state_off, hp, seed=5)
    new_on = _update(agent_on, state_on, hp_on, seed=5)
    for name in ("wm_params", "actor_params", "critic_params"):
        np.testing.assert_array_equal(_flat(getattr(new_on, name)), _flat(getattr(new_off, name)))


def _acts(agent, state, hp, deterministic):
    carry = agent.init_carry(N_ENVS)
    obs = jnp.asarray(np.random.default_rng(0).normal(size=(N_ENVS, 4)), jnp.float32)
    first = jnp.ones((N_ENVS,), bool)
    act = jax.jit(agent.act, static_argnums=(4,))
    action, new_carry, _ = act(state, obs, jax.random.key(0), hp, deterministic, carry, first)
    return np.asarray(action), np.asarray(new_carry.z)


def test_greedy_policy_reads_the_averaged_weights_and_sampling_the_online_ones():
    agent, hp, state = build(tiny_cfg(eval_ema=True))
    # an averaged copy that differs from the online weights: a second initialisation
    _, _, other = build(tiny_cfg(eval_ema=True), seed=1)
    mixed = state.replace(eval_wm_params=other.wm_params, eval_actor_params=other.actor_params)
    _, z_online = _acts(agent, state, hp, True)
    a_avg, z_avg = _acts(agent, mixed, hp, True)
    a_ref, z_ref = _acts(agent, other, hp, True)
    np.testing.assert_array_equal(z_avg, z_ref)
    np.testing.assert_array_equal(a_avg, a_ref)
    assert np.abs(z_avg - z_online).max() > 0
    # sampling ignores the averaged copy
    for x, y in zip(_acts(agent, state, hp, False), _acts(agent, mixed, hp, False)):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("tau", [0.0, -0.1, 1.5])
def test_config_rejects_a_rate_outside_zero_one(tau):
    with pytest.raises(ConfigError, match=rf"agent.eval_ema_tau={tau} must be in \(0, 1\]"):
        tiny_cfg(eval_ema_tau=tau).validate()


def test_cli_rejects_a_zero_rate_in_one_line(tmp_path):
    assert_cli_rejects(["--config", "dreamer/cartpole", "agent.eval_ema=true",
                        "agent.eval_ema_tau=0"],
                       tmp_path / "run", "agent.eval_ema_tau=0", "(0, 1]")
