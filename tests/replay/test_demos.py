"""Demo file schema: round trip and one-line errors for malformed files (report 003 §9)."""

import importlib.util
import pathlib

import numpy as np
import pytest

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.envs.spec import EnvSpec
from rlstab_jax.replay.demos import load_demos, save_demos

SPEC = EnvSpec("Racer-v0", (4,), "float32", "continuous", 3, (-1.0,) * 3, (1.0,) * 3,
               ("steer", "gas", "brake"))
N = 6


def _arrays(**over):
    rng = np.random.default_rng(0)
    data = dict(obs=rng.normal(size=(N, 4)).astype(np.float32),
                action=rng.uniform(-1, 1, size=(N, 3)).astype(np.float32),
                reward=rng.normal(size=N).astype(np.float32),
                next_obs=rng.normal(size=(N, 4)).astype(np.float32),
                terminated=np.zeros(N, bool), truncated=np.zeros(N, bool),
                episode_id=np.zeros(N, np.int32), env_id=np.asarray("Racer-v0"),
                action_names=np.asarray(["steer", "gas", "brake"]))
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def test_round_trip(tmp_path):
    path = tmp_path / "demos.npz"
    save_demos(path, **_arrays())
    out = load_demos(path, SPEC)
    ref = _arrays()
    for k in ("obs", "action", "reward", "next_obs", "terminated", "truncated", "episode_id"):
        np.testing.assert_array_equal(out[k], ref[k])
    assert out["is_demo"].dtype == bool and out["is_demo"].all()


def test_pixel_demos_may_be_uint8(tmp_path):
    spec = EnvSpec("pix", (4, 4, 3), "uint8", "continuous", 1, (-1.0,), (1.0,))
    px = np.zeros((N, 4, 4, 3), np.uint8)
    path = tmp_path / "px.npz"
    save_demos(path, **_arrays(obs=px, next_obs=px, action=np.zeros((N, 1), np.float32),
                               env_id=None, action_names=None))
    assert load_demos(path, spec)["obs"].dtype == np.uint8


BAD = [
    (dict(action=None), r"missing key 'action'"),
    (dict(actions=np.zeros((N, 3), np.float32), action=None), r"missing key 'action' \(did you"),
    (dict(extra=np.zeros(N)), r"unknown key 'extra'"),
    (dict(obs=np.zeros((N, 5), np.float32)), r"obs has shape \(6, 5\), expected \(6, 4\)"),
    (dict(action=np.zeros((N, 2), np.float32)), r"action has shape \(6, 2\), expected \(6, 3\)"),
    (dict(obs=np.zeros((N, 4), np.float64)), r"obs has dtype float64, expected float32"),
    (dict(terminated=np.zeros(N, np.int64)), r"terminated has dtype int64, expected bool"),
    (dict(reward=np.full(N, np.nan, np.float32)), r"reward has non-finite values .* row 0"),
    (dict(next_obs=np.full((N, 4), np.inf, np.float32)), r"next_obs has non-finite"),
    (dict(action=np.full((N, 3), 2.0, np.float32)), r"action values outside \[-1, 1\]"),
    (dict(reward=np.zeros(N - 1, np.float32)), r"mismatched lengths"),
    (dict(episode_id=np.zeros(N, np.float32)), r"episode_id has dtype float32"),
    (dict(env_id=np.asarray("Pendulum-v1")), r"env_id 'Pendulum-v1' does not match"),
    (dict(action_names=np.asarray(["a", "b", "c"])), r"action_names .* do not match"),
    (dict(reward=np.zeros(0, np.float32), obs=np.zeros((0, 4), np.float32)), r"N >= 1"),
]


@pytest.mark.parametrize("over, pattern", BAD)
def test_validation_errors(tmp_path, over, pattern):
    path = tmp_path / "bad.npz"
    np.savez(path, **_arrays(**over))  # raw numpy: save_demos would fix dtypes
    with pytest.raises(ConfigError, match=pattern) as e:
        load_demos(path, SPEC)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_pickles_and_non_npz_refused(tmp_path):
    p = tmp_path / "obj.npz"
    np.savez(p, **_arrays(obs=np.array([{"a": 1}] * N, dtype=object)))
    with pytest.raises(ConfigError, match="pickled object arrays, refused"):
        load_demos(p, SPEC)
    p = tmp_path / "one.npy"
    np.save(p, np.zeros(3))
    with pytest.raises(ConfigError, match="single .npy array"):
        load_demos(p, SPEC)
    p = tmp_path / "junk.npz"
    p.write_bytes(b"not a zip at all")
    with pytest.raises(ConfigError, match="not an .npz archive"):
        load_demos(p, SPEC)
    with pytest.raises(ConfigError, match="not found"):
        load_demos(tmp_path / "missing.npz", SPEC)


def test_discrete_spec_refused(tmp_path):
    path = tmp_path / "d.npz"
    save_demos(path, **_arrays(env_id=None, action_names=None))
    with pytest.raises(ConfigError, match="discrete actions"):
        load_demos(path, EnvSpec("c", (4,), "float32", "discrete", 3))


def _record_script():
    path = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "record_demos.py"
    spec = importlib.util.spec_from_file_location("record_demos", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_record_script_writes_a_valid_file(tmp_path):
    from rlstab_jax.envs.registry import make_jax

    mod = _record_script()
    out = tmp_path / "pend.npz"
    assert mod.main(["--env", "Pendulum-v1", "--steps", "30", "--out", str(out)]) == 0
    env = make_jax("Pendulum-v1", {})
    data = load_demos(out, env.spec)
    assert data["obs"].shape == (30, 3) and np.all(np.abs(data["action"]) <= 1.0)
    # A scripted policy (any callable (obs, key) -> action), clipped to [-1, 1].
    data = mod.record(env, lambda obs, key: np.full(1, 3.0 * np.sign(obs[2])), 12,
                      __import__("jax").random.key(0))
    save_demos(out, **data)
    assert set(np.unique(load_demos(out, env.spec)["action"])) <= {-1.0, 0.0, 1.0}
    assert callable(mod.import_policy("numpy:tanh"))
    with pytest.raises(ConfigError, match="cannot import"):
        mod.import_policy("no_such_module_xyz:f")
    assert mod.main(["--env", "Pendulum-v1", "--out", str(out), "--policy", "nope"]) == 2
