"""A tiny real SAC run (2 seeds, 400 env steps, 4 evals) shared by the report and API tests."""

import pytest

TINY = {
    "train.total_steps": 400, "train.learning_starts": 100, "train.chunk_steps": 100,
    "train.eval_every": 100, "train.eval_episodes": 1, "train.seeds": 2,
    "agent.actor_hidden": [16, 16], "agent.critic_hidden": [16, 16], "agent.batch_size": 16,
    "replay.capacity": 1000, "checkpoint.every": 200, "log.progress": False,
}


@pytest.fixture(scope="session")
def tiny_sac_run(tmp_path_factory):
    from rlstab_jax import api

    run_dir = tmp_path_factory.mktemp("tiny_sac") / "run"
    cfg = api.make_config("sac/pendulum", {**TINY, "run.dir": str(run_dir)})
    session = api.make_session(cfg)
    result = api.train(cfg, session=session)
    return run_dir, session, result
