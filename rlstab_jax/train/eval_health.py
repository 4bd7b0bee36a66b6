"""Per-evaluation stability telemetry written into every evaluation row of metrics.jsonl.

Field report 000 Step 10 logs the stability score inside the epoch loop, *before* a sweep can
prune the trial, so the trajectory of a collapsing run is visible where it happens; report 003
§11 asks for the collapse to be seen without waiting for the final return. The maths is
``stability.telemetry.stability_score`` / ``collapse_detector``; this module only keeps the
host-side history of deterministic eval returns (one list per seed) between chunks.

Fields added to each evaluation row (per seed):

* ``stability/score``: ``stability_score`` over the last ``window`` evaluations (1 = steady).
* ``stability/collapsed``: 1.0 once ``collapse_detector`` has flagged the seed (return stayed
  ``drop_frac`` below its best for ``patience`` consecutive evals; the flag never clears).
* ``stability/best_return``: the best deterministic eval return so far.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from rlstab_jax.stability import telemetry

RETURN_KEY = "eval/return"  # deterministic policy (the one checkpoints are selected on)


@dataclasses.dataclass
class EvalHealth:
    """History of deterministic eval returns ``[n_seeds]`` per evaluation (oldest first)."""

    n_seeds: int
    window: int = 10
    drop_frac: float = 0.3
    patience: int = 3
    history: list[np.ndarray] = dataclasses.field(default_factory=list)

    @classmethod
    def from_metrics(cls, path: Path, n_seeds: int, **kw) -> "EvalHealth":
        """Rebuild the history from an existing ``metrics.jsonl`` (a resumed run).

        The loop writes one row per run member in member order at every log step, so the
        evaluation rows of a step, in file order, are members ``0..n_seeds-1`` (ablation cells
        may repeat a seed across numeric variants, so rows are not matched by ``seed``).
        """
        health = cls(n_seeds, **kw)
        if not Path(path).exists():
            return health
        from rlstab_jax.train.metrics import read_metrics

        by_step: dict[int, list[float]] = {}
        for row in read_metrics(Path(path)):
            if RETURN_KEY in row:
                by_step.setdefault(int(row["step"]), []).append(row[RETURN_KEY])
        for step in sorted(by_step):
            if len(by_step[step]) == n_seeds:
                health.history.append(np.array(by_step[step], np.float32))
        return health

    def update(self, eval_returns: np.ndarray) -> dict[str, np.ndarray]:
        """Append one evaluation (``[n_seeds]``) and return the ``stability/*`` fields."""
        returns = np.asarray(eval_returns, np.float32).reshape(self.n_seeds)
        self.history.append(returns)
        x = np.stack(self.history, axis=1)  # [S, E]
        score = telemetry.stability_score(jnp.asarray(x[:, -self.window:]))
        collapsed = telemetry.collapse_detector(jnp.asarray(x), self.drop_frac, self.patience)
        return {"stability/score": np.asarray(score, np.float32),
                "stability/collapsed": np.asarray(collapsed, np.float32),
                "stability/best_return": x.max(axis=1)}
