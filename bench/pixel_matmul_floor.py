"""The CarRacing CNN's matmuls alone, XLA vs PyTorch (issue 14: where the gap to PyTorch is).

    python bench/pixel_matmul_floor.py jax [encoder]
    bench/.venvs/sb3/bin/python bench/pixel_matmul_floor.py torch [encoder]

``nn/conv.py``'s ``matmul`` convolution is ``patches @ W`` forward, ``patches^T @ dy`` (weight
gradient) and ``dy @ W^T`` (patch gradient, then col2im). This times exactly those products at
the ``sac/carracing`` preset's shapes (batch 128, 96x96x3, 32-64-64 k8/4/3 s4/2/1 SAME, dense
9216 -> 256) on each framework's own f32 matmul, so the rest of an encoder pass (patch
extraction, col2im, GroupNorm) is what differs. Prints ms per product (median of 7) and the
GFLOP/s of the three together per layer. ``encoder``: instead, one whole encoder forward and
forward+gradient (of ``sum(features**2)`` w.r.t. the parameters) at batch 128; ours inside
``lax.scan(length=1)`` as in the driver, per ``conv_impl``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

B = 128
SHAPES = {"conv1": (B * 24 * 24, 192, 32), "conv2": (B * 12 * 12, 512, 64),
          "conv3": (B * 12 * 12, 576, 64), "dense": (B, 9216, 256)}  # (rows, K, N)


def _t(f, n=7):
    f()
    ts = []
    for _ in range(n):
        s = time.perf_counter()
        f()
        ts.append(time.perf_counter() - s)
    return statistics.median(ts)


def _jax_encoder(impl: str, obs) -> dict:
    import jax
    import jax.numpy as jnp

    from rlstab_jax.nn.encoders import CNNEncoder

    mod = CNNEncoder(conv_impl=impl)
    params = mod.init(jax.random.key(1), obs)

    def in_scan(fn):  # as the driver runs every update
        return jax.jit(lambda p, o: jax.lax.scan(lambda c, _: (c, fn(p, o)), 0, None,
                                                 length=1)[1])

    fwd = in_scan(mod.apply)
    grad = in_scan(jax.grad(lambda p, o: jnp.sum(mod.apply(p, o) ** 2)))
    return {"forward": 1e3 * _t(lambda: jax.block_until_ready(fwd(params, obs))),
            "forward_and_grad": 1e3 * _t(lambda: jax.block_until_ready(grad(params, obs)))}


def encoder(side: str) -> dict:
    """Median ms of one encoder forward and forward+grad at batch 128 (CarRacing preset CNN)."""
    if side == "torch":
        import torch
        from peers.torch_pixel_nets import PRESET_CNN, Encoder

        p = PRESET_CNN["carracing"]
        enc = Encoder(p["shape"], p["channels"], p["kernels"], p["strides"], p["feature_dim"])
        obs = torch.randint(0, 256, (B, *p["shape"]), dtype=torch.uint8)

        def fwd():
            with torch.no_grad():
                enc(obs)

        def grad():
            enc.zero_grad()
            (enc(obs) ** 2).sum().backward()

        return {"torch": {"forward": 1e3 * _t(fwd), "forward_and_grad": 1e3 * _t(grad)}}
    import jax
    import jax.numpy as jnp

    from rlstab_jax.nn import onednn

    obs = jax.random.randint(jax.random.key(0), (B, 96, 96, 3), 0, 256).astype(jnp.uint8)
    impls = ("matmul", "xla") + (("onednn",) if onednn.available() else ())
    return {impl: _jax_encoder(impl, obs) for impl in impls}


def _layer(side: str, m: int, k: int, n: int) -> list[float]:
    """Seconds for ``a @ w``, ``a.T @ dy`` and ``dy @ w.T`` with ``a [m, k]``, ``w [k, n]``."""
    if side == "jax":
        import jax

        a = jax.random.normal(jax.random.key(0), (m, k))
        w = jax.random.normal(jax.random.key(1), (k, n))
        dy = jax.random.normal(jax.random.key(2), (m, n))
        f, g, h = (jax.jit(lambda a, w: a @ w), jax.jit(lambda a, dy: a.T @ dy),
                   jax.jit(lambda dy, w: dy @ w.T))
        return [_t(lambda: jax.block_until_ready(f(a, w))),
                _t(lambda: jax.block_until_ready(g(a, dy))),
                _t(lambda: jax.block_until_ready(h(dy, w)))]
    import torch

    a, w, dy = torch.randn(m, k), torch.randn(k, n), torch.randn(m, n)
    return [_t(lambda: a @ w), _t(lambda: a.T @ dy), _t(lambda: dy @ w.T)]


def main() -> None:
    side = sys.argv[1] if len(sys.argv) > 1 else "jax"
    if sys.argv[2:] == ["encoder"]:
        print(json.dumps({"side": side, "encoder": encoder(side)}))
        return
    out = {}
    for name, (m, k, n) in SHAPES.items():
        r = _layer(side, m, k, n)
        out[name] = {"fwd_ms": round(1e3 * r[0], 2), "wgrad_ms": round(1e3 * r[1], 2),
                     "igrad_ms": round(1e3 * r[2], 2),
                     "gflops": round(2 * m * k * n * 3 / sum(r) / 1e9, 1)}
    print(json.dumps({"side": side, "layers": out}))


if __name__ == "__main__":
    main()
