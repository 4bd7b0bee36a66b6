"""Policy delay across calls (lax.cond path, U % delay != 0) and fixed alpha (report 003 A)."""

import jax
import numpy as np

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
    # Calls without an actor update report zeros for the actor metrics.
    assert actor_losses[0] == 0.0 and actor_losses[2] == 0.0
    assert actor_losses[1] != 0.0 and actor_losses[3] != 0.0
    np.testing.assert_allclose(np.exp(state.log_alpha), 0.05, rtol=1e-6)
