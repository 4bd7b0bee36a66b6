"""Dreamer's world-model warm-up and WM:AC ratio: counted right, and a real branch under vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.agents.dreamer.testing import DISCRETE_SPEC, build, make_seq, tiny_cfg


def _count_primitive(jaxpr, name: str) -> int:
    n = 0
    for eqn in jaxpr.eqns:
        n += eqn.primitive.name == name
        for v in eqn.params.values():
            subs = v if isinstance(v, (tuple, list)) else (v,)
            for sub in subs:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    n += _count_primitive(inner, name)
    return n


def _batch(U: int):
    return jax.tree.map(lambda *xs: jnp.stack(xs),
                        *[make_seq(DISCRETE_SPEC, 4, 8, seed=i) for i in range(U)])


@pytest.mark.parametrize("warmup,ratio,U,calls", [(2, 2, 1, 6), (3, 1, 2, 3), (0, 4, 3, 3)])
def test_warmup_and_wm_ac_ratio_count_actor_critic_updates(warmup, ratio, U, calls):
    agent, hp, state = build(tiny_cfg(wm_warmup=warmup, wm_ac_ratio=ratio))
    update = jax.jit(agent.update)
    batch, active = _batch(U), []
    for i in range(calls):
        state, m = update(state, batch, jax.random.key(i), hp, jnp.int32(i))
        active.append(float(m["ac/active"]))
    steps = np.arange(1, U * calls + 1)  # 1-based world-model update numbers
    expect = (steps > warmup) & (steps % ratio == 0)
    assert int(state.wm_steps) == U * calls
    assert int(state.ac_steps) == int(expect.sum())
    np.testing.assert_allclose(active, expect.reshape(calls, U).mean(1))


def test_actor_critic_gate_stays_a_branch_under_the_seed_vmap():
    """The index comes unbatched (in_axes None), so vmap keeps the ``cond`` (the actor-critic
    update costs nothing on skipped steps). A batched counter turns it into a ``select`` that
    runs both branches: that was the gate on ``state.wm_steps`` (the control case)."""
    agent, hp, state = build(tiny_cfg(wm_warmup=10, wm_ac_ratio=2))
    states = jax.vmap(agent.init, in_axes=(0, None))(jax.random.split(jax.random.key(0), 2), hp)
    batch = jax.tree.map(lambda x: jnp.stack([x, x]), _batch(1))
    keys = jax.random.split(jax.random.key(1), 2)
    single = jax.make_jaxpr(agent.update)(state, _batch(1), jax.random.key(1), hp, jnp.int32(0))
    shared = jax.make_jaxpr(jax.vmap(agent.update, in_axes=(0, 0, 0, None, None)))(
        states, batch, keys, hp, jnp.int32(0))
    batched = jax.make_jaxpr(jax.vmap(agent.update, in_axes=(0, 0, 0, None, 0)))(
        states, batch, keys, hp, jnp.zeros(2, jnp.int32))
    n = _count_primitive(single.jaxpr, "cond")
    assert n >= 1
    assert _count_primitive(shared.jaxpr, "cond") == n
    assert _count_primitive(batched.jaxpr, "cond") < n
