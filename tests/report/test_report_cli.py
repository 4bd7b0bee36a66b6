"""``python -m rlstab_jax.report RUN_DIR`` on a run the tests produce, and on bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.report import judge, load_run, write_report
from rlstab_jax.report.cli import main

PNGS = ("eval_curve", "alpha_per_dim", "log_std_floor", "q_per_critic", "grad_norms",
        "nonfinite")


def test_report_command_on_a_real_run(tiny_sac_run, tmp_path):
    run_dir, _, _ = tiny_sac_run
    out = tmp_path / "rep"
    proc = subprocess.run([sys.executable, "-m", "rlstab_jax.report", str(run_dir),
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("report.md")
    text = (out / "report.md").read_text()
    for stem in PNGS:
        png = out / f"{stem}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", stem
        assert f"]({stem}.png)" in text
    assert "`sac` on `Pendulum-v1`, 2 seed(s) (0, 1), 400 env steps" in text
    assert "4 evaluations" in text
    # the per-dim keys of Pendulum's single action dimension and both critics
    for key in ("`alpha/a0`", "`log_std/mean/a0`", "`q/mean/0`", "`q/mean/1`", "`q/std/1`",
                "`critic/grad_norm`", "`actor/grad_norm`"):
        assert key in text, key
    assert "**Verdict:** " in text and "stability score" in text
    assert "Not logged by this agent" not in text


def test_verdict_matches_the_telemetry_functions(tiny_sac_run):
    run_dir, _, result = tiny_sac_run
    log = load_run(run_dir)
    steps, mat = log.eval_matrix()
    np.testing.assert_array_equal(steps, [100, 200, 300, 400])
    assert mat.shape == (2, 4)
    np.testing.assert_allclose(mat[:, -1], result.final_eval["eval/return"], rtol=1e-6)


def _fake_run(path, returns_per_seed, extra=None):
    path.mkdir()
    (path / "config.yaml").write_text(yaml.safe_dump({"agent": {"name": "reinforce"},
                                                      "env": {"id": "probe"}}))
    rows = []
    for seed, rets in enumerate(returns_per_seed):
        for i, r in enumerate(rets):
            rows.append({"step": 10 * (i + 1), "seed": seed, "eval/return": r, **(extra or {})})
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows)
                                        + '{"step": 99, "se')  # torn last line (killed run)
    return path


def test_collapsed_seed_is_named_and_missing_telemetry_listed(tmp_path):
    run = _fake_run(tmp_path / "run", [[10, 50, 100, 100, 100, 100],
                                       [10, 50, 100, 20, 20, 20]])
    text = write_report(run).read_text()
    assert "**Verdict:** COLLAPSE in 1/2 seeds (1)" in text
    assert "| 1 | 20.00 | 100.00 |" in text
    assert "## Not logged by this agent" in text
    assert (run / "eval_curve.png").is_file() and not (run / "alpha_per_dim.png").exists()


def test_steady_run_scores_one_and_short_history_is_not_judged(tmp_path):
    v = judge([0], np.array([[1.0, 2.0, 3.0, 4.0]]))
    assert not v.collapsed.any() and v.score[0] == pytest.approx(1.0)
    short = judge([0, 1], np.array([[1.0, -5.0], [1.0, 1.0]]))
    assert "too few evals" in short.summary()


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    proc = subprocess.run([sys.executable, "-m", "rlstab_jax.report", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == f"error: {tmp_path / 'nope'}: no such run directory\n"
    for args in ([str(tmp_path)], [str(tmp_path), "--patience", "0"]):
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
    with pytest.raises(ConfigError, match="not a run directory"):
        load_run(tmp_path)
