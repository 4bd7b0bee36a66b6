"""A trained run's policy loads back for demo recording and evaluation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.config.loader import load_config
from rlstab_jax.train.loop import run
from rlstab_jax.train.policy_io import load_policy


def test_load_policy_from_run_dir(tmp_path):
    cfg = load_config("reinforce/probe", [
        "train.total_steps=2048", "train.eval_every=1024", "checkpoint.every=1024",
        "log.progress=false", "log.plot=false", f"run.dir={tmp_path}"])
    res = run(cfg)
    policy = load_policy(tmp_path)
    obs = jnp.array([[1.0], [-1.0]])
    a = np.asarray(policy(obs, jax.random.PRNGKey(0)))
    assert a.shape == (2,)
    assert float(np.mean(res.final_eval["eval/return"])) > 0.9
    np.testing.assert_array_equal(a, [1, 0])  # greedy action matches obs sign


def test_load_policy_errors(tmp_path):
    with pytest.raises(ConfigError, match="not a run directory"):
        load_policy(tmp_path)
