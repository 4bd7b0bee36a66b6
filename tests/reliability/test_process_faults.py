"""Faults that need a real second process: SIGKILL during a save, signals during a save,
two processes on one run directory. Subprocesses share a persistent compilation cache.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from .conftest import (
    TINY,
    assert_one_line_error,
    checkpoint_steps,
    has_rows,
    last_line,
    metrics_rows,
    saving,
    wait_for,
)

LONG = "train.total_steps=1000000"


def test_second_process_is_refused_and_sigterm_stops_the_first_cleanly(cli, spawn, tmp_path):
    """Two processes on one run dir (before: both exit 0, rows interleaved, one config lost),
    then SIGTERM during training (what SLURM/Kubernetes send before a kill)."""
    run_dir = tmp_path / "run"
    first = spawn(*TINY, LONG, "checkpoint.every=64", f"run.dir={run_dir}")
    wait_for(has_rows(run_dir, 1), first)
    config = (run_dir / "config.yaml").read_bytes()
    rc, _, err = cli("--resume", str(run_dir), "train.total_steps=64")
    assert rc == 2
    assert_one_line_error(err, rf"run dir {run_dir} is in use by process {first.pid}")
    rc, _, err = cli(*TINY, f"run.dir={run_dir}")
    assert rc == 2
    assert_one_line_error(err, rf"run dir {run_dir} already holds a run")
    assert (run_dir / "config.yaml").read_bytes() == config
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 143, err[-2000:]
    line = assert_one_line_error(err, r"checkpoint written at step (\d+); resume with",
                                 prefix="stopped by SIGTERM at step")
    step = int(line.split("checkpoint written at step ")[1].split(";")[0])
    assert checkpoint_steps(run_dir)[-1] == step
    assert metrics_rows(run_dir)[-1]["step"] == step
    rc, _, err = cli("--resume", str(run_dir), f"train.total_steps={step + 32}")
    assert rc == 0 and "Traceback" not in err
    assert metrics_rows(run_dir)[-1]["step"] == step + 32


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_a_save_completes_it_and_exits_cleanly(cli, spawn, tmp_path, sig):
    run_dir = tmp_path / "run"
    proc = spawn(*TINY, LONG, f"run.dir={run_dir}")
    wait_for(saving(run_dir), proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + sig, err[-2000:]
    name = signal.Signals(sig).name
    assert_one_line_error(err, r"checkpoint written at step \d+; resume with",
                          prefix=f"stopped by {name}")
    steps = checkpoint_steps(run_dir)
    assert steps and not any("tmp" in p.name for p in (run_dir / "checkpoints").iterdir())
    rows = metrics_rows(run_dir)
    assert rows[-1]["step"] == steps[-1]
    rc, _, err = cli("--resume", str(run_dir), f"train.total_steps={steps[-1] + 32}")
    assert rc == 0 and "Traceback" not in err
    assert [r["step"] for r in metrics_rows(run_dir)] == list(range(32, steps[-1] + 33, 32))


def _kill_during_saves(cli, spawn, run_dir: Path, kills: int, seed: int) -> None:
    """SIGKILL a training process at a random point of a save, ``kills`` times; after each
    kill a resume (one more chunk) succeeds and metrics.jsonl stays valid and duplicate-free."""
    rng = random.Random(seed)
    for i in range(kills):
        args = ["--resume", str(run_dir), LONG] if i else [*TINY, LONG, f"run.dir={run_dir}"]
        proc = spawn(*args)
        before = checkpoint_steps(run_dir)
        # Let at least one save finish after the start, then kill inside a later one.
        wait_for(lambda b=before: checkpoint_steps(run_dir)[-1:] > b[-1:], proc)
        wait_for(saving(run_dir), proc)
        time.sleep(rng.uniform(0.0, 0.03))
        proc.kill()
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        steps = checkpoint_steps(run_dir)
        assert steps and steps[-1] > (before[-1] if before else 0)
        rc, _, err = cli("--resume", str(run_dir), f"train.total_steps={steps[-1] + 32}")
        assert rc == 0, err[-2000:]
        assert "Traceback" not in err
        rows = metrics_rows(run_dir)
        assert [r["step"] for r in rows] == list(range(32, steps[-1] + 33, 32))
        assert "skipped damaged" not in err, last_line(err)  # a killed save is never "good"


def test_sigkill_during_saves_three_times(cli, spawn, tmp_path):
    _kill_during_saves(cli, spawn, tmp_path / "run", kills=3, seed=0)


@pytest.mark.slow
def test_sigkill_during_saves_twenty_times(cli, spawn, tmp_path):
    _kill_during_saves(cli, spawn, tmp_path / "run", kills=20, seed=os.getpid())
