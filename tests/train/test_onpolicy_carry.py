"""On-policy drivers carry a recurrent agent's state: pure-JAX and gymnasium, seeds vmapped."""

import jax
import numpy as np
import pytest

from rlstab_jax.config.loader import load_config
from rlstab_jax.train.loop import run
from rlstab_jax.train.session import build_session

TINY = ["agent.network=lstm", "agent.feature_dim=8", "agent.lstm_hidden=8",
        "agent.head_hidden=8", "agent.rollout_len=16", "agent.bptt_len=8", "agent.epochs=1",
        "agent.minibatches=2", "env.n_envs=2", "train.seeds=2", "train.chunk_steps=64",
        "train.total_steps=128", "train.eval_every=128", "train.eval_episodes=2",
        "log.progress=false", "log.plot=false", "checkpoint.enabled=false"]


@pytest.mark.slow  # ~1 min compile on 2 cores; the default run covers the runner via REINFORCE
def test_gymnasium_runner_carries_lstm_state_and_flags_episode_starts(tmp_path):
    cfg = load_config("ppo/cartpole", TINY + ["env.backend=gymnasium", f"run.dir={tmp_path}"])
    sess = build_session(cfg)
    abstract = sess.abstract_state()
    assert [x.shape for x in jax.tree.leaves(abstract.carry)] == [(2, 2, 8), (2, 2, 8)]
    assert abstract.is_first.shape == (2, 2)  # checkpointed with the rest of the state
    res = run(cfg, session=sess)
    c = np.asarray(res.state.carry[1])
    assert np.all(np.isfinite(c)) and np.abs(c).sum() > 0  # the LSTM state moved
    last = [r for r in res.rows if r["step"] == 128]
    assert len(last) == 2 and all(r.get("eval/return") is not None for r in last)
    assert all(np.isfinite(r["loss"]) for r in last)


def test_pure_jax_driver_carries_lstm_state(tmp_path):
    cfg = load_config("ppo/cartpole", TINY + [f"run.dir={tmp_path}"])
    res = run(cfg)
    assert [x.shape for x in jax.tree.leaves(res.state.carry)] == [(2, 2, 8), (2, 2, 8)]
    assert res.state.is_first.dtype == bool
    assert all(np.isfinite(r["ratio/joint/max"]) for r in res.rows)
