"""Unit tests of the run-dir lock, the memory check and the tolerant metrics reader (issue 13)."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.train import memory
from rlstab_jax.train.metrics import read_metrics, truncate_metrics
from rlstab_jax.train.rundir import RunDirLock, holds_run


def test_lock_is_exclusive_names_the_pid_and_is_released(tmp_path):
    run = tmp_path / "run"
    with RunDirLock(run) as lock:
        assert lock.held and (run / ".lock").read_text().strip() == str(os.getpid())
        with pytest.raises(ConfigError, match=rf"in use by process {os.getpid()}"):
            RunDirLock(run)
    RunDirLock(run).release()  # free again


def test_failed_start_leaves_no_empty_run_dir(tmp_path):
    run = tmp_path / "new"
    lock = RunDirLock(run)
    (run / "config.yaml").write_text("x: 1\n")
    (run / "checkpoints").mkdir()
    assert lock.release(remove_if_empty=True) and not run.exists()
    mine = tmp_path / "mine"  # the user's directory survives, only the start's files go
    mine.mkdir()
    lock = RunDirLock(mine)
    (mine / "config.yaml").write_text("x: 1\n")
    assert lock.release(remove_if_empty=True) and mine.is_dir() and not any(mine.iterdir())
    kept = tmp_path / "kept"
    lock = RunDirLock(kept)
    (kept / "metrics.jsonl").write_text('{"step": 1}\n')
    assert not lock.release(remove_if_empty=True) and holds_run(kept)


def test_tree_bytes_counts_every_leaf_and_keys():
    tree = {"a": jax.ShapeDtypeStruct((10**12, 3), jnp.float32), "b": np.zeros(4, np.uint8),
            "k": jax.eval_shape(lambda: jax.random.key(0))}
    assert memory.tree_bytes(tree) == 12 * 10**12 + 4 + 8


@flax.struct.dataclass
class _State:
    replay: dict


def test_state_that_does_not_fit_is_one_line(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: (1000, "test limit"))
    cfg = SimpleNamespace(replay=SimpleNamespace(capacity=100), train=SimpleNamespace(seeds=2))
    state = _State(replay={"obs": jax.ShapeDtypeStruct((2, 100, 3), jnp.float32)})
    with pytest.raises(ConfigError, match=r"replay.capacity=100 x train.seeds=2 x ~12 bytes "
                                          r"per transition .* only .* available \(test limit"):
        memory.check_state_fits(state, cfg)
    monkeypatch.setattr(memory, "available_bytes", lambda: (None, "unknown"))
    assert memory.check_state_fits(state, cfg) == 2400


def test_torn_last_line_dropped_middle_line_is_an_error(tmp_path):
    path = tmp_path / "metrics.jsonl"
    rows = [{"step": s, "seed": 0} for s in (1, 2, 3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 4, "se')
    warnings = []
    assert read_metrics(path, warnings.append) == rows and "torn last line 4" in warnings[0]
    assert truncate_metrics(path, 2, warnings.append) == 1
    assert path.read_text() == "".join(json.dumps(r) + "\n" for r in rows[:2])
    assert not list(tmp_path.glob(".metrics.jsonl.tmp*"))  # the temp file was renamed
    path.write_text('{"step": 1}\n{"st\n{"step": 3}\n')
    with pytest.raises(ConfigError, match="line 2 is not a JSON row"):
        read_metrics(path)
