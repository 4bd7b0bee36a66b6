"""Optuna sweep: 3 tiny trials in one vmapped batch, stability score logged, pruning, fingerprint.

Two sweeps run with the same sampler seed, so they sample the same 3 trials and (same compiled
program, same seeds) produce the same evaluations: the first without pruning gives the
objectives, the second prunes with a threshold between them, so the test knows exactly which
trials the rule must prune and when.
"""

import json
import re
import shutil

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from rlstab_jax.config.loader import load_config  # noqa: E402
from rlstab_jax.sweep.__main__ import main  # noqa: E402
from rlstab_jax.sweep.runner import run_sweep  # noqa: E402
from rlstab_jax.sweep.space import load_space  # noqa: E402
from rlstab_jax.sweep.study import make_pruner  # noqa: E402

TINY = ["agent.actor_hidden=[8]", "agent.critic_hidden=[8]", "agent.batch_size=8",
        "replay.capacity=500", "train.total_steps=300", "train.learning_starts=100",
        "train.chunk_steps=100", "train.eval_every=100", "train.eval_episodes=1",
        "checkpoint.every=100"]


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    space_file = root / "space.yaml"
    space_file.write_text("params:\n  agent.actor_lr: {float: [0.0001, 0.01], log: true}\n"
                          "  agent.gamma: {choices: [0.9, 0.99]}\n")
    cfg = load_config("sac/pendulum", TINY)
    space = load_space(str(space_file))
    a = run_sweep(cfg, space, root / "a", n_trials=3, batch_size=3, pruner=make_pruner(
        "none", None, 0, 0), stability_weight=100.0, sampler_seed=3)
    rows_a = [json.loads(x) for x in (root / "a" / "trials.jsonl").read_text().splitlines()]
    lowest = {n: min(r["objective"] for r in rows_a if r["trial"] == n) for n in range(3)}
    vals = sorted(lowest.values())
    # ThresholdPruner prunes at the first evaluation below `lower`: exactly the trial whose
    # objective history dips lowest, at its first step below `lower`; the others never dip
    lower = (vals[0] + vals[1]) / 2
    b = run_sweep(cfg, space, root / "b", n_trials=3, batch_size=3, pruner=make_pruner(
        "threshold", lower, 0, 0), stability_weight=100.0, sampler_seed=3)
    rows_b = [json.loads(x) for x in (root / "b" / "trials.jsonl").read_text().splitlines()]
    return root, cfg, a, rows_a, b, rows_b, lower, lowest


def test_three_trials_run_in_one_vmapped_batch(sweeps):
    root, _, a, rows_a, *_ = sweeps
    assert [t["state"] for t in a["trials"]] == ["complete"] * 3
    assert {t["batch_members"] for t in a["trials"]} == {3}  # one program, 3 members
    assert len(list((root / "a" / "batches").iterdir())) == 1
    assert (root / "a" / "study.db").is_file() and (root / "a" / "best.json").is_file()
    study = optuna.load_study(study_name="sweep", storage=a["storage"])
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    params = [t.params for t in study.trials]
    assert len({p["agent.actor_lr"] for p in params}) == 3  # numerics differ per trial


def test_stability_score_logged_at_every_evaluation(sweeps):
    _, _, a, rows_a, *_ = sweeps
    for n in range(3):
        mine = [r for r in rows_a if r["trial"] == n]
        assert [r["step"] for r in mine] == [100, 200, 300]
        for r in mine:
            assert 0.0 <= r["stability_score"] <= 1.0
            assert r["objective"] == pytest.approx(r["eval_return"] + 100 * r["stability_score"])
    study = optuna.load_study(study_name="sweep", storage=a["storage"])
    for t in study.trials:
        assert "stability_score" in t.user_attrs
        assert sorted(t.intermediate_values) == [100, 200, 300]


def test_threshold_rule_prunes_exactly_the_trials_below(sweeps):
    _, _, a, rows_a, b, rows_b, lower, lowest = sweeps
    worst = min(lowest, key=lowest.get)
    states = {t["number"]: t["state"] for t in b["trials"]}
    assert states == {n: "pruned" if n == worst else "complete" for n in range(3)}
    hist = [r for r in rows_a if r["trial"] == worst]
    prune_step = next(r["step"] for r in hist if r["objective"] < lower)
    mine = [r for r in rows_b if r["trial"] == worst]
    # every evaluation up to the pruning step was logged with its stability score, the
    # pruning step twice: first its score and objective, then the pruning decision
    assert [(r["step"], r["pruned"]) for r in mine] == (
        [(r["step"], False) for r in hist if r["step"] <= prune_step] + [(prune_step, True)])
    assert mine[-1]["objective"] < lower and 0 <= mine[-1]["stability_score"] <= 1
    # same sampler seed and program: the same evaluations as the unpruned sweep
    by_step = {r["step"]: r["objective"] for r in hist}
    for r in mine:
        np.testing.assert_allclose(r["objective"], by_step[r["step"]], rtol=1e-4)
    for r in rows_b:
        if r["trial"] != worst:
            assert r["objective"] >= lower and not r["pruned"]
    study = optuna.load_study(study_name="sweep", storage=b["storage"])
    assert study.trials[worst].state.name == "PRUNED"
    assert [t.state.name for t in study.trials].count("COMPLETE") == 2


def test_interrupted_batch_resumes_from_its_checkpoint(sweeps, monkeypatch):
    """A batch killed mid-training continues from its checkpoint with the same trials; the
    evaluations after the restored step are redone, and everything equals the uninterrupted
    sweep ``a`` (same sampler seed, program and seeds)."""
    import rlstab_jax.train.loop as loop

    root, cfg, a, rows_a, *_ = sweeps
    space = load_space(str(root / "space.yaml"))
    kw = dict(n_trials=3, batch_size=3, pruner=make_pruner("none", None, 0, 0),
              stability_weight=100.0, sampler_seed=3)
    real = loop.run

    def killed_at_200(*args, **kwargs):
        real(*args, **{**kwargs, "stop_after_steps": 200})
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "run", killed_at_200)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, space, root / "c", **kw)
    monkeypatch.setattr(loop, "run", real)
    bd = root / "c" / "batches" / "b0-g0"
    assert (bd / "group.json").is_file() and not (bd / "group_done.json").exists()
    ckpts = sorted(int(p.name) for p in (bd / "checkpoints").iterdir() if p.name.isdigit())
    assert ckpts[-1] == 200
    if len(ckpts) > 1:  # lose the newest: the batch restarts at 100 and redoes the eval at 200
        shutil.rmtree(bd / "checkpoints" / str(ckpts[-1]))
    storage = f"sqlite:///{(root / 'c' / 'study.db').resolve()}"
    study = optuna.load_study(study_name="sweep", storage=storage)
    assert [t.state.name for t in study.trials] == ["RUNNING"] * 3

    c = run_sweep(cfg, space, root / "c", **kw, resume=True)
    rows_c = [json.loads(x) for x in (root / "c" / "trials.jsonl").read_text().splitlines()]
    assert [(r["trial"], r["step"]) for r in rows_c] == [(r["trial"], r["step"]) for r in rows_a]
    np.testing.assert_allclose([r["objective"] for r in rows_c],
                               [r["objective"] for r in rows_a], rtol=1e-4)
    assert len(c["trials"]) == 3 and json.loads((bd / "group_done.json").read_text())[0][
        "resumed"]
    study = optuna.load_study(study_name="sweep", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    ref = optuna.load_study(study_name="sweep", storage=a["storage"])
    np.testing.assert_allclose([t.value for t in study.trials], [t.value for t in ref.trials],
                               rtol=1e-4)
    assert [t.params for t in study.trials] == [t.params for t in ref.trials]


def test_report001_phase3_space():
    space = {p.key: p for p in load_space("report001_phase3")}
    assert space["agent.gamma"].values == (0.99, 0.995, 0.999)
    assert space["agent.adam_b2"].values == (0.99, 0.995)
    assert space["agent.utd"].kind == "int" and space["agent.utd"].values == (2, 8)


def test_mismatched_fingerprint_refused(sweeps, capsys):
    root, *_ = sweeps
    code = main(["--config", "sac/pendulum", *TINY, "agent.actor_hidden=[16]",
                 "--dir", str(root / "a"), "--trials", "1", "--space",
                 str(root / "space.yaml")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert re.search(r"different architecture: agent\.actor_hidden: \[8\] -> \[16\].*wipe", err)


@pytest.mark.parametrize("args,pattern", [
    (["--space", "nope"], r"--space 'nope': no such file or preset"),
    (["--trials", "0"], r"--trials=0 must be >= 1"),
    (["--pruner", "threshold"], r"needs --prune-lower"),
    (["agent.gama=0.9"], r"unknown config key 'agent.gama'"),
])
def test_bad_input_one_line(args, pattern, tmp_path, capsys):
    code = main(["--dir", str(tmp_path / "s"), *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and re.search(pattern, err), err
