"""Tests for rlstab_jax.stability.termination (terminal-weighted continue loss, recall)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlstab_jax.train.testing import assert_cli_rejects
from rlstab_jax.stability.termination import terminal_recall, terminal_weighted_bce


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**31 - 1))
def test_weight_one_is_the_plain_mean(n, seed):
    rng = np.random.default_rng(seed)
    logit = jnp.asarray(rng.normal(scale=3.0, size=n), jnp.float32)
    term = jnp.asarray(rng.random(n) < 0.3)
    plain = jnp.mean(optax.sigmoid_binary_cross_entropy(logit, 1.0 - term.astype(jnp.float32)))
    np.testing.assert_allclose(terminal_weighted_bce(logit, term, 1.0), plain, rtol=1e-6)


def test_hand_case_weighted_mean():
    logit = jnp.array([0.0, 2.0, 1.0])
    term = jnp.array([False, False, True])
    bce = np.array([np.log(2.0), np.log1p(np.exp(-2.0)), np.log1p(np.exp(1.0))])
    want = (bce[0] + bce[1] + 4.0 * bce[2]) / 6.0
    np.testing.assert_allclose(terminal_weighted_bce(logit, term, 4.0), want, rtol=1e-6)


def test_gradient_on_a_terminal_step_scales_with_the_weight():
    logit = jnp.array([1.0, 1.0])  # the same logit: one non-terminal, one terminal step
    term = jnp.array([False, True])
    for w in (1.0, 5.0, 30.0):
        g = jax.grad(terminal_weighted_bce)(logit, term, w)
        # d bce / d logit: sigmoid(l) - target; target 1 (continue) vs 0 (terminal)
        s = float(jax.nn.sigmoid(1.0))
        np.testing.assert_allclose(g, np.array([s - 1.0, w * s]) / (1.0 + w), rtol=1e-5)


@pytest.mark.parametrize("weight", [1.0, 10.0, 99.0])
def test_rare_terminations_are_not_outvoted(weight):
    """One logit shared by 99 continuing steps and 1 terminal one (a latent that cannot tell
    the edge from the middle): the minimiser is p(continue) = 99 / (99 + weight)."""
    term = jnp.arange(100) == 0
    opt = optax.adam(0.1)

    @jax.jit
    def step(logit, opt_state):
        g = jax.grad(lambda x: terminal_weighted_bce(jnp.full(100, x), term, weight))(logit)
        upd, opt_state = opt.update(g, opt_state)
        return logit + upd, opt_state

    logit = jnp.float32(0.0)
    opt_state = opt.init(logit)
    for _ in range(1500):
        logit, opt_state = step(logit, opt_state)
    np.testing.assert_allclose(jax.nn.sigmoid(logit), 99.0 / (99.0 + weight), atol=2e-3)


def test_weight_is_a_traced_hyperparameter_under_vmap():
    logit = jnp.array([0.5, -0.5, 2.0])
    term = jnp.array([False, True, False])
    ws = jnp.array([1.0, 3.0, 10.0])
    got = jax.jit(jax.vmap(terminal_weighted_bce, in_axes=(None, None, 0)))(logit, term, ws)
    want = [terminal_weighted_bce(logit, term, float(w)) for w in ws]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert float(got[2]) > float(got[0])  # the terminal step is the badly predicted one


def test_shape_mismatch_is_an_error():
    with pytest.raises(AssertionError):
        terminal_weighted_bce(jnp.zeros(3), jnp.zeros(4, bool), 2.0)


def test_recall_hand_cases():
    logit = jnp.array([-1.0, 2.0, 3.0, -4.0])  # < 0: the head calls the step terminal
    term = jnp.array([True, True, False, False])
    recall, count = terminal_recall(logit, term)
    assert float(recall) == 0.5 and float(count) == 2.0
    recall, count = terminal_recall(logit, jnp.zeros(4, bool))
    assert float(recall) == 1.0 and float(count) == 0.0


def test_cli_rejects_a_negative_terminal_weight_in_one_line(tmp_path):
    assert_cli_rejects(["--config", "dreamer/cartpole", "agent.cont_terminal_weight=-1"],
                       tmp_path / "run", "agent.cont_terminal_weight=-1", "must be >= 0")
