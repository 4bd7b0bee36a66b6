"""Tests for rlstab_jax.stability.critic (field reports 000, 002, 003)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.stability.critic import (
    clip_backup,
    ema_regulariser,
    ensemble_min,
    nstep_target,
    polyak_update,
    quantile_huber_loss,
    td_target,
    tqc_target_quantiles,
)


# ---------------------------------------------------------------- one-step TD
def test_td_target_hand_values():
    r = jnp.array([1.0, 2.0, -1.0])
    v = jnp.array([10.0, 10.0, 4.0])
    term = jnp.array([False, True, False])
    # 1 + 0.9*10 = 10; terminal: 2; -1 + 0.9*4 = 2.6
    np.testing.assert_allclose(td_target(r, v, term, 0.9), [10.0, 2.0, 2.6], rtol=1e-6)


def test_td_target_broadcasts_over_quantiles_and_stops_gradient():
    r = jnp.array([1.0, 0.0])
    q = jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    out = td_target(r, q, jnp.array([0.0, 1.0]), 0.5)
    np.testing.assert_allclose(out, [[1.5, 2.0, 2.5], [0.0, 0.0, 0.0]])
    g = jax.grad(lambda x: td_target(r, x, jnp.zeros(2), 0.5).sum())(q)
    np.testing.assert_array_equal(g, np.zeros_like(q))


def _fixed_point(term_mask, gamma, iters=400):
    # Single-state task, reward 1 forever, time limit T = len(term_mask). The value
    # table has one entry; sweep all transitions of an episode and average the targets.
    reward = jnp.ones_like(term_mask, jnp.float32)

    def body(_, v):
        return jnp.mean(td_target(reward, jnp.full_like(reward, v), term_mask, gamma))

    return jax.jit(lambda: jax.lax.fori_loop(0, iters, body, jnp.float32(0.0)))()


def test_infinite_horizon_requires_truncation_bootstrap():
    # Episode of T=5 steps cut by a time limit at the last step (truncated, NOT terminated).
    gamma, T = 0.9, 5
    terminated = jnp.zeros(T, bool)
    truncated = jnp.zeros(T, bool).at[T - 1].set(True)
    v_right = _fixed_point(terminated, gamma)
    np.testing.assert_allclose(v_right, 1.0 / (1.0 - gamma), rtol=1e-5)  # = 10
    # Buggy form (truncation treated as termination): V = 1 + gamma (1 - 1/T) V
    v_bug = _fixed_point(terminated | truncated, gamma)
    np.testing.assert_allclose(v_bug, 1.0 / (1.0 - gamma * (1 - 1 / T)), rtol=1e-5)  # 3.571
    assert v_right - v_bug > 6.0


# ---------------------------------------------------------------- n-step
R = jnp.array([1.0, 2.0, 4.0])
V = jnp.array([10.0, 20.0, 40.0])


@pytest.mark.parametrize(
    "term, trunc, expected",
    [
        # gamma = 0.5. No end: 1 + .5*2 + .25*4 + .125*V2(40) = 1 + 1 + 1 + 5 = 8
        ([0, 0, 0], [0, 0, 0], 8.0),
        # terminated at k=1: 1 + .5*2, no bootstrap = 2
        ([0, 1, 0], [0, 0, 0], 2.0),
        # truncated at k=1: 1 + .5*2 + .25*V1(20) = 7
        ([0, 0, 0], [0, 1, 0], 7.0),
        # terminated at k=0: 1
        ([1, 0, 0], [0, 0, 0], 1.0),
        # truncated at k=0: 1 + .5*V0(10) = 6
        ([0, 0, 0], [1, 0, 0], 6.0),
        # terminated at the last step: 1 + 1 + 1 = 3
        ([0, 0, 1], [0, 0, 0], 3.0),
        # truncated at the last step: same as no end, bootstrap V2: 8
        ([0, 0, 0], [0, 0, 1], 8.0),
        # terminated at 0; later flags belong to another episode and are ignored
        ([1, 1, 0], [0, 1, 1], 1.0),
        # truncated at k=1 and terminated at k=2 (next episode): 7
        ([0, 0, 1], [0, 1, 0], 7.0),
    ],
)
def test_nstep_hand_cases(term, trunc, expected):
    out = nstep_target(R[None], jnp.array([term], bool), jnp.array([trunc], bool), V[None], 0.5)
    np.testing.assert_allclose(out, [expected], rtol=1e-6)


def _nstep_loop(r, term, trunc, v, gamma):
    out = np.zeros(r.shape[0])
    for b in range(r.shape[0]):
        g, disc = 0.0, 1.0
        for k in range(r.shape[1]):
            g += disc * r[b, k]
            disc *= gamma
            if term[b, k]:
                break
            if trunc[b, k] or k == r.shape[1] - 1:
                g += disc * v[b, k]
                break
        out[b] = g
    return out


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 5), gamma=st.floats(0.0, 1.0))
def test_nstep_matches_python_loop(seed, n, gamma):
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(6, n)).astype(np.float32)
    v = rng.normal(size=(6, n)).astype(np.float32)
    term = rng.random((6, n)) < 0.25
    trunc = rng.random((6, n)) < 0.25
    out = jax.jit(nstep_target)(r, term, trunc, v, gamma)
    np.testing.assert_allclose(out, _nstep_loop(r, term, trunc, v, gamma), rtol=1e-5, atol=1e-5)


def test_nstep_equals_td_for_n1_and_vmaps():
    r, v = jnp.array([[1.0], [2.0]]), jnp.array([[3.0], [5.0]])
    term, trunc = jnp.array([[False], [True]]), jnp.array([[True], [False]])
    np.testing.assert_allclose(
        nstep_target(r, term, trunc, v, 0.9), td_target(r[:, 0], v[:, 0], term[:, 0], 0.9)
    )
    gammas = jnp.array([0.0, 0.5, 0.99])
    vm = jax.vmap(nstep_target, in_axes=(None, None, None, None, 0))(r, term, trunc, v, gammas)
    for i, g in enumerate([0.0, 0.5, 0.99]):
        np.testing.assert_allclose(vm[i], nstep_target(r, term, trunc, v, g), rtol=1e-6)


def test_nstep_infinite_horizon_fixed_point():
    # Reward 1 forever, time limit T=5, windows n=3 starting at every t. V = 1/(1-g)
    # must be a fixed point of every window iff truncation bootstraps.
    gamma, T, n = 0.9, 5, 3
    v_star = 1.0 / (1.0 - gamma)
    rows = []
    for t in range(T):
        steps = [t + k for k in range(n)]
        trunc = [s == T - 1 for s in steps]  # after T-1 the window holds the next episode
        rows.append(trunc)
    trunc = jnp.array(rows)
    term = jnp.zeros_like(trunc)
    ones = jnp.ones((T, n))
    np.testing.assert_allclose(nstep_target(ones, term, trunc, v_star * ones, gamma), v_star, rtol=1e-5)
    buggy = nstep_target(ones, trunc, trunc, v_star * ones, gamma)
    assert np.all(np.asarray(buggy)[T - n + 1 :] < v_star - 1.0)


def test_nstep_quantile_bootstrap_dims():
    v = jnp.stack([V, 2 * V], axis=-1)[None]  # [1, 3, 2]
    out = nstep_target(R[None], jnp.zeros((1, 3)), jnp.zeros((1, 3)), v, 0.5)
    np.testing.assert_allclose(out, [[8.0, 13.0]])  # 3 + .125*40, 3 + .125*80
    # B = M = 2 (the reward part must broadcast over atoms, not over rows): rows with rewards
    # 1 and 3 per step, n = 1, gamma 0.5: [r + .5 * v_0, r + .5 * v_1] per row.
    boot = jnp.array([[[2.0, 4.0]], [[6.0, 8.0]]])  # [B=2, n=1, M=2]
    out = nstep_target(jnp.array([[1.0], [3.0]]), jnp.zeros((2, 1)), jnp.zeros((2, 1)), boot, 0.5)
    np.testing.assert_allclose(out, [[2.0, 3.0], [6.0, 7.0]])


# ---------------------------------------------------------------- backup clipping
def test_clip_backup():
    t = jnp.array([-250.0, -5.0, 0.0, 99.0, 1e6])
    np.testing.assert_allclose(clip_backup(t, 100.0), [-100.0, -5.0, 0.0, 99.0, 100.0])
    np.testing.assert_array_equal(clip_backup(t, 0.0), t)
    np.testing.assert_array_equal(clip_backup(t, -1.0), t)
    ranges = jnp.array([0.0, 10.0])
    vm = jax.jit(jax.vmap(clip_backup, in_axes=(None, 0)))(t, ranges)
    np.testing.assert_array_equal(vm[0], t)
    np.testing.assert_allclose(vm[1], [-10.0, -5.0, 0.0, 10.0, 10.0])
    np.testing.assert_allclose(clip_backup(t, 0.5), [-0.5, -0.5, 0.0, 0.5, 0.5])  # any range > 0


# ---------------------------------------------------------------- ensembles
def test_ensemble_min_clipped_double_q():
    q = jnp.array([[1.0, 5.0, -2.0], [3.0, 4.0, -1.0]])
    np.testing.assert_array_equal(ensemble_min(q), [1.0, 4.0, -2.0])
    # TQC quantiles [N, B, M] and sequences [N, T, B, M]: the min over the critic axis only.
    q3 = jnp.stack([q, q - 2.0 * jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])], axis=-1)
    np.testing.assert_array_equal(ensemble_min(q3), np.min(np.asarray(q3), axis=0))
    np.testing.assert_array_equal(ensemble_min(q3[:, None]), np.min(np.asarray(q3), axis=0)[None])


def test_ensemble_min_redq_subset():
    q = jnp.array([[5.0, 1.0], [4.0, 2.0], [3.0, 3.0], [2.0, 4.0], [1.0, 5.0]])
    pair_mins = {tuple(np.minimum(q[i], q[j]).tolist()) for i, j in itertools.combinations(range(5), 2)}
    keys = jax.random.split(jax.random.key(0), 40)
    outs = jax.jit(jax.vmap(lambda k: ensemble_min(q, k, 2)))(keys)
    seen = {tuple(o.tolist()) for o in np.asarray(outs)}
    assert seen <= pair_mins and len(seen) > 3  # always a real pair, and pairs vary
    np.testing.assert_array_equal(outs[7], ensemble_min(q, keys[7], 2))  # vmap == single
    np.testing.assert_array_equal(ensemble_min(q, keys[0], 5), ensemble_min(q))
    single = {tuple(o.tolist()) for o in np.asarray(jax.vmap(lambda k: ensemble_min(q, k, 1))(keys))}
    assert single <= {tuple(r) for r in np.asarray(q).tolist()} and len(single) > 2  # one critic
    with pytest.raises(ConfigError, match=r"^ensemble_min: subset_size=6 must be in \[1, 5\] "
                                          r"\(N critics\)$"):
        ensemble_min(q, keys[0], 6)
    with pytest.raises(ConfigError, match=r"^ensemble_min: subset_size given but key is None; "
                                          r"pass a PRNG key$"):
        ensemble_min(q, None, 2)


# ---------------------------------------------------------------- TQC
def test_tqc_target_quantiles_golden():
    # N=2 critics x M=3 quantiles, drop 1 per critic -> keep 2*3 - 2*1 = 4 atoms.
    # Row 0: critic A [1, 5, 3], critic B [2, 6, 4] -> pooled sorted [1,2,3,4,5,6],
    #        drop the top 2 -> [1, 2, 3, 4].
    # Row 1: A [-1, 0, 9], B [-3, 7, 8] -> sorted [-3,-1,0,7,8,9] -> [-3, -1, 0, 7].
    quantiles = jnp.array(
        [
            [[1.0, 5.0, 3.0], [-1.0, 0.0, 9.0]],  # critic A, rows 0 and 1
            [[2.0, 6.0, 4.0], [-3.0, 7.0, 8.0]],  # critic B
        ]
    )
    out = tqc_target_quantiles(quantiles, 1)
    np.testing.assert_array_equal(out, [[1.0, 2.0, 3.0, 4.0], [-3.0, -1.0, 0.0, 7.0]])
    assert tqc_target_quantiles(quantiles, 0).shape == (2, 6)
    with pytest.raises(ConfigError, match=r"^tqc_target_quantiles: drop_per_critic=3 must be in "
                                          r"\[0, 2\] \(M=3 quantiles per critic\)$"):
        tqc_target_quantiles(quantiles, 3)


@pytest.mark.parametrize("n,m", [(2, 25), (5, 7)])
def test_tqc_target_quantiles_equals_sorted_truncation(n, m):
    # top_k-based selection must give exactly sort(pooled)[:, :keep]: values and order, with
    # ties, infinities and -0.0 in the pool.
    x = jax.random.normal(jax.random.key(n * m), (n, 32, m))
    x = x.at[0, :4, 0].set(jnp.inf).at[1, 4:8, 1].set(-jnp.inf).at[0, 8:12, 2].set(-0.0)
    x = x.at[1, 12:20, :].set(x[0, 12:20, :])  # duplicated atoms across critics
    pooled = np.asarray(jnp.transpose(x, (1, 0, 2)).reshape(32, n * m))
    for drop in range(m):
        ref = np.sort(pooled, axis=-1)[:, : n * m - n * drop]
        out = np.asarray(tqc_target_quantiles(x, drop))
        np.testing.assert_array_equal(out, ref)
        assert np.all(np.diff(out, axis=-1) >= 0)


def test_quantile_huber_golden_5_quantiles():
    # M=5: tau = [.1, .3, .5, .7, .9]; pred = [-2,-1,0,1,2]; targets [0.5, 3.0]; kappa=1.
    # target 0.5: u = [2.5, 1.5, .5, -.5, -1.5]; L = [2, 1, .125, .125, 1]
    #   weights |tau - 1{u<0}| = [.1, .3, .5, .3, .1] -> [.2, .3, .0625, .0375, .1] sum .7
    # target 3.0: u = [5, 4, 3, 2, 1]; L = [4.5, 3.5, 2.5, 1.5, .5]
    #   weights tau -> [.45, 1.05, 1.25, 1.05, .45] sum 4.25
    # mean over M*K = 10 -> 4.95/10 = .495; sum over M, mean over K -> 2.475
    pred = jnp.array([[-2.0, -1.0, 0.0, 1.0, 2.0]])
    target = jnp.array([[0.5, 3.0]])
    np.testing.assert_allclose(quantile_huber_loss(pred, target), 0.495, rtol=1e-6)
    np.testing.assert_allclose(
        quantile_huber_loss(pred, target, reduction="sum_quantiles"), 2.475, rtol=1e-6
    )


def test_quantile_huber_kappa_and_gradient():
    # kappa=2: u=1.5 -> .5*2.25 = 1.125 (quadratic), u=3 -> 2*(3 - 1) = 4 (linear)
    # M=1 -> tau=.5: loss = .5 * (1.125 + 4) / 2 = 1.28125
    np.testing.assert_allclose(
        quantile_huber_loss(jnp.zeros((1, 1)), jnp.array([[1.5, 3.0]]), kappa=2.0), 1.28125
    )
    # far target (linear part): dL/dpred_i = -tau_i * kappa / (M*K)
    g = jax.grad(lambda p: quantile_huber_loss(p, jnp.array([[10.0]])))(jnp.zeros((1, 5)))
    np.testing.assert_allclose(g, -np.array([[0.1, 0.3, 0.5, 0.7, 0.9]]) / 5, rtol=1e-6)
    gt = jax.grad(lambda t: quantile_huber_loss(jnp.zeros((1, 5)), t))(jnp.array([[10.0]]))
    np.testing.assert_array_equal(gt, [[0.0]])
    with pytest.raises(ConfigError, match=r"^quantile_huber_loss: reduction='sum', expected "
                                          r"'mean' or 'sum_quantiles'$"):
        quantile_huber_loss(jnp.zeros((1, 1)), jnp.zeros((1, 1)), reduction="sum")


def test_quantile_huber_matches_numpy_and_vmaps_over_critics():
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(3, 4, 5)).astype(np.float32)  # [N, B, M]
    target = (2 * rng.normal(size=(4, 8))).astype(np.float32)

    def ref(p, t):
        tau = (np.arange(p.shape[1]) + 0.5) / p.shape[1]
        u = t[:, None, :] - p[:, :, None]
        h = np.where(np.abs(u) <= 1, 0.5 * u**2, np.abs(u) - 0.5)
        return np.mean(np.abs(tau[None, :, None] - (u < 0)) * h)

    vm = jax.jit(jax.vmap(quantile_huber_loss, in_axes=(0, None)))(pred, target)
    np.testing.assert_allclose(vm, [ref(pred[i], target) for i in range(3)], rtol=1e-5)


# ---------------------------------------------------------------- target networks
def test_polyak_update():
    tgt = {"w": jnp.zeros(3), "b": jnp.ones(())}
    onl = {"w": jnp.ones(3), "b": jnp.zeros(())}
    new = polyak_update(tgt, onl, 0.1)
    np.testing.assert_allclose(new["w"], [0.1] * 3, rtol=1e-6)
    np.testing.assert_allclose(new["b"], 0.9, rtol=1e-6)
    np.testing.assert_array_equal(polyak_update(tgt, onl, 1.0)["w"], onl["w"])
    taus = jnp.array([0.0, 0.5])
    vm = jax.jit(jax.vmap(polyak_update, in_axes=(None, None, 0)))(tgt, onl, taus)
    np.testing.assert_allclose(vm["w"], [[0.0] * 3, [0.5] * 3])


def test_ema_regulariser():
    v, slow = jnp.array([1.0, 3.0]), jnp.array([0.0, 1.0])
    np.testing.assert_allclose(ema_regulariser(v, slow), 0.5 * (1 + 4) / 2)  # 1.25
    np.testing.assert_allclose(ema_regulariser(v, slow, 0.0), 0.0)
    gv, gs = jax.grad(ema_regulariser, argnums=(0, 1))(v, slow)
    np.testing.assert_allclose(gv, [0.5, 1.0])  # (v - slow) / B
    np.testing.assert_array_equal(gs, [0.0, 0.0])


def test_quantile_huber_loss_treats_targets_as_a_set():
    # Only the multiset of target atoms matters (the TQC target's order is irrelevant).
    pred = jax.random.normal(jax.random.key(0), (8, 5))
    target = jax.random.normal(jax.random.key(1), (8, 9))
    perm = jax.random.permutation(jax.random.key(2), 9)
    for reduction in ("mean", "sum_quantiles"):
        np.testing.assert_allclose(quantile_huber_loss(pred, target, reduction=reduction),
                                   quantile_huber_loss(pred, target[:, perm],
                                                       reduction=reduction), rtol=1e-6)


def test_targets_keep_the_value_dtype():
    # bfloat16 critics get bfloat16 targets (rewards and flags are cast to the value dtype).
    v = jnp.array([10.0, 4.0], jnp.bfloat16)
    out = td_target(jnp.array([1.0, -1.0]), v, jnp.array([False, True]), 0.5)
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(out.astype(jnp.float32), [6.0, -1.0])
    boot = jnp.full((1, 2), 4.0, jnp.bfloat16)
    out = nstep_target(jnp.ones((1, 2)), jnp.zeros((1, 2)), jnp.zeros((1, 2)), boot, 0.5)
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(out.astype(jnp.float32), [1.0 + 0.5 + 0.25 * 4.0])
