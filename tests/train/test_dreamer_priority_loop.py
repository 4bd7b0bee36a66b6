"""Prioritised replay through the shared off-policy driver (Dreamer, replay.priority=true):
the agent's priorities reach the sum tree, and a resumed run continues bit for bit."""

import jax
import numpy as np
from flashbax.buffers import sum_tree

from rlstab_jax.config.loader import load_config
from rlstab_jax.train.session import build_session
from rlstab_jax.train.testing import assert_cli_rejects, assert_resume_continues_bit_exact

QUIET = ["log.progress=false", "log.plot=false", "checkpoint.enabled=false"]
TINY = ["agent.deter=16", "agent.hidden=16", "agent.layers=1", "agent.stoch_groups=4",
        "agent.stoch_classes=4", "agent.num_bins=15", "agent.batch_size=4", "agent.seq_len=8",
        "agent.horizon=5", "agent.train_ratio=16",
        "agent.overshoot_depth=3"]  # below seq_len (the preset: 15 of 32)


def _leaf_priorities(replay_state, seed, items):
    tree = jax.tree.map(lambda x: np.asarray(x)[seed], replay_state.sum_tree_state)
    leaves = np.asarray(sum_tree.get_batch(tree, np.arange(items)))
    return leaves, float(np.asarray(tree.max_recorded_priority))


def test_priorities_reach_the_sum_tree_and_resume_is_bit_exact(tmp_path):
    cfg = load_config("dreamer/cartpole", QUIET + TINY + [
        f"run.dir={tmp_path}", "train.seeds=2", "train.chunk_steps=128",
        "train.learning_starts=64", "replay.capacity=512", "replay.priority=true",
        "replay.priority_exponent=1.0"])
    sess = build_session(cfg)
    assert "replay.priority" in sess.fingerprint()
    s0 = sess.init_state()
    s1, m1 = sess.chunk(s0, sess.hparams)
    assert np.all(np.asarray(m1["replay/priority_mean"]) > 0)
    for seed in range(2):
        leaves, top = _leaf_priorities(s1.replay, seed, 512)
        valid = leaves[leaves > 0]
        # 128 rows -> 121 windows of 8; the sampled ones carry the world-model loss (alpha 1),
        # the others the largest weight recorded when they were stored: many distinct values,
        # none above the largest recorded
        assert valid.size == 128 - 8 + 1
        assert len(np.unique(valid)) > 10 and valid.max() <= top
    # off (uniform sampling), same seeds and config otherwise: other batches, another model
    off = build_session(load_config("dreamer/cartpole", QUIET + TINY + [
        f"run.dir={tmp_path}", "train.seeds=2", "train.chunk_steps=128",
        "train.learning_starts=64", "replay.capacity=512"]))
    s1_off, m1_off = off.chunk(off.init_state(), off.hparams)
    assert "replay/priority_mean" not in m1_off and not hasattr(s1_off.replay, "sum_tree_state")
    wm_on, wm_off = (np.concatenate([np.ravel(x) for x in jax.tree.leaves(s.agent.wm_params)])
                     for s in (s1, s1_off))
    assert np.abs(wm_on - wm_off).max() > 0
    assert_resume_continues_bit_exact(sess, s1, tmp_path / "ck")


def test_cli_rejects_priorities_it_cannot_serve(tmp_path):
    assert_cli_rejects(["--config", "sac/pendulum", "replay.priority=true"], tmp_path / "a",
                       "replay.priority=true", "reports replay priorities")
    assert_cli_rejects(["--config", "dreamer/cartpole", "replay.priority_exponent=-1"],
                       tmp_path / "b", "replay.priority_exponent", "must be > 0")
    assert_cli_rejects(["--config", "dreamer/cartpole", "replay.priority=true",
                        "replay.layout=compact"], tmp_path / "c", "flat replay layout")
