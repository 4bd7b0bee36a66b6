"""Faults in and around a run directory, through the CLI in-process (compiled chunk shared).

One tiny run (4 chunks of 32 steps, a checkpoint per chunk) is trained once per module; each
case works on a copy. Each asserts the exit code, that stderr's last line is a one-line
message without a traceback, and that nothing good was lost.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.config.loader import load_config, read_yaml
from rlstab_jax.train import loop
from rlstab_jax.train.checkpoint import CheckpointStore
from rlstab_jax.train.cli import main
from rlstab_jax.train.rundir import RunDirLock

from .conftest import (
    TINY,
    assert_one_line_error,
    cached_build_session,
    checkpoint_steps,
    last_line,
    metrics_rows,
)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("base") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop, "build_session", cached_build_session)
        assert main(["--no-progress", *TINY, "train.total_steps=128", f"run.dir={run_dir}"]) == 0
    assert checkpoint_steps(run_dir) == [64, 96, 128]
    return run_dir


@pytest.fixture
def run_copy(base_run, tmp_path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(base_run, dst)
    return dst


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes()
            for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name != ".lock"}


def _restores_finite(run_dir: Path, step: int) -> None:
    cfg = load_config(base=read_yaml(run_dir / "config.yaml"))
    sess = cached_build_session(cfg)
    with CheckpointStore(run_dir / "checkpoints", keep=3, fingerprint=sess.fingerprint()) as st:
        state, meta = st.restore(sess.abstract_state(), step)
    assert meta["env_steps"] == step
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.agent))


def test_new_run_into_existing_run_dir_is_refused(cli, run_copy):
    """Before: trained, overwrote config.yaml, appended stray rows, then crashed."""
    before = _snapshot(run_copy)
    rc, _, err = cli(*TINY, "train.total_steps=64", f"run.dir={run_copy}")
    assert rc == 2
    assert_one_line_error(err, rf"run dir {run_copy} already holds a run; use --resume {run_copy}")
    assert _snapshot(run_copy) == before


def test_second_process_on_a_locked_run_dir_exits_2_naming_the_holder(cli, run_copy):
    """Before: both processes exited 0 with interleaved rows and best/ overwritten."""
    before = _snapshot(run_copy)
    with RunDirLock(run_copy):  # a flock held on another open file: what a second process sees
        rc, _, err = cli("--resume", str(run_copy), "train.total_steps=160")
    assert rc == 2
    assert_one_line_error(err, rf"run dir {run_copy} is in use by process {os.getpid()}")
    assert _snapshot(run_copy) == before


def test_resume_at_or_past_total_steps_says_nothing_to_do(cli, run_copy):
    before = _snapshot(run_copy)
    rc, out, err = cli("--resume", str(run_copy), "train.total_steps=100")
    assert rc == 0
    assert "Traceback" not in err
    assert last_line(out).startswith(f"nothing to do: {run_copy} is at step 128 >= "
                                     f"train.total_steps=100")
    assert _snapshot(run_copy) == before


def _truncate_data(step_dir: Path) -> None:
    for f in (step_dir / "state").rglob("*"):
        if f.is_file() and f.parent.name == "d":
            f.write_bytes(f.read_bytes()[: max(1, f.stat().st_size // 3)])


DAMAGE = {
    "truncated data": _truncate_data,
    "missing _METADATA": lambda d: (d / "state" / "_METADATA").unlink(),
    "missing state dir": lambda d: shutil.rmtree(d / "state"),
    "missing meta dir": lambda d: shutil.rmtree(d / "meta"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_latest_checkpoint_falls_back_to_the_newest_good_one(cli, run_copy, kind):
    """Before: Orbax/asyncio tracebacks and no fallback although older checkpoints were good."""
    DAMAGE[kind](run_copy / "checkpoints" / "128")
    rc, _, err = cli("--resume", str(run_copy), "train.total_steps=160")
    assert rc == 0, err[-2000:]
    assert "Traceback" not in err
    warn = [ln for ln in err.splitlines() if ln.startswith("warning: skipped damaged")]
    assert len(warn) == 1 and "step 128" in warn[0] and "resuming from step 96" in warn[0]
    assert checkpoint_steps(run_copy) == [96, 128, 160] or checkpoint_steps(run_copy)[-1] == 160
    assert any(p.name.startswith("128-") for p in (run_copy / "checkpoints-damaged").iterdir())
    rows = metrics_rows(run_copy)
    assert [r["step"] for r in rows] == [32, 64, 96, 128, 160]
    _restores_finite(run_copy, 160)


def test_unfinished_tmp_dir_is_cleaned_and_resume_continues(cli, run_copy):
    ckpt = run_copy / "checkpoints"
    shutil.copytree(ckpt / "128", ckpt / "160.orbax-checkpoint-tmp")  # a save killed mid-way
    (ckpt / "160.orbax-checkpoint-tmp" / "state" / "_METADATA").unlink()
    rc, _, err = cli("--resume", str(run_copy), "train.total_steps=160")
    assert rc == 0 and "Traceback" not in err
    assert not any("tmp" in p.name for p in ckpt.iterdir())
    assert checkpoint_steps(run_copy)[-1] == 160
    assert [r["step"] for r in metrics_rows(run_copy)] == [32, 64, 96, 128, 160]


def test_no_checkpoint_restores_exits_2_and_keeps_the_files(cli, run_copy):
    for step in (64, 96, 128):
        DAMAGE["missing _METADATA"](run_copy / "checkpoints" / str(step))
    metrics = (run_copy / "metrics.jsonl").read_bytes()
    rc, _, err = cli("--resume", str(run_copy), "train.total_steps=160")
    assert rc == 2
    line = assert_one_line_error(err, r"no checkpoint in .* restores")
    assert all(f"step {s}:" in line for s in (64, 96, 128))
    assert (run_copy / "metrics.jsonl").read_bytes() == metrics  # nothing truncated
    assert len(list((run_copy / "checkpoints-damaged").iterdir())) == 3  # moved, not deleted


def test_torn_last_metrics_line_is_dropped_with_a_warning(cli, run_copy):
    """Before: resume failed with a JSONDecodeError traceback."""
    with open(run_copy / "metrics.jsonl", "a") as f:
        f.write('{"step": 160, "seed": 0, "critic/lo')
    rc, _, err = cli("--resume", str(run_copy), "train.total_steps=160")
    assert rc == 0 and "Traceback" not in err
    assert any("dropped a torn last line" in ln for ln in err.splitlines())
    assert [r["step"] for r in metrics_rows(run_copy)] == [32, 64, 96, 128, 160]


# ------------------------------------------------------------------ non-finite injection
def _inject_after(n_calls: int, edit):
    """Session hook: after chunk call ``n_calls`` the returned state goes through ``edit``."""
    def hook(sess):
        calls = {"n": 0}
        chunk = sess.chunk

        def wrapped(state, hparams):
            state, metrics = chunk(state, hparams)
            calls["n"] += 1
            if calls["n"] == n_calls:
                state = edit(state)
            return state, metrics
        import dataclasses

        return dataclasses.replace(sess, chunk=wrapped)
    return hook


def _nan_first_leaf(tree):
    leaves, treedef = jax.tree.flatten(tree)
    leaves[0] = jnp.full_like(leaves[0], jnp.nan)
    return jax.tree.unflatten(treedef, leaves)


def _nan_params(s):
    return s.replace(agent=s.agent.replace(critic_params=_nan_first_leaf(s.agent.critic_params)))


def _nan_adam_mu(s):
    opt = s.agent.actor_opt_state
    inner = opt.inner_state
    adam = inner.inner_state
    mu = _nan_first_leaf(adam[0].mu)
    adam = (adam[0]._replace(mu=mu),) + tuple(adam[1:])
    opt = opt._replace(inner_state=inner._replace(inner_state=adam))
    return s.replace(agent=s.agent.replace(actor_opt_state=opt))


def _nan_rewards(s):  # every sampled batch then has NaN rewards -> NaN gradients
    exp = s.replay.experience
    return s.replace(replay=s.replay.replace(
        experience=exp.replace(reward=jnp.full_like(exp.reward, jnp.nan))))


NAN_CASES = {
    # name: (edit, extra overrides, stop pattern, checkpoints kept)
    "parameters": (_nan_params, [], r"non-finite values in the agent state .*critic_params",
                   [32, 64]),
    "adam moments": (_nan_adam_mu, [], r"non-finite values in the agent state .*mu", [32, 64]),
    "gradients": (_nan_rewards, ["checkpoint.every=64", "train.max_nonfinite=5"],
                  r"consecutive non-finite updates .*train.max_nonfinite=5", [64]),
}


@pytest.mark.parametrize("case", list(NAN_CASES))
def test_injected_nan_stops_with_exit_3_and_keeps_the_last_good_checkpoint(cli, tmp_path, case):
    edit, extra, pattern, kept = NAN_CASES[case]
    run_dir = tmp_path / "run"
    rc, _, err = cli(*TINY, "train.total_steps=256", *extra, f"run.dir={run_dir}",
                     session_hook=_inject_after(3, edit))
    assert rc == 3, err[-2000:]
    line = assert_one_line_error(err, pattern)
    assert f"the last good checkpoint is step {kept[-1]}; resume with" in line
    assert checkpoint_steps(run_dir) == kept
    _restores_finite(run_dir, kept[-1])
    metrics_rows(run_dir)


def test_huge_learning_rate_is_caught_and_never_called_good(cli, tmp_path):
    """Before: ``critic/loss: null`` rows, nonfinite counters 0, every save refused, exit 0."""
    run_dir = tmp_path / "run"
    rc, out, err = cli(*TINY, "train.total_steps=256", "agent.critic_lr=1e6", f"run.dir={run_dir}")
    assert rc == 3
    assert_one_line_error(err, r"stopped at step \d+: non-finite values in the agent state")
    assert "final eval" not in out
    for step in checkpoint_steps(run_dir):
        _restores_finite(run_dir, step)


def test_nonfinite_before_any_checkpoint_says_nothing_to_resume(cli, tmp_path):
    run_dir = tmp_path / "run"
    rc, _, err = cli(*TINY, "train.total_steps=256", f"run.dir={run_dir}",
                     session_hook=_inject_after(1, _nan_params))
    assert rc == 3
    assert_one_line_error(err, r"no checkpoint was written: nothing to resume from")
    assert checkpoint_steps(run_dir) == []


# ------------------------------------------------------------------ signals in-process
def _signal_after(n_calls: int, signum: int, times: int = 1):
    def edit(state):
        for _ in range(times):
            os.kill(os.getpid(), signum)
        return state
    return _inject_after(n_calls, edit)


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_training_finishes_the_chunk_and_checkpoints(cli, tmp_path, signum, code):
    run_dir = tmp_path / "run"
    rc, _, err = cli(*TINY, "train.total_steps=256", "checkpoint.every=64", f"run.dir={run_dir}",
                     session_hook=_signal_after(3, signum))
    assert rc == code
    name = signal.Signals(signum).name
    line = assert_one_line_error(err, rf"stopped by {name} at step 96: checkpoint written at "
                                      rf"step 96; resume with: .* --resume {run_dir}",
                                 prefix="stopped by")
    assert line and checkpoint_steps(run_dir) == [64, 96]
    assert [r["step"] for r in metrics_rows(run_dir)] == [32, 64, 96]
    _restores_finite(run_dir, 96)
    rc, _, err = cli("--resume", str(run_dir), "train.total_steps=128")
    assert rc == 0 and "Traceback" not in err
    assert [r["step"] for r in metrics_rows(run_dir)] == [32, 64, 96, 128]


def test_second_signal_abandons_the_chunk(cli, tmp_path):
    run_dir = tmp_path / "run"
    rc, _, err = cli(*TINY, "train.total_steps=256", "checkpoint.every=64", f"run.dir={run_dir}",
                     session_hook=_signal_after(3, signal.SIGTERM, times=2))
    assert rc == 143
    assert_one_line_error(err, r"SIGTERM again: abandoned the current chunk; the last good "
                               r"checkpoint is step 64; resume with", prefix="SIGTERM again")
    assert checkpoint_steps(run_dir) == [64]
