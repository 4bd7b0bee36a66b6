"""Checkpoint store: bit-exact round trips, keep-K, best-only-improves, non-finite refusal,
architecture fingerprints, shape mismatches and a SIGKILL during a write (TESTING.md 1, 2, 5)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.train.checkpoint import CheckpointMismatchError, CheckpointStore, check_compatible

FP = {"agent.hidden_sizes": [256, 256], "env.obs_shape": [3], "agent.activation": "relu"}
TMP_SUFFIX = ".orbax-checkpoint-tmp"


class Normalizer(NamedTuple):
    mean: jax.Array
    count: jax.Array  # int32 counter


@flax.struct.dataclass
class AgentState:
    params: Any
    opt_state: Any
    key: jax.Array  # typed key, shape []
    env_keys: jax.Array  # typed keys, shape [4]
    step: jax.Array  # int32
    done: jax.Array  # bool [4]
    norm: Normalizer
    odd: dict  # -0.0, subnormal, max float32; bfloat16
    name: str = flax.struct.field(pytree_node=False, default="sac")


TX = optax.inject_hyperparams(optax.adam)(learning_rate=3e-4)


class MLP(nn.Module):
    hidden: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(2)(nn.relu(nn.Dense(self.hidden)(x)))


def init(key: jax.Array, hidden: int = 8) -> AgentState:
    k_net, k_state = jax.random.split(key)
    params = MLP(hidden).init(k_net, jnp.zeros((1, 3)))
    return AgentState(
        params=params,
        opt_state=TX.init(params),
        key=k_state,
        env_keys=jax.random.split(k_state, 4),
        step=jnp.zeros((), jnp.int32),
        done=jnp.zeros((4,), bool),
        norm=Normalizer(mean=jnp.zeros((3,)), count=jnp.zeros((), jnp.int32)),
        odd={
            "f32": jnp.zeros((3,), jnp.float32),
            "bf16": jnp.zeros((4,), jnp.bfloat16),
            "weak": jnp.asarray(0.5),  # weakly typed float32
        },
    )


@jax.jit
def _fake_train_step(state: AgentState) -> AgentState:
    key, k = jax.random.split(state.key)
    grads = jax.tree.map(lambda p: jax.random.normal(k, p.shape), state.params)
    updates, opt_state = TX.update(grads, state.opt_state, state.params)
    return state.replace(
        params=optax.apply_updates(state.params, updates),
        opt_state=opt_state,
        key=key,
        env_keys=jax.vmap(lambda kk: jax.random.split(kk)[0])(state.env_keys),
        step=state.step + 1,
        done=state.done.at[state.step % 4].set(True),
        norm=Normalizer(state.norm.mean + 0.1, state.norm.count + 7),
        odd={
            "f32": jnp.array([-0.0, 1e-45, 3.4e38], jnp.float32),
            "bf16": jnp.arange(4, dtype=jnp.bfloat16) / 3,
            "weak": state.odd["weak"] - 1.75,  # stays weakly typed
        },
    )


def advance(state: AgentState, n: int = 1) -> AgentState:
    """A few fake training steps so every leaf is non-trivial (adam moments, counters, keys)."""
    for _ in range(n):
        state = _fake_train_step(state)
    return state


def assert_bit_exact(a: Any, b: Any) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert type(x) is type(y), (type(x), type(y))
        assert getattr(x, "weak_type", None) == getattr(y, "weak_type", None)  # no jit retrace
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            assert x.dtype == y.dtype and x.shape == y.shape
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


def tmp_dirs(d: Path) -> list[str]:
    return [p.name for p in d.iterdir() if TMP_SUFFIX in p.name] if d.is_dir() else []


@pytest.fixture
def ckdir(tmp_path: Path) -> Path:
    return tmp_path / "run" / "checkpoints"


@pytest.fixture(scope="module")
def trained() -> AgentState:
    return advance(init(jax.random.key(0)), 3)


def test_round_trip_bit_exact_abstract_and_concrete_target(ckdir, trained):
    with CheckpointStore(ckdir, keep=3, fingerprint=FP) as store:
        assert store.latest_step() is None
        assert store.save(3, trained, {"env_steps": 300, "wall_time": 1.5, "note": "x"})
    with CheckpointStore(ckdir, keep=3, fingerprint=FP) as store:  # fresh store: nothing cached
        abstract = jax.eval_shape(partial(init, hidden=8), jax.random.key(1))
        restored, meta = store.restore(abstract)
        assert_bit_exact(restored, trained)
        assert restored.name == "sac"
        assert restored.opt_state.hyperparams["learning_rate"].dtype == jnp.float32
        assert meta["step"] == 3 and meta["env_steps"] == 300 and meta["wall_time"] == 1.5
        assert meta["extra"] == {"note": "x"}
        assert meta["fingerprint"]["agent.hidden_sizes"] == [256, 256]
        restored2, _ = store.restore(init(jax.random.key(5)), step=3)  # concrete target
        assert_bit_exact(restored2, trained)
        # The restored key keeps working: same draws as the original.
        np.testing.assert_array_equal(
            jax.random.normal(restored.key, (3,)), jax.random.normal(trained.key, (3,))
        )


def test_numpy_and_python_scalar_leaves(ckdir):
    state = {
        "n": 7,
        "flag": True,
        "lr": 0.1,
        "buf": np.arange(5, dtype=np.int64),
        "s": np.float32(2.5),
        "legacy_key": jax.random.PRNGKey(3),  # raw uint32[2]: an ordinary array
    }
    with CheckpointStore(ckdir, keep=1, fingerprint=FP) as store:
        assert store.save(1, state, {})
        restored, _ = store.restore(state)
    assert_bit_exact(restored, state)
    assert type(restored["n"]) is int and type(restored["flag"]) is bool
    assert type(restored["lr"]) is float


def test_keep_last_k(ckdir, trained):
    with CheckpointStore(ckdir, keep=2, fingerprint=FP) as store:
        for s in range(1, 5):
            assert store.save(s, advance(trained, s), {})
        assert store.all_steps() == [3, 4] and store.latest_step() == 4
        restored, meta = store.restore(trained, step=3)
        assert_bit_exact(restored, advance(trained, 3))
        with pytest.raises(FileNotFoundError):
            store.restore(trained, step=1)
        with pytest.raises(ValueError, match="not after the latest checkpoint 4"):
            store.save(4, trained, {})


def test_best_only_improves_and_survives_restart(ckdir, trained):
    with CheckpointStore(ckdir, keep=2, fingerprint=FP) as store:
        assert store.save_best(10, trained, 1.0, {"env_steps": 1000})
        assert not store.save_best(20, advance(trained), 0.5)
        assert not store.save_best(30, advance(trained), float("nan"))
        assert not store.save_best(35, advance(trained), float("inf"))
        best_state = advance(trained, 2)
        assert store.save_best(40, best_state, 2.0)
        assert store.best_eval_return == 2.0
        assert store.latest_step() is None  # best/ is not a periodic step
        for s in (1, 2, 3):  # keep-last-2 deletions of periodic steps leave best/ alone
            assert store.save(s, trained, {})
        assert store.all_steps() == [2, 3]
    assert len([p for p in (ckdir / "best").iterdir() if p.name.isdigit()]) == 1
    with CheckpointStore(ckdir, keep=2, fingerprint=FP) as store:
        assert store.best_eval_return == 2.0
        assert not store.save_best(50, trained, 1.5)
        restored, meta = store.restore_best(trained)
        assert_bit_exact(restored, best_state)
        assert meta["step"] == 40 and meta["eval_return"] == 2.0
        assert store.save_best(60, trained, 2.5)
        assert store.restore_best(trained)[1]["step"] == 60


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_state_is_refused_previous_intact(ckdir, trained, bad):
    with CheckpointStore(ckdir, keep=3, fingerprint=FP) as store:
        assert store.save(1, trained, {})
        params = jax.tree.map(lambda p: p, trained.params)
        params["params"]["Dense_1"]["bias"] = params["params"]["Dense_1"]["bias"].at[1].set(bad)
        poisoned = trained.replace(params=params)
        assert not store.save(2, poisoned, {})
        assert store.last_refusal.endswith("non-finite values in params.params.Dense_1.bias")
        assert not store.save_best(2, poisoned, 5.0)
        assert store.best_eval_return is None
        assert store.latest_step() == 1 and store.all_steps() == [1]
        restored, _ = store.restore(trained)
        assert_bit_exact(restored, trained)
        assert store.save(3, trained, {})  # finite states are written again afterwards


def test_fingerprint_mismatch_names_keys(ckdir, trained):
    with CheckpointStore(ckdir, keep=2, fingerprint=FP) as store:
        assert store.save(1, trained, {})
        assert store.save_best(1, trained, 1.0)
    check_compatible(ckdir, dict(FP, **{"agent.hidden_sizes": (256, 256)}))  # tuple == list
    check_compatible(ckdir.parent / "nope", {"x": 1})  # nothing there: compatible
    new = dict(FP, **{"agent.hidden_sizes": [64, 64], "nn.layer_norm": True})
    with pytest.raises(CheckpointMismatchError) as info:
        check_compatible(ckdir, new)
    msg = str(info.value)
    assert isinstance(info.value, ConfigError) and "\n" not in msg
    assert "agent.hidden_sizes: [256, 256] -> [64, 64]" in msg
    assert "nn.layer_norm: <absent> -> true" in msg
    assert "env.obs_shape" not in msg and "agent.activation" not in msg
    assert "start a new run" in msg and str(ckdir) in msg
    with pytest.raises(CheckpointMismatchError, match=r"hidden_sizes: \[256, 256\] -> \[64, 64\]"):
        CheckpointStore(ckdir, keep=2, fingerprint=new)
    with CheckpointStore(ckdir, keep=2, fingerprint=FP) as store:
        check_compatible(store, FP)
        with pytest.raises(CheckpointMismatchError, match="nn.layer_norm"):
            check_compatible(store, new)


def test_shape_and_structure_mismatch_is_a_clear_error(ckdir, trained):
    with CheckpointStore(ckdir, keep=2, fingerprint=FP) as store:
        assert store.save(1, trained, {})
        wider = jax.eval_shape(partial(init, hidden=16), jax.random.key(0))
        pattern = r"params\.params\.Dense_1\.kernel: float32\[3,8\] -> float32\[3,16\]"
        with pytest.raises(CheckpointMismatchError, match=pattern) as info:
            store.restore(wider)
        assert "\n" not in str(info.value)
        extra = trained.replace(odd={**trained.odd, "new": jnp.zeros(2)})
        with pytest.raises(CheckpointMismatchError, match=r"target: only in target: odd\.new; "):
            store.restore(extra)
        fewer = trained.replace(odd={"f32": trained.odd["f32"]})
        pattern = r"target: only in checkpoint: odd\.bf16, odd\.weak; restore with"
        with pytest.raises(CheckpointMismatchError, match=pattern):
            store.restore(fewer)
        with pytest.raises(CheckpointMismatchError, match=r"step: int32\[\] -> float32\[\]"):
            store.restore(trained.replace(step=jnp.zeros((), jnp.float32)))
        raw_key = trained.replace(key=jax.random.key_data(trained.key))
        with pytest.raises(CheckpointMismatchError, match=r"key: key<fry>\[\] -> uint32\[2\]"):
            store.restore(raw_key)
        with pytest.raises(CheckpointMismatchError, match="PRNG impl threefry2x32"):
            store.restore(trained.replace(key=jax.random.key(0, impl="rbg")))


def test_errors_from_orbax_become_mismatch_errors(ckdir):
    """If the JSON records and the stored arrays disagree (tampered or foreign checkpoint), the
    failure inside Orbax/decoding still surfaces as one CheckpointMismatchError line."""
    state = {"a": np.zeros(3, np.float32)}
    with CheckpointStore(ckdir, keep=2, fingerprint=FP) as store:
        assert store.save(1, state, {})
    meta_file = ckdir / "1" / "meta" / "metadata"  # Orbax JsonSave layout (test-only knowledge)
    meta = json.loads(meta_file.read_text())
    meta["leaves"].append({"name": "ghost", "kind": "array", "dtype": "float32", "shape": [2]})
    meta_file.write_text(json.dumps(meta))
    with CheckpointStore(ckdir, keep=2, fingerprint=FP) as store:
        with pytest.raises(CheckpointMismatchError, match="could not be restored") as info:
            store.restore({"a": np.zeros(3, np.float32), "ghost": np.zeros(2, np.float32)})
        assert "\n" not in str(info.value)
    meta["leaves"] = [{"name": "a", "kind": "array", "dtype": "float32", "shape": [4]}]
    meta_file.write_text(json.dumps(meta))
    with CheckpointStore(ckdir, keep=2, fingerprint=FP) as store:
        with pytest.raises(CheckpointMismatchError, match="could not be restored"):
            store.restore({"a": np.zeros(4, np.float32)})


def test_async_save_round_trip(ckdir, trained):
    with CheckpointStore(ckdir, keep=2, fingerprint=FP, async_save=True) as store:
        assert store.save(1, trained, {})
        assert store.save(2, advance(trained), {})
        restored, meta = store.restore(trained)  # waits for the pending write
        assert meta["step"] == 2
        assert_bit_exact(restored, advance(trained))


CHILD = """
import os, sys, time
import jax, numpy as np
from rlstab_jax.train.checkpoint import CheckpointStore
d, ready = sys.argv[1], sys.argv[2]
store = CheckpointStore(d, keep=3, fingerprint={fp!r})
small = {{"w": np.arange(10, dtype=np.float32), "key": jax.random.key(1), "n": np.int32(1)}}
assert store.save(1, small, {{"env_steps": 10}})
open(ready, "w").write("1")
# Many leaves: Orbax pays per-leaf overhead, so the tmp dir lives for seconds.
big = {{f"layer{{i}}": np.full((256,), i, np.float32) for i in range({n_leaves})}}
store.save(2, big, {{}})
open(ready + ".finished", "w").write("1")
time.sleep(120)
"""


def test_sigkill_during_save_keeps_previous_checkpoint(tmp_path, ckdir):
    ready = tmp_path / "ready"
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD.format(fp=FP, n_leaves=4000)))
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    log = (tmp_path / "child.log").open("w")  # a file, not a pipe: a full pipe blocks the child
    child = subprocess.Popen([sys.executable, str(script), str(ckdir), str(ready)], env=env,
                             stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        seen: list[str] = []
        while time.monotonic() < deadline and child.poll() is None:
            if ready.exists():
                seen = [n for n in tmp_dirs(ckdir) if n.startswith("2.")]
                if seen:
                    break
                if Path(str(ready) + ".finished").exists():
                    break
            time.sleep(0.002)
        if not seen:
            child.kill()
            child.wait(timeout=30)
            err = (tmp_path / "child.log").read_text()[-2000:]
            pytest.fail(f"never saw a tmp dir for step 2 (save too fast or child died): {err}")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        log.close()
    assert tmp_dirs(ckdir), "the killed write should have left its tmp dir behind"
    assert not (ckdir / "2").exists()

    with CheckpointStore(ckdir, keep=3, fingerprint=FP) as store:
        assert tmp_dirs(ckdir) == []  # cleaned on the next start
        assert store.latest_step() == 1 and store.all_steps() == [1]
        target = {"w": np.zeros(10, np.float32), "key": jax.random.key(0), "n": np.int32(0)}
        restored, meta = store.restore(target)
        assert meta["env_steps"] == 10
        step1 = {"w": np.arange(10, dtype=np.float32), "key": jax.random.key(1), "n": np.int32(1)}
        assert_bit_exact(restored, step1)
        assert store.save(3, restored, {})
        assert store.all_steps() == [1, 3]
