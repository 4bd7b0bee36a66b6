"""Report figures of the Dreamer and multi-head PPO telemetry (field reports 002 and 004).

Like ``figures``: each function returns a ``Figure`` or ``None`` when the run did not log the
keys it needs, so a SAC run simply has no such section.

- ``kl_free_bits``: ``kl/dyn_raw`` and ``kl/rep_raw`` against the free-bits floor
  (``agent.free_bits``) and ``kl/below_free_frac`` (report 002: KL spikes; a prior frozen below
  the floor by the ``max`` form of free bits).
- ``wm_surprise``: ``wm/surprise/<component>_log_ratio`` (log of each world-model loss over its
  EMA) against report 002's alarm level log 1.2.
- ``head_entropy``: ``entropy/<head>`` against report 004 §4's warning/critical levels.
- ``head_ratio``: ``ratio/<head>/max`` against report 004 §5.4's warning/critical ratios.
"""

from __future__ import annotations

import inspect
import math

from matplotlib.figure import Figure

from rlstab_jax.report.figures import _grid, _plot_seeds
from rlstab_jax.report.runlog import RunLog

SURPRISE_ALARM = math.log(1.2)  # report 002 "WM Surprise Metrics": log(loss / EMA) > log 1.2


def _ratio_levels() -> tuple[float, float]:
    """The per-head ratio warning/critical levels the PPO telemetry uses (one source)."""
    from rlstab_jax.stability.multihead import per_head_ratio_stats

    p = inspect.signature(per_head_ratio_stats).parameters
    return float(p["warn"].default), float(p["critical"].default)


def kl_free_bits(log: RunLog, free_bits: float | None) -> Figure | None:
    """Raw KL terms per seed against the free-bits floor, and the share below it."""
    keys = [k for k in ("kl/dyn_raw", "kl/rep_raw") if k in log.keys]
    if not keys:
        return None
    has_frac = "kl/below_free_frac" in log.keys
    fig, axes = _grid(1 + has_frac, "KL balancing and free bits (report 002)", width=5.2)
    for j, k in enumerate(keys):
        _plot_seeds(axes[0], log, k, "-" if j == 0 else "--", k, f"C{j}")
    if free_bits is not None:
        axes[0].axhline(free_bits, color="r", ls=":", lw=1, label=f"free bits {free_bits:g}")
    axes[0].set_title("raw KL (nats)")
    if has_frac:
        _plot_seeds(axes[1], log, "kl/below_free_frac")
        axes[1].set_title("kl/below_free_frac")
    for ax in axes:
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def wm_surprise(log: RunLog) -> Figure | None:
    """Each world-model loss component's surprise log-ratio, and total / max component."""
    comps = [k for k in log.keys_under("wm/surprise/") if k.endswith("_log_ratio")
             and not k.endswith(("/total_log_ratio", "/max_component_log_ratio"))]
    totals = [k for k in ("wm/surprise/total_log_ratio", "wm/surprise/max_component_log_ratio")
              if k in log.keys]
    if not comps and not totals:
        return None
    groups = [g for g in (comps, totals) if g]
    fig, axes = _grid(len(groups), "world-model surprise: log(loss / EMA) (report 002)",
                      width=5.2)
    for ax, group in zip(axes, groups):
        for j, k in enumerate(group):
            name = k.rsplit("/", 1)[-1].replace("_log_ratio", "")
            _plot_seeds(ax, log, k, "-", name, f"C{j % 10}")
        ax.axhline(SURPRISE_ALARM, color="r", ls="--", lw=1, label="alarm log 1.2")
        ax.axhline(0.0, color="k", lw=0.5)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def _heads(log: RunLog) -> list[str]:
    """Heads the agent judged against report 004's entropy levels, in logged order.

    Those are the ones with an ``entropy/<head>/warn`` flag next to ``entropy/<head>`` (PPO's
    categorical heads). SAC's ``entropy/<dim>`` is a per-dimension differential entropy (often
    negative) with no such levels: it is not a head and gets no section here.
    """
    keys = set(log.keys)
    return [k.split("/")[1] for k in log.keys_under("entropy/")
            if k.count("/") == 1 and f"{k}/warn" in keys]


def head_entropy(log: RunLog) -> Figure | None:
    """``entropy/<head>`` per seed with the report's warning (orange) / critical (red) levels."""
    from rlstab_jax.agents.ppo.heads import REPORT_ENTROPY_THRESHOLDS

    heads = _heads(log)
    if not heads:
        return None
    fig, axes = _grid(len(heads), "per-head entropy vs report 004 §4 levels (nats)", width=3.8,
                      height=2.7)
    for ax, h in zip(axes, heads):
        _plot_seeds(ax, log, f"entropy/{h}")
        if h in REPORT_ENTROPY_THRESHOLDS:
            warn, crit = REPORT_ENTROPY_THRESHOLDS[h]
            ax.axhline(warn, color="orange", ls="--", lw=1, label=f"warning {warn:g}")
            ax.axhline(crit, color="r", ls="--", lw=1, label=f"critical {crit:g}")
        ax.set_title(f"entropy/{h}", fontsize=9)
        ax.set_xlabel("env steps")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=6)
    return fig


def head_ratio(log: RunLog) -> Figure | None:
    """``ratio/<head>/max`` per seed (log scale) with the warning / critical ratio levels."""
    heads = [k.split("/")[1] for k in log.keys_under("ratio/") if k.endswith("/max")]
    if not heads:
        return None
    warn, crit = _ratio_levels()
    fig, axes = _grid(len(heads), "per-head max probability ratio vs report 004 §5.4 levels",
                      width=3.8, height=2.7)
    for ax, h in zip(axes, heads):
        _plot_seeds(ax, log, f"ratio/{h}/max")
        ax.axhline(warn, color="orange", ls="--", lw=1, label=f"warning {warn:g}")
        ax.axhline(crit, color="r", ls="--", lw=1, label=f"critical {crit:g}")
        ax.set_yscale("log")
        ax.set_title(f"ratio/{h}/max", fontsize=9)
        ax.set_xlabel("env steps")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=6)
    return fig
