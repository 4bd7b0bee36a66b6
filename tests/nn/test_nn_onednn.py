"""``nn.onednn``: the oneDNN direct convolution behind an XLA FFI call (issue 14).

Values and gradients must equal XLA's convolution and ``jax.grad`` of it for every
kernel/stride the presets use, at the top level, inside ``lax.scan`` and under ``vmap`` (the
seed axis, a sequential loop over the FFI call). The extra is part of ``[dev]``, so on Linux
x86-64 these tests fail (they do not skip) when the build does not work.
"""

import os
import platform
import subprocess
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.agents.sac.testing import tiny_cfg
from rlstab_jax.config.errors import ConfigError
from rlstab_jax.nn import CNNEncoder, onednn
from rlstab_jax.nn.conv import AUTO_ONEDNN_MIN_PATCH, resolve_conv_impl
from rlstab_jax.nn.onednn import build
from rlstab_jax.nn.testing import (
    CONV_CASES,
    assert_grads_match_top_level_and_in_scan,
    conv_data,
    conv_loss,
    conv_ref,
)

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.machine() != "x86_64",
    reason="the oneDNN wheels of the [onednn] extra exist for Linux x86-64 only")
CASES = CONV_CASES
_ref, _data = conv_ref, conv_data


def test_builds_and_registers_here():
    assert onednn.available(), onednn.unavailable_reason()
    assert onednn.unavailable_reason() == ""
    assert resolve_conv_impl("auto") == "onednn" and resolve_conv_impl("onednn") == "onednn"


def test_auto_keeps_matmul_for_tiny_layers_only():
    small, large = AUTO_ONEDNN_MIN_PATCH - 1, AUTO_ONEDNN_MIN_PATCH
    assert resolve_conv_impl("auto", small) == "matmul"
    assert resolve_conv_impl("auto", large) == "onednn"
    assert resolve_conv_impl("onednn", small) == "onednn"  # an explicit choice is kept
    # the RacerPixels preset's CNN mixes both under auto and still equals XLA's conv
    x = jax.random.uniform(jax.random.key(0), (2, 32, 32, 6)) * 255.0
    enc = {impl: CNNEncoder((8, 16, 16), (4, 3, 3), (2, 2, 1), 16, conv_impl=impl)
           for impl in ("xla", "auto")}
    params = enc["xla"].init(jax.random.key(1), x)
    jaxpr = str(jax.make_jaxpr(lambda p: enc["auto"].apply(p, x))(params))
    assert jaxpr.count("RlstabConvForward") == 2  # 16x16x8 -> 8x8x16 (4,608) is matmul
    np.testing.assert_allclose(enc["auto"].apply(params, x), enc["xla"].apply(params, x),
                               atol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_values_and_grads_match_xla_conv_top_level_and_in_scan(case):
    h, c, o, k, s, pad = case
    x, w = _data(h, c, o, k)
    ref = _ref(x, w, s, pad)
    d = jax.random.normal(jax.random.key(1), ref.shape)
    ours = lambda x, w: onednn.conv2d(x, w, s, pad)  # noqa: E731
    got = jax.jit(ours)(x, w)
    assert got.shape == ref.shape and got.dtype == jnp.float32
    np.testing.assert_allclose(got, ref, atol=1e-5)
    g_ref = jax.grad(conv_loss(lambda a, b: _ref(a, b, s, pad), d), (0, 1))(x, w)
    assert_grads_match_top_level_and_in_scan(ours, x, w, d, g_ref)


def test_grads_under_vmap_match_per_member_grads():
    h, c, o, k, s, pad = CASES[4]  # the CarRacing first layer's 8/4
    xs, ws = zip(*(_data(h, c, o, k, seed=i) for i in range(3)), strict=True)
    xs, ws = jnp.stack(xs), jnp.stack(ws)
    d = jax.random.normal(jax.random.key(5), _ref(xs[0], ws[0], s, pad).shape)
    ours = jax.grad(conv_loss(lambda a, b: onednn.conv2d(a, b, s, pad), d), (0, 1))
    ref = jax.grad(conv_loss(lambda a, b: _ref(a, b, s, pad), d), (0, 1))
    got = jax.jit(jax.vmap(ours))(xs, ws)
    for i in range(3):
        for a, b in zip(got, ref(xs[i], ws[i]), strict=True):
            np.testing.assert_allclose(a[i], b, rtol=1e-4, atol=1e-5)


def test_encoder_with_onednn_equals_xla_on_the_same_parameters():
    x = jax.random.uniform(jax.random.key(0), (3, 20, 20, 6)) * 255.0
    enc = {impl: CNNEncoder((4, 8), (4, 3), (2, 1), 16, conv_impl=impl)
           for impl in ("xla", "onednn")}
    params = enc["xla"].init(jax.random.key(1), x)
    out = {i: e.apply(params, x) for i, e in enc.items()}
    np.testing.assert_allclose(out["onednn"], out["xla"], atol=1e-5)
    g = {i: jax.grad(lambda q, e=e: jnp.sum(e.apply(q, x) ** 2))(params)
         for i, e in enc.items()}
    for a, b in zip(jax.tree.leaves(g["onednn"]), jax.tree.leaves(g["xla"]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_non_float32_inputs_fail_clearly():
    x, w = _data(8, 3, 4, 3)
    with pytest.raises(TypeError, match="float32"):
        onednn.conv2d(x.astype(jnp.bfloat16), w, 1, "SAME")
    with pytest.raises(ValueError, match="padding"):
        onednn.conv2d(x, w, 1, "CIRCULAR")


def test_missing_onednn_is_a_clear_build_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RLSTAB_ONEDNN_ROOT", str(tmp_path))
    with pytest.raises(build.BuildError, match=r"rlstab_jax\[onednn\]"):
        build.library()


def test_library_is_cached_and_rebuilt_only_when_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("RLSTAB_CACHE_DIR", str(tmp_path))
    first = build.library()
    assert first.parent == tmp_path / "onednn" and first.exists()
    stamp = first.stat().st_mtime_ns
    assert build.library() == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no temporary left


def test_unavailable_onednn_is_a_one_line_config_error(monkeypatch):
    monkeypatch.setattr(onednn, "_state", {"error": "no libdnnl.so under /nowhere/lib"})
    with pytest.raises(ConfigError, match=r"agent\.conv_impl='onednn' is not available here: "
                                          r"no libdnnl\.so"):
        tiny_cfg(encoder="cnn", conv_impl="onednn").validate()
    tiny_cfg(encoder="mlp", conv_impl="onednn").validate()  # no convolution, nothing to check
    assert resolve_conv_impl("auto") == "matmul"  # auto falls back


def test_unwritable_cache_falls_back_to_the_temporary_directory(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv("RLSTAB_CACHE_DIR", str(blocker / "cache"))  # mkdir fails under a file
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    got = build.library()
    assert got.parent == tmp_path / "tmp" / "rlstab_jax" / "onednn" and got.exists()


def test_cli_names_the_missing_onednn_in_one_line(tmp_path):
    env = {**os.environ, "RLSTAB_ONEDNN_ROOT": str(tmp_path), "RLSTAB_CACHE_DIR": str(tmp_path)}
    p = subprocess.run([sys.executable, "-m", "rlstab_jax.train", "--config", "sac/racer_pixels",
                        "agent.conv_impl=onednn", f"run.dir={tmp_path / 'run'}"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 2, p.stderr
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and "agent.conv_impl='onednn' is not available here" in err[0], p.stderr
    assert "rlstab_jax[onednn]" in err[0] and "Traceback" not in p.stderr
    assert not (tmp_path / "run").exists()  # nothing started, nothing written
