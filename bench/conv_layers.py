"""Per-layer conv cost, ``matmul`` vs ``onednn`` (issue 14: where ``conv_impl=auto`` switches).

    RLSTAB_BENCH=1 python bench/conv_layers.py [--batch 128] [--out results/conv_layers.json]

For every conv layer of the pixel presets (``sac/racer_pixels``, ``sac/carracing``, Dreamer's
64x64 CNN), one forward + weight gradient + input gradient (``jax.grad`` of a scalar of the
output w.r.t. input and kernel) inside ``lax.scan(length=1)``, as the driver runs updates; ms,
median of 9 after a warm-up. Also prints each layer's im2col size per sample
(``Ho * Wo * k * k * C_in``), the quantity ``nn.conv.resolve_conv_impl`` thresholds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp

from rlstab_jax.nn import onednn
from rlstab_jax.nn.conv import conv2d, same_pads

# (name, H, C_in, C_out, k, s) with SAME padding, as the presets build them
LAYERS = [("racer_pixels.conv1", 32, 6, 8, 4, 2), ("racer_pixels.conv2", 16, 8, 16, 3, 2),
          ("racer_pixels.conv3", 8, 16, 16, 3, 1),
          ("carracing.conv1", 96, 3, 32, 8, 4), ("carracing.conv2", 24, 32, 64, 4, 2),
          ("carracing.conv3", 12, 64, 64, 3, 1),
          ("dreamer64.conv1", 64, 3, 16, 4, 2), ("dreamer64.conv2", 32, 16, 32, 4, 2),
          ("dreamer64.conv3", 16, 32, 64, 4, 2), ("dreamer64.conv4", 8, 64, 128, 4, 2)]


def _time(f, *args, n=9):
    jax.block_until_ready(f(*args))
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        ts.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(ts)


def layer(batch, h, c, o, k, s, impl):
    x = jax.random.normal(jax.random.key(0), (batch, h, h, c))
    w = jax.random.normal(jax.random.key(1), (k, k, c, o)) * 0.1
    conv = (lambda a, b: onednn.conv2d(a, b, s, "SAME")) if impl == "onednn" else \
        (lambda a, b: conv2d(a, b, s, "SAME"))
    grad = jax.grad(lambda a, b: jnp.sum(jnp.tanh(conv(a, b))), (0, 1))

    @jax.jit
    def run(x, w):
        def body(carry, _):
            gx, gw = grad(*carry)
            return (carry[0] + 1e-6 * gx, carry[1] + 1e-6 * gw), None
        return jax.lax.scan(body, (x, w), None, length=1)[0]

    return _time(run, x, w)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "conv_layers.json"))
    args = ap.parse_args()
    assert onednn.available(), onednn.unavailable_reason()
    rows = []
    for name, h, c, o, k, s in LAYERS:
        out = same_pads(h, k, s)[2]
        row = {"layer": name, "in": [h, h, c], "out": [out, out, o], "k": k, "s": s,
               "im2col_per_sample": out * out * k * k * c, "batch": args.batch}
        for impl in ("matmul", "onednn"):
            row[f"{impl}_ms"] = round(layer(args.batch, h, c, o, k, s, impl), 2)
        row["onednn_speedup"] = round(row["matmul_ms"] / row["onednn_ms"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    Path(args.out).write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                time.gmtime()),
                                          "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
