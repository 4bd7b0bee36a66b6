"""Demo mixing off variants (issue 12): fixed weight, injection repeat, replay-size count."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.agents.sac.testing import VEC_SPEC, make_batch
from rlstab_jax.config.loader import load_config
from rlstab_jax.train.demo_mix import DemoMixer

N_DEMO, U, B = 10, 4, 512


def _mixer(repeat=1, decay=1000, capacity=100_000, weight=3.0):
    rng = np.random.default_rng(0)
    data = {"obs": rng.normal(size=(N_DEMO, 3)).astype(np.float32),
            "action": rng.uniform(-1, 1, (N_DEMO, 2)).astype(np.float32),
            "reward": np.full(N_DEMO, 7.0, np.float32),
            "next_obs": rng.normal(size=(N_DEMO, 3)).astype(np.float32),
            "terminated": np.zeros(N_DEMO, bool), "truncated": np.zeros(N_DEMO, bool)}
    return DemoMixer.from_arrays(data, weight, decay, repeat, capacity)


def _mix(mixer, env_steps):
    batch = make_batch(VEC_SPEC, U, B)
    mixed, m = jax.jit(mixer.mix)(jax.random.key(0), batch, jnp.int32(env_steps),
                                  jnp.float32(0.99))
    return mixed, {k: float(v) for k, v in m.items()}


def test_demo_repeat_scales_the_demo_share():
    # Report 003 §9: DEMO_INJECTION_REPEAT appends the demo buffer `repeat` times, so demos
    # count `repeat` times in the expected fraction w * n_demo * r / (w * n_demo * r + n_agent).
    steps = 60
    for repeat in (1, 4):
        _, m = _mix(_mixer(repeat=repeat, decay=0), steps)
        expected = 3.0 * N_DEMO * repeat / (3.0 * N_DEMO * repeat + steps)
        assert m["demo/expected_fraction"] == pytest.approx(expected, rel=1e-6)
        assert m["demo/fraction_in_batch"] == pytest.approx(expected, abs=0.03)
    assert _mix(_mixer(repeat=4, decay=0), steps)[1]["demo/fraction_in_batch"] > \
        _mix(_mixer(repeat=1, decay=0), steps)[1]["demo/fraction_in_batch"] + 0.2


def test_agent_count_is_capped_at_replay_capacity():
    # After the ring buffer is full, replay holds `capacity` agent rows however many steps
    # were taken: the demo share must stop shrinking.
    full = _mix(_mixer(decay=0, capacity=200), 200)[1]["demo/expected_fraction"]
    later = _mix(_mixer(decay=0, capacity=200), 5000)[1]["demo/expected_fraction"]
    assert later == pytest.approx(full) == pytest.approx(30.0 / (30.0 + 200.0))


def test_fixed_weight_baseline_is_accepted_and_does_not_decay():
    cfg = load_config("sac/racer", ["replay.demo_decay_samples=0", "replay.demo_weight=2.5"])
    assert cfg.replay.demo_decay_samples == 0
    mixer = _mixer(decay=cfg.replay.demo_decay_samples, weight=cfg.replay.demo_weight)
    w = [_mix(mixer, n)[1]["demo/sampling_weight"] for n in (0, 10_000, 10**6)]
    assert w == pytest.approx([2.5, 2.5, 2.5])
    decaying = _mixer(decay=1000, weight=2.5)
    assert _mix(decaying, 500)[1]["demo/sampling_weight"] == pytest.approx(1.75)


def test_mixed_rows_are_demo_rows_and_tagged():
    mixed, m = _mix(_mixer(repeat=2, decay=0), 10)
    is_demo = np.asarray(mixed.is_demo).astype(bool)
    assert is_demo.mean() == pytest.approx(m["demo/fraction_in_batch"])
    np.testing.assert_array_equal(np.asarray(mixed.reward)[is_demo], 7.0)


def test_demo_repeat_reaches_the_agent_update_through_the_session(tmp_path):
    # Issue 12: replay.demo_repeat from the config, through build_session -> the off-policy
    # driver's update (replay sample -> demo mix -> agent.update), as the training loop runs it.
    # The demo share is read from the AGENT's own metric (SAC telemetry: mean of the is_demo
    # rows it trained on). 8 demos, 8 agent rows in replay, weight 1 (fixed): repeat 1 gives
    # 8 / 16 = 0.5 of the batch, repeat 4 gives 32 / 40 = 0.8; ignoring repeat gives 0.5 both.
    from rlstab_jax.replay.demos import save_demos
    from rlstab_jax.train.session import build_session

    rng = np.random.default_rng(0)
    n = 8
    path = tmp_path / "demos.npz"
    save_demos(path, obs=rng.normal(size=(n, 3)), action=rng.uniform(-1, 1, (n, 1)),
               reward=np.ones(n), next_obs=rng.normal(size=(n, 3)),
               terminated=np.zeros(n, bool), truncated=np.zeros(n, bool))
    seen = {}
    for repeat in (1, 4):
        cfg = load_config("sac/pendulum", [
            "agent.actor_hidden=[8]", "agent.critic_hidden=[8]", "agent.batch_size=512",
            f"replay.demos={path}", "replay.demo_weight=1.0", "replay.demo_decay_samples=0",
            f"replay.demo_repeat={repeat}", "train.learning_starts=0", "log.progress=false",
            "log.plot=false", "checkpoint.enabled=false", f"run.dir={tmp_path / 'run'}"])
        sess = build_session(cfg)
        driver, hp = sess.driver, jax.tree.map(lambda x: x[0], sess.hparams)
        state = jax.jit(driver.init_one)(sess.keys[0], hp)
        collect = jax.jit(driver.collect)
        for _ in range(n):
            state, _ = collect(state, hp)
        assert int(state.env_steps) == n
        new, m = jax.jit(driver.update)(state, hp)
        seen[repeat] = float(m["demo/fraction_in_batch"])
        assert float(m["demo/expected_fraction"]) == pytest.approx(n * repeat / (n * repeat + n))
        assert np.isfinite(float(m["critic/loss"]))
        assert _leaves_differ(state.agent.critic_params, new.agent.critic_params)
    assert seen[1] == pytest.approx(0.5, abs=0.07)
    assert seen[4] == pytest.approx(0.8, abs=0.06)


def _leaves_differ(a, b):
    return any(bool(jnp.any(x != y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
