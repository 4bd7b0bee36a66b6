"""Test helpers: the CLI contract for bad input (exit 2, one line, no run dir) and the
bit-exact resume contract of a chunked session."""

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


def assert_resume_continues_bit_exact(sess, state, directory: Path):
    """Checkpoint ``state`` (after some chunks of ``sess``), run one chunk uninterrupted, restore
    the checkpoint into the abstract state and run the same chunk: states and metrics must be
    equal bit for bit (the same compiled chunk; docs/checkpoints.md). Returns the uninterrupted
    ``(state, metrics)``; ``state`` is donated."""
    import jax
    import numpy as np

    from rlstab_jax.train.checkpoint import CheckpointStore

    with CheckpointStore(directory, keep=2, fingerprint=sess.fingerprint()) as store:
        store.save(1, state)
        store.wait()
        s2, m2 = sess.chunk(state, sess.hparams)  # uninterrupted (donates state)
        restored, _ = store.restore(sess.abstract_state())
    s2b, m2b = sess.chunk(restored, sess.hparams)
    for x, y in zip(jax.tree.leaves((s2, m2)), jax.tree.leaves((s2b, m2b)), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    return s2, m2
