"""Tests for rlstab_jax.stability.demos (field report 003, §9 and §11C)."""

from typing import NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlstab_jax.stability.demos import demo_fraction, demo_sampling_weight, mix_demo_batch


def test_demo_sampling_weight_hand_values():
    # w0 = 2.5, decay 200k: n=0 -> 2.5; n=100k -> 1 + 1.5 * 0.5 = 1.75; n>=200k -> 1
    ns = jnp.array([0.0, 100_000.0, 200_000.0, 1e7])
    np.testing.assert_allclose(demo_sampling_weight(ns, 2.5, 200_000), [2.5, 1.75, 1.0, 1.0])
    # decay_samples <= 0: the old fixed weight, no decay
    np.testing.assert_allclose(demo_sampling_weight(ns, 2.5, 0), [2.5] * 4)
    np.testing.assert_allclose(demo_sampling_weight(ns, 2.5, -5), [2.5] * 4)


@settings(max_examples=50, deadline=None)
@given(
    n=st.floats(0, 1e7), w0=st.floats(0, 10), decay=st.floats(1, 1e6)
)
def test_demo_sampling_weight_matches_formula(n, w0, decay):
    ref = 1.0 + (w0 - 1.0) * (1.0 - min(1.0, n / decay))
    np.testing.assert_allclose(demo_sampling_weight(n, w0, decay), ref, rtol=1e-5, atol=1e-5)


def test_demo_fraction():
    # w=2.5, 40 demo rows, 100 agent rows: 100 / 200 = 0.5
    np.testing.assert_allclose(demo_fraction(2.5, 40, 100), 0.5)
    np.testing.assert_allclose(demo_fraction(1.0, 0, 0), 0.0)  # empty buffer
    np.testing.assert_allclose(demo_fraction(3.0, 10, 0), 1.0)  # demos only
    np.testing.assert_allclose(demo_fraction(0.0, 10, 0), 0.0)
    np.testing.assert_allclose(demo_fraction(2.0, 0, 5), 0.0)
    # Totals in (0, 1] are not "empty" (kills the mutant `total > 1`).
    np.testing.assert_allclose(demo_fraction(1.0, 1, 0), 1.0)
    np.testing.assert_allclose(demo_fraction(0.5, 1, 0), 1.0)
    np.testing.assert_allclose(demo_fraction(0.25, 1, 0.5), 1.0 / 3.0, rtol=1e-6)


class NT(NamedTuple):
    obs: jax.Array
    action: jax.Array
    is_demo: jax.Array


@flax.struct.dataclass
class DC:
    obs: jax.Array
    is_demo: jax.Array


def _batches(b=64):
    agent = {"obs": jnp.zeros((b, 3)), "reward": jnp.zeros((b,)), "is_demo": jnp.zeros((b,), bool)}
    demo = {"obs": jnp.ones((b, 3)), "reward": jnp.ones((b,)), "is_demo": jnp.ones((b,), bool)}
    return agent, demo


def test_mix_rows_come_whole_from_one_source_and_flag_is_true():
    agent, demo = _batches()
    agent["is_demo"] = jnp.ones(64, bool)  # wrong on purpose: must be overwritten
    batch, frac = jax.jit(mix_demo_batch)(jax.random.key(0), agent, demo, 0.5)
    from_demo = np.asarray(batch["reward"]) == 1.0
    assert np.all(np.asarray(batch["obs"]) == from_demo[:, None])  # whole rows
    np.testing.assert_array_equal(batch["is_demo"], from_demo)
    np.testing.assert_allclose(frac, from_demo.mean())
    assert 0.2 < float(frac) < 0.8


def test_mix_extremes_and_realised_fraction():
    agent, demo = _batches(b=4096)
    b0, f0 = mix_demo_batch(jax.random.key(1), agent, demo, 0.0)
    b1, f1 = mix_demo_batch(jax.random.key(1), agent, demo, 1.0)
    assert float(f0) == 0.0 and float(f1) == 1.0
    np.testing.assert_array_equal(b0["obs"], agent["obs"])
    np.testing.assert_array_equal(b1["obs"], demo["obs"])
    _, f = mix_demo_batch(jax.random.key(2), agent, demo, 0.3)
    assert abs(float(f) - 0.3) < 0.03  # 4096 Bernoulli(0.3) rows: sd ~ 0.007


def test_mix_namedtuple_dataclass_and_plain():
    k = jax.random.key(3)
    a = NT(jnp.zeros((8, 2)), jnp.zeros((8, 1)), jnp.zeros(8, bool))
    d = NT(jnp.ones((8, 2)), jnp.ones((8, 1)), jnp.zeros(8, bool))
    out, _ = mix_demo_batch(k, a, d, 0.5)
    np.testing.assert_array_equal(out.is_demo, np.asarray(out.obs[:, 0]) == 1.0)
    dc_out, _ = mix_demo_batch(k, DC(a.obs, a.is_demo), DC(d.obs, d.is_demo), 0.5)
    np.testing.assert_array_equal(dc_out.is_demo, out.is_demo)  # same key -> same mask
    plain, _ = mix_demo_batch(k, (a.obs,), (d.obs,), 0.5)
    np.testing.assert_array_equal(plain[0], out.obs)
    # NamedTuples / dataclasses WITHOUT an is_demo field come back mixed, not extended.
    nt_out, _ = mix_demo_batch(k, NoFlagNT(a.obs), NoFlagNT(d.obs), 0.5)
    np.testing.assert_array_equal(nt_out.obs, out.obs)
    dc2_out, _ = mix_demo_batch(k, NoFlagDC(a.obs), NoFlagDC(d.obs), 0.5)
    np.testing.assert_array_equal(dc2_out.obs, out.obs)


class NoFlagNT(NamedTuple):
    obs: jax.Array


@flax.struct.dataclass
class NoFlagDC:
    obs: jax.Array


def test_mix_vmap_matches_loop():
    agent, demo = _batches(b=16)
    keys = jax.random.split(jax.random.key(4), 3)
    fracs = jnp.array([0.1, 0.5, 0.9])
    vb, vf = jax.vmap(mix_demo_batch, in_axes=(0, None, None, 0))(keys, agent, demo, fracs)
    for i in range(3):
        b, f = mix_demo_batch(keys[i], agent, demo, fracs[i])
        np.testing.assert_array_equal(vb["obs"][i], b["obs"])
        np.testing.assert_allclose(vf[i], f)


def test_mix_rejects_a_batch_without_arrays():
    with pytest.raises(ValueError, match=r"^mix_demo_batch: agent_batch has no array leaves$"):
        mix_demo_batch(jax.random.key(0), {}, {}, 0.5)
