"""Figures of a run's stability telemetry (matplotlib ``Figure`` objects, no pyplot state).

Each function returns a ``Figure`` or ``None`` when the run did not log the keys it needs
(e.g. REINFORCE has no alpha). Keys are the field reports' own (report 000 Step 8, report 003
§11): ``alpha/<dim>``, ``log_std/mean/<dim>``, ``log_std/min/<dim>``, ``q/mean/<i>``,
``q/std/<i>``, ``*grad_norm``, ``nonfinite/skipped``, ``nonfinite/streak``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from rlstab_jax.report.runlog import RunLog

NOT_DIMS = {"loss", "mean"}  # alpha/loss and alpha/mean are not action dimensions


def _grid(n: int, title: str, width: float = 4.2, height: float = 3.0) -> tuple[Figure, list]:
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(title)
    return fig, axes[:n]


def _plot_seeds(ax, log: RunLog, key: str, style: str = "-", label: str | None = None,
                color: str | None = None) -> bool:
    drew = False
    for i, (seed, (steps, vals)) in enumerate(sorted(log.series(key).items())):
        ax.plot(steps, vals, style, lw=1.2, alpha=0.8, color=color,
                label=(label or f"seed {seed}") if (label is None or i == 0) else None)
        drew = True
    return drew


def eval_curve(log: RunLog, key: str = "eval/return") -> Figure | None:
    """Eval return per seed (thin) and the mean over seeds (thick)."""
    steps, mat = log.eval_matrix(key)
    if mat.size == 0:
        return None
    fig, (ax,) = _grid(1, f"{key} per seed", width=6.5, height=3.8)
    _plot_seeds(ax, log, key)
    if mat.shape[0] > 1:
        ax.plot(steps, mat.mean(0), color="k", lw=2.4, label="mean")
    ax.set_xlabel("env steps (per seed)")
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def action_dims(log: RunLog, prefix: str) -> list[str]:
    """Action-dimension names logged under ``prefix`` (``alpha/`` -> steer, gas, brake).

    In the env's action order when the run's env can be built, else sorted.
    """
    names = [k[len(prefix):] for k in log.keys_under(prefix)
             if "/" not in k[len(prefix):] and k[len(prefix):] not in NOT_DIMS]
    order = {n: i for i, n in enumerate(log.action_names)}
    return sorted(names, key=lambda n: (order.get(n, len(order)), n))


def per_dim_alpha(log: RunLog) -> Figure | None:
    """``alpha/<dim>`` per action dimension (log scale): runaway or collapse of one dim."""
    dims = action_dims(log, "alpha/")
    if not dims:
        return None
    fig, axes = _grid(len(dims), "entropy temperature alpha per action dimension")
    for ax, d in zip(axes, dims):
        _plot_seeds(ax, log, f"alpha/{d}")
        ax.set_yscale("log")
        ax.set_title(f"alpha/{d}")
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return fig


def log_std_vs_floor(log: RunLog, floor: float | None) -> Figure | None:
    """``log_std/mean/<dim>`` (solid) and ``log_std/min/<dim>`` (dashed) against the floor."""
    dims = action_dims(log, "log_std/mean/")
    if not dims:
        return None
    fig, axes = _grid(len(dims), "policy log-std per action dimension vs the floor")
    for ax, d in zip(axes, dims):
        _plot_seeds(ax, log, f"log_std/mean/{d}", "-", "mean", "C0")
        _plot_seeds(ax, log, f"log_std/min/{d}", "--", "min over batch", "C1")
        if floor is not None:
            ax.axhline(floor, color="r", lw=1.5, label=f"floor {floor:g}")
        ax.set_title(f"log_std/{d}")
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return fig


def q_per_critic(log: RunLog) -> Figure | None:
    """``q/mean/<i>`` and ``q/std/<i>`` per critic: Q drift and twin critics."""
    critics = [k.split("/")[-1] for k in log.keys_under("q/mean/")]
    if not critics:
        return None
    fig, (ax_m, ax_s) = _grid(2, "Q-values per critic (lines: seeds)", width=5.2)
    for j, c in enumerate(sorted(critics, key=lambda c: (len(c), c))):
        _plot_seeds(ax_m, log, f"q/mean/{c}", "-", f"critic {c}", f"C{j % 10}")
        _plot_seeds(ax_s, log, f"q/std/{c}", "-", f"critic {c}", f"C{j % 10}")
    for ax, name in ((ax_m, "mean Q over the batch"), (ax_s, "std of Q over the batch")):
        ax.set_title(name)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def grad_norms(log: RunLog) -> Figure | None:
    """Every ``*grad_norm`` key (pre-clip global norms), log scale."""
    keys = sorted(k for k in log.keys if k.endswith("grad_norm"))
    if not keys:
        return None
    fig, axes = _grid(len(keys), "pre-clip gradient norms")
    for ax, k in zip(axes, keys):
        _plot_seeds(ax, log, k)
        ax.set_yscale("log")
        ax.set_title(k)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return fig


def nonfinite(log: RunLog) -> Figure | None:
    """``nonfinite/skipped`` (fraction of updates skipped in a chunk) and the streak."""
    keys = [k for k in ("nonfinite/skipped", "nonfinite/streak") if k in log.keys]
    if not keys:
        return None
    fig, axes = _grid(len(keys), "non-finite updates skipped")
    for ax, k in zip(axes, keys):
        _plot_seeds(ax, log, k)
        ax.set_title(k)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return fig


def curves(log: RunLog, keys: Sequence[str], title: str, logy: bool = False) -> Figure | None:
    """Any metric keys, one panel each, one line per seed (for notebooks)."""
    keys = [k for k in keys if k in log.keys]
    if not keys:
        return None
    fig, axes = _grid(len(keys), title)
    for ax, k in zip(axes, keys):
        _plot_seeds(ax, log, k)
        if logy:
            ax.set_yscale("log")
        ax.set_title(k)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return fig
