"""Early stopping decided on deterministic evaluation returns, never on training returns.

Field report 002 ("Early stopping bug"): the run checked the training episode length, which
peaked at 489 under the exploring policy while the greedy evaluation had hit 500 many times,
so it never stopped and trained on into the collapse. Here the only input is ``eval/return``.
"""

from __future__ import annotations

import numpy as np


def early_stop_streak(streak: int, eval_returns: np.ndarray, threshold: float | None) -> int:
    """Consecutive evaluations in which EVERY seed's eval return reached ``threshold``.

    Args:
      streak: the count after the previous evaluation.
      eval_returns: ``[n_seeds]`` mean deterministic evaluation return of each seed.
      threshold: ``train.early_stop_return``; ``None`` switches early stopping off (always 0).

    Returns:
      The new count (reset to 0 by any evaluation in which some seed is below ``threshold``).
    """
    if threshold is None:
        return 0
    return streak + 1 if bool(np.all(np.asarray(eval_returns) >= threshold)) else 0
