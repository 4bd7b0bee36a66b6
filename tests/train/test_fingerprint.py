"""Resume refuses what field report 001 Phase 4 says must wipe replay: one test per key class.

Classes (``train/fingerprint.py``): architecture (incl. ``activation``), what stored actor
parameters and transitions mean (log-std bounds and parametrisation), the optimiser-state
layout (``detach_actor_features``) and the env that produced the data (``env.kwargs``).
Settings that leave old state valid (learning rates, gamma, clips, alpha) must NOT refuse.
"""

import jax.numpy as jnp
import pytest

from rlstab_jax.config.loader import load_config
from rlstab_jax.envs.spec import EnvSpec
from rlstab_jax.train.checkpoint import CheckpointMismatchError, CheckpointStore
from rlstab_jax.train.fingerprint import run_fingerprint

SPEC = EnvSpec("Racer-v0", (12,), "float32", "continuous", 3, (-1.0,) * 3, (1.0,) * 3,
               ("steer", "gas", "brake"))


def _fp(*overrides, preset="sac/racer"):
    return run_fingerprint(load_config(preset, list(overrides)), SPEC, "jax")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A checkpoint directory written by the unmodified sac/racer preset."""
    d = tmp_path_factory.mktemp("fp") / "checkpoints"
    with CheckpointStore(d, keep=1, fingerprint=_fp()) as store:
        store.save(100, {"w": jnp.ones(3)}, {"env_steps": 100})
    return d


@pytest.mark.parametrize("override, key", [
    # architecture: what the stored parameters compute
    ("agent.activation=tanh", "agent.activation"),
    ("agent.encoder_hidden=[64]", "agent.encoder_hidden"),
    # policy parametrisation: report 001 Phase 4 (LOG_STD_MIN -2 -> -20 wiped replay)
    ("agent.log_std_min=-2", "agent.log_std_min"),
    ("agent.log_std_max=0.5", "agent.log_std_max"),
    ("agent.log_std_init=-1", "agent.log_std_init"),
    ("agent.log_std_param=clamp", "agent.log_std_param"),
    # optimiser-state layout
    ("agent.detach_actor_features=false", "agent.detach_actor_features"),
    # replay storage layout: compact rows hold no next_obs (issue 14)
    ("replay.layout=compact", "replay.layout"),
    # prioritised replay: a sum tree in the replay state (the fingerprint is config-level;
    # the driver refuses priorities for agents without them)
    ("replay.priority=true", "replay.priority"),
    # the data: another reward function / dynamics produced the stored transitions
    ("env.kwargs.constant_penalty=0.2", "env.kwargs"),
])
def test_resume_refuses_each_invalidating_class(run_dir, override, key):
    with pytest.raises(CheckpointMismatchError, match=key.replace(".", r"\.")) as err:
        CheckpointStore(run_dir, keep=1, fingerprint=_fp(override))
    assert "\n" not in str(err.value) and "start a new run" in str(err.value)


@pytest.mark.parametrize("override", [
    "agent.actor_lr=0.001", "agent.gamma=0.98", "agent.critic_grad_clip=1.0",
    "agent.alpha_floor=0.02", "agent.learn_alpha=false", "agent.n_step=3",
    "replay.demo_weight=2.0", "train.total_steps=60000",
])
def test_resume_accepts_settings_that_leave_state_valid(run_dir, override):
    CheckpointStore(run_dir, keep=1, fingerprint=_fp(override)).close()
