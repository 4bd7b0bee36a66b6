"""Ablation PNGs: IQM learning curves with CI bands, IQM bars with CIs, collapse rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], path: Path,
                title: str, ylabel: str) -> None:
    """``curves[name] = (steps [E], iqm [E], ci [2, E])``."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, (steps, iqm, ci) in curves.items():
        (line,) = ax.plot(steps, iqm, lw=1.8, label=name)
        ax.fill_between(steps, ci[0], ci[1], color=line.get_color(), alpha=0.2)
    ax.set_xlabel("env steps (per seed)")
    ax.set_ylabel(f"IQM {ylabel} (95% CI band)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_bars(values: dict[str, dict[str, Any]], path: Path, title: str, ylabel: str,
              ylim: tuple[float, float] | None = None) -> None:
    """``values[name] = {"value": v, "ci": [lo, hi]}`` (or ``ci`` None); ``ylim`` fixes the axis
    (a rate: (0, 1), so that all-zero bars read as 0 rather than as an empty plot)."""
    plt = _plt()
    fig = bars_figure(values, title, ylabel, ylim)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def bars_figure(values: dict[str, dict[str, Any]], title: str, ylabel: str,
                ylim: tuple[float, float] | None = None) -> Any:
    """The figure ``plot_bars`` saves; each bar is labelled with its value."""
    plt = _plt()
    names = list(values)
    v = np.array([values[n]["value"] for n in names], float)
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(names) + 2), 4))
    yerr = None
    if all(values[n].get("ci") is not None for n in names):
        lo = np.array([values[n]["ci"][0] for n in names])
        hi = np.array([values[n]["ci"][1] for n in names])
        yerr = np.stack([np.maximum(v - lo, 0), np.maximum(hi - v, 0)])
    bars = ax.bar(range(len(names)), v, yerr=yerr, capsize=4, color="tab:blue", alpha=0.8)
    ax.bar_label(bars, labels=[f"{x:.3g}" for x in v], fontsize=7, padding=2)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
