"""Field report 004's multi-head PPO validation checklist, on the real agent and env.

Tiny LSTM PPO on Scaffold-v0; rollouts come from the on-policy driver's own scan.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.agents.ppo.testing import build, rollout, with_hp
from rlstab_jax.envs.scaffold.env import ADVANCE, HEADS, OP_HEADS, WAIT, action_masks
from rlstab_jax.stability import multihead as mh


@pytest.fixture(scope="module")
def setup():
    cfg, env, agent, hp, driver = build()
    s, ro, last = rollout(driver, hp, jax.random.PRNGKey(0))
    agent = dataclasses.replace(agent, update=jax.jit(agent.update), act=jax.jit(
        agent.act, static_argnums=4))
    return cfg, env, agent, hp, driver, s, ro, last


def _force_op(ro, op):
    """A synthetic batch: every step takes ``op``, heads the op does not use record noop 0
    (as ``act`` does) and every action is valid under the stored masks."""
    active = set(OP_HEADS[op])
    a = jnp.stack([jnp.full(ro.action.shape[:2], op if h == "op" else
                            (ro.action[..., i] if h in active else 0), jnp.int32)
                   for i, h in enumerate(HEADS)], -1)
    info = dict(ro.policy_info, masks=jax.tree.map(jnp.ones_like, ro.policy_info["masks"]))
    return ro.replace(action=a, policy_info=info)


def _update(setup, ro, **hp_over):
    _, _, agent, hp, _, s, _, last = setup
    return agent.update(s.agent, ro, last, jax.random.PRNGKey(1), with_hp(hp, **hp_over))


@pytest.mark.parametrize("op", [WAIT, ADVANCE])
def test_inactive_heads_get_no_policy_gradient(setup, op):  # report 004 §1 (WAIT), §2 (ADVANCE)
    ro = _force_op(setup[6], op)
    new, m = _update(setup, ro, ent_coef=0.0, vf_coef=0.0)
    active = set(OP_HEADS[op])
    for h in HEADS:
        g = float(m[f"grad_norm/{h}"])
        if h in active:
            assert g > 0, h
        else:
            assert g == 0.0, f"{h} got gradient {g} under op {op}"
            old = setup[5].agent.params["params"][f"heads_{h}"]
            for a, b in zip(jax.tree.leaves(old), jax.tree.leaves(
                    new.params["params"][f"heads_{h}"])):
                np.testing.assert_array_equal(a, b)
    # the advantage seen per head is exactly zero outside the op's row of the table
    adv = jnp.ones(ro.action.shape[:2]).reshape(-1)
    masks = mh.causal_head_masks(ro.action[..., 0].reshape(-1), np.array(
        [[h in row for h in HEADS] for row in OP_HEADS]), HEADS)
    per = mh.per_head_advantages(adv, masks)
    assert all(float(jnp.abs(per[h]).sum()) == 0 for h in HEADS if h not in active)


def test_rollout_log_probs_finite_and_inactive_heads_noop(setup):  # §5.1, §1 noop
    ro = setup[6]
    op = ro.action[..., 0]
    for i, h in enumerate(HEADS):
        lp = ro.policy_info["logp"][h]
        assert bool(jnp.all(jnp.isfinite(lp))), h
        active = jnp.array([h in row for row in OP_HEADS])[op]
        assert bool(jnp.all(jnp.where(active, True, ro.action[..., i] == 0))), h


def test_entropy_gradient_reaches_a_head_no_op_used(setup):  # §5.2
    ro = _force_op(setup[6], ADVANCE)  # blueprint never active
    _, m = _update(setup, ro, ent_coef=0.0, vf_coef=0.0)
    assert float(m["grad_norm/blueprint"]) == 0.0
    _, m = _update(setup, ro, ent_coef=0.01, vf_coef=0.0)
    assert float(m["grad_norm/blueprint"]) > 0.0


def test_stored_masks_match_env_and_are_used_unchanged(setup):  # §5.3
    _, env, agent, hp, driver, _, _, _ = setup
    # masks in the rollout equal the env's own masks for the state acted in
    key = jax.random.PRNGKey(3)
    state, obs = jax.vmap(env.reset)(jax.random.split(key, 2))
    carry, first = agent.init_carry(2), jnp.ones(2, bool)
    st = agent.init(key, hp)
    act = lambda o, k, c, f: agent.act(st, o, k, hp, False, c, f)  # noqa: E731
    for t in range(12):
        a, carry, info = act(obs, jax.random.fold_in(key, t), carry, first)
        env_masks = jax.vmap(action_masks, (0, None))(state, env.params)
        for h in HEADS:
            np.testing.assert_array_equal(info["masks"][h], env_masks[h], err_msg=h)
        for i, h in enumerate(HEADS):  # every ACTIVE head sampled a valid action
            active = jnp.array([h in row for row in OP_HEADS])[a[:, 0]]
            valid = jnp.take_along_axis(info["masks"][h], a[:, i:i + 1], -1)[:, 0]
            assert bool(jnp.all(valid | ~active)), h
        state, obs, _, term, trunc, _ = jax.vmap(env.step)(jax.random.split(key, 2), state, a)
        first = term | trunc
    # the update reads the STORED masks: wiping the masks in the stored obs changes nothing
    ro = setup[6]
    n_mask = env.spec.mask_dim
    wiped = ro.replace(obs=ro.obs.at[..., -n_mask:].set(0.0))
    _, m1 = _update(setup, ro)
    _, m2 = _update(setup, wiped)
    np.testing.assert_allclose(float(m1["loss"]), float(m2["loss"]), rtol=1e-6)


def test_replayed_rollout_reproduces_acting_log_probs(setup):
    """Truncated BPTT from the stored carries with the stored is_first resets gives the
    rollout's own log-probs: every per-head and the joint ratio is 1 before the first step."""
    _, m = _update(setup, setup[6])
    for h in list(HEADS) + ["joint"]:
        np.testing.assert_allclose(float(m[f"ratio/{h}/max"]), 1.0, atol=1e-4, err_msg=h)
        np.testing.assert_allclose(float(m[f"ratio/{h}/min"]), 1.0, atol=1e-4, err_msg=h)


def test_joint_ratio_of_eight_heads_at_1_15_is_clipped():  # §5.4
    heads = {f"h{i}": jnp.log(jnp.array([1.15])) for i in range(8)}
    old = {h: jnp.zeros(1) for h in heads}
    on = {h: jnp.ones(1, bool) for h in heads}
    joint = mh.joint_log_ratio(heads, old, on)
    np.testing.assert_allclose(float(jnp.exp(joint)[0]), 1.15**8, rtol=1e-5)
    np.testing.assert_allclose(float(jnp.exp(joint)[0]),
                               float(np.prod([np.exp(heads[h][0]) for h in heads])), rtol=1e-5)
    loss, m = mh.clipped_surrogate(joint, jnp.ones(1), 0.2)
    assert np.isfinite(float(loss)) and abs(float(loss) + 1.2) < 1e-6
    assert float(m["ppo/clip_frac"]) == 1.0


def test_q_op_monitor_sees_a_critic_that_ignores_the_op(setup):  # §5.5
    _, m = _update(setup, setup[6])
    assert float(m["critic/q_variance_across_ops"]) > 0
    # zero the rows of the value head's first layer that read one_hot(op): Q(s, op) == V(s)
    _, _, agent, hp, _, s, ro, last = setup
    p = s.agent.params
    k = p["params"]["v_hidden"]["kernel"]
    blind = jax.tree.map(lambda x: x, p)
    blind["params"]["v_hidden"]["kernel"] = k.at[-6:].set(0.0)
    st = s.agent.replace(params=blind)
    _, m = agent.update(st, ro, last, jax.random.PRNGKey(1), hp)
    assert float(m["critic/q_variance_across_ops"]) < 1e-10
    assert float(m["critic/q_op_spread"]) < 1e-6


def test_recurrent_state_resets_at_episode_start(setup):
    _, env, agent, hp, _, s, ro, _ = setup
    obs = ro.obs[3]
    busy = jax.tree.map(lambda x: x + 3.0, agent.init_carry(2))
    key = jax.random.PRNGKey(0)
    st = s.agent
    _, c_reset, i_reset = agent.act(st, obs, key, hp, True, busy, jnp.ones(2, bool))
    _, c_zero, i_zero = agent.act(st, obs, key, hp, True, agent.init_carry(2), jnp.ones(2, bool))
    _, c_keep, _ = agent.act(st, obs, key, hp, True, busy, jnp.zeros(2, bool))
    for a, b in zip(jax.tree.leaves((c_reset, i_reset["value"])),
                    jax.tree.leaves((c_zero, i_zero["value"]))):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert not np.allclose(c_keep[0], c_zero[0])
    # in the driver: is_first is True exactly where the previous step ended an episode
    done = ro.terminated | ro.truncated
    np.testing.assert_array_equal(ro.policy_info["is_first"][1:], done[:-1])
    assert bool(jnp.all(ro.policy_info["is_first"][0]))


def test_telemetry_flags_a_collapsed_head_as_critical(setup):
    _, _, agent, hp, _, s, ro, last = setup
    p = s.agent.params
    sharp = jax.tree.map(lambda x: x, p)
    b = p["params"]["heads_tempo"]["Dense_1"]["bias"]
    sharp["params"]["heads_tempo"]["Dense_1"]["bias"] = b.at[0].set(50.0)  # tempo deterministic
    _, m = agent.update(s.agent.replace(params=sharp), ro, last, jax.random.PRNGKey(1),
                                 hp)
    assert float(m["entropy/tempo/critical"]) == 1.0
    assert float(m["critical/tempo"]) == 1.0 and float(m["critical/heads"]) >= 1.0
    assert float(m["critical/op"]) == 0.0
    # the entropy a head could reach under its masks: ln(#valid), at most ln(head size)
    vm = float(m["entropy/op/valid_max"])
    assert 0.0 < vm <= np.log(6) + 1e-6
    assert float(m["entropy/tempo/valid_max"]) == pytest.approx(np.log(3), rel=1e-5)
    for key in ("head_usage/blueprint", "ppo/approx_kl", "ppo/clip_frac",
                "critic/explained_variance", "adv_by_op/WAIT/mean", "lstm/cell_abs_mean",
                "grad_norm/op", "ratio/blueprint/max", "entropy/blueprint/warn"):
        assert key in m and np.isfinite(float(m[key])), key
