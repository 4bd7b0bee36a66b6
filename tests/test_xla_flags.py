"""The XLA:CPU scheduler flag that avoids the multi-seed LSTM hang (rlstab_jax/_xla_flags.py)."""

import os
import subprocess
import sys

from rlstab_jax._xla_flags import FLAG, add_cpu_scheduler_flag


def test_flag_is_added_to_empty_and_existing_flags():
    env = {}
    assert add_cpu_scheduler_flag(env)
    assert env["XLA_FLAGS"] == f"{FLAG}=false"
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    assert add_cpu_scheduler_flag(env)
    assert env["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=2 {FLAG}=false"


def test_user_value_and_opt_out_are_respected():
    env = {"XLA_FLAGS": f"{FLAG}=true"}
    assert not add_cpu_scheduler_flag(env)
    assert env["XLA_FLAGS"] == f"{FLAG}=true"
    env = {"RLSTAB_JAX_KEEP_XLA_FLAGS": "1"}
    assert not add_cpu_scheduler_flag(env)
    assert "XLA_FLAGS" not in env


def test_import_sets_flag_in_a_fresh_process():
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "RLSTAB_JAX_KEEP_XLA_FLAGS")}
    code = "import jax, os, rlstab_jax; print(os.environ['XLA_FLAGS'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == f"{FLAG}=false"


def test_import_after_backend_start_warns_instead_of_pretending():
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "RLSTAB_JAX_KEEP_XLA_FLAGS")}
    env["JAX_PLATFORMS"] = "cpu"
    code = ("import warnings, jax, jax.numpy as jnp; jnp.ones(1).block_until_ready()\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always'); import rlstab_jax\n"
            "import os; print(len([x for x in w if 'cannot' in str(x.message)]), "
            "os.environ.get('XLA_FLAGS', ''))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["1"]
