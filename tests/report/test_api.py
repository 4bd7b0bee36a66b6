"""The Python entry points notebooks use: train, evaluate, load_policy, resume (one session)."""

import jax
import numpy as np
import pytest

from rlstab_jax import api
from rlstab_jax.config.errors import ConfigError


def test_make_config_overrides_mapping_and_list():
    cfg = api.make_config("sac/pendulum", {"train.seeds": 3, "agent.actor_hidden": (8, 8),
                                           "agent.target_entropy_total": float("nan"),
                                           "run.dir": "runs/x", "log.plot": False})
    assert cfg.train.seeds == 3 and cfg.agent.actor_hidden == (8, 8)
    assert np.isnan(cfg.agent.target_entropy_total) and cfg.run.dir == "runs/x"
    assert api.make_config(None, ["train.seeds=2"]).train.seeds == 2
    with pytest.raises(ConfigError, match="did you mean 'train.eval_every'"):
        api.make_config("sac/pendulum", {"train.eval_evry": 1})


def test_evaluate_load_policy_and_resume_reuse_the_session(tiny_sac_run, tmp_path):
    run_dir, session, result = tiny_sac_run
    assert result.rows[-1]["step"] == 400
    ev = api.evaluate(run_dir, session=session)
    assert ev["eval/return"].shape == (2,) and np.all(np.isfinite(ev["eval/return"]))
    policy = api.load_policy(run_dir, seed_index=1)
    a = np.asarray(policy(np.zeros((5, 3), np.float32), jax.random.PRNGKey(0)))
    assert a.shape == (5, 1) and np.all(np.abs(a) <= 2.0)
    with pytest.raises(ConfigError, match="different 'agent' config"):
        api.resume(run_dir, {"agent.actor_lr": 5e-5}, session=session)
    # resume a copy so the shared run stays as the report tests expect
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    res = api.resume(copy, {"train.total_steps": 500}, session=session)
    steps = sorted({r["step"] for r in api.metrics(copy)})
    assert steps == [100, 200, 300, 400, 500] and res.rows[-1]["step"] == 500
    with pytest.raises(ConfigError, match="not a run directory"):
        api.resume(tmp_path / "nothing")
