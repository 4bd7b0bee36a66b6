"""Test configuration: CPU only, two fake host devices so sharding paths run."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Must be set before jax initialises its backends (chex.set_n_cpu_devices does the same).
flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in flags:
    os.environ["XLA_FLAGS"] = (flags + " --xla_force_host_platform_device_count=2").strip()
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several test processes share the cores: oneDNN's OpenMP threads (conv_impl=onednn) would
    # stall on each other at every convolution (docs/troubleshooting.md, "Pixel agents are slow
    # on a CPU"); one thread per worker, as the docs advise for several processes.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def key():
    return jax.random.PRNGKey(0)
