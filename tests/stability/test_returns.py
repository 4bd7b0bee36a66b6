"""Tests for rlstab_jax.stability.returns (lambda returns, GAE) against NumPy loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.stability.returns import gae, lambda_returns, replay_lambda_returns


def _np_lambda_returns(r, v, c, gamma, lam, bootstrap="next"):
    T = r.shape[0]
    out = np.zeros_like(r)
    nxt = v[T]
    for t in reversed(range(T)):
        boot = v[t + 1] if bootstrap == "next" else v[t]
        nxt = r[t] + gamma * c[t] * ((1 - lam) * boot + lam * nxt)
        out[t] = nxt
    return out


def _np_gae(r, v, last_v, term, gamma, lam, trunc=None, final_v=None):
    T = r.shape[0]
    adv = np.zeros_like(r)
    trunc = np.zeros_like(term) if trunc is None else trunc
    final_v = v if final_v is None else final_v
    a = np.zeros_like(last_v)
    for t in reversed(range(T)):
        nxt = last_v if t == T - 1 else v[t + 1]
        boot = np.where(term[t], 0.0, np.where(trunc[t], final_v[t], nxt))
        delta = r[t] + gamma * boot - v[t]
        a = delta + gamma * lam * (1.0 - (term[t] | trunc[t])) * a
        adv[t] = a
    return adv, adv + v


def _rollout(T=7, B=3, seed=0):
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(T, B)).astype(np.float32)
    v = rng.normal(size=(T + 1, B)).astype(np.float32)
    term = rng.random((T, B)) < 0.2
    trunc = (rng.random((T, B)) < 0.2) & ~term
    final_v = rng.normal(size=(T, B)).astype(np.float32)
    return r, v, term, trunc, final_v


@pytest.mark.parametrize("bootstrap", ["next", "current"])
@pytest.mark.parametrize("lam", [0.0, 0.95, 1.0])
def test_lambda_returns_match_numpy_loop(bootstrap, lam):
    r, v, term, _, _ = _rollout()
    c = (~term).astype(np.float32) * 0.997
    out = jax.jit(lambda_returns, static_argnums=5)(r, v, c, 0.99, lam, bootstrap)
    np.testing.assert_allclose(out, _np_lambda_returns(r, v, c, 0.99, lam, bootstrap), rtol=1e-5,
                               atol=1e-6)


def test_lambda_returns_hand_case_and_bug_form():
    # T=2, gamma=0.5, lam=0.5, c=1, r=(1, 2), V=(10, 20, 30):
    # R_1 = 2 + 0.5 * (0.5 * 30 + 0.5 * 30) = 17
    # R_0 = 1 + 0.5 * (0.5 * V(s_1) + 0.5 * R_1) = 1 + 0.5 * (10 + 8.5) = 10.25
    # bug ("current", V(s_t)): R_1 = 2 + 0.5 * (0.5 * 20 + 0.5 * 30) = 14.5;
    #                        R_0 = 1 + 0.5 * (0.5 * 10 + 0.5 * 14.5) = 7.125
    r, v, c = jnp.array([1.0, 2.0]), jnp.array([10.0, 20.0, 30.0]), jnp.ones(2)
    np.testing.assert_allclose(lambda_returns(r, v, c, 0.5, 0.5), [10.25, 17.0])
    np.testing.assert_allclose(lambda_returns(r, v, c, 0.5, 0.5, "current"), [7.125, 14.5])
    # Terminal after step 0 (c_0 = 0): R_0 = r_0, nothing bootstrapped.
    np.testing.assert_allclose(lambda_returns(r, v, jnp.array([0.0, 1.0]), 0.5, 0.5)[0], 1.0)
    # lam = 1: both forms are the discounted sum plus the final bootstrap.
    for mode in ("next", "current"):
        np.testing.assert_allclose(lambda_returns(r, v, c, 0.5, 1.0, mode), [1 + 0.5 * (2 + 15), 17.0])


def test_lambda_returns_rejects_bad_mode_and_shapes():
    with pytest.raises(ConfigError, match=r"^lambda_returns bootstrap='previous' is not one of "
                                          r"\('next', 'current'\)$"):
        lambda_returns(jnp.ones(2), jnp.ones(3), jnp.ones(2), 0.9, 0.9, "previous")
    with pytest.raises(AssertionError):
        lambda_returns(jnp.ones(2), jnp.ones(2), jnp.ones(2), 0.9, 0.9)


def test_gae_matches_numpy_loop_with_truncation():
    r, v, term, trunc, final_v = _rollout(T=9, B=4, seed=1)
    last = np.float32(0.7) * np.ones(4, np.float32)
    vals = v[:-1]
    run = jax.jit(gae)
    for kw, ref_kw in [
        ({}, {}),
        (dict(truncated=trunc), dict(trunc=trunc)),
        (dict(truncated=trunc, final_values=final_v), dict(trunc=trunc, final_v=final_v)),
    ]:
        adv, ret = run(r, vals, last, term, 0.99, 0.95, **kw)
        ref_adv, ref_ret = _np_gae(r, vals, last, term, 0.99, 0.95, **ref_kw)
        np.testing.assert_allclose(adv, ref_adv, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(ret, ref_ret, rtol=1e-5, atol=1e-5)


def test_gae_constant_value_hand_case():
    # V = 2 everywhere, r = 1, gamma = 0.5, lam = 1, T = 3, no dones, last value 2:
    # delta = 1 + 0.5 * 2 - 2 = 0 at every step, so A = 0 and returns = V = 2.
    r, v = jnp.ones((3, 1)), 2.0 * jnp.ones((3, 1))
    no = jnp.zeros((3, 1), bool)
    adv, ret = gae(r, v, 2.0 * jnp.ones(1), no, 0.5, 1.0)
    np.testing.assert_array_equal(adv, 0.0)
    np.testing.assert_array_equal(ret, 2.0)
    # Terminal at the last step: delta_2 = 1 - 2 = -1; A_1 = 0 + 0.5 * -1; A_0 = 0.25 * -1.
    adv, _ = gae(r, v, 2.0 * jnp.ones(1), no.at[2].set(True), 0.5, 1.0)
    np.testing.assert_allclose(adv[:, 0], [-0.25, -0.5, -1.0])


def test_gae_infinite_horizon_needs_truncation_bootstrap():
    # Never-terminating task, r = 1, time limit every 4 steps; true V = 1 / (1 - gamma) = 10.
    gamma, T = 0.9, 8
    r = jnp.ones((T, 1))
    v = 10.0 * jnp.ones((T, 1))
    term = jnp.zeros((T, 1), bool)
    trunc = term.at[3].set(True).at[7].set(True)
    for kw in (dict(final_values=v), {}):  # true final value, or the V(s_t) stand-in
        adv, ret = gae(r, v, 10.0 * jnp.ones(1), term, gamma, 0.95, truncated=trunc, **kw)
        np.testing.assert_allclose(adv, 0.0, atol=1e-5)
        np.testing.assert_allclose(ret, 10.0, rtol=1e-6)
    # Treating the time limit as terminal biases the value at the cut: delta = 1 - 10 = -9.
    adv_bad, _ = gae(r, v, 10.0 * jnp.ones(1), trunc, gamma, 0.95)
    np.testing.assert_allclose(adv_bad[3, 0], -9.0, rtol=1e-6)


def test_gae_terminated_wins_over_truncated_and_errors():
    r, v = jnp.ones((1, 1)), jnp.zeros((1, 1))
    both = jnp.ones((1, 1), bool)
    adv, _ = gae(r, v, jnp.zeros(1), both, 0.9, 0.9, truncated=both, final_values=100.0 * v + 5.0)
    np.testing.assert_allclose(adv, 1.0)  # no bootstrap from final_values
    with pytest.raises(ConfigError, match=r"^gae: final_values given without truncated; "
                                          r"pass truncated=\.\.\.$"):
        gae(r, v, jnp.zeros(1), both, 0.9, 0.9, final_values=v)


def test_vmap_over_hparams_matches_loop():
    r, v, term, trunc, final_v = _rollout(T=6, B=2, seed=3)
    gammas, lams = jnp.array([0.9, 0.99, 0.5]), jnp.array([0.95, 0.0, 1.0])
    f = jax.jit(jax.vmap(lambda g, l: (gae(r, v[:-1], v[-1], term, g, l, trunc, final_v)[0],
                                       lambda_returns(r, v, (~term).astype(jnp.float32), g, l))))
    adv_b, lr_b = f(gammas, lams)
    for i in range(3):
        g, l = float(gammas[i]), float(lams[i])
        np.testing.assert_allclose(adv_b[i], gae(r, v[:-1], v[-1], term, g, l, trunc, final_v)[0],
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(lr_b[i], lambda_returns(r, v, (~term).astype(jnp.float32), g, l),
                                   rtol=1e-5, atol=1e-6)


def test_gae_keeps_a_low_precision_dtype():
    # bfloat16 rollouts stay bfloat16 (the done mask is cast to the rewards' dtype).
    r, v = jnp.ones((3, 2), jnp.bfloat16), jnp.full((3, 2), 2.0, jnp.bfloat16)
    done = jnp.zeros((3, 2), bool).at[1, 0].set(True)
    adv, ret = gae(r, v, jnp.full((2,), 2.0, jnp.bfloat16), done, 0.5, 1.0)
    assert adv.dtype == ret.dtype == jnp.bfloat16
    ref, _ = gae(r.astype(jnp.float32), v.astype(jnp.float32), jnp.full((2,), 2.0), done, 0.5, 1.0)
    np.testing.assert_allclose(adv.astype(jnp.float32), ref, atol=1e-2)


def _np_replay_returns(r, term, first, boot, gamma, lam):
    """Direct loop over the row convention: S_t = latent of next_obs_t."""
    T = r.shape[0]
    out = np.zeros((T - 1,) + r.shape[1:], np.float32)
    for b in np.ndindex(r.shape[1:]):
        nxt = boot[(T - 1,) + b]
        for t in reversed(range(T - 1)):
            if first[(t + 1,) + b]:  # S_t ended its episode: its own estimate
                nxt = boot[(t,) + b]
            else:
                c = 0.0 if term[(t + 1,) + b] else 1.0
                nxt = r[(t + 1,) + b] + gamma * c * (
                    (1 - lam) * boot[(t + 1,) + b] + lam * nxt)
            out[(t,) + b] = nxt
    return out


@pytest.mark.parametrize("lam", [0.0, 0.95, 1.0])
def test_replay_lambda_returns_match_a_row_loop_across_episode_boundaries(lam):
    rng = np.random.default_rng(3)
    T, B = 9, 4
    r = rng.normal(size=(T, B)).astype(np.float32)
    boot = rng.normal(size=(T, B)).astype(np.float32)
    term = rng.random((T, B)) < 0.2
    trunc = (rng.random((T, B)) < 0.15) & ~term
    first = np.zeros((T, B), bool)
    first[0] = True
    first[1:] = term[:-1] | trunc[:-1]
    got = replay_lambda_returns(jnp.asarray(r), jnp.asarray(term), jnp.asarray(first),
                                jnp.asarray(boot), 0.9, lam)
    assert got.shape == (T - 1, B)
    np.testing.assert_allclose(np.asarray(got), _np_replay_returns(r, term, first, boot, 0.9, lam),
                               rtol=1e-5, atol=1e-5)


def test_replay_lambda_returns_hand_case():
    # One episode, no boundary, lam = 1: discounted sum of the *next* rows' rewards, then boot.
    r = jnp.array([9.0, 1.0, 2.0, 3.0])  # r[0] belongs to the transition into S_0: unused
    z = jnp.zeros(4, bool)
    boot = jnp.array([0.0, 0.0, 0.0, 10.0])
    got = replay_lambda_returns(r, z, z, boot, 0.5, 1.0)
    np.testing.assert_allclose(np.asarray(got), [1 + 0.5 * (2 + 0.5 * (3 + 0.5 * 10)),
                                                 2 + 0.5 * (3 + 0.5 * 10), 3 + 0.5 * 10])
    # row 2 terminates (S_2 is terminal): R_1 = r[2], nothing bootstrapped after it
    got = replay_lambda_returns(r, jnp.array([False, False, True, False]), z, boot, 0.5, 1.0)
    np.testing.assert_allclose(np.asarray(got)[:2], [1 + 0.5 * 2, 2.0])

