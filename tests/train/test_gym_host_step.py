"""gymnasium envs stepped from inside the jitted chunk (``env.host_step=scan``).

The scan path must be the host loop (``env.host_step=loop``) with the Python loop removed: same
transitions, same updates, same random streams, so the two give the same state and metrics.
It compiles once for warm-up and learning chunks alike (the phase is a ``lax.cond``).
"""

import gymnasium
import jax
import numpy as np
import pytest

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.config.loader import load_config
from rlstab_jax.train.host_callback import HostEnvError, HostEnvStep
from rlstab_jax.train.session import build_session

SMALL = ["agent.actor_hidden=[16]", "agent.critic_hidden=[16]", "agent.batch_size=8",
         "env.backend=gymnasium", "train.learning_starts=8", "train.chunk_steps=8",
         "log.progress=false", "log.plot=false", "checkpoint.enabled=false"]


def _run(tmp_path, mode: str, *extra: str, chunks: int = 3):
    cfg = load_config("sac/pendulum", [*SMALL, f"env.host_step={mode}", f"run.dir={tmp_path}",
                                       *extra])
    sess = build_session(cfg)
    st = sess.init_state()
    metrics = []
    for _ in range(chunks):
        st, m = sess.chunk(st, sess.hparams)
        metrics.append(jax.device_get(m))
    out = jax.device_get(st), metrics, sess
    sess.runner.venv.close()
    return out


@pytest.mark.parametrize("extra", [(), ("train.seeds=2", "env.n_envs=2")])
def test_scan_equals_host_loop(extra, tmp_path):
    st_loop, m_loop, _ = _run(tmp_path / "loop", "loop", *extra)
    st_scan, m_scan, _ = _run(tmp_path / "scan", "scan", *extra)
    leaves_loop = jax.tree_util.tree_leaves_with_path(st_loop)
    leaves_scan = jax.tree.leaves(st_scan)
    assert len(leaves_loop) == len(leaves_scan)
    for (path, a), b in zip(leaves_loop, leaves_scan):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                                   rtol=1e-5, atol=1e-6, err_msg=jax.tree_util.keystr(path))
    for ml, ms in zip(m_loop, m_scan):
        assert set(ml) == set(ms)
        for k in ml:
            np.testing.assert_allclose(ml[k], ms[k], rtol=1e-5, atol=1e-6, err_msg=k)
    # The run really stepped and learned: 3 chunks of 8 env steps per seed; the first chunk's
    # last vector step reaches learning_starts=8 and updates, the later chunks always do.
    assert np.all(np.asarray(st_scan.env_steps) == 24)
    n_envs = 2 if extra else 1
    assert m_scan[0]["updates/fraction"][0] == pytest.approx(n_envs / 8)
    assert m_scan[-1]["updates/fraction"][0] == 1.0


def test_scan_compiles_once_across_phases(tmp_path):
    _, metrics, sess = _run(tmp_path, "scan", chunks=3)
    assert sess.runner._scan._cache_size() == 1
    assert sess.runner._step._cache_size() == 0  # the per-step host-loop call is not used
    assert np.isfinite(metrics[-1]["critic/loss"]).all()


def test_host_env_step_checks_the_env_count():
    from rlstab_jax.envs.gym_env import GymVecEnv

    venv = GymVecEnv("Pendulum-v1", 2)
    with pytest.raises(ValueError, match="vector env has 2 envs, the scan steps 3"):
        HostEnvStep(venv, (3,))
    step = HostEnvStep(venv, (2,))
    venv.reset(seed=0)
    obs, reward, term, trunc, final = jax.jit(step)(np.zeros((2, 1), np.float32))
    assert obs.shape == final.shape == (2, 3) and obs.dtype == np.float32
    assert reward.shape == term.shape == trunc.shape == (2,) and term.dtype == np.bool_
    venv.close()


def test_host_step_value_is_validated():
    with pytest.raises(ConfigError, match="env.host_step='jit' must be one of 'scan', 'loop'"):
        load_config("sac/pendulum", ["env.host_step=jit"])


class _Breaks(gymnasium.Env):
    """Pendulum-shaped env whose 5th step raises (a bug in a user's simulator)."""

    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gymnasium.spaces.Box(-2.0, 2.0, (1,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, np.float32), {}

    def step(self, action):
        self.t += 1
        if self.t == 5:
            raise FloatingPointError("simulator diverged at t=5")
        return np.zeros(3, np.float32), 0.0, False, False, {}


def test_simulator_error_surfaces_as_itself(tmp_path):
    """An exception inside the env reaches the user as that exception, not as an XLA error."""
    gymnasium.register("rlstab-test/Breaks-v0", entry_point=_Breaks)
    cfg = load_config("sac/pendulum", [*SMALL, "env.id=rlstab-test/Breaks-v0",
                                       f"run.dir={tmp_path}"])
    sess = build_session(cfg)
    with pytest.raises(HostEnvError, match="raised in step.*FloatingPointError.*t=5") as info:
        sess.chunk(sess.init_state(), sess.hparams)
    assert isinstance(info.value.__cause__, FloatingPointError)
    sess.runner.venv.close()
