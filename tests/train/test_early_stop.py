"""Early stopping on deterministic eval return (field report 002 "Early stopping bug")."""

import json

import numpy as np
import pytest

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.config.loader import load_config
from rlstab_jax.train.early_stop import early_stop_streak
from rlstab_jax.train.loop import run

TINY = ["agent.actor_hidden=[8]", "agent.critic_hidden=[8]", "agent.batch_size=8",
        "train.total_steps=400", "train.learning_starts=100", "train.chunk_steps=100",
        "train.eval_every=100", "train.eval_episodes=1", "replay.capacity=400",
        "log.progress=false", "log.plot=false", "env.id=probe/constant-continuous"]


def test_streak_needs_every_seed_and_resets():
    s = early_stop_streak(0, np.array([500.0, 500.0]), 475.0)
    assert s == 1
    assert early_stop_streak(s, np.array([500.0, 480.0]), 475.0) == 2
    assert early_stop_streak(2, np.array([500.0, 474.9]), 475.0) == 0  # one seed below: reset
    assert early_stop_streak(5, np.array([1e9]), None) == 0  # off


@pytest.mark.parametrize("threshold,patience,last_step", [(None, 1, 400), (0.5, 2, 200)])
def test_run_stops_on_eval_return_and_its_off_variant(tmp_path, threshold, patience, last_step):
    # probe/constant-continuous pays +1 every (single-step) episode: eval return is always 1,
    # while training rows carry no eval return until the first evaluation.
    extra = [] if threshold is None else [f"train.early_stop_return={threshold}",
                                           f"train.early_stop_patience={patience}"]
    cfg = load_config("sac/pendulum", TINY + [f"run.dir={tmp_path}", "train.seeds=2", *extra])
    res = run(cfg)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in rows) == last_step
    assert bool(res.early_stopped) == (threshold is not None)
    if threshold is not None:  # the final state is checkpointed at the stopping step
        assert (tmp_path / "checkpoints" / str(last_step)).exists() or any(
            str(last_step) in p.name for p in (tmp_path / "checkpoints").iterdir())


def test_bad_patience_is_one_line():
    with pytest.raises(ConfigError, match="train.early_stop_patience"):
        load_config("sac/pendulum", ["train.early_stop_patience=0"])
