"""Policy delay across calls (lax.cond path, U % delay != 0) and fixed alpha (report 003 A)."""

import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.agents.sac.networks import make_networks
from rlstab_jax.agents.sac.testing import VEC_SPEC, build, make_batch, tiny_cfg


def test_policy_delay_across_calls_with_fixed_alpha():
    cfg = tiny_cfg(utd=1, policy_delay=2, learn_alpha=False, init_alpha=0.05)
    agent, hp, state = build(cfg)
    update = jax.jit(agent.update)
    batch = make_batch(VEC_SPEC, 1, 8)
    actor_losses = []
    for i in range(4):
        state, m = update(state, batch, jax.random.key(i), hp)
        actor_losses.append(float(m["actor/loss"]))
        assert int(state.critic_steps) == i + 1
        assert int(state.actor_steps) == (i + 1) // 2  # actor after every 2nd critic update
        np.testing.assert_allclose([m["alpha/steer"], m["alpha/gas"]], 0.05, rtol=1e-6)
        assert float(m["alpha/loss"]) == 0.0  # fixed alpha: a zero loss is logged, no alpha step
    # Calls without an actor update report zeros for the actor metrics.
    assert actor_losses[0] == 0.0 and actor_losses[2] == 0.0
    assert actor_losses[1] != 0.0 and actor_losses[3] != 0.0
    np.testing.assert_allclose(np.exp(state.log_alpha), 0.05, rtol=1e-6)


def _n_cond(jaxpr) -> int:
    """Number of ``lax.cond`` in a jaxpr, nested programs (scan bodies, pjit) included."""
    n = 0
    for eqn in jaxpr.eqns:
        n += eqn.primitive.name == "cond"
        for v in eqn.params.values():
            for sub in (v if isinstance(v, (tuple, list)) else (v,)):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    n += _n_cond(inner)
    return n


def _logged_log_std(nets_cfg, state, obs, hp):
    """``(log_std/mean/steer, log_std/min/gas)`` of the policy at ``obs`` (key-independent)."""
    _, log_std = make_networks(nets_cfg, VEC_SPEC).actor_dist(state.actor_params, {}, obs, hp)
    return float(jnp.mean(log_std[:, 0])), float(jnp.min(log_std[:, 1]))


def test_actor_metrics_follow_the_actor_updates_of_both_schedules():
    # actor_lr = 0 freezes the actor, so the logged log-std statistics of every actor update
    # equal the policy's at that update's observations, whatever the key.
    # (a) U % delay == 0 (nested scan, U = delay = 3): one actor update on the LAST critic
    #     batch of the group; the schedule adds no lax.cond to the program.
    # (b) U % delay != 0 (lax.cond, U = 3, delay 2): from critic step 0 the actor updates at
    #     step 2 (one update), from step 1 at steps 2 and 4 (two): actor metrics are means over
    #     the updates that happened.
    obs = jax.random.normal(jax.random.key(9), (3, 8, 3))
    batch = make_batch(VEC_SPEC, 3, 8, obs=obs)
    conds = {}
    for delay in (3, 2):
        cfg = tiny_cfg(utd=3, policy_delay=delay)
        agent, hp, state = build(cfg)
        hp = {**hp, "actor_lr": jnp.float32(0.0)}
        conds[delay] = _n_cond(jax.make_jaxpr(agent.update)(state, batch, jax.random.key(0),
                                                            hp).jaxpr)
        update = jax.jit(agent.update)
        if delay == 3:
            new, m = update(state, batch, jax.random.key(0), hp)
            assert int(new.actor_steps) == 1
            want = _logged_log_std(cfg, state, obs[2], hp)
            np.testing.assert_allclose((m["log_std/mean/steer"], m["log_std/min/gas"]), want,
                                       rtol=1e-4)
            for other in (obs[0], obs[1]):  # the test can tell the batches apart
                assert not np.allclose(_logged_log_std(cfg, state, other, hp), want, rtol=1e-2)
        else:
            same = batch.replace(obs=jnp.broadcast_to(obs[:1], obs.shape))
            for start, n_actor in ((0, 1), (1, 2)):
                s0 = state.replace(critic_steps=jnp.int32(start))
                new, m = update(s0, same, jax.random.key(0), hp)
                assert int(new.actor_steps) == n_actor
                want = _logged_log_std(cfg, state, obs[0], hp)
                np.testing.assert_allclose((m["log_std/mean/steer"], m["log_std/min/gas"]),
                                           want, rtol=1e-4)
    assert conds[3] == conds[2] - 1  # the nested-scan schedule has no branch to vmap
