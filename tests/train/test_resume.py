"""Bit-exact resume (TESTING.md pattern 1) and architecture-mismatch errors, via the CLI.

Runs in subprocesses with single-threaded XLA: JAX only promises bit-exact results within one
program, so the resumed run must execute the same compiled chunk as the uninterrupted one.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from rlstab_jax.config.loader import load_config, read_yaml
from rlstab_jax.train.checkpoint import CheckpointStore
from rlstab_jax.train.session import build_session

ENV = dict(
    os.environ,
    JAX_PLATFORMS="cpu",
    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    # JAX's persistent compilation cache, shared by the module's subprocesses (set per module
    # below): the uninterrupted, the half and the resumed run compile the same programs, so
    # the second and third load them instead of recompiling. It also checks that a resumed
    # run is bit-exact when its chunk comes from the cache, as it does for users who enable it.
    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
    JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1",
)


@pytest.fixture(autouse=True, scope="module")
def _compile_cache(tmp_path_factory):
    ENV["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path_factory.mktemp("jax_cache"))
    yield
    ENV.pop("JAX_COMPILATION_CACHE_DIR", None)

CASES = {
    "reinforce-probe": [
        "--config",
        "reinforce/probe",
        "agent.hidden=[16,16]",
        "env.id=probe/obs-action-continuous",
        "env.n_envs=4",
        "train.chunk_steps=256",
        "train.eval_every=512",
        "train.seeds=2",
    ],
    # off-policy: replay contents, target networks, alpha and optimiser states all restored
    "sac-pendulum-gymnax": [
        "--config",
        "sac/pendulum",
        "agent.actor_hidden=[32,32]",
        "agent.critic_hidden=[32,32]",
        "agent.batch_size=32",
        "env.n_envs=2",
        "replay.capacity=4096",
        "train.learning_starts=128",
        "train.chunk_steps=256",
        "train.eval_every=512",
        "train.eval_episodes=1",
        "train.seeds=2",
    ],
    # compact replay (issue 14): frame stack 2 on the vector obs, 3-step windows, a buffer that
    # wraps (150 rows per env) with truncations (200-step episodes)
    "sac-pendulum-compact-replay": [
        "--config",
        "sac/pendulum",
        "agent.actor_hidden=[16,16]",
        "agent.critic_hidden=[16,16]",
        "agent.batch_size=16",
        "agent.n_step=3",
        "env.n_envs=2",
        "env.frame_stack=2",
        "replay.layout=compact",
        "replay.capacity=300",
        "train.learning_starts=128",
        "train.chunk_steps=256",
        "train.eval_every=512",
        "train.eval_episodes=1",
        "train.seeds=2",
    ],
}


def _train(*args):
    p = subprocess.run(
        [sys.executable, "-m", "rlstab_jax.train", "--no-progress", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def _rows(run_dir):
    rows = [json.loads(line) for line in open(run_dir / "metrics.jsonl")]
    for r in rows:
        r.pop("sps")
    return rows


def _final_state(run_dir):
    cfg = load_config(base=read_yaml(run_dir / "config.yaml"))
    sess = build_session(cfg)
    store = CheckpointStore(run_dir / "checkpoints", keep=3, fingerprint=sess.fingerprint())
    state, meta = store.restore(sess.abstract_state())
    store.close()
    return state, meta


@pytest.mark.parametrize("case", sorted(CASES))
def test_resume_is_bit_exact(case, tmp_path):
    common = CASES[case] + ["checkpoint.every=256", "log.plot=false"]
    a, b = tmp_path / "a", tmp_path / "b"
    _train(*common, "train.total_steps=1024", f"run.dir={a}")
    _train(*common, "train.total_steps=512", f"run.dir={b}")
    _train("--resume", str(b), "train.total_steps=1024")
    assert _rows(a) == _rows(b)
    sa, ma = _final_state(a)
    sb, mb = _final_state(b)
    assert ma["env_steps"] == mb["env_steps"] == 1024
    la, lb = jax.tree.leaves(sa), jax.tree.leaves(sb)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_resume_with_other_architecture_fails_clearly(tmp_path):
    common = CASES["reinforce-probe"] + ["log.plot=false", "train.total_steps=256"]
    _train(*common, f"run.dir={tmp_path}")
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlstab_jax.train",
            "--no-progress",
            "--resume",
            str(tmp_path),
            "agent.hidden=[32,32]",
            "train.total_steps=512",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert p.returncode == 2
    assert "agent.hidden" in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("layout", ["flat", "compact"])
def test_gymnasium_resume_restores_learner_state(tmp_path, layout):
    """Simulator state is not checkpointed: learner state restores exactly, episodes restart.

    The compact replay stores no next_obs: the rows written just before the checkpoint end
    their (abandoned) episodes as truncations with the stored next frame (``cut``).
    """
    common = [
        "--config",
        "sac/pendulum",
        "env.backend=gymnasium",
        "agent.actor_hidden=[16,16]",
        "agent.critic_hidden=[16,16]",
        "agent.batch_size=16",
        "train.learning_starts=64",
        "train.chunk_steps=128",
        "train.eval_every=256",
        "train.eval_episodes=1",
        "checkpoint.every=128",
        "log.plot=false",
        f"replay.layout={layout}",
    ]
    _train(*common, "train.total_steps=256", f"run.dir={tmp_path}")
    before, meta = _final_state(tmp_path)
    _train("--resume", str(tmp_path), "train.total_steps=384")
    after, meta2 = _final_state(tmp_path)
    assert meta["env_steps"] == 256 and meta2["env_steps"] == 384
    assert int(np.asarray(after.agent.critic_steps)[0]) > int(
        np.asarray(before.agent.critic_steps)[0]
    )
    steps = [r["step"] for r in _rows(tmp_path)]
    assert steps == [128, 256, 384]
    if layout == "compact":
        rp = after.replay
        assert int(np.asarray(rp.steps)[0]) == 384
        # row 255 (the last before the resume) ends its episode; its next frame is kept
        assert bool(np.asarray(rp.truncated)[0, 0, 255])
        slot = int(np.asarray(rp.slot)[0, 0, 255])
        assert int(np.asarray(rp.final_time)[0, 0, slot]) == 255
