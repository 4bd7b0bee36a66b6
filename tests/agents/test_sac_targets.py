"""Golden values for the SAC-family critic targets (hand-computed; TESTING.md pattern 7)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.agents.base import Batch
from rlstab_jax.agents.sac import losses
from rlstab_jax.agents.sac.networks import make_networks
from rlstab_jax.agents.sac.testing import VEC_SPEC, build, tiny_cfg
from rlstab_jax.config.split import extract_hparams
from rlstab_jax.stability import critic as critic_fns
from rlstab_jax.stability import policy


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
    one = jnp.array([[3.0, 1.0, 2.0], [6.0, 4.0, 5.0]])  # critic 0, critic 1 (unsorted)
    next_q = jnp.stack([one, one], axis=1)  # [N=2, B=2, M=3]
    alpha = jnp.array([0.1, 0.3])  # the backup uses mean alpha = 0.2 (report 000 Step 7b)
    logp = jnp.array([1.0, 1.0])
    batch = _tiny_batch([1.0, 1.0], [False, True], [0.5, 0.5])
    target = losses.soft_backup(cfg, next_q, logp, alpha, batch, hp, None)
    # atoms [1, 2, 3, 4] - 0.2 * 1 = [0.8, 1.8, 2.8, 3.8]; row 0: 1 + 0.5 * atoms;
    # row 1 is terminated: no bootstrap, y = r = 1.
    np.testing.assert_allclose(target, [[1.4, 1.9, 2.4, 2.9], [1.0, 1.0, 1.0, 1.0]], atol=1e-6)
    clipped = losses.soft_backup(cfg, next_q, logp, alpha, batch,
                                 {**hp, "backup_clip": jnp.float32(2.0)}, None)  # report 003 §11B
    np.testing.assert_allclose(clipped[0], [1.4, 1.9, 2.0, 2.0], atol=1e-6)


def test_tqc_critic_loss_is_mean_quantile_huber():
    cfg = tiny_cfg(critic_kind="tqc", n_quantiles=2)
    # One critic, one row: quantiles [0, 0], target atoms [1]; tau = [0.25, 0.75];
    # u = 1 > 0 -> weight tau; Huber(1) = 0.5 -> losses [0.125, 0.375], mean 0.25.
    q = jnp.zeros((1, 1, 2))
    np.testing.assert_allclose(losses.critic_regression_loss(cfg, q, jnp.ones((1, 1))), 0.25)


def test_tqc_critic_loss_averages_the_per_critic_quantile_huber_losses():
    # N = 2 critics, B = 3 rows, M = 2 quantiles, 4 target atoms: the mean over critics of each
    # critic's own quantile Huber loss against the shared atoms.
    cfg = tiny_cfg(critic_kind="tqc", n_quantiles=2)
    q = jax.random.normal(jax.random.key(0), (2, 3, 2))
    target = jax.random.normal(jax.random.key(1), (3, 4))
    want = np.mean([critic_fns.quantile_huber_loss(q[n], target) for n in range(2)])
    np.testing.assert_allclose(losses.critic_regression_loss(cfg, q, target), want, rtol=1e-6)


def test_scalar_critic_loss_sums_over_critics():
    cfg = tiny_cfg()
    q = jnp.array([[0.0, 0.0], [2.0, 2.0]])  # [N=2, B=2]; target 1 -> 0.5 * (1 + 1) = 1
    np.testing.assert_allclose(losses.critic_regression_loss(cfg, q, jnp.ones(2)), 1.0)


def test_soft_backup_min_and_entropy_terms():
    cfg = tiny_cfg()
    hp = extract_hparams(cfg)
    next_q = jnp.array([[2.0, 5.0], [3.0, 4.0]])  # min over critics -> [2, 4]
    batch = _tiny_batch([0.5, 0.5], [False, False], [0.9, 0.9])
    alpha = jnp.array([0.5, 1.5])  # mean 1.0
    y = losses.soft_backup(cfg, next_q, jnp.array([1.0, -1.0]), alpha, batch, hp, None)
    # y = 0.5 + 0.9 * (min_q - 1.0 * logp) = [0.5 + 0.9 * 1, 0.5 + 0.9 * 5]
    np.testing.assert_allclose(y, [1.4, 5.0], rtol=1e-6)


def test_nstep_uses_batch_discount_not_gamma():
    cfg = tiny_cfg()
    hp = extract_hparams(cfg)  # gamma = 0.99 must NOT be used: the driver folded gamma**k
    next_q = jnp.array([[2.0, 2.0], [3.0, 3.0]])  # min 2
    batch = _tiny_batch([1.0, 1.0], [False, False], [0.9**3, 0.99])
    target = losses.soft_backup(cfg, next_q, jnp.zeros(2), jnp.ones(2), batch, hp, None)
    np.testing.assert_allclose(target, [1.0 + 0.729 * 2.0, 1.0 + 0.99 * 2.0], rtol=1e-6)


def test_redq_subset_min():
    q = jnp.array([1.0, 5.0, 3.0, 4.0, 2.0])[:, None] * jnp.ones((5, 3))  # [N=5, B=3]
    batch = _tiny_batch([0.0] * 3, [False] * 3, [1.0] * 3)
    full = tiny_cfg(n_critics=5)
    hp = extract_hparams(full)
    y_all = losses.soft_backup(full, q, jnp.zeros(3), jnp.ones(2), batch, hp, jax.random.key(0))
    np.testing.assert_allclose(y_all, 1.0)  # critic_subset=0: min over all N
    sub = tiny_cfg(n_critics=5, critic_subset=2)
    fn = jax.jit(lambda k: losses.soft_backup(sub, q, jnp.zeros(3), jnp.ones(2), batch, hp, k))
    vals = {float(fn(jax.random.key(i))[0]) for i in range(16)}
    assert vals <= {1.0, 2.0, 3.0, 4.0} and len(vals) > 1  # min over random pairs


def test_target_entropy_default_and_total():
    nan = {"target_entropy_total": jnp.float32(jnp.nan)}
    np.testing.assert_allclose(losses.target_entropy(3, nan), [-1.0, -1.0, -1.0])
    tot = {"target_entropy_total": jnp.float32(-3.0)}  # report 003: TARGET_ENTROPY -3 for 3 dims
    np.testing.assert_allclose(losses.target_entropy(2, tot), [-1.5, -1.5], rtol=1e-6)


def test_scalar_alpha_mode_ties_the_vector():
    cfg = tiny_cfg(alpha_mode="scalar")
    log_alpha = jnp.zeros(2)
    logp = jnp.array([[-3.0, 2.0]] * 4)  # dim 0 high entropy, dim 1 low
    g = jax.grad(lambda la: losses.alpha_objective(la, cfg, logp, -jnp.ones(2))[0])(log_alpha)
    assert g[1] == 0.0  # only the tied scalar (element 0) is learned
    tied = losses.tie_scalar_alpha(cfg, jnp.array([0.3, -7.0]))
    assert tied[0] == tied[1] == jnp.float32(0.3)
    per_dim = tiny_cfg()
    g = jax.grad(lambda la: losses.alpha_objective(la, per_dim, logp, -jnp.ones(2))[0])(log_alpha)
    assert g[0] > 0.0 > g[1]  # descent lowers alpha_0 and raises alpha_1 (report 000 Fix C)


def test_current_alpha_fixed_is_init_alpha_learned_is_exp_log_alpha():
    hp = {"init_alpha": jnp.float32(0.01)}  # report 003 Run A: fixed alpha 0.01
    la = jnp.log(jnp.array([0.5, 2.0]))
    np.testing.assert_allclose(losses.current_alpha(tiny_cfg(learn_alpha=False), la, hp), 0.01)
    np.testing.assert_allclose(losses.current_alpha(tiny_cfg(), la, hp), [0.5, 2.0], rtol=1e-6)


@pytest.mark.parametrize("kind,actor_q", [("q", "mean"), ("q", "min"), ("tqc", "min")])
def test_actor_loss_reduces_q_over_critics_as_configured(kind, actor_q):
    # The policy loss's Q at a ~ pi: min or mean over critics (report 003 §5 uses the mean of
    # all TQC atoms); recomputed here from the same sample (same key split as actor_loss).
    cfg = tiny_cfg(critic_kind=kind, actor_q=actor_q, n_critics=3, n_quantiles=4)
    agent_nets = make_networks(cfg, VEC_SPEC)
    _, hp, state = build(cfg)
    obs = jax.random.normal(jax.random.key(1), (5, 3))
    alpha = jnp.array([0.3, 0.1])
    key = jax.random.key(2)
    loss, aux = losses.actor_loss(state.actor_params, {}, agent_nets, state.critic_params, obs,
                                  alpha, key, hp)
    k_pi, k_drop = jax.random.split(key)
    mean, log_std = agent_nets.actor_dist(state.actor_params, {}, obs, hp)
    action, _, logp = policy.squashed_gaussian_sample(k_pi, mean, log_std)
    q = np.asarray(agent_nets.q_values(state.critic_params, obs, action, k_drop))
    q_pi = q.mean(axis=(0, 2)) if kind == "tqc" else getattr(q, actor_q)(axis=0)
    assert not np.allclose(q.min(axis=0), q.mean(axis=0), atol=1e-4)  # the choice matters
    np.testing.assert_allclose(aux["q_pi"], q_pi, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(aux["logp_per_dim"], logp, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss, np.mean(np.sum(np.asarray(alpha) * logp, -1) - q_pi),
                               rtol=1e-5, atol=1e-6)


def test_redq_subset_of_one_is_a_random_single_critic():
    # critic_subset=1 (REDQ's M=1 limit) must draw one random critic per call, not fall back
    # to the min over all N (which would always give 1.0 here).
    q = jnp.array([1.0, 5.0, 3.0, 4.0, 2.0])[:, None] * jnp.ones((5, 3))  # [N=5, B=3]
    batch = _tiny_batch([0.0] * 3, [False] * 3, [1.0] * 3)
    one = tiny_cfg(n_critics=5, critic_subset=1)
    hp = extract_hparams(one)
    fn = jax.jit(lambda k: losses.soft_backup(one, q, jnp.zeros(3), jnp.ones(2), batch, hp, k))
    vals = {float(fn(jax.random.key(i))[0]) for i in range(16)}
    assert vals <= {1.0, 2.0, 3.0, 4.0, 5.0} and len(vals) >= 3


def test_tqc_backup_subtracts_alpha_times_logp_per_row():
    # Report 000 Step 7b on the TQC atoms: y = r + d * (atom - mean(alpha) * logp'), with
    # log-probs other than 1 so alpha * logp and alpha / logp differ.
    cfg = tiny_cfg(critic_kind="tqc", n_quantiles=2, drop_per_critic=0)
    hp = extract_hparams(cfg)
    next_q = jnp.zeros((2, 2, 2))  # [N, B, M]: every atom 0
    batch = _tiny_batch([0.0, 0.0], [False, False], [1.0, 1.0])
    y = losses.soft_backup(cfg, next_q, jnp.array([2.0, -0.5]), jnp.array([0.1, 0.3]), batch,
                           hp, None)
    np.testing.assert_allclose(y, [[-0.4] * 4, [0.1] * 4], rtol=1e-6)
