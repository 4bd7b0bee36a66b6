"""Scripted demos: schema of design.md "Demo files" and the round trip into the SAC loader."""

import jax
import numpy as np
import pytest

from rlstab_jax.envs.racer import controller as C
from rlstab_jax.envs.racer import make_racer, racer_spec
from rlstab_jax.replay.demos import load_demos


N_EPISODES = 64  # same batch shape as test_racer_mechanism: one compiled rollout serves both


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    _, params = make_racer()
    path = tmp_path_factory.mktemp("demos") / "racer.npz"
    summary = C.record_demos(path, jax.random.key(0), n_episodes=N_EPISODES, params=params)
    return path, params, summary


def test_raw_file_follows_schema(demo):
    path, params, summary = demo
    with np.load(path, allow_pickle=False) as f:
        d = {k: f[k] for k in f.files}
    n = summary["n_transitions"]
    assert d["obs"].shape == d["next_obs"].shape == (n, 8 + params.n_lookahead)
    assert d["obs"].dtype == d["next_obs"].dtype == d["action"].dtype == np.float32
    assert d["action"].shape == (n, 3) and np.all(np.abs(d["action"]) <= 1.0)
    assert d["terminated"].dtype == d["truncated"].dtype == np.bool_
    assert str(d["env_id"]) == "Racer-v0"
    assert tuple(d["action_names"]) == ("steer", "gas", "brake")
    ep = d["episode_id"]
    assert list(np.unique(ep)) == list(range(N_EPISODES)) and np.all(np.diff(ep) >= 0)
    ends = np.flatnonzero(np.diff(ep)) + 1
    last = np.r_[ends - 1, n - 1]
    assert np.all(d["terminated"][last] | d["truncated"][last])  # each episode ends ...
    inner = np.setdiff1d(np.arange(n), last)
    assert not np.any(d["terminated"][inner] | d["truncated"][inner])  # ... only at its end
    np.testing.assert_array_equal(d["next_obs"][inner], d["obs"][inner + 1])
    assert summary["laps"].all()  # clean laps: terminated by lap completion
    np.testing.assert_allclose(summary["returns"], 100.0, atol=1.0)


def test_round_trip_into_demo_loader(demo):
    path, params, summary = demo
    out = load_demos(path, racer_spec(params))
    assert out["obs"].shape[0] == summary["n_transitions"]
    assert out["is_demo"].all()
    np.testing.assert_allclose(out["reward"].sum(), summary["returns"].sum(), rtol=1e-5)
