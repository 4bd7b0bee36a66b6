"""Bad input through the CLI: YAML shapes, config type errors, oversized replay, demo files.

Each case: exit code 2, stderr's last line is the one-line error (no traceback), and no run
directory is left behind (a failed start writes nothing).
"""

from __future__ import annotations

import numpy as np
import pytest

from rlstab_jax.replay.demos import save_demos

from .conftest import TINY, assert_one_line_error

YAML_SHAPES = [
    ("agent:\n  - 1\n  - 2\n", r"section 'agent' must be a mapping .* got list"),
    ("agent: sac\n", r"section 'agent' must be a mapping .* got str 'sac'"),
    ("agent: 5\n", r"section 'agent' must be a mapping .* got int 5"),
    ("train: 5\n", r"section 'train' must be a mapping .* got int 5"),
    ("replay: [1]\n", r"section 'replay' must be a mapping"),
    ("- agent\n- train\n", r"top level must be a mapping of sections, got list"),
    ("agent: {name: sac\n", r"invalid YAML"),
    ("trian: {seeds: 2}\n", r"unknown config section 'trian' \(did you mean 'train'\?\)"),
    ("agent: {name: [sac]}\n", r"agent.name=\['sac'\] must be a string"),
]


@pytest.mark.parametrize("text,pattern", YAML_SHAPES)
def test_bad_yaml_shape_is_one_line(cli, tmp_path, text, pattern):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    run_dir = tmp_path / "run"
    rc, _, err = cli("--config", str(path), f"run.dir={run_dir}")
    assert rc == 2
    assert_one_line_error(err, pattern)
    assert not run_dir.exists()


OVERRIDES = [  # one per error class of the loader and the schemas
    ("agent=5", r"section 'agent' must be a mapping .* got int 5"),
    ("agent=[1,2]", r"cannot parse override 'agent=\[1,2\]'"),  # list vs the agent.* keys
    ("agent.name=5", r"agent.name=5 must be a string"),
    ("agent.name=sacc", r"agent.name='sacc' is not a known agent \(did you mean 'sac'\?\)"),
    ("train.seedz=2", r"unknown config key 'train.seedz' \(did you mean"),
    ("train.seeds=1.5", r"train.seeds=1.5 must be an integer"),
    ("agent.actor_lr=fast", r"agent.actor_lr='fast' must be a number"),
    ("log.plot=maybe", r"log.plot='maybe' must be true or false"),
    ("run.dir=[1]", r"run.dir=\[1\] must be a string"),
    ("agent.actor_hidden=64", r"agent.actor_hidden=64 must be a list"),
    ("env.backend=torch", r"env.backend='torch' must be one of"),
    ("env.kwargs=3", r"env.kwargs=3 must be a mapping"),
    ("train.seeds=0", r"train.seeds=0 must be >= 1"),
    ("replay.capacity=-1", r"replay.capacity=-1 must be >= 1"),
    ("seeds", r"override 'seeds' must look like key=value"),
    ("env.id=NoSuchEnv-v0", r"NoSuchEnv-v0"),
]


@pytest.mark.parametrize("override,pattern", OVERRIDES)
def test_config_error_class_is_one_line(cli, tmp_path, override, pattern):
    run_dir = tmp_path / "run"
    rc, _, err = cli(*TINY, f"run.dir={run_dir}", override)  # last override wins
    assert rc == 2
    assert_one_line_error(err, pattern)
    assert not run_dir.exists()


@pytest.mark.parametrize("capacity", [10**9, 10**12])
def test_replay_that_cannot_fit_is_refused_before_allocation(cli, tmp_path, capacity):
    """Before: 10**9 was killed by the kernel (exit 137, no message), 10**12 an OverflowError
    traceback. Now one line naming the key, the estimate and the limit, nothing allocated."""
    run_dir = tmp_path / "run"
    rc, _, err = cli(*TINY, f"replay.capacity={capacity}", "train.seeds=2", f"run.dir={run_dir}")
    assert rc == 2
    line = assert_one_line_error(err, rf"replay.capacity={capacity} x train.seeds=2")
    assert "GB" in line and "available" in line
    assert not run_dir.exists()


# Demo-file error classes (load_demos), each reached through the CLI (replay.demos=...).
N = 8


def _demo(**over):
    rng = np.random.default_rng(0)
    data = dict(obs=rng.normal(size=(N, 3)).astype(np.float32),
                action=rng.uniform(-1, 1, size=(N, 1)).astype(np.float32),
                reward=rng.normal(size=N).astype(np.float32),
                next_obs=rng.normal(size=(N, 3)).astype(np.float32),
                terminated=np.zeros(N, bool), truncated=np.zeros(N, bool))
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


DEMOS = [
    ("missing", None, r"demo file .*: not found"),
    ("notnpz", b"hello", r"is not an \.npz archive"),
    ("npy", "npy", r"is a single \.npy array"),
    ("pickled", dict(obs=np.array([{"a": 1}] * N, dtype=object)), r"pickled object arrays"),
    ("missing key", dict(action=None), r"missing key 'action'"),
    ("unknown key", dict(extra=np.zeros(N)), r"unknown key 'extra'"),
    ("dtype", dict(obs=np.zeros((N, 3), np.float64)), r"obs has dtype float64"),
    ("nonfinite", dict(reward=np.full(N, np.nan, np.float32)), r"reward has non-finite"),
    ("shape", dict(obs=np.zeros((N, 4), np.float32)), r"obs has shape"),
    ("lengths", dict(reward=np.zeros(N - 1, np.float32)), r"mismatched lengths"),
    ("range", dict(action=np.full((N, 1), 3.0, np.float32)), r"action values outside"),
    ("env", dict(env_id=np.asarray("Other-v0")), r"env_id 'Other-v0' does not match"),
]


@pytest.mark.parametrize("name,content,pattern", DEMOS, ids=[d[0] for d in DEMOS])
def test_demo_file_error_class_is_one_line(cli, tmp_path, name, content, pattern):
    path = tmp_path / "demos.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "npy":
        np.save(tmp_path / "demos.npy", np.zeros(3))
        (tmp_path / "demos.npy").rename(path)
    elif isinstance(content, dict) and name == "pickled":
        np.savez(path, **_demo(**content))
    elif isinstance(content, dict):
        np.savez(path, **_demo(**content))
    run_dir = tmp_path / "run"
    rc, _, err = cli(*TINY, f"replay.demos={path}", f"run.dir={run_dir}")
    assert rc == 2
    assert_one_line_error(err, pattern)
    assert not run_dir.exists()


def test_valid_demo_file_is_accepted_by_the_writer():
    """The fixture data above is valid apart from the one changed key (guards the table)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        save_demos(Path(d) / "ok.npz", **_demo())
