"""Every SAC switch checked through ``agent.update`` (issue 12), not only its primitive.

Each test is built so that the wrong program gives a different number: the per-dim policy
entropy cost vs ``mean(alpha) * logp_total`` (report 000 Step 7b), the actor vs critic gradient
clip (report 003 §11A), the backup clip (§11B), the detached shared encoder (report 001 §4),
the drift metrics report 003 watches, and the ``std_net`` initialiser.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.agents.sac.testing import VEC_SPEC, build, make_batch, tiny_cfg
from rlstab_jax.config.errors import ConfigError

# One critic and one actor update per call (utd = policy_delay = 1), batch 32.
BASE = tiny_cfg(batch_size=32, log_std_min=-10.0)
BATCH = make_batch(VEC_SPEC, 1, 32)


def _update(agent):
    return jax.jit(agent.update)


def _with_std_bias(state, raw_bias):
    pi = state.actor_params["pi"]
    pi = {**pi, "std_net_1": {"kernel": jnp.zeros_like(pi["std_net_1"]["kernel"]),
                              "bias": jnp.asarray(raw_bias, jnp.float32)}}
    return state.replace(actor_params={**state.actor_params, "pi": pi})


def _leaves_delta(a, b):
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_policy_loss_weights_each_dim_log_prob_by_its_own_alpha():
    # Report 000 Step 7b: loss = mean_b(sum_d alpha_d logp_{b,d} - Q). Swapping the two alphas
    # changes the loss by (a0 - a1) * mean_b(logp_0 - logp_1) = (a0 - a1) * (H_1 - H_0) with the
    # per-dim entropy estimates the same call logs; ``mean(alpha) * logp_total`` (the mutant
    # that once passed every test) gives exactly equal losses for swapped alphas.
    agent, hp, state = build(BASE)
    state = _with_std_bias(state, [0.5, -1.0])  # the dims' log-probs differ clearly
    upd = _update(agent)
    a = np.array([0.05, 2.0], np.float32)
    losses, ents = [], []
    for alpha in (a, a[::-1]):
        s = state.replace(log_alpha=jnp.log(jnp.asarray(alpha)))
        _, m = upd(s, BATCH, jax.random.key(3), hp)
        losses.append(float(m["actor/loss"]))
        ents.append((float(m["entropy/steer"]), float(m["entropy/gas"])))
    assert ents[0] == pytest.approx(ents[1], rel=1e-5)  # same sample in both calls
    h0, h1 = ents[0]
    assert abs(h0 - h1) > 0.5
    expected = (a[0] - a[1]) * (h1 - h0)
    np.testing.assert_allclose(losses[0] - losses[1], expected, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("clipped", ["actor", "critic"])
def test_actor_and_critic_grad_clips_are_separate(clipped):
    # A clip of 1e-12 shrinks that side's gradient far below Adam's eps (1e-8), so its step is
    # ~1e-4 of a normal one; the other side (clip off) moves by ~lr. Swapping the two keys in
    # the agent moves the wrong network.
    agent, hp, state = build(BASE)
    hp = {**hp, f"{clipped}_grad_clip": jnp.float32(1e-12)}
    new, m = _update(agent)(state, BATCH, jax.random.key(0), hp)
    d_actor = _leaves_delta(state.actor_params, new.actor_params)
    d_critic = _leaves_delta(state.critic_params, new.critic_params)
    lr = float(hp["actor_lr"])
    small, large = (d_actor, d_critic) if clipped == "actor" else (d_critic, d_actor)
    assert small < 1e-3 * lr
    assert large > 0.5 * lr
    assert float(m[f"{clipped}/grad_norm"]) > 1e-6  # the logged norm is the pre-clip one


def test_backup_clip_bounds_the_critic_target_through_update():
    agent, hp, state = build(BASE)
    batch = make_batch(VEC_SPEC, 1, 32, reward=jnp.full((1, 32), 50.0))
    upd = _update(agent)
    _, m_off = upd(state, batch, jax.random.key(0), hp)
    assert float(m_off["critic/backup_mean"]) > 40.0
    _, m_on = upd(state, batch, jax.random.key(0), {**hp, "backup_clip": jnp.float32(2.5)})
    assert float(m_on["critic/backup_mean"]) == pytest.approx(2.5)
    assert float(m_on["critic/backup_std"]) == pytest.approx(0.0, abs=1e-6)


def test_drift_metrics_q_at_policy_action_and_next_logp():
    # Report 003 watches Q at the policy's own action (debug/q_a1); q/mean/<i> stays Q at the
    # replayed actions; next_logp is the summed log-prob entering the backup.
    agent, hp, state = build(BASE)
    _, m = _update(agent)(state, BATCH, jax.random.key(0), hp)
    for key in ("q_pi/mean", "q_pi/std", "critic/next_logp", "q/mean/0", "q/mean/1"):
        assert np.isfinite(float(m[key])), key
    assert float(m["q_pi/std"]) >= 0.0
    assert float(m["q_pi/mean"]) != float(m["q/mean/0"])
    # Initial log-std 0 (log_std_init): the 2-dim squashed Gaussian's log-prob is finite and
    # equals minus the logged per-dim entropy sum up to sampling noise between s and s'.
    ent = float(m["entropy/steer"]) + float(m["entropy/gas"])
    assert float(m["critic/next_logp"]) == pytest.approx(-ent, abs=0.5)


def test_q_pi_is_the_policy_loss_q():
    # With alpha ~ 0 the actor loss is -mean(Q(s, a~pi)) = -q_pi/mean exactly.
    agent, hp, state = build(BASE)
    state = state.replace(log_alpha=jnp.full((2,), -30.0))
    _, m = _update(agent)(state, BATCH, jax.random.key(1), hp)
    assert float(m["actor/loss"]) == pytest.approx(-float(m["q_pi/mean"]), rel=1e-5, abs=1e-6)


def test_detach_false_without_shared_encoder_is_rejected():
    with pytest.raises(ConfigError, match="detach_actor_features"):
        tiny_cfg(detach_actor_features=False).validate()
    tiny_cfg(detach_actor_features=False, shared_encoder=True).validate()


def test_detach_switch_changes_the_shared_encoder_update():
    # Report 001 §4 through agent.update: with a shared encoder the actor's gradient reaches
    # the (critic-owned) encoder only when detach_actor_features=False.
    kw = dict(shared_encoder=True, encoder_hidden=(8,))
    states = {}
    for detach in (True, False):
        agent, hp, state = build(tiny_cfg(batch_size=32, detach_actor_features=detach, **kw))
        states[detach] = _update(agent)(state, BATCH, jax.random.key(0), hp)[0]
    enc = {d: s.critic_params["encoder"] for d, s in states.items()}
    assert _leaves_delta(enc[True], enc[False]) > 0.0
    # Detached: the actor's optimiser holds no moments for the encoder (fewer leaves).
    n_leaves = {d: len(jax.tree.leaves(s.actor_opt_state)) for d, s in states.items()}
    assert n_leaves[True] < n_leaves[False]


@pytest.mark.parametrize("init_kind", ["orthogonal", "lecun"])
def test_std_net_first_layer_uses_init_kind(init_kind):
    # The decoupled log-std branch (report 000 Fix A) must follow agent.init_kind like the
    # trunk: orthogonal rows for "orthogonal" (W W^T = I for a [F <= 64, 64] kernel).
    _, _, state = build(tiny_cfg(init_kind=init_kind))
    w = np.asarray(state.actor_params["pi"]["std_net_0"]["kernel"])  # [3, 64]
    gram = w @ w.T
    if init_kind == "orthogonal":
        np.testing.assert_allclose(gram, np.eye(w.shape[0]), atol=1e-5)
    else:
        assert not np.allclose(gram, np.eye(w.shape[0]), atol=1e-2)
    # The std_net output layer starts near zero so log_std starts at log_std_init.
    assert np.abs(np.asarray(state.actor_params["pi"]["std_net_1"]["kernel"])).max() < 0.1


def test_update_accepts_an_unbatched_batch_and_a_raw_key():
    # The training session hands the agent raw uint32 keys (PRNGKey), and a U = 1 batch may come
    # as [B, ...]: same update as a typed key and a [1, B, ...] batch.
    agent, hp, state = build(BASE)
    ref, ref_m = _update(agent)(state, BATCH, jax.random.key(4), hp)
    flat = jax.tree.map(lambda x: x[0], BATCH)
    new, m = _update(agent)(state, flat, jax.random.key_data(jax.random.key(4)), hp)
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(ref)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m["critic/loss"], ref_m["critic/loss"], rtol=1e-5)
