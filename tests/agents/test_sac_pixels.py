"""Pixel path: GroupNorm CNN shared encoder trained by the critic (report 001 §2, §4)."""

import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.agents.sac.testing import build, make_batch, tiny_cfg
from rlstab_jax.envs.spec import EnvSpec


def test_pixel_update_trains_shared_cnn_and_acts_in_bounds():
    spec = EnvSpec("test/pix", (12, 12, 6), "uint8", "continuous", 3, (-1.0,) * 3, (1.0,) * 3,
                   ("steer", "gas", "brake"))
    cfg = tiny_cfg(encoder="cnn", cnn_channels=(4, 8), cnn_kernels=(3, 3), cnn_strides=(2, 2),
                   feature_dim=16, shared_encoder=True)
    agent, hp, state = build(cfg, spec)
    assert state.actor_params["encoder"] == {}  # one encoder, owned by the critic
    batch = make_batch(spec, 1, 4, dtype=jnp.uint8)
    new, m = jax.jit(agent.update)(state, batch, jax.random.key(0), hp)
    assert {"alpha/steer", "alpha/gas", "alpha/brake", "entropy/brake"} <= set(m)
    assert all(np.isfinite(float(v)) for v in m.values())
    enc_old, enc_new = state.critic_params["encoder"], new.critic_params["encoder"]
    assert not all(np.allclose(a, b) for a, b in
                   zip(jax.tree.leaves(enc_old), jax.tree.leaves(enc_new), strict=True))
    a = agent.act(new, batch.obs[0], jax.random.key(1), hp, deterministic=True)
    assert a.shape == (4, 3) and np.all(np.abs(a) <= 1.0)
