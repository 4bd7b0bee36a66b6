"""Each SAC switch changes what it should (field reports 000, 001, 003)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.agents.base import Batch
from rlstab_jax.agents.sac import losses
from rlstab_jax.agents.sac.agent import actor_step
from rlstab_jax.agents.sac.networks import make_networks
from rlstab_jax.agents.sac.testing import VEC_SPEC, build, make_batch, tiny_cfg
from rlstab_jax.config.split import extract_hparams
from rlstab_jax.envs.spec import EnvSpec


def _tiny_batch(reward, terminated, discount):
    b = len(reward)
    z = jnp.zeros((b, 1))
    return Batch(obs=z, action=z, reward=jnp.asarray(reward, jnp.float32), next_obs=z,
                 terminated=jnp.asarray(terminated), discount=jnp.asarray(discount, jnp.float32),
                 is_demo=jnp.zeros((b,)))


def test_tqc_target_hand_computed():
    # N=2 critics, M=3 quantiles, drop 1 per critic -> keep the 6 - 2 = 4 smallest pooled atoms.
    cfg = tiny_cfg(critic_kind="tqc", n_quantiles=3, drop_per_critic=1)
    hp = extract_hparams(cfg)
    next_q = jnp.array([[[3.0, 1.0, 2.0], [6.0, 4.0, 5.0]]] * 1).transpose(1, 0, 2)  # [2, 1, 3]
    next_q = jnp.concatenate([next_q, next_q], axis=1)  # [2, B=2, 3]
    alpha = jnp.array([0.1, 0.3])  # backup uses mean alpha = 0.2 (report 000 Step 7b)
    logp = jnp.array([1.0, 1.0])
    batch = _tiny_batch([1.0, 1.0], [False, True], [0.5, 0.5])
    target = losses.soft_backup(cfg, next_q, logp, alpha, batch, hp, None)
    # atoms [1, 2, 3, 4] - 0.2 * 1 = [0.8, 1.8, 2.8, 3.8]; y = 1 + 0.5 * atoms (row 0),
    # y = 1 (row 1, terminated: no bootstrap).
    np.testing.assert_allclose(target, [[1.4, 1.9, 2.4, 2.9], [1.0, 1.0, 1.0, 1.0]], atol=1e-6)
    hp["backup_clip"] = jnp.float32(2.0)  # report 003 §11B
    clipped = losses.soft_backup(cfg, next_q, logp, alpha, batch, hp, None)
    np.testing.assert_allclose(clipped[0], [1.4, 1.9, 2.0, 2.0], atol=1e-6)


def test_nstep_uses_batch_discount_not_gamma():
    cfg = tiny_cfg()
    hp = extract_hparams(cfg)  # gamma = 0.99
    next_q = jnp.array([[2.0, 2.0], [3.0, 3.0]])  # [N=2, B=2] -> min 2
    batch = _tiny_batch([1.0, 1.0], [False, False], [0.9**3, 0.99])
    target = losses.soft_backup(cfg, next_q, jnp.zeros(2), jnp.ones(2), batch, hp, None)
    np.testing.assert_allclose(target, [1.0 + 0.729 * 2.0, 1.0 + 0.99 * 2.0], rtol=1e-6)


def test_redq_subset_min():
    q = jnp.array([1.0, 5.0, 3.0, 4.0, 2.0])[:, None] * jnp.ones((5, 3))  # [N=5, B=3]
    batch = _tiny_batch([0.0] * 3, [False] * 3, [1.0] * 3)
    full = tiny_cfg(n_critics=5)
    hp = extract_hparams(full)
    y_all = losses.soft_backup(full, q, jnp.zeros(3), jnp.ones(2), batch, hp, jax.random.key(0))
    np.testing.assert_allclose(y_all, 1.0)
    sub = tiny_cfg(n_critics=5, critic_subset=2)
    vals = {float(losses.soft_backup(sub, q, jnp.zeros(3), jnp.ones(2), batch, hp,
                                     jax.random.key(i))[0]) for i in range(12)}
    assert vals <= {1.0, 2.0, 3.0, 4.0} and len(vals) > 1  # min over random pairs


def _synthetic_actor_state(cfg, raw_bias):
    agent, hp, state = build(cfg)
    pi = state.actor_params["pi"]
    pi = {**pi, "std_net_1": {"kernel": jnp.zeros_like(pi["std_net_1"]["kernel"]),
                              "bias": jnp.asarray(raw_bias, jnp.float32)}}
    return agent, hp, state.replace(actor_params={**state.actor_params, "pi": pi})


@pytest.mark.parametrize("mode", ["per_dim", "scalar"])
def test_alpha_moves_per_dim_independently(mode):
    # Dim "steer" gets a wide policy (entropy above its target of -1), dim "gas" a very narrow
    # one (entropy far below): per-dim alpha (report 000 Fix C) lowers alpha_steer and raises
    # alpha_gas; the scalar form moves both together.
    cfg = tiny_cfg(alpha_mode=mode, alpha_lr=1e-2, log_std_min=-10.0)
    agent, hp, state = _synthetic_actor_state(cfg, [-0.14, -1.15])  # log_std -0.5, -6
    nets = make_networks(cfg, VEC_SPEC)
    obs = jax.random.normal(jax.random.key(0), (64, 3))
    step = jax.jit(lambda s, k: actor_step(nets, VEC_SPEC.action_names, s, obs, k, hp))
    for i in range(5):
        state, m = step(state, jax.random.key(i))
    alpha = np.exp(np.asarray(state.log_alpha))
    assert m["entropy/steer"] > -1.0 > m["entropy/gas"]
    if mode == "per_dim":
        assert alpha[0] < 1.0 < alpha[1]
    else:
        assert alpha[0] == alpha[1]


def test_alpha_floor_and_fixed_alpha():
    cfg = tiny_cfg(alpha_lr=0.5, init_alpha=0.5, alpha_floor=0.4)
    agent, hp, state = _synthetic_actor_state(cfg, [0.0, 0.0])  # entropy > -1: alpha falls
    batch = make_batch(VEC_SPEC, 1, 16)
    upd = jax.jit(agent.update)
    for i in range(4):
        state, m = upd(state, batch, jax.random.key(i), hp)
    np.testing.assert_allclose(np.exp(state.log_alpha), 0.4, rtol=1e-5)  # report 000 7b
    fixed = tiny_cfg(learn_alpha=False, init_alpha=0.05)  # report 003 Run A
    agent, hp, state = build(fixed)
    state, m = jax.jit(agent.update)(state, batch, jax.random.key(0), hp)
    np.testing.assert_allclose([m["alpha/steer"], m["alpha/gas"]], 0.05, rtol=1e-6)


# ---- shared encoder: detached vs not (report 001 §4-5), with context + FiLM ---------------
CTX_SPEC = EnvSpec("test/ctx", (3 + 2 * (3 + 2),), "float32", "continuous", 2,
                   (-1.0, -1.0), (1.0, 1.0))


@pytest.mark.parametrize("detach", [True, False])
def test_detached_features_block_actor_gradient_to_shared_encoder(detach):
    cfg = tiny_cfg(shared_encoder=True, detach_actor_features=detach, encoder_hidden=(8,),
                   context_len=2, context_dim=8, context_heads=2)
    agent, hp, state = build(cfg, CTX_SPEC)
    nets = make_networks(cfg, CTX_SPEC)
    obs = jax.random.normal(jax.random.key(0), (16, CTX_SPEC.obs_shape[0]))
    shared = state.critic_params["encoder"]
    assert set(shared) == {"obs", "context"} and state.actor_params["encoder"] == {}
    assert state.actor_params["film"]  # FiLM heads belong to the actor

    def loss(enc, actor_params):
        return losses.actor_loss(actor_params, enc, nets, state.critic_params, obs,
                                 jnp.ones(2), jax.random.key(1), hp)[0]

    # Make FiLM non-trivial so the context path carries gradient when not detached.
    ap = jax.tree.map(lambda x: x + 0.1, state.actor_params)
    g = jax.jit(jax.grad(loss))(shared, ap)
    norms = {k: sum(float(jnp.abs(x).sum()) for x in jax.tree.leaves(v)) for k, v in g.items()}
    if detach:
        assert norms == {"obs": 0.0, "context": 0.0}
    else:
        assert norms["obs"] > 0.0 and norms["context"] > 0.0
    # Through an actor step: only the off variant moves the (critic-owned) shared encoder.
    new, _ = jax.jit(lambda s: actor_step(nets, CTX_SPEC.action_names, s, obs,
                                          jax.random.key(2), hp))(state.replace(actor_params=ap))
    moved = [not np.array_equal(a, b) for a, b in
             zip(jax.tree.leaves(shared), jax.tree.leaves(new.critic_params["encoder"]))]
    assert not any(moved) if detach else all(moved)


def test_pixel_path_with_shared_cnn_encoder():
    spec = EnvSpec("test/pix", (12, 12, 6), "uint8", "continuous", 3, (-1.0,) * 3, (1.0,) * 3,
                   ("steer", "gas", "brake"))
    cfg = tiny_cfg(encoder="cnn", cnn_channels=(4, 8), cnn_kernels=(3, 3), cnn_strides=(2, 2),
                   feature_dim=16, shared_encoder=True)
    agent, hp, state = build(cfg, spec)
    batch = make_batch(spec, 1, 4, dtype=jnp.uint8)
    new, m = jax.jit(agent.update)(state, batch, jax.random.key(0), hp)
    assert {"alpha/steer", "alpha/gas", "alpha/brake", "entropy/brake"} <= set(m)
    enc_old, enc_new = state.critic_params["encoder"], new.critic_params["encoder"]
    assert not all(np.allclose(a, b) for a, b in
                   zip(jax.tree.leaves(enc_old), jax.tree.leaves(enc_new), strict=True))
    a = agent.act(new, batch.obs[0], jax.random.key(1), hp, deterministic=True)
    assert a.shape == (4, 3) and np.all(np.abs(a) <= 1.0)
