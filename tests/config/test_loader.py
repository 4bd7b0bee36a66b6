"""Config layering and one-line validation errors (exit code 2, no traceback)."""

import copy
import subprocess
import sys

import pytest

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.config.loader import PRESET_DIR, list_presets, load_config, read_yaml

BASE = {"agent": {"name": "reinforce"}, "env": {"id": "probe/constant-discrete"}}


@pytest.mark.parametrize(
    "override, pattern",
    [
        (
            "train.eval_evry=3",
            r"unknown config key 'train.eval_evry' \(did you mean 'train.eval_every'\?\)",
        ),
        ("agent.gama=0.9", r"unknown config key 'agent.gama' \(did you mean 'agent.gamma'\?\)"),
        ("trian.seeds=2", r"unknown config section 'trian' \(did you mean 'train'\?\)"),
        ("train.seeds=abc", r"train.seeds='abc' must be an integer"),
        ("train.seeds=0", r"train.seeds=0 must be >= 1"),
        ("agent.gamma=1.0", r"agent.gamma=1.0 must be in \[0, 1\)"),
        ("agent.lr=-0.1", r"agent.lr=-0.1 must be > 0"),
        ("log.progress=maybe", r"log.progress='maybe' must be true or false"),
        ("agent.hidden=7", r"agent.hidden=7 must be a list"),
        ("env.backend=cuda", r"env.backend='cuda' must be one of 'auto', 'gymnax', 'gymnasium'"),
        ("seeds", r"must look like key=value"),
    ],
)
def test_bad_override_is_one_clear_line(override, pattern):
    with pytest.raises(ConfigError, match=pattern) as info:
        load_config(base=copy.deepcopy(BASE), overrides=[override])
    assert "\n" not in str(info.value)


def test_layering_preset_then_overrides():
    cfg = load_config(
        base=copy.deepcopy(BASE), overrides=["train.seeds=3", "agent.hidden=[8,8]", "agent.lr=0.01"]
    )
    assert cfg.train.seeds == 3
    assert cfg.agent.hidden == (8, 8)
    assert cfg.agent.lr == 0.01
    assert cfg.env.id == "probe/constant-discrete"
    assert cfg.train.total_steps == 20_000  # schema default survives


def test_unknown_agent_name_suggests():
    with pytest.raises(ConfigError, match="did you mean 'reinforce'"):
        load_config(base={"agent": {"name": "reinforc"}})


@pytest.mark.parametrize("preset", list_presets())
def test_every_preset_loads_and_is_not_mutated(preset):
    path = PRESET_DIR / preset
    before = path.read_text()
    data = read_yaml(path)
    cfg = load_config(str(path))
    assert path.read_text() == before
    assert cfg.agent_name == data.get("agent", {}).get("name", "sac")
    # the resolved config round-trips through its own dump
    again = load_config(base=cfg.to_dict())
    assert again.to_dict() == cfg.to_dict()


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "rlstab_jax.train", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_bad_key_exit_code_2_one_line():
    p = _cli("train.totl_steps=10")
    assert p.returncode == 2
    err = p.stderr.strip().splitlines()
    assert len(err) == 1, p.stderr
    assert "did you mean 'train.total_steps'" in err[0]
    assert "Traceback" not in p.stderr


def test_cli_missing_config_file():
    p = _cli("--config", "configs/nope/none.yaml")
    assert p.returncode == 2 and "no such file or preset" in p.stderr


def test_cli_list_and_help():
    p = _cli("--list")
    assert p.returncode == 0
    assert "agents:" in p.stdout and "presets" in p.stdout and "probe/obs-discrete" in p.stdout
    h = _cli("--help")
    assert h.returncode == 0 and "--resume" in h.stdout and "--config" in h.stdout
