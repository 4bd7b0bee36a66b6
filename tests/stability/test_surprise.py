"""Tests for rlstab_jax.stability.surprise (WM surprise: loss / EMA log-ratios)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.stability.surprise import surprise_init, surprise_update

NAMES = ("reward", "continue", "kl_dyn")


def _losses(reward, cont, kl):
    return {"reward": jnp.float32(reward), "continue": jnp.float32(cont), "kl_dyn": jnp.float32(kl)}


def test_first_update_initialises_and_reports_not_ready():
    state = surprise_init(NAMES)
    assert not bool(state.ready)
    state, m = surprise_update(state, _losses(0.6, 0.1, 1.3))
    assert bool(state.ready) and m["surprise/ready"] == 0.0
    for name, val in zip(NAMES, (0.6, 0.1, 1.3)):
        assert state.ema[name] == np.float32(val)  # set exactly, not blended with 0
        assert m[f"surprise/{name}_log_ratio"] == 0.0
    assert m["surprise/total_log_ratio"] == 0.0 and m["surprise/max_component_log_ratio"] == 0.0


def test_log_ratios_hand_case():
    state, _ = surprise_update(surprise_init(NAMES), _losses(1.0, 0.5, 2.0), beta=0.9)
    # Against the previous EMA (1.0, 0.5, 2.0): reward doubled, continue unchanged, KL -> 1/2.
    state, m = surprise_update(state, _losses(2.0, 0.5, 1.0), beta=0.9)
    assert m["surprise/ready"] == 1.0
    np.testing.assert_allclose(m["surprise/reward_log_ratio"], np.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(m["surprise/continue_log_ratio"], 0.0, atol=1e-7)
    np.testing.assert_allclose(m["surprise/kl_dyn_log_ratio"], np.log(0.5), rtol=1e-6)
    np.testing.assert_allclose(m["surprise/max_component_log_ratio"], np.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(m["surprise/total_log_ratio"], np.log(3.5 / 3.5), atol=1e-7)
    # EMA: 0.9 * old + 0.1 * new.
    np.testing.assert_allclose([state.ema[n] for n in NAMES], [1.1, 0.5, 1.9], rtol=1e-6)


def test_spike_detection_after_steady_losses():
    state = surprise_init(NAMES)
    step = jax.jit(surprise_update)
    for _ in range(20):
        state, m = step(state, _losses(0.6, 0.1, 1.0))
    assert abs(float(m["surprise/total_log_ratio"])) < 1e-6
    state, m = step(state, _losses(0.6, 0.1, 3.0))  # KL spike (precedes dream instability)
    np.testing.assert_allclose(m["surprise/kl_dyn_log_ratio"], np.log(3.0), rtol=1e-5)
    np.testing.assert_allclose(m["surprise/total_log_ratio"], np.log(3.7 / 1.7), rtol=1e-5)
    assert m["surprise/total_log_ratio"] > np.log(1.2)  # the report's alarm threshold


def test_zero_losses_stay_finite():
    state, _ = surprise_update(surprise_init(NAMES), _losses(0.0, 0.0, 0.0))
    _, m = surprise_update(state, _losses(0.0, 1e-3, 0.0))
    assert all(np.isfinite(float(v)) for v in m.values())


def test_vmap_over_runs_matches_loop_and_prefix():
    vals = jnp.array([[1.0, 2.0, 4.0], [0.5, 0.5, 0.1]])  # two runs x three steps

    def run(seq):
        state = surprise_init(["loss"])
        out = []
        for t in range(3):
            state, m = surprise_update(state, {"loss": seq[t]}, prefix="wm/surprise")
            out.append(m["wm/surprise/loss_log_ratio"])
        return jnp.stack(out)

    batched = jax.jit(jax.vmap(run))(vals)
    for i in range(2):
        np.testing.assert_allclose(batched[i], run(vals[i]), rtol=1e-6)
    np.testing.assert_allclose(batched[0, 1], np.log(2.0), rtol=1e-6)


def test_rejects_mismatched_or_bad_names():
    with pytest.raises(ConfigError, match="did you mean 'reward'"):
        surprise_update(surprise_init(NAMES), {"rewrd": 1.0, "continue": 1.0, "kl_dyn": 1.0})
    with pytest.raises(ConfigError, match="unique"):
        surprise_init(["a", "a"])
    with pytest.raises(ConfigError, match="shape"):
        surprise_update(surprise_init(["a"]), {"a": jnp.ones(3)})


def test_exact_messages_default_beta_and_the_log_floor():
    # Error messages are exact (no stray text, no hint when a name is only missing).
    with pytest.raises(ConfigError, match=r"^surprise_init: names=\['a', 'a'\] must be non-empty"
                                          r" and unique$"):
        surprise_init(["a", "a"])
    with pytest.raises(ConfigError, match=r"^surprise_update: loss names \['a'\] != tracked "
                                          r"\['a', 'b'\]$"):
        surprise_update(surprise_init(["a", "b"]), {"a": 1.0})
    with pytest.raises(ConfigError, match=r"^surprise_update: loss 'a' has shape \(3,\), want "
                                          r"\(\)$"):
        surprise_update(surprise_init(["a"]), {"a": jnp.ones(3)})
    # Default beta is the report's train.surprise_ema_beta = 0.99.
    state, _ = surprise_update(surprise_init(["a"]), {"a": 1.0})
    state, _ = surprise_update(state, {"a": 2.0})
    np.testing.assert_allclose(state.ema["a"], 0.99 * 1.0 + 0.01 * 2.0, rtol=1e-6)
    # A zero loss is floored at 1e-8 inside the log: log(1e-8 / 1).
    _, m = surprise_update(state, {"a": 0.0})
    np.testing.assert_allclose(m["surprise/a_log_ratio"], np.log(1e-8) - np.log(1.01),
                               rtol=1e-5)
