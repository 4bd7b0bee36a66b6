"""``nn.conv``: the patches+matmul convolution with a hand-written VJP (issue 14).

Values and gradients must equal XLA's convolution and ``jax.grad`` of it for every
kernel/stride the presets use (SAME padding; VALID too), at the top level, inside ``lax.scan``
(where XLA:CPU's own conv gradient is slow) and under ``vmap`` (the seed axis).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.agents.sac.testing import tiny_cfg
from rlstab_jax.config.errors import ConfigError
from rlstab_jax.nn import CNNEncoder
from rlstab_jax.nn import onednn
from rlstab_jax.nn.conv import Conv2D, conv2d, resolve_conv_impl, same_pads
from rlstab_jax.nn.testing import (
    CONV_CASES,
    assert_grads_match_top_level_and_in_scan,
    conv_data,
    conv_loss,
    conv_ref,
)

CASES = CONV_CASES
_ref, _data = conv_ref, conv_data


@pytest.mark.parametrize("case,fwd", [(c, "matmul") for c in CASES] + [(CASES[0], "xla")])
def test_values_and_grads_match_xla_conv_top_level_and_in_scan(case, fwd):
    h, c, o, k, s, pad = case
    x, w = _data(h, c, o, k)
    ref = _ref(x, w, s, pad)
    d = jax.random.normal(jax.random.key(1), ref.shape)
    ours = lambda x, w: conv2d(x, w, s, pad, fwd)  # noqa: E731
    np.testing.assert_allclose(ours(x, w), ref, atol=1e-5)
    g_ref = jax.grad(conv_loss(lambda a, b: _ref(a, b, s, pad), d), (0, 1))(x, w)
    assert_grads_match_top_level_and_in_scan(ours, x, w, d, g_ref)


def test_grads_under_vmap_match_per_member_grads():
    h, c, o, k, s, pad = CASES[0]
    xs, ws = zip(*(_data(h, c, o, k, seed=i) for i in range(3)), strict=True)
    xs, ws = jnp.stack(xs), jnp.stack(ws)
    d = jax.random.normal(jax.random.key(5), _ref(xs[0], ws[0], s, pad).shape)
    ours = jax.grad(conv_loss(lambda a, b: conv2d(a, b, s, pad), d), (0, 1))
    ref = jax.grad(conv_loss(lambda a, b: _ref(a, b, s, pad), d), (0, 1))
    got = jax.jit(jax.vmap(ours))(xs, ws)
    for i in range(3):
        want = ref(xs[i], ws[i])
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a[i], b, rtol=1e-4, atol=1e-5)


def test_same_pads_match_xla():
    for size, k, s in [(48, 5, 2), (96, 8, 4), (24, 4, 2), (7, 3, 1), (5, 2, 3)]:
        lo_hi = jax.lax.padtype_to_pads((size,), (k,), (s,), "SAME")[0]
        assert same_pads(size, k, s)[:2] == tuple(lo_hi)


def test_conv2d_module_has_nn_conv_params_and_impls_agree():
    x = jax.random.uniform(jax.random.key(0), (2, 12, 12, 6))
    enc = {impl: CNNEncoder((4, 8), (4, 3), (2, 1), 16, conv_impl=impl)
           for impl in ("xla", "matmul")}
    p = {i: e.init(jax.random.key(3), x) for i, e in enc.items()}
    # same tree, same initial values: switching conv_impl keeps checkpoints valid
    assert jax.tree.structure(p["xla"]) == jax.tree.structure(p["matmul"])
    assert all(np.array_equal(a, b) for a, b in
               zip(jax.tree.leaves(p["xla"]), jax.tree.leaves(p["matmul"]), strict=True))
    assert p["xla"]["params"]["Conv_0"]["kernel"].shape == (4, 4, 6, 4)
    out = {i: e.apply(p["xla"], x) for i, e in enc.items()}
    np.testing.assert_allclose(out["matmul"], out["xla"], atol=1e-5)
    g = {i: jax.grad(lambda q, e=e: jnp.sum(e.apply(q, x) ** 2))(p["xla"])
         for i, e in enc.items()}
    for a, b in zip(jax.tree.leaves(g["matmul"]), jax.tree.leaves(g["xla"]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    assert Conv2D(3, 3).kernel_size == 3


def test_auto_resolves_on_backend_and_bad_values_fail_clearly():
    cpu = jax.default_backend() == "cpu"
    want = ("onednn" if onednn.available() else "matmul") if cpu else "xla"
    assert resolve_conv_impl("auto") == want and resolve_conv_impl("xla") == "xla"
    with pytest.raises(ValueError, match="conv_impl"):
        resolve_conv_impl("cudnn")
    with pytest.raises(ConfigError, match="agent.conv_impl='cudnn'"):
        tiny_cfg(conv_impl="cudnn").validate()
