"""The compiled training steps update the replay buffer in place (no per-step buffer copies).

Squeezing and re-adding the seed axis of a single-seed state inside the loop made XLA copy
every replay array on every env step (20 copies, about 15 MB per step for Pendulum at 100k rows:
the largest cost after the update itself). Both drivers now drop the axis once per chunk. This
test reads the optimised HLO: a ``copy`` whose shape carries the replay length is such a copy.
"""

import re

import jax
import numpy as np
import pytest

from rlstab_jax.config.loader import load_config
from rlstab_jax.replay.buffer import ReplayRow
from rlstab_jax.train.session import build_session

CAPACITY = 4099  # a length no other array in the program has

SMALL = ["agent.actor_hidden=[16]", "agent.critic_hidden=[16]", "agent.batch_size=8",
         "train.learning_starts=8", "train.chunk_steps=8", f"replay.capacity={CAPACITY}",
         "log.progress=false", "log.plot=false", "checkpoint.enabled=false"]


def _copies(hlo: str, pattern: str) -> list[str]:
    return [ln.strip() for ln in hlo.splitlines()
            if re.search(rf"= \w+\[{pattern}\]\S* copy\(", ln)]


# compact replay (issue 14): one frame per row, frames of a 2-frame stack, episode-end store
COMPACT = ["replay.layout=compact", "env.frame_stack=2"]


@pytest.mark.parametrize("seeds,layout", [(1, "flat"), (2, "flat"), (1, "compact")])
def test_gymnax_chunk_has_no_replay_copies(seeds, layout, tmp_path):
    pytest.importorskip("gymnax")
    extra = COMPACT if layout == "compact" else []
    cfg = load_config("sac/pendulum", [*SMALL, *extra, "env.backend=gymnax",
                                       f"train.seeds={seeds}", f"run.dir={tmp_path}"])
    sess = build_session(cfg)
    st = sess.init_state()
    hlo = sess.chunk.lower(st, sess.hparams).compile().as_text()
    assert f"{CAPACITY}" in hlo  # the replay is in the program
    assert _copies(hlo, rf"[^\]]*\b{CAPACITY}\b[^\]]*") == []


def test_gymnasium_step_has_no_copies_of_observation_arrays(tmp_path):
    """The fused gymnasium step: no copy of the obs / next_obs / action arrays.

    (XLA still fuses the new row of the 1-D reward / done arrays into the sample's gather and
    copies those small arrays; obs-sized arrays were the bulk of the traffic.)
    """
    cfg = load_config("sac/pendulum", [*SMALL, "env.backend=gymnasium", "env.host_step=loop",
                                       f"run.dir={tmp_path}"])
    sess = build_session(cfg)
    r = sess.runner
    st, hp = r._squeeze(sess.init_state()), r._squeeze_hp(sess.hparams)
    obs = np.zeros((1, 3), np.float32)
    row = ReplayRow(obs=obs, action=np.zeros((1, 1), np.float32),
                    reward=np.zeros((1,), np.float32), next_obs=obs,
                    terminated=np.zeros((1,), bool), truncated=np.zeros((1,), bool),
                    is_demo=np.zeros((1,), bool))
    msum = r._metric_template(st, hp)
    # carry=None: SAC is feedforward (a recurrent agent passes its pending carry here)
    hlo = r._step.lower(st, row, obs, hp, msum, None, do_update=True,
                        index=np.int32(0)).compile().as_text()
    assert f"{CAPACITY}" in hlo
    assert _copies(hlo, rf"[^\]]*\b{CAPACITY},\d+") == []
    r.venv.close()
    jax.clear_caches()


@pytest.mark.parametrize("seeds,layout", [(1, "flat"), (2, "flat"), (1, "compact")])
def test_gymnasium_scan_chunk_has_no_replay_copies(seeds, layout, tmp_path):
    """The in-scan gymnasium chunk (``env.host_step=scan``): no copy of any replay array."""
    cfg = load_config("sac/pendulum", [*SMALL, "env.backend=gymnasium", "env.host_step=scan",
                                       f"replay.layout={layout}", f"train.seeds={seeds}",
                                       f"run.dir={tmp_path}"])
    sess = build_session(cfg)
    r = sess.runner
    hlo = r._scan.lower(sess.init_state(), sess.hparams, iters=8).compile().as_text()
    assert f"{CAPACITY}" in hlo
    assert _copies(hlo, rf"[^\]]*\b{CAPACITY}\b[^\]]*") == []
    r.venv.close()
