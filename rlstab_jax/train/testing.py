"""Test helper: the CLI contract for bad input (exit 2, one line, no run dir)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def assert_cli_rejects(args: list[str], run_dir: Path, *fragments: str) -> None:
    """Run ``python -m rlstab_jax.train ARGS run.dir=RUN_DIR`` and check it exits 2 with one
    stderr line holding every ``fragment``, no traceback, and no run directory written."""
    p = subprocess.run([sys.executable, "-m", "rlstab_jax.train", *args, f"run.dir={run_dir}"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and all(f in err[0] for f in fragments), p.stderr
    assert "Traceback" not in p.stderr
    assert not run_dir.exists()
