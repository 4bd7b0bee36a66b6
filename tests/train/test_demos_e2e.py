"""Field report 003 §9/§11C end to end: scripted Racer demos mixed into SAC batches."""

import jax
import numpy as np

from rlstab_jax.config.loader import load_config
from rlstab_jax.envs.racer import make_racer
from rlstab_jax.envs.racer.controller import record_demos
from rlstab_jax.train.loop import run


def test_demo_replay_with_decaying_weight(tmp_path):
    _, params = make_racer(constant_penalty=0.1, max_steps_in_episode=500)
    info = record_demos(tmp_path / "demos.npz", jax.random.PRNGKey(0), n_episodes=2,
                        params=params)
    assert info["n_transitions"] > 100
    cfg = load_config("sac/racer", [
        "agent.actor_hidden=[32,32]", "agent.critic_hidden=[32,32]", "agent.batch_size=64",
        f"replay.demos={tmp_path / 'demos.npz'}", "replay.demo_weight=3.0",
        "replay.demo_decay_samples=1500", "replay.demo_repeat=2", "train.total_steps=1200",
        "train.learning_starts=200", "train.chunk_steps=400", "train.eval_every=1200",
        "train.eval_episodes=1", "log.progress=false", "log.plot=false",
        "checkpoint.enabled=false", f"run.dir={tmp_path / 'run'}"])
    res = run(cfg)
    w = [r["demo/sampling_weight"] for r in res.rows]
    frac = [r["demo/fraction_in_batch"] for r in res.rows]
    # the weight decays linearly from 3 towards 1 (mean over each chunk's updates)
    assert w[0] > w[1] > w[2] >= 1.0 and w[0] < 3.0
    assert all(f > 0.0 for f in frac)
    assert frac[0] > frac[-1]
    assert all(np.isfinite(r["critic/loss"]) for r in res.rows)
    assert {"alpha/steer", "alpha/gas", "alpha/brake"} <= set(res.rows[0])
