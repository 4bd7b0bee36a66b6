"""Numeric variants x seeds on a gymnasium env (host-side vector env) as one vmapped cell.

Member (actor_lr=0.0003, seed 1) of a 2 numeric x 2 seed cell on gymnasium Pendulum-v1 with
2 sub-envs per member equals a plain single run with that value and ``train.seed=1``: its
sub-envs reset with seeds 1, 2 and its evaluation episodes with 10001.. as the single run's do.
"""

import numpy as np
import pytest

pytest.importorskip("gymnasium")

from rlstab_jax.ablate.curves import Curves  # noqa: E402
from rlstab_jax.ablate.runner import run_grid  # noqa: E402
from rlstab_jax.ablate.spec import _slug, load_grid  # noqa: E402
from rlstab_jax.config.loader import load_config  # noqa: E402
from rlstab_jax.train.loop import run  # noqa: E402

GRID = """
name: tiny_gym
base: sac/pendulum
set:
  env.backend: gymnasium
  env.n_envs: 2
  agent.actor_hidden: [8]
  agent.critic_hidden: [8]
  agent.batch_size: 8
  replay.capacity: 400
  train.total_steps: 200
  train.learning_starts: 60
  train.chunk_steps: 50
  train.eval_every: 100
  train.eval_episodes: 1
  checkpoint.every: 200
seeds: 2
grid:
  agent.actor_lr: [0.001, 0.0003]
stats:
  reps: 100
"""


def test_gym_numeric_variant_member_equals_single_run(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(GRID)
    spec = load_grid(str(path))
    assert len(spec.programs) == 1 and len(spec.programs[0].variants) == 2  # one vmapped cell
    out = tmp_path / "out"
    result = run_grid(spec, out, progress=False)
    assert result["summary"] is not None and (out / "report.md").is_file()
    variant = next(v for v in spec.variants if v.numeric["actor_lr"] == pytest.approx(3e-4))
    c = Curves.load(out / "curves" / f"{_slug(variant.name)}.npz")
    d = variant.cfg.to_dict()
    d["train"].update(seed=1, seeds=1)
    d["run"]["dir"] = str(tmp_path / "single")
    d["log"].update(progress=False, plot=False)
    single = run(load_config(base=d), progress=False)
    ev = {r["step"]: r["eval/return"] for r in single.rows if r.get("eval/return") is not None}
    assert sorted(ev) == [int(t) for t in c.eval_steps] == [100, 200]
    np.testing.assert_allclose([ev[int(t)] for t in c.eval_steps], c.eval_return[1],
                               rtol=1e-3, atol=1e-2)
    # member seeds matter: seed 0 of the same variant saw other episodes
    assert not np.allclose(c.eval_return[0], c.eval_return[1])
