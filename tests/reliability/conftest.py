"""Shared pieces of the fault-injection suite (docs/reliability.md).

Cost: every CLI start pays the JAX import and the compile of the chunk, init and evaluation.
In-process cases call ``cli.main`` with ``build_session`` cached by architecture (the chunk
takes the numeric hparams as an argument, so a cached session serves every learning rate);
subprocess cases (signals, SIGKILL, two processes) share a persistent JAX compilation cache.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import pytest
import yaml

from rlstab_jax.config.split import extract_hparams
from rlstab_jax.train import loop
from rlstab_jax.train.cli import main
from rlstab_jax.train.session import batch_hparams, build_session

# Tiny SAC on gymnax Pendulum: 8-unit networks, 32-step chunks, a save every chunk.
TINY = [
    "agent.actor_hidden=[8]",
    "agent.critic_hidden=[8]",
    "agent.batch_size=8",
    "replay.capacity=256",
    "train.learning_starts=32",
    "train.chunk_steps=32",
    "train.eval_every=100000",
    "train.eval_episodes=1",
    "checkpoint.every=32",
    "checkpoint.keep=3",
    "checkpoint.best=false",
    "log.plot=false",
]
CHUNK = 32
_SESSIONS: dict[str, object] = {}


def _session_key(cfg) -> str:
    d = cfg.to_dict()
    for k in extract_hparams(cfg.agent):
        d["agent"].pop(k, None)
    for section in ("run", "checkpoint", "log"):
        d.pop(section)
    d["train"] = {k: v for k, v in d["train"].items() if k not in ("total_steps", "max_nonfinite")}
    return yaml.safe_dump(d, sort_keys=True)


def cached_build_session(cfg, hparams=None):
    """``build_session`` reusing the compiled chunk of an earlier session of this architecture."""
    key = _session_key(cfg)
    if key not in _SESSIONS:
        _SESSIONS[key] = build_session(cfg)
    base = _SESSIONS[key]
    hp = batch_hparams(extract_hparams(cfg.agent), cfg.train.seeds)
    sess = dataclasses.replace(base, cfg=cfg, hparams=hp)
    # Session.init_state jits driver.init afresh on each call (one compile per run, which is
    # fine for a real run); here every case would pay it again, so share one jitted init.
    init = base.__dict__.setdefault("_test_jit_init", jax.jit(base.driver.init))
    sess.init_state = lambda: init(sess.keys, sess.hparams)
    return sess


@pytest.fixture
def cli(capsys, monkeypatch):
    """``cli(*args) -> (exit code, stdout, stderr)`` of the CLI, in-process."""
    monkeypatch.setattr(loop, "build_session", cached_build_session)

    def call(*args: str, session_hook=None) -> tuple[int, str, str]:
        if session_hook is not None:
            monkeypatch.setattr(loop, "build_session",
                                lambda cfg, hparams=None: session_hook(cached_build_session(cfg)))
        capsys.readouterr()
        rc = main(["--no-progress", *args])
        out, err = capsys.readouterr()
        monkeypatch.setattr(loop, "build_session", cached_build_session)
        return rc, out, err

    return call


def last_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def assert_one_line_error(err: str, pattern: str | None = None, prefix: str = "error: ") -> str:
    """stderr holds no traceback and its last line is the one-line error."""
    assert "Traceback" not in err, err[-3000:]
    line = last_line(err)
    assert line.startswith(prefix), err[-2000:]
    if pattern is not None:
        import re

        assert re.search(pattern, line), line
    return line


def metrics_rows(run_dir: Path) -> list[dict]:
    """Every line of metrics.jsonl parses (no torn line) and (step, seed) never repeats."""
    text = (run_dir / "metrics.jsonl").read_text()
    assert text == "" or text.endswith("\n"), "torn last line"
    rows = [json.loads(line) for line in text.splitlines()]
    keys = [(r["step"], r["seed"]) for r in rows]
    assert len(keys) == len(set(keys)), f"duplicate rows: {keys}"
    assert keys == sorted(keys), f"rows out of order: {keys}"
    return rows


def checkpoint_steps(run_dir: Path) -> list[int]:
    d = run_dir / "checkpoints"
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.is_dir() else []


@pytest.fixture(scope="session")
def jax_cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("jax-cache")


@pytest.fixture
def spawn(jax_cache_dir):
    """Start ``python -m rlstab_jax.train`` in a subprocess sharing a compilation cache."""
    procs: list[subprocess.Popen] = []
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        JAX_COMPILATION_CACHE_DIR=str(jax_cache_dir),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
        PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                    os.environ.get("PYTHONPATH", "")]),
    )

    def start(*args: str) -> subprocess.Popen:
        p = subprocess.Popen(
            [sys.executable, "-m", "rlstab_jax.train", "--no-progress", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        procs.append(p)
        return p

    yield start
    for p in procs:  # only the processes this test started
        if p.poll() is None:
            p.kill()
            p.wait()


def wait_for(cond, proc: subprocess.Popen | None = None, timeout: float = 300.0,
             poll: float = 0.005) -> None:
    """Poll ``cond()`` until true; fail if ``proc`` exits first or on timeout."""
    deadline = time.monotonic() + timeout
    while not cond():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"process exited ({proc.returncode}) before the condition: {err[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting")
        time.sleep(poll)


def has_rows(run_dir: Path, n: int = 1):
    def cond() -> bool:
        p = run_dir / "metrics.jsonl"
        return p.is_file() and p.read_text().count("\n") >= n
    return cond


def saving(run_dir: Path):
    """True while an Orbax write is in flight (its ``*.orbax-checkpoint-tmp`` directory exists)."""
    def cond() -> bool:
        d = run_dir / "checkpoints"
        return d.is_dir() and any("orbax-checkpoint-tmp" in p.name for p in d.iterdir())
    return cond
