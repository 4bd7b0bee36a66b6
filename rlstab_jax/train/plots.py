"""Learning-curve PNG: evaluation return per seed and the mean across seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def plot_learning_curve(rows: list[dict[str, Any]], path: Path, title: str = "",
                        key: str = "eval/return") -> bool:
    """Plot ``key`` against ``step``; returns False when there is nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_seed: dict[int, dict[int, float]] = {}
    for r in rows:
        if r.get(key) is not None:
            by_seed.setdefault(int(r["seed"]), {})[int(r["step"])] = float(r[key])
    if not by_seed:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    for seed, pts in sorted(by_seed.items()):
        steps = sorted(pts)
        ax.plot(steps, [pts[s] for s in steps], alpha=0.35, lw=1, label=f"seed {seed}")
    common = sorted(set.intersection(*(set(p) for p in by_seed.values())))
    if common:
        mean = np.array([np.mean([p[s] for p in by_seed.values()]) for s in common])
        ax.plot(common, mean, color="k", lw=2.2, label="mean")
    ax.set_xlabel("env steps (per seed)")
    ax.set_ylabel(key)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(by_seed) <= 10:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
