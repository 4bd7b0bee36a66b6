"""The collapse detector's verdict and the stability score of a run's eval returns.

Thin host-side wrappers over ``rlstab_jax.stability.telemetry.collapse_detector`` and
``stability_score`` (field report 000 Step 10; report 003 §11: late collapses hidden by seed
averages).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from rlstab_jax.stability import telemetry


@dataclasses.dataclass(frozen=True)
class Verdict:
    seeds: list[int]
    n_evals: int
    collapsed: np.ndarray  # bool [S] (all False when n_evals < patience)
    score: np.ndarray  # [S] stability score over the whole eval history
    final: np.ndarray  # [S] last eval return
    best: np.ndarray  # [S] best eval return
    drop_frac: float
    patience: int
    baseline: float | None

    @property
    def enough_evals(self) -> bool:
        return self.n_evals >= self.patience

    def summary(self) -> str:
        """One line: how many seeds collapsed and the mean stability score."""
        if self.n_evals == 0:
            return "no evaluation rows: nothing to judge"
        score = f"stability score {float(np.mean(self.score)):.3f} (mean over seeds)"
        if not self.enough_evals:
            return (f"too few evals to judge collapse ({self.n_evals} < patience "
                    f"{self.patience}); {score}")
        n = int(self.collapsed.sum())
        which = ", ".join(str(s) for s, c in zip(self.seeds, self.collapsed) if c)
        verdict = f"COLLAPSE in {n}/{len(self.seeds)} seeds ({which})" if n else (
            f"no collapse in {len(self.seeds)} seeds")
        return f"{verdict}; {score}"


def judge(seeds: list[int], returns: np.ndarray, drop_frac: float = 0.3, patience: int = 3,
          baseline: float | None = None) -> Verdict:
    """Verdict for eval returns ``[S, E]`` (seeds x evals, oldest first)."""
    returns = np.asarray(returns, np.float32)
    s, e = returns.shape if returns.ndim == 2 else (len(seeds), 0)
    if e == 0:
        empty = np.zeros(s)
        return Verdict(seeds, 0, empty.astype(bool), empty, empty, empty, drop_frac, patience,
                       baseline)
    x = jnp.asarray(returns)
    collapsed = np.asarray(telemetry.collapse_detector(x, drop_frac, patience,
                                                       baseline=baseline))
    score = np.asarray(telemetry.stability_score(x))
    return Verdict(seeds, e, collapsed, score, returns[:, -1], returns.max(axis=1), drop_frac,
                   patience, baseline)
