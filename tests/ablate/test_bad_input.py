"""Bad grid files: one line naming the grid, the variant (cell) and the key; exit 2; no compile."""

import re

import pytest

from rlstab_jax.ablate.__main__ import main
from rlstab_jax.ablate.cells import CompileCounter

GOOD = """
base: sac/pendulum
seeds: 2
{body}
"""

CASES = {
    "unknown-switch": ("variants:\n  a: {}\n  b: {agent.std_hed: coupled}",
                       r"variant 'b': unknown config key 'agent.std_hed' "
                       r"\(did you mean 'agent.std_head'\?\)"),
    "unknown-value": ("variants:\n  a: {}\n  b: {agent.std_head: sideways}",
                      r"variant 'b': agent.std_head='sideways' must be one of"),
    "invalid-config": ("grid:\n  agent.gamma: [0.99, 1.5]",
                       r"variant 'gamma=1.5': agent.gamma=1.5 must be in \[0, 1\)"),
    "empty-grid": ("variants: {}", r"empty grid"),
    "empty-axis": ("grid:\n  agent.gamma: []", r"grid axis 'agent.gamma' must be a non-empty"),
    "unknown-top-key": ("variants:\n  a: {}\nseedz: 3", r"unknown grid key 'seedz'"),
    "bad-baseline": ("variants:\n  a: {}\nbaseline: b", r"baseline 'b' is not a variant"),
    "seed-per-variant": ("variants:\n  a: {train.seed: 3}", r"variant 'a': train.seed is set"),
    "bad-stats": ("variants:\n  a: {}\nstats: {collapse_drop: 2}",
                  r"stats.collapse_drop=2 must be in \(0, 1\]"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_grid_is_one_line_exit_2_before_compiling(case, tmp_path, capsys):
    body, pattern = CASES[case]
    grid = tmp_path / f"{case}.yaml"
    grid.write_text(GOOD.format(body=body))
    with CompileCounter() as cc:
        code = main([str(grid), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(grid.name) in err or case == "empty-grid" or str(grid) in err
    assert re.search(pattern, err), err
    assert cc.count == 0  # nothing compiled
    assert not (tmp_path / "out").exists()


def test_unknown_preset_names_the_choices(capsys):
    assert main(["sac_racer_00"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'sac_racer_000'" in err


def test_list_presets(capsys):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out.split()
    assert {"sac_racer_000", "tqc_racer_003"} <= set(out)
