"""The run report on Dreamer and multi-head PPO runs: their own telemetry sections (reports 002/004)."""

import json

import yaml

from rlstab_jax.report import write_report
from rlstab_jax.report.cli import main


def _run(path, agent, extra):
    path.mkdir()
    (path / "config.yaml").write_text(yaml.safe_dump({"agent": {"name": agent, "free_bits": 1.0},
                                                      "env": {"id": "probe"}}))
    rows = [{"step": 10 * (i + 1), "seed": s, "eval/return": float(i), **extra(i)}
            for s in (0, 1) for i in range(4)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_dreamer_run_gets_kl_and_surprise_sections(tmp_path):
    run = _run(tmp_path / "dreamer", "dreamer", lambda i: {
        "kl/dyn_raw": 0.5 + i, "kl/rep_raw": 0.4 + i, "kl/below_free_frac": 0.5,
        "wm/surprise/state_log_ratio": 0.3 * i, "wm/surprise/kl_dyn_log_ratio": -0.1,
        "wm/surprise/total_log_ratio": 0.1, "wm/surprise/max_component_log_ratio": 0.3 * i})
    assert main([str(run)]) == 0
    text = (run / "report.md").read_text()
    assert "## KL terms vs the free-bits floor" in text and "## World-model surprise" in text
    assert (run / "kl_free_bits.png").is_file() and (run / "wm_surprise.png").is_file()
    assert "| `kl/dyn_raw` | 3.5 | 3.5 |" in text
    # PPO-only sections are not reported as missing on a Dreamer run
    assert "per-head" not in text.split("## Not logged by this agent")[-1]


def test_ppo_run_gets_per_head_entropy_and_ratio_sections(tmp_path):
    heads = ("op", "slot")
    run = _run(tmp_path / "ppo", "ppo", lambda i: {
        **{f"entropy/{h}": 1.5 - 0.4 * i for h in heads},
        **{f"entropy/{h}/warn": float(i > 1) for h in heads},
        **{f"ratio/{h}/max": 1.0 + 4 * i for h in heads}, "entropy/bonus": 0.1,
        "ratio/joint/max": 2.0, "critical/heads": float(i == 3)})
    text = write_report(run).read_text()
    assert "## Per-head entropy vs the report's levels" in text
    assert "## Per-head probability ratio" in text
    assert (run / "head_entropy.png").is_file() and (run / "head_ratio.png").is_file()
    assert "| `entropy/op` |" in text and "| `critical/heads` | 1 | 1 |" in text
    assert "entropy/bonus`" not in text
    assert "kl terms" not in text.lower().split("## not logged by this agent")[-1]


def test_sac_entropy_per_dim_is_not_a_per_head_section(tmp_path):
    """SAC logs ``entropy/<dim>`` (differential, negative here) but no report-004 head flags."""
    run = _run(tmp_path / "sac", "sac", lambda i: {"entropy/a0": -0.5 - i, "alpha/a0": 0.1})
    text = write_report(run).read_text()
    assert "Per-head entropy" not in text and not (run / "head_entropy.png").exists()
    assert "`entropy/a0`" not in text and "| `alpha/a0` | 0.1 | 0.1 |" in text
