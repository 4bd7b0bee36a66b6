"""The thin loop with the minimal on-policy agent: probes, seeds, sharding, non-finite guard."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.config.loader import load_config
from rlstab_jax.train.loop import NonFiniteError, run
from rlstab_jax.train.session import build_session

FAST = [
    "train.chunk_steps=512",
    "train.eval_every=1024",
    "log.progress=false",
    "log.plot=false",
    "checkpoint.enabled=false",
]


def _cfg(env_id, tmp_path, *extra):
    base = {
        "agent": {"name": "reinforce", "rollout_len": 8, "hidden": [32, 32]},
        "env": {"id": env_id, "n_envs": 8},
    }
    return load_config(base=copy.deepcopy(base), overrides=FAST + [f"run.dir={tmp_path}", *extra])


@pytest.mark.parametrize("env_id", ["probe/obs-action-discrete", "probe/action-discrete"])
def test_reinforce_learns_discrete_probe(env_id, tmp_path):
    res = run(_cfg(env_id, tmp_path, "train.total_steps=4096"))
    assert np.all(res.final_eval["eval/return"] > 0.99)  # greedy action correct on every episode


def test_reinforce_value_on_obs_probe(tmp_path):
    cfg = _cfg("probe/obs-discrete", tmp_path, "train.total_steps=4096")
    res = run(cfg)
    sess = build_session(cfg)
    agent_state = jax.tree.map(lambda x: x[0], res.state.agent)
    _, info = sess.agent.act(
        agent_state,
        jnp.array([[1.0], [-1.0]]),
        jax.random.PRNGKey(0),
        jax.tree.map(lambda x: x[0], sess.hparams),
    )
    np.testing.assert_allclose(np.asarray(info["value"]), [1.0, -1.0], atol=0.1)


def test_seed_i_of_vmapped_run_equals_single_run(tmp_path):
    multi = run(
        _cfg(
            "probe/obs-action-continuous",
            tmp_path / "m",
            "train.total_steps=1024",
            "train.seeds=2",
            "train.seed=5",
        )
    )
    single = run(
        _cfg(
            "probe/obs-action-continuous",
            tmp_path / "s",
            "train.total_steps=1024",
            "train.seeds=1",
            "train.seed=6",
        )
    )
    m = [r for r in multi.rows if r["seed"] == 6]
    assert len(m) == len(single.rows) == 2
    for a, b in zip(m, single.rows):
        for k in ("actor/loss", "critic/loss", "train/episode_return", "eval/return"):
            if a.get(k) is not None:
                np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-5, err_msg=k)
    leaves_m = jax.tree.leaves(jax.tree.map(lambda x: x[1], multi.state.agent.params))
    leaves_s = jax.tree.leaves(jax.tree.map(lambda x: x[0], single.state.agent.params))
    for a, b in zip(leaves_m, leaves_s):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_seed_axis_is_sharded_over_two_devices(tmp_path):
    assert jax.device_count() == 2, "conftest forces two host devices"
    res = run(_cfg("probe/constant-discrete", tmp_path, "train.total_steps=512", "train.seeds=2"))
    leaf = jax.tree.leaves(res.state.agent.params)[0]
    assert len(leaf.sharding.device_set) == 2
    assert leaf.sharding.shard_shape(leaf.shape)[0] == 1


def test_nonfinite_updates_are_skipped_then_stop(tmp_path):
    cfg = _cfg(
        "probe/constant-discrete",
        tmp_path,
        "train.total_steps=4096",
        "train.max_nonfinite=12",
        "checkpoint.enabled=true",
        "checkpoint.every=512",
    )
    sess = build_session(cfg)
    hp = dict(sess.hparams)
    hp["value_coef"] = jnp.full_like(hp["value_coef"], jnp.nan)  # every loss is NaN
    sess = build_session(cfg, hparams=hp)
    before = jax.tree.leaves(sess.init_state().agent.params)
    with pytest.raises(NonFiniteError, match="consecutive non-finite updates"):
        run(cfg, session=sess)
    rows = [r for r in map(__import__("json").loads, open(tmp_path / "metrics.jsonl"))]
    assert rows[0]["nonfinite/skipped"] == 1.0
    # the guarded update kept parameters finite, so the checkpoint written is finite and
    # identical to the initial parameters
    from rlstab_jax.train.checkpoint import CheckpointStore

    store = CheckpointStore(tmp_path / "checkpoints", keep=3, fingerprint=sess.fingerprint())
    state, _ = store.restore(sess.abstract_state())
    store.close()
    for a, b in zip(jax.tree.leaves(state.agent.params), before):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_reinforce_on_gymnasium_cartpole_runs(tmp_path):
    cfg = load_config(
        "reinforce/probe",
        FAST
        + [
            "env.id=CartPole-v1",
            "env.backend=gymnasium",
            "env.n_envs=4",
            "train.total_steps=1024",
            "train.seeds=2",
            "train.eval_episodes=2",
            f"run.dir={tmp_path}",
        ],
    )
    res = run(cfg)
    last = [r for r in res.rows if r["step"] == 1024]
    assert {r["seed"] for r in last} == {0, 1}
    assert all(r["train/episodes"] > 0 and r.get("eval/return") is not None for r in last)
