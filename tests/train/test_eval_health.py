"""Evaluation rows carry the stability score and collapse state; best checkpoint = det. eval.

Report 000 Step 10 logs the stability score every epoch, before a sweep prunes; report 003
§11D keeps the best checkpoint. The loop test scripts the evaluation so the deterministic and
stochastic returns disagree about which evaluation was best.
"""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.config.loader import load_config
from rlstab_jax.stability import telemetry
from rlstab_jax.train.checkpoint import CheckpointStore
from rlstab_jax.train.eval_health import EvalHealth
from rlstab_jax.train.loop import run
from rlstab_jax.train.session import build_session

DET = [[10.0, 2.0, 2.0, 2.0], [1.0, 2.0, 3.0, 4.0]]   # seed 0 collapses, seed 1 improves
STOCH = [[0.0, 20.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]


def test_eval_health_fields_match_the_telemetry_primitives(tmp_path):
    h = EvalHealth(n_seeds=2, window=3)
    out = [h.update(np.array([d[t] for d in DET])) for t in range(4)]
    x = jnp.asarray(DET)
    np.testing.assert_allclose(out[-1]["stability/score"],
                               telemetry.stability_score(x[:, -3:]), rtol=1e-6)
    np.testing.assert_array_equal([o["stability/collapsed"][0] for o in out], [0, 0, 0, 1])
    assert all(o["stability/collapsed"][1] == 0 for o in out)
    np.testing.assert_array_equal(out[-1]["stability/best_return"], [10.0, 4.0])
    # A resumed run rebuilds the same history from metrics.jsonl (other rows ignored).
    rows = [{"step": 100 * (t + 1), "seed": 5 + i, "eval/return": DET[i][t]}
            for t in range(3) for i in range(2)] + [{"step": 350, "seed": 5, "x": 1.0}]
    (tmp_path / "metrics.jsonl").write_text("".join(f"{r}\n".replace("'", '"') for r in rows))
    h2 = EvalHealth.from_metrics(tmp_path / "metrics.jsonl", n_seeds=2, window=3)
    assert len(h2.history) == 3
    last = h2.update(np.array([2.0, 4.0]))
    np.testing.assert_allclose(last["stability/score"], out[-1]["stability/score"])
    np.testing.assert_array_equal(last["stability/collapsed"], out[-1]["stability/collapsed"])


def test_loop_logs_health_and_keeps_best_by_deterministic_return(tmp_path):
    cfg = load_config("sac/pendulum", [
        "agent.actor_hidden=[8]", "agent.critic_hidden=[8]", "agent.batch_size=8",
        "replay.capacity=512", "train.seeds=2", "train.total_steps=400",
        "train.learning_starts=50", "train.chunk_steps=100", "train.eval_every=100",
        "train.eval_episodes=1", "checkpoint.every=1000", "log.progress=false",
        "log.plot=false", f"run.dir={tmp_path / 'run'}"])
    sess = build_session(cfg)
    calls = []

    def scripted_eval(state, keys, hparams):
        t = len(calls)
        calls.append(t)
        return {"eval/return": np.array([DET[0][t], DET[1][t]], np.float32),
                "eval/return_stochastic": np.array([STOCH[0][t], STOCH[1][t]], np.float32),
                "eval/length": np.ones(2, np.float32)}

    res = run(cfg, session=dataclasses.replace(sess, evaluate=scripted_eval))
    assert len(calls) == 4
    ev = [r for r in res.rows if "eval/return" in r]
    assert len(ev) == 8 and all("stability/score" in r for r in ev)
    seed0 = [r for r in ev if r["seed"] == cfg.train.seed]
    assert [r["stability/collapsed"] for r in seed0] == [0.0, 0.0, 0.0, 1.0]
    # Best = mean deterministic return (5.5 at the first eval), not the stochastic peak.
    with CheckpointStore(tmp_path / "run" / "checkpoints", keep=1,
                         fingerprint=sess.fingerprint()) as store:
        assert store.best_eval_return == pytest.approx(5.5)
