"""LaProp against a hand-written NumPy loop (normalise first, then momentum; both debiased)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rlstab_jax.stability.optim import laprop


def _numpy_laprop(params, grads, lr, b1, b2, eps):
    p, m, v = params.copy(), np.zeros_like(params), np.zeros_like(params)
    for t, g in enumerate(grads, start=1):
        v = b2 * v + (1 - b2) * g * g
        u = g / (np.sqrt(v / (1 - b2 ** t)) + eps)
        m = b1 * m + (1 - b1) * u
        p = p - lr * m / (1 - b1 ** t)
    return p


def test_laprop_matches_hand_computation():
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(3, 2)).astype(np.float32)
    grads = [rng.normal(size=(3, 2)).astype(np.float32) * s for s in (1.0, 10.0, 0.1, 3.0)]
    opt = laprop(0.01, b1=0.8, b2=0.95, eps=1e-6)
    params, state = jnp.asarray(p0), opt.init(jnp.asarray(p0))
    for g in grads:
        upd, state = opt.update(jnp.asarray(g), state, params)
        params = optax.apply_updates(params, upd)
    want = _numpy_laprop(p0, grads, 0.01, 0.8, 0.95, 1e-6)
    np.testing.assert_allclose(np.asarray(params), want, rtol=1e-5, atol=1e-6)


def test_laprop_differs_from_adam_and_bounds_a_spike():
    """A 100x gradient spike: every LaProp step stays <= lr / sqrt(1 - b2); order matters."""
    grads = [jnp.ones(1)] * 5 + [jnp.full(1, 100.0)] + [jnp.ones(1)] * 3
    steps = {}
    for name, opt in (("laprop", laprop(1.0, b2=0.99)), ("adam", optax.adam(1.0, b2=0.99))):
        state, out = opt.init(jnp.zeros(1)), []
        for g in grads:
            u, state = opt.update(g, state)
            out.append(float(-u[0]))
        steps[name] = np.asarray(out)
    assert not np.allclose(steps["laprop"], steps["adam"])
    assert np.all(np.abs(steps["laprop"]) <= 1.0 / np.sqrt(1 - 0.99) + 1e-4)
    assert np.abs(steps["laprop"]).max() > 1.2  # the spike did register


def test_laprop_injectable_learning_rate_vmaps():
    opt = optax.inject_hyperparams(laprop)(learning_rate=0.1)
    def run(lr):
        state = opt.init(jnp.ones(2))
        state.hyperparams["learning_rate"] = lr
        u, _ = opt.update(jnp.ones(2), state)
        return u
    out = jax.vmap(run)(jnp.array([0.1, 0.2]))
    np.testing.assert_allclose(np.asarray(out), [[-0.1, -0.1], [-0.2, -0.2]], rtol=1e-4)


def test_laprop_defaults_are_b1_0_9_b2_0_999_eps_1e_8():
    # Gradients of size ~1e-8 make the RMS comparable to eps, so eps = 1e-8 vs 2e-8 changes the
    # step by ~30%; varying gradients make b2 matter through the debiased RMS.
    rng = np.random.default_rng(1)
    p0 = rng.normal(size=(4,)).astype(np.float32)
    grads = [(rng.normal(size=(4,)) * 1e-8 * s).astype(np.float32) for s in (1.0, 4.0, 0.5)]
    opt = laprop(0.01)
    params, state = jnp.asarray(p0), opt.init(jnp.asarray(p0))
    for g in grads:
        upd, state = opt.update(jnp.asarray(g), state, params)
        params = optax.apply_updates(params, upd)
    want = _numpy_laprop(p0.astype(np.float64), [g.astype(np.float64) for g in grads],
                         0.01, 0.9, 0.999, 1e-8)
    np.testing.assert_allclose(np.asarray(params) - p0, want - p0, rtol=1e-3)
