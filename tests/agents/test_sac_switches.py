"""Agent-level switches: per-dim alpha and floor (report 000), detached shared encoder (001)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.agents.sac import losses
from rlstab_jax.agents.sac.agent import _optimizer, _with_hparams, actor_step
from rlstab_jax.agents.sac.networks import make_networks
from rlstab_jax.agents.sac.testing import VEC_SPEC, build, replace, tiny_cfg
from rlstab_jax.envs.spec import EnvSpec

ALPHA_CFG = tiny_cfg(log_std_min=-10.0)


def _with_std_bias(state, raw_bias):
    pi = state.actor_params["pi"]
    pi = {**pi, "std_net_1": {"kernel": jnp.zeros_like(pi["std_net_1"]["kernel"]),
                              "bias": jnp.asarray(raw_bias, jnp.float32)}}
    return state.replace(actor_params={**state.actor_params, "pi": pi})


def test_alpha_moves_per_dim_independently_and_respects_floor():
    # "steer" gets log_std -0.5 (squashed entropy above its target -1), "gas" log_std -6 (far
    # below): per-dim alpha (report 000 Fix C) lowers alpha_steer and raises alpha_gas.
    agent, hp, state = build(ALPHA_CFG)
    state = _with_std_bias(state, [-0.14, -1.15])
    nets = make_networks(ALPHA_CFG, VEC_SPEC)
    obs = jax.random.normal(jax.random.key(0), (64, 3))
    step = jax.jit(lambda s, k, h: actor_step(nets, VEC_SPEC.action_names, s, obs, k, h))
    hp = {**hp, "alpha_lr": jnp.float32(1e-2)}
    s = state
    for i in range(5):
        s, m = step(s, jax.random.key(i), hp)
    alpha = np.exp(np.asarray(s.log_alpha))
    assert m["entropy/steer"] > -1.0 > m["entropy/gas"]
    assert alpha[0] < 1.0 < alpha[1]
    # Same compiled step, floor on (a traced hparam): alpha_steer stops at 0.999.
    floor = {**hp, "alpha_floor": jnp.float32(0.999)}
    s = state
    for i in range(5):
        s, m = step(s, jax.random.key(i), floor)
    np.testing.assert_allclose(np.exp(s.log_alpha[0]), 0.999, rtol=1e-5)
    assert np.exp(s.log_alpha[1]) > 1.0


CTX_SPEC = EnvSpec("test/ctx", (3 + 2 * (3 + 2),), "float32", "continuous", 2,
                   (-1.0, -1.0), (1.0, 1.0))
CTX_CFG = tiny_cfg(shared_encoder=True, detach_actor_features=True, encoder_hidden=(8,),
                   context_len=2, context_dim=8, context_heads=2)


@pytest.mark.parametrize("detach", [True, False])
def test_detached_features_block_actor_gradient_to_shared_encoder(detach):
    # Report 001 §4-5: with a shared encoder (obs MLP + context transformer feeding FiLM), the
    # actor loss must give exactly zero gradient to it; the off variant gives a non-zero one.
    cfg = replace(CTX_CFG, detach_actor_features=detach)
    _, hp, state = build(CTX_CFG, CTX_SPEC)  # same param structure for both variants
    nets = make_networks(cfg, CTX_SPEC)
    obs = jax.random.normal(jax.random.key(0), (16, CTX_SPEC.obs_shape[0]))
    shared = state.critic_params["encoder"]
    assert set(shared) == {"obs", "context"} and state.actor_params["encoder"] == {}
    assert state.actor_params["film"]  # the FiLM heads belong to the actor
    ap = jax.tree.map(lambda x: x + 0.1, state.actor_params)  # non-trivial FiLM

    def loss(enc):
        return losses.actor_loss(ap, enc, nets, state.critic_params, obs, jnp.ones(2),
                                 jax.random.key(1), hp)[0]

    g = jax.jit(jax.grad(loss))(shared)
    norms = {k: sum(float(jnp.abs(x).sum()) for x in jax.tree.leaves(v)) for k, v in g.items()}
    if detach:
        assert norms == {"obs": 0.0, "context": 0.0}
    else:
        assert norms["obs"] > 0.0 and norms["context"] > 0.0
    # Through an actor step: only the off variant moves the (critic-owned) shared encoder.
    pi = {"actor": ap, "encoder": {} if detach else shared}
    state = state.replace(actor_params=ap, actor_opt_state=_with_hparams(
        _optimizer().init(pi), hp["actor_lr"], hp))
    new, _ = jax.jit(lambda s: actor_step(nets, CTX_SPEC.action_names, s, obs,
                                          jax.random.key(2), hp))(state)
    moved = [not np.array_equal(a, b) for a, b in
             zip(jax.tree.leaves(shared), jax.tree.leaves(new.critic_params["encoder"]))]
    assert (not any(moved)) if detach else all(moved)
