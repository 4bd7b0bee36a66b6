"""``agent.actor_features``: the actor reuses the critic step's features (one encoder forward
less per update, issue 14) instead of encoding ``obs`` again; ``recompute`` is the off variant."""

import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.agents.sac import agent as sac_agent
from rlstab_jax.agents.sac import losses
from rlstab_jax.agents.sac.networks import make_networks
from rlstab_jax.agents.sac.testing import VEC_SPEC, build, make_batch, replace, tiny_cfg
from rlstab_jax.config.errors import ConfigError

BASE = tiny_cfg(shared_encoder=True, detach_actor_features=True, encoder_hidden=(8,))
REUSE = replace(BASE, actor_features="reuse")


def _close(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7), a, b)


def test_reused_features_equal_recomputed_ones_for_the_same_encoder():
    _, hp, state = build(BASE)
    nets = make_networks(BASE, VEC_SPEC)
    obs = jax.random.normal(jax.random.key(0), (8, 3))
    shared = state.critic_params["encoder"]
    feats = nets.encode(shared, obs)

    def loss(ap, features):
        return losses.actor_loss(ap, shared, nets, state.critic_params, obs, jnp.ones(2),
                                 jax.random.key(1), hp, features)[0]

    _close(loss(state.actor_params, None), loss(state.actor_params, feats))
    _close(jax.grad(loss)(state.actor_params, None), jax.grad(loss)(state.actor_params, feats))


def test_update_with_reuse_feeds_the_actor_the_pre_update_features():
    # The scanned update must equal: critic step, then the actor step on the features the
    # critic step computed (with the encoder as it was before that step).
    _, hp, state = build(BASE)
    batch = jax.tree.map(lambda x: x[0], make_batch(VEC_SPEC, 1, 8))
    key = jax.random.key(3)
    nets_r = make_networks(REUSE, VEC_SPEC)
    got, _ = jax.jit(lambda s: sac_agent.update(nets_r, VEC_SPEC.action_names, s, batch, key,
                                                hp))(state)
    k_c, k_a = jax.random.split(key, 2)  # update's keys for U = 1 critic + 1 actor step
    s1, _ = sac_agent.critic_step(nets_r, VEC_SPEC.action_names, state, batch, k_c, hp)
    old_feats = nets_r.encode(state.critic_params["encoder"], batch.obs)
    want, _ = sac_agent.actor_step(nets_r, VEC_SPEC.action_names, s1, batch.obs, k_a, hp,
                                   old_feats)
    _close(got.actor_params, want.actor_params)
    _close(got.critic_params, want.critic_params)
    # recompute reads the updated encoder instead: same critic, a different actor step
    nets_c = make_networks(BASE, VEC_SPEC)
    other, _ = jax.jit(lambda s: sac_agent.update(nets_c, VEC_SPEC.action_names, s, batch, key,
                                                  hp))(state)
    _close(other.critic_params, got.critic_params)
    diff = [not np.array_equal(a, b) for a, b in
            zip(jax.tree.leaves(other.actor_params), jax.tree.leaves(got.actor_params))]
    assert any(diff)


@pytest.mark.parametrize("utd,delay", [(1, 1), (4, 2), (3, 2)])
def test_reuse_runs_one_encoder_forward_less(utd, delay):
    # Counted on the traced update: the encoder (obs width 3 -> encoder_hidden 8) is the only
    # forward product with an [8 rows, 8] f32 output besides backward ones that both variants
    # share; one encoder forward fewer per traced actor step with reuse.
    def encoder_dots(cfg):
        cfg = replace(cfg, utd=utd, policy_delay=delay)
        _, hp, state = build(cfg)
        nets = make_networks(cfg, VEC_SPEC)
        batch = make_batch(VEC_SPEC, utd, 8)
        jaxpr = jax.make_jaxpr(lambda s: sac_agent.update(
            nets, VEC_SPEC.action_names, s, batch, jax.random.key(0), hp))(state)
        return len(re.findall(r"f32\[8,8\] = dot_general", str(jaxpr)))

    assert encoder_dots(REUSE) == encoder_dots(BASE) - 1


@pytest.mark.parametrize("over", [dict(shared_encoder=False),
                                  dict(detach_actor_features=False)])
def test_reuse_needs_a_shared_detached_encoder(over):
    with pytest.raises(ConfigError, match="actor_features"):
        replace(REUSE, **over).validate()


def test_cli_rejects_reuse_without_a_shared_encoder_in_one_line():
    # sac/pendulum has no shared encoder: exit 2, one line naming the key, no traceback
    p = subprocess.run([sys.executable, "-m", "rlstab_jax.train", "--config", "sac/pendulum",
                        "agent.actor_features=reuse", "train.total_steps=10"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and "agent.actor_features='reuse'" in err[0], p.stderr
    assert "shared_encoder" in err[0] and "Traceback" not in p.stderr
