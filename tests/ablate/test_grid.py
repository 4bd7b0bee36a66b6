"""The tiny grid end to end: every output file, vmapped member == single run, resume.

One module-scoped grid run (2 structural x 2 numeric x 3 seeds, 400 env steps of SAC on
Pendulum with 8-unit networks) feeds every test; the sessions (compiled chunks) are cached per
program in-process, so re-running a cell for the resume test does not compile again.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rlstab_jax.ablate.cells import CELL_DONE, cell_dir, plan, run_cell
from rlstab_jax.ablate.curves import Curves
from rlstab_jax.ablate.runner import run_grid
from rlstab_jax.ablate.spec import load_grid

GRID = Path(__file__).with_name("tiny_grid.yaml")


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    spec = load_grid(str(GRID))
    out = tmp_path_factory.mktemp("abl") / "tiny"
    result = run_grid(spec, out, progress=False)
    return spec, out, result


def test_grid_groups_structural_and_numeric(grid):
    spec, _, _ = grid
    assert len(spec.programs) == 2  # log_std_param tanh / clamp: two compiled programs
    assert [len(p.variants) for p in spec.programs] == [2, 2]  # actor_lr vmapped
    assert {p.name for p in spec.programs} == {"log_std_param=tanh", "log_std_param=clamp"}
    assert len(spec.variants) == 4 and spec.seeds == (0, 1, 2)


def test_tiny_grid_writes_every_file(grid):
    spec, out, result = grid
    assert len(result["ran"]) == 2 and result["summary"] is not None
    for f in ("grid.yaml", "summary.json", "report.md", "plots/curves.png", "plots/iqm.png",
              "plots/collapse_rate.png", "curves/index.json"):
        assert (out / f).is_file(), f
        assert (out / f).stat().st_size > 0, f
    for cell in plan(spec):
        d = cell_dir(out, cell)
        for f in (CELL_DONE, "metrics.jsonl", "config.yaml"):
            assert (d / f).is_file()
        rec = json.loads((d / CELL_DONE).read_text())
        assert len(rec["members"]) == 6
    index = json.loads((out / "curves/index.json").read_text())
    assert set(index) == {v.name for v in spec.variants}
    for name, rel in index.items():
        c = Curves.load(out / rel)  # np.load(allow_pickle=False)
        assert c.variant == name
        assert list(c.seeds) == [0, 1, 2]
        assert c.eval_return.shape == (3, 4) and np.isfinite(c.eval_return).all()
        assert list(c.eval_steps) == [100, 200, 300, 400]
        assert "log_std/frac_at_floor" in c.series and "q_mean" in c.series
    s = json.loads((out / "summary.json").read_text())
    for name in index:
        for m in ("iqm", "mean", "optimality_gap"):
            lo, hi = s["aggregates"][name][m]["ci"]
            assert lo <= s["aggregates"][name][m]["value"] <= hi
        for m in ("collapse_rate", "stability_score", "time_to_threshold_median",
                  "final_return_mean", "entropy_floor_incidence", "q_drift_mean",
                  "nonfinite_updates"):
            assert m in s["stability"][name]
    assert len(s["comparisons"]) == 3
    for c in s["comparisons"]:
        assert isinstance(c["iqm_diff_ci_excludes_zero"], bool)
    for p in s["programs"].values():
        assert p["cells"] == 1 and p["compiles"] >= 1 and p["compile_seconds"] > 0
    report = (out / "report.md").read_text()
    assert "CI excludes 0?" in report and "plots/iqm.png" in report
    assert "collapse rate" in report and "compiles" in report


def test_vmapped_numeric_variant_equals_single_run(grid, tmp_path):
    """Member (tanh, actor_lr=0.0003, seed 2) of the vmapped cell == a plain single run."""
    from rlstab_jax.train.loop import run

    spec, out, _ = grid
    variant = next(v for v in spec.variants if v.name == "log_std_param=tanh,actor_lr=0.0003")
    c = Curves.load(out / "curves" / "log_std_param=tanh_actor_lr=0.0003.npz")
    d = variant.cfg.to_dict()
    d["train"].update(seed=2, seeds=1)
    d["run"]["dir"] = str(tmp_path / "single")
    d["log"].update(progress=False, plot=False)
    from rlstab_jax.config.loader import load_config

    single = run(load_config(base=d), progress=False)
    ev = {r["step"]: r["eval/return"] for r in single.rows if r.get("eval/return") is not None}
    np.testing.assert_allclose([ev[int(t)] for t in c.eval_steps], c.eval_return[2],
                               rtol=1e-3, atol=1e-2)
    # and it is not trivially equal to the other numeric variant of the same program
    other = Curves.load(out / "curves" / "log_std_param=tanh_actor_lr=0.001.npz")
    assert not np.allclose(other.eval_return[2], c.eval_return[2])


def test_resume_runs_only_missing_cells(grid):
    spec, out, _ = grid
    cells = plan(spec)
    before = json.loads((out / "summary.json").read_text())["final_scores"]
    # cell 1 was interrupted after 200 of 400 steps (checkpoint at 200, no cell.json)
    victim = cells[1]
    shutil.rmtree(cell_dir(out, victim))
    run_cell(victim, cell_dir(out, victim), stop_after_steps=200)
    assert not (cell_dir(out, victim) / CELL_DONE).exists()
    result = run_grid(spec, out, progress=False)
    assert result["ran"] == [victim.name]
    assert result["skipped"] == [cells[0].name]
    assert result["records"][0]["resumed"] is True
    after = json.loads((out / "summary.json").read_text())["final_scores"]
    for k in before:
        np.testing.assert_allclose(after[k], before[k], rtol=1e-3, atol=1e-2)
    # a finished grid runs nothing
    again = run_grid(spec, out, progress=False, analyse=False)
    assert again["ran"] == [] and len(again["skipped"]) == 2


def test_cli_resume_of_a_finished_grid_trains_nothing(grid, capsys):
    from rlstab_jax.ablate.__main__ import main

    _, out, _ = grid
    assert main(["--resume", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "cells trained: 0, already finished: 2" in printed
    assert f"report: {out / 'report.md'}" in printed
    # statistics can be recomputed from the stored curves without training
    (out / "report.md").unlink()
    assert main(["--resume", str(out), "--analyse-only"]) == 0
    assert (out / "report.md").is_file()


def test_seeds_override_is_recorded_for_resume(tmp_path):
    """``--seeds N`` on a new grid must survive ``--resume`` / ``--analyse-only``.

    (It used to be applied to the in-memory spec only, so a resumed 10-seed grid was planned
    and analysed with the file's 5 seeds.)
    """
    from rlstab_jax.ablate.runner import load_resumed, prepare
    from rlstab_jax.ablate.spec import with_seeds

    spec = with_seeds(load_grid(str(GRID)), 5)
    assert spec.seeds == (0, 1, 2, 3, 4) and spec.seed_block == 3
    prepare(spec, tmp_path, {})
    back, _ = load_resumed(tmp_path)
    assert back.seeds == spec.seeds and back.seed_block == spec.seed_block
    assert [c.name for c in plan(back)] == [c.name for c in plan(spec)]
    assert {c.name.split("/")[-1] for c in plan(back)} == {"seeds0-2", "seeds3-4"}
