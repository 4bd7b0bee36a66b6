"""Dreamer's open-loop (overshooting) decoder loss, inside the real world-model loss and update."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.agents.dreamer.networks import WorldModel
from rlstab_jax.agents.dreamer.agent import build_networks
from rlstab_jax.agents.dreamer.testing import (DISCRETE_SPEC, PIXEL_SPEC, build, make_seq,
                                               tiny_cfg, tiny_pixel_cfg)
from rlstab_jax.agents.dreamer.world_model import observe, open_loop_errors, wm_loss
from rlstab_jax.config.errors import ConfigError
from rlstab_jax.stability.overshoot import masked_mean, overshoot_valid
from rlstab_jax.stability.symlog import symexp_bins
from rlstab_jax.train.testing import assert_cli_rejects

B, T, DEPTH = 3, 8, 3


def _setup(**cfg_kw):
    cfg = tiny_cfg(**cfg_kw)
    _, hp, state = build(cfg)
    wm = WorldModel(4, 2, cfg.deter, cfg.stoch_groups, cfg.stoch_classes, cfg.hidden,
                    cfg.layers, cfg.num_bins)
    bins = symexp_bins(cfg.num_bins, cfg.bins_low, cfg.bins_high)
    return cfg, hp, state, wm, bins


def _grad_norm(tree) -> float:
    return float(jax.tree.reduce(lambda a, x: a + jnp.sum(jnp.abs(x)), tree, 0.0))


def test_open_loop_loss_trains_the_prior_through_the_decoder():
    """With the KL terms weighted 0 the one-step loss gives the prior no gradient at all; the
    open-loop loss does (the dynamics learn from their own multi-step error)."""
    _, hp, state, wm, bins = _setup()
    hp = dict(hp, beta_dyn=jnp.float32(0.0), beta_rep=jnp.float32(0.0))
    seq = make_seq(DISCRETE_SPEC, B, T, seed=1, ends=((1, 4),))

    def prior_grad(depth):
        g, (m, _, _) = jax.grad(wm_loss, has_aux=True)(state.wm_params, wm, seq, jax.random.key(0),
                                                    hp, bins, True, "straight_through", depth)
        return _grad_norm(g["params"]["prior_net"]), m

    off, m_off = prior_grad(0)
    on, m_on = prior_grad(DEPTH)
    assert off == 0.0 and "wm/loss/open_loop" not in m_off
    assert on > 1e-6
    assert float(m_on["wm/loss/open_loop"]) > 0.0 and np.isfinite(m_on["wm/open_loop_last"])


def test_open_loop_term_is_the_scaled_masked_mean_of_the_errors():
    _, hp, state, wm, bins = _setup()
    seq = make_seq(DISCRETE_SPEC, B, T, seed=2, ends=((0, 2), (2, 5)))
    key = jax.random.key(3)

    def loss(scale):
        h = dict(hp, overshoot_scale=jnp.float32(scale))
        return wm_loss(state.wm_params, wm, seq, key, h, bins, True, "straight_through", DEPTH)

    l0, (m0, _, _) = loss(0.0)
    l2, (m2, _, _) = loss(2.0)
    np.testing.assert_allclose(float(l2 - l0), 2.0 * float(m2["wm/loss/open_loop"]), rtol=1e-4)
    # the same quantity from the parts: the errors of the prior rolled from the posteriors
    # (wm_loss splits its key the same way), averaged over the targets in the same episode
    _, k_open = jax.random.split(key)
    k_obs = jax.random.split(key)[0]
    out = observe(wm, state.wm_params, seq, k_obs, hp["unimix"], True)
    errors = open_loop_errors(wm, state.wm_params, out, seq, k_open, hp["unimix"], True, DEPTH)
    assert errors.shape == (DEPTH, B, T)
    valid = overshoot_valid(seq.is_first, DEPTH)
    np.testing.assert_allclose(float(masked_mean(errors, valid)),
                               float(m0["wm/loss/open_loop"]), rtol=1e-5)
    # rows across the episode boundary (seq 0 ends at row 2) are left out
    assert float(valid[0, 0, 2]) == 0.0 and float(valid[0, 0, 3]) == 1.0


def test_depth_one_target_is_the_next_rows_observation():
    """Depth 1 from row t predicts ``next_obs_{t+1}``: with every row's next_obs equal to a
    constant the depth-1 errors do not depend on which constant the other rows hold."""
    _, hp, state, wm, _ = _setup()
    seq = make_seq(DISCRETE_SPEC, 1, T, seed=5)
    out = observe(wm, state.wm_params, seq, jax.random.key(0), hp["unimix"], True)
    errs = lambda s: open_loop_errors(wm, state.wm_params, out, s, jax.random.key(1),  # noqa
                                      hp["unimix"], True, 1)[0, 0]
    base = np.asarray(errs(seq))
    changed = np.asarray(errs(seq.replace(next_obs=seq.next_obs.at[0, 4].add(3.0))))
    # only the start whose target is row 4 (start 3) sees the change
    assert np.all(base[[0, 1, 2, 4, 5, 6]] == changed[[0, 1, 2, 4, 5, 6]])
    assert changed[3] != base[3]


def test_agent_update_with_overshoot_is_finite_and_reports_it():
    cfg = tiny_cfg(overshoot_depth=DEPTH)
    agent, hp, state = build(cfg)
    seq = make_seq(DISCRETE_SPEC, cfg.batch_size, cfg.seq_len, seed=7, ends=((0, 3),))
    new, metrics = jax.jit(agent.update)(state, jax.tree.map(lambda x: x[None], seq),
                                         jax.random.key(1), hp, jnp.int32(0))
    assert np.isfinite(float(metrics["wm/loss/open_loop"]))
    assert float(metrics["wm/loss/open_loop"]) > 0.0
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(new.wm_params))
    # the loss weighted 0 (same program, same key stream) updates the world model differently
    off, _ = jax.jit(agent.update)(state, jax.tree.map(lambda x: x[None], seq),
                                   jax.random.key(1), dict(hp, overshoot_scale=jnp.float32(0.0)),
                                   jnp.int32(0))
    diff = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), new.wm_params, off.wm_params)
    assert max(jax.tree.leaves(diff)) > 0


def test_open_loop_errors_on_pixels_sum_each_frame():
    """The CNN decoder path: one error per (depth, start), a frame's squared error in [0, 1]
    pixel units summed over H x W x C (so bounded by the pixel count)."""
    cfg = tiny_pixel_cfg()
    wm, _, _, _ = build_networks(cfg, PIXEL_SPEC)
    seq = make_seq(PIXEL_SPEC, 2, 4, seed=1)
    params = wm.init(jax.random.key(0), seq.obs[:, 0], seq.action[:, 0])
    unimix = jnp.float32(cfg.unimix)

    @jax.jit
    def errors(p):
        out = observe(wm, p, seq, jax.random.key(1), unimix, False)
        return open_loop_errors(wm, p, out, seq, jax.random.key(2), unimix, False, 2)

    e = np.asarray(errors(params))
    assert e.shape == (2, 2, 4) and np.all(np.isfinite(e))
    assert np.all((e > 0) & (e <= np.prod(PIXEL_SPEC.obs_shape)))


@pytest.mark.parametrize("kw,msg", [
    (dict(overshoot_depth=8), "agent.overshoot_depth=8 must be in [0, agent.seq_len=8)"),
    (dict(overshoot_depth=-1), "agent.overshoot_depth=-1 must be in"),
    (dict(overshoot_scale=-0.5), "agent.overshoot_scale=-0.5 must be >= 0"),
])
def test_config_rejects_bad_overshoot_settings(kw, msg):
    with pytest.raises(ConfigError, match=msg.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        tiny_cfg(**kw).validate()


def test_cli_rejects_a_depth_past_the_sequence_in_one_line(tmp_path):
    assert_cli_rejects(["--config", "dreamer/cartpole", "agent.overshoot_depth=40"],
                       tmp_path / "run", "agent.overshoot_depth=40", "agent.seq_len=32")
