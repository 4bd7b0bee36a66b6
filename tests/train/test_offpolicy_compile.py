"""The jitted chunk of the pure-JAX drivers compiles once: the initial state has no weak types.

gymnax Pendulum resets ``last_u`` from a Python float (a weakly typed leaf); after one env step
the leaf is strongly typed. Without ``strong_types`` in ``init_one`` the second chunk call saw a
different input signature and recompiled the whole chunk.
"""

import jax
import numpy as np
import pytest

from rlstab_jax.config.loader import load_config
from rlstab_jax.train.dtypes import has_weak_types, strong_types
from rlstab_jax.train.session import build_session

pytest.importorskip("gymnax")

SMALL = ["agent.actor_hidden=[16]", "agent.critic_hidden=[16]", "agent.batch_size=8",
         "env.backend=gymnax", "train.learning_starts=8", "train.chunk_steps=8",
         "log.progress=false", "log.plot=false", "checkpoint.enabled=false"]


def test_strong_types_removes_weak_types_only():
    import jax.numpy as jnp

    tree = {"w": jnp.asarray(0.0) + 1.0, "i": jnp.int32(3) + 1, "k": jax.random.key(0),
            "s": jnp.zeros((2,), jnp.float32)}
    assert has_weak_types(tree)
    out = strong_types(tree)
    assert not has_weak_types(out)
    assert out["w"].dtype == tree["w"].dtype and float(out["w"]) == 1.0
    assert jax.dtypes.issubdtype(out["k"].dtype, jax.dtypes.prng_key)


@pytest.mark.parametrize("preset,extra", [
    ("sac/pendulum", []),
    ("reinforce/probe", ["env.id=CartPole-v1", "env.n_envs=2", "train.chunk_steps=32"]),
])
def test_chunk_compiles_once(preset, extra, tmp_path):
    overrides = SMALL if preset.startswith("sac") else [
        s for s in SMALL if not s.startswith("agent.")]
    cfg = load_config(preset, [*overrides, f"run.dir={tmp_path}", *extra])
    sess = build_session(cfg)
    st = sess.init_state()
    assert not has_weak_types(st)
    assert not has_weak_types(jax.eval_shape(sess.driver.init, sess.keys, sess.hparams))
    for _ in range(3):
        st, m = sess.chunk(st, sess.hparams)
    jax.block_until_ready((st, m))
    assert sess.chunk._cache_size() == 1
    assert np.all(np.isfinite(np.asarray(st.env_steps)))


def test_gymnasium_step_compiles_once_per_phase(tmp_path):
    """The fused gymnasium step compiles once for warm-up and once for learning steps."""
    cfg = load_config("sac/pendulum", [*SMALL, "env.backend=gymnasium", "env.host_step=loop",
                                       f"run.dir={tmp_path}"])
    sess = build_session(cfg)
    st = sess.init_state()
    assert not has_weak_types(st)
    for _ in range(3):  # chunk 1 is warm-up only (8 steps), chunks 2-3 learn
        st, m = sess.chunk(st, sess.hparams)
    jax.block_until_ready((st, m))
    assert sess.runner._step._cache_size() == 2
    assert sess.runner._act._cache_size() == 1
