"""SAC update under jit and vmap: no retracing, vmapped == looped, non-finite guard, bandit."""

import chex
import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.agents.base import Batch
from rlstab_jax.agents.sac.testing import VEC_SPEC, build, make_batch, tiny_cfg

CFG = tiny_cfg(utd=2, policy_delay=2, batch_size=32)  # nested-scan schedule: 1 actor step/call
U, B = 2, 32
AGENT, HP, STATE = build(CFG)


@chex.assert_max_traces(n=1)
def _update(state, batch, key, hp):
    return AGENT.update(state, batch, key, hp)


UPDATE = jax.jit(_update)


def _close(a, b):
    chex.assert_trees_all_close(a, b, rtol=1e-4, atol=1e-5)


def test_vmapped_over_seeds_equals_looped():
    keys = jax.random.split(jax.random.key(7), 2)
    hps = jax.tree.map(lambda x: jnp.stack([x, x]), HP)
    init = jax.jit(AGENT.init)  # same compiled init as build(): stack per-seed states
    states = jax.tree.map(lambda *x: jnp.stack(x), *[init(k, HP) for k in keys])
    batch = make_batch(VEC_SPEC, U, B)
    upd_keys = jax.random.split(jax.random.key(8), 2)
    v_states, v_metrics = jax.jit(jax.vmap(AGENT.update, in_axes=(0, None, 0, 0)))(
        states, batch, upd_keys, hps)
    for i in range(2):
        s_i = jax.tree.map(lambda x, i=i: x[i], states)
        new, metrics = UPDATE(s_i, batch, upd_keys[i], HP)
        _close(jax.tree.map(lambda x, i=i: x[i], v_states), new)
        _close({k: v[i] for k, v in v_metrics.items()}, metrics)
    # Different seeds give different critics (and identical twin critics never happen).
    assert not np.allclose(v_metrics["q/mean/0"][0], v_metrics["q/mean/0"][1])
    assert np.all(v_metrics["critic/identical_frac"] == 0.0)


def test_schedule_metrics_and_determinism():
    batch = make_batch(VEC_SPEC, U, B)
    s1, m1 = UPDATE(STATE, batch, jax.random.key(0), HP)
    s2, m2 = UPDATE(STATE, batch, jax.random.key(0), HP)
    chex.assert_trees_all_equal(s1, s2)  # same key, same compiled program: identical
    s3, _ = UPDATE(STATE, batch, jax.random.key(1), HP)
    assert not np.array_equal(s1.actor_params["pi"]["mean"]["kernel"],
                              s3.actor_params["pi"]["mean"]["kernel"])
    assert (int(s1.critic_steps), int(s1.actor_steps)) == (2, 1)
    expected = {"alpha/steer", "alpha/gas", "alpha/mean", "log_std/mean/steer",
                "log_std/min/gas", "log_std/frac_at_floor", "entropy/steer", "q/mean/0",
                "q/std/1", "critic/backup_mean", "critic/backup_std", "reward/mean",
                "actor/loss", "critic/loss", "actor/grad_norm", "critic/grad_norm",
                "critic/identical_frac", "demo/fraction_in_batch", "nonfinite/skipped"}
    assert expected <= set(m1)
    assert all(v.shape == () and np.isfinite(v) for v in m1.values())
    demo = batch.replace(is_demo=jnp.ones((U, B)).at[:, : B // 4].set(0.0))
    _, m = UPDATE(STATE, demo, jax.random.key(0), HP)
    np.testing.assert_allclose(m["demo/fraction_in_batch"], 0.75)
    # Traced hyper-parameters reach optax through inject_hyperparams (no retrace).
    _, m = UPDATE(STATE, batch, jax.random.key(0), {**HP, "critic_lr": jnp.float32(0.0)})
    inner = s1.critic_opt_state.inner_state
    np.testing.assert_allclose(inner.hyperparams["learning_rate"], HP["critic_lr"])


def test_nonfinite_batch_is_skipped_and_counted():
    bad = make_batch(VEC_SPEC, U, B)
    bad = bad.replace(reward=bad.reward.at[:, 3].set(jnp.nan))
    new, m = UPDATE(STATE, bad, jax.random.key(0), HP)
    assert float(m["nonfinite/skipped"]) == 2.0  # both critic updates skipped
    chex.assert_trees_all_equal(new.critic_params, STATE.critic_params)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(new))
    newer, m = UPDATE(new, make_batch(VEC_SPEC, U, B), jax.random.key(1), HP)
    assert float(m["nonfinite/skipped"]) == 0.0
    assert not np.array_equal(newer.critic_params["q"]["q"]["mlp"]["Dense_0"]["kernel"],
                              STATE.critic_params["q"]["q"]["mlp"]["Dense_0"]["kernel"])


def test_bandit_deterministic_action_moves_to_half():
    # One-step bandit, reward -(a - 0.5)^2 per dim, every row terminal. A fixed synthetic batch
    # of random actions; alpha small and frozen (alpha_lr = 0, a traced hparam).
    a = jax.random.uniform(jax.random.key(3), (B, 2), minval=-1.0, maxval=1.0)
    one = Batch(obs=jnp.ones((B, 3)), action=a, reward=-jnp.sum((a - 0.5) ** 2, axis=-1),
                next_obs=jnp.ones((B, 3)), terminated=jnp.ones((B,), bool),
                discount=jnp.full((B,), 0.99), is_demo=jnp.zeros((B,)))
    batch = jax.tree.map(lambda x: jnp.broadcast_to(x, (U, *x.shape)), one)
    # Critic faster than actor (two time-scales): the 16x16 critic must fit the parabola first.
    hp = {**HP, "actor_lr": jnp.float32(1e-3), "critic_lr": jnp.float32(1e-2),
          "alpha_lr": jnp.float32(0.0)}
    state = STATE.replace(log_alpha=jnp.full((2,), np.log(0.01), jnp.float32))
    obs = jnp.ones((1, 3))
    start = AGENT.act(state, obs, None, hp, deterministic=True)[0]
    key = jax.random.key(0)
    for _ in range(300):  # 600 critic updates, 300 actor updates
        key, k = jax.random.split(key)
        state, m = UPDATE(state, batch, k, hp)
    end = AGENT.act(state, obs, None, hp, deterministic=True)[0]
    assert np.all(np.abs(start - 0.5) > 0.4)
    assert np.all(np.abs(end - 0.5) < 0.15), end


def test_nonfinite_obs_skips_and_counts_every_optimiser():
    # NaN observations poison the critic (2 updates), actor and alpha (1 update each) losses:
    # nonfinite/skipped sums the skips of all three optimisers, 2 + 1 + 1.
    bad = make_batch(VEC_SPEC, U, B)
    bad = bad.replace(obs=bad.obs.at[:, 0, 0].set(jnp.nan))
    new, m = UPDATE(STATE, bad, jax.random.key(0), HP)
    assert float(m["nonfinite/skipped"]) == 4.0
    chex.assert_trees_all_equal((new.actor_params, new.log_alpha),
                                (STATE.actor_params, STATE.log_alpha))


def test_act_samples_by_default_and_deterministic_is_tanh_mean():
    obs = jax.random.normal(jax.random.key(5), (4, 3))
    key = jax.random.key(6)
    sample = AGENT.act(STATE, obs, key, HP)  # default: a stochastic sample
    greedy = AGENT.act(STATE, obs, key, HP, deterministic=True)
    assert sample.shape == greedy.shape == (4, 2)
    assert np.all(np.abs(sample) <= 1.0) and not np.allclose(sample, greedy)
    np.testing.assert_array_equal(sample, AGENT.act(STATE, obs, key, HP, deterministic=False))
