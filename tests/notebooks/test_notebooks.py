"""Notebooks run top to bottom in smoke mode (nbclient), and are committed without outputs."""

import functools
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]
# XLA's older CPU loop emitters instead of its new fusion emitters: the same HLO, less than half
# the compile CPU for these (05's LSTM PPO chunk: 36.5 s -> 16.8 s with jaxlib 0.10.2).
FAST_COMPILE_FLAG = "--xla_cpu_use_fusion_emitters=false"


@functools.cache
def _fast_compile_flags() -> tuple[str, ...]:
    """``FAST_COMPILE_FLAG`` if this jaxlib knows it (XLA aborts on an unknown flag)."""
    env = {**os.environ, "XLA_FLAGS": FAST_COMPILE_FLAG, "JAX_PLATFORMS": "cpu"}
    probe = subprocess.run([sys.executable, "-c", "import jax; jax.jit(lambda x: x + 1)(1.0)"],
                           env=env, capture_output=True, timeout=300)
    return (FAST_COMPILE_FLAG,) if probe.returncode == 0 else ()


def test_the_issue_notebooks_exist():
    assert {"01_quickstart", "02_racer", "03_ablation", "04_world_model",
            "05_multihead_ppo"} <= set(IDS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_without_outputs(path):
    """Outputs stay out of git: clear them (Kernel > Restart & Clear Output) before committing."""
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
    assert "widgets" not in nb.metadata, f"{path.name} stores widget state"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_install_cell_does_nothing_when_importable_and_explains_when_not(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code").source
    assert "find_spec(\"rlstab_jax\")" in first
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RLSTAB_JAX_PIP_SPEC", None)
    ok = subprocess.run([sys.executable, "-c", first], cwd=tmp_path, env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("rlstab_jax ") and str(ROOT / "rlstab_jax") in ok.stdout
    # Not importable (-I -S: no PYTHONPATH, no site-packages), no local checkout, no pip spec:
    # a clear error, and nothing installed.
    bad = subprocess.run([sys.executable, "-I", "-S", "-c", first], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "set RLSTAB_JAX_PIP_SPEC" in bad.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_executes_in_smoke_mode(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("RLSTAB_SMOKE", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # Smoke mode checks that every cell runs, not speed: XLA's cheapest compile (about 40% less
    # CPU for these tiny programs; the loop emitters halve it again) and one CPU device (no
    # fake devices to partition over).
    monkeypatch.setenv("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
    monkeypatch.setenv("XLA_FLAGS", " ".join(
        [f for f in os.environ.get("XLA_FLAGS", "").split()
         if "xla_force_host_platform_device_count" not in f] + list(_fast_compile_flags())))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the cell on any error
    images = sum("image/png" in out.get("data", {}) for c in nb.cells if c.cell_type == "code"
                 for out in c.outputs)
    assert images >= 3, f"{path.name}: expected its figures to display, got {images}"
    assert (tmp_path / "runs").is_dir()
