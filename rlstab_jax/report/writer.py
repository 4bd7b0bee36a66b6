"""``report.md`` + PNGs for a finished run directory (``python -m rlstab_jax.report RUN_DIR``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rlstab_jax.report import agent_figures, figures
from rlstab_jax.report.runlog import RunLog, load_run
from rlstab_jax.report.verdict import Verdict, judge

# (file stem, title, what the field reports watch it for)
SECTIONS = (
    ("eval_curve", "Evaluation return per seed",
     "deterministic policy; a seed that peaks then falls is what the collapse detector flags"),
    ("alpha_per_dim", "Entropy temperature per action dimension",
     "alpha runaway (report 003 §3: 0.015 -> 0.22) or one dimension's alpha collapsing "
     "(report 000 Step 8)"),
    ("log_std_floor", "Policy log-std vs the floor",
     "entropy collapse at the log-std floor: a clamped log-std pinned at its minimum gets no "
     "gradient (report 000 Fix B, report 001 §1)"),
    ("q_per_critic", "Q mean / std per critic",
     "Q drift (report 003 §11: q_a1 -> -131) and identical twin critics (report 003 §1)"),
    ("grad_norms", "Gradient norms (pre-clip)",
     "explosive gradients accelerating Q drift (report 003 §11A)"),
    ("nonfinite", "Non-finite update skips",
     "NaN/Inf gradients skipped instead of poisoning parameters (report 002, report 003 §11)"),
    ("kl_free_bits", "KL terms vs the free-bits floor",
     "KL spikes, and a prior frozen below the floor by the max form of free bits (report 002)"),
    ("wm_surprise", "World-model surprise",
     "a loss jumping above its EMA (log ratio > log 1.2) before the actor outruns a stale "
     "world model (report 002)"),
    ("head_entropy", "Per-head entropy vs the report's levels",
     "one head's entropy collapsing, often before the head is used (report 004 §4)"),
    ("head_ratio", "Per-head probability ratio",
     "one head's ratio exploding while the joint ratio looks normal (report 004 §5.4)"),
)
# Sections only listed as "not logged" for the agent that logs them.
AGENT_SECTIONS = {"kl_free_bits": "dreamer", "wm_surprise": "dreamer", "head_entropy": "ppo",
                  "head_ratio": "ppo"}


def _figures(log: RunLog) -> dict[str, Any]:
    floor = (log.config.get("agent") or {}).get("log_std_min")
    return {
        "eval_curve": figures.eval_curve(log),
        "alpha_per_dim": figures.per_dim_alpha(log),
        "log_std_floor": figures.log_std_vs_floor(
            log, float(floor) if floor is not None else None),
        "q_per_critic": figures.q_per_critic(log),
        "grad_norms": figures.grad_norms(log),
        "nonfinite": figures.nonfinite(log),
        "kl_free_bits": agent_figures.kl_free_bits(log, _float_or_none(
            (log.config.get("agent") or {}).get("free_bits"))),
        "wm_surprise": agent_figures.wm_surprise(log),
        "head_entropy": agent_figures.head_entropy(log),
        "head_ratio": agent_figures.head_ratio(log),
    }


def _float_or_none(v: Any) -> float | None:
    return float(v) if v is not None else None


def _last(log: RunLog, key: str) -> dict[int, float]:
    return {s: float(v[-1]) for s, (_, v) in log.series(key).items() if len(v)}


def _telemetry_table(log: RunLog) -> list[str]:
    """Last logged value per seed of the keys the field reports watch."""
    watch = (["alpha/" + d for d in figures.action_dims(log, "alpha/")]
             + log.keys_under("log_std/mean/") + log.keys_under("log_std/min/")
             + [k for k in ("log_std/frac_at_floor", "critic/identical_frac", "q/ensemble_std")
                if k in log.keys]
             + log.keys_under("q/mean/") + log.keys_under("q/std/")
             + sorted(k for k in log.keys if k.endswith("grad_norm"))
             + [k for k in ("kl/dyn_raw", "kl/rep_raw", "kl/below_free_frac",
                            "wm/surprise/total_log_ratio",
                            "wm/surprise/max_component_log_ratio") if k in log.keys]
             + [f"entropy/{h}" for h in agent_figures._heads(log)]
             + [k for k in ("critical/heads", "nonfinite/streak") if k in log.keys])
    if not watch:
        return ["This agent logged none of the watched telemetry keys."]
    seeds = log.seeds
    lines = ["| key | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "| --- |" + " --- |" * len(seeds)]
    for k in watch:
        last = _last(log, k)
        lines.append(f"| `{k}` | " + " | ".join(
            f"{last[s]:.4g}" if s in last else "–" for s in seeds) + " |")
    skipped = log.series("nonfinite/skipped")
    if skipped:
        chunks = {s: int(np.sum(v > 0)) for s, (_, v) in skipped.items()}
        lines.append("| chunks with non-finite skips | " + " | ".join(
            str(chunks.get(s, 0)) for s in seeds) + " |")
    return lines


def _verdict_lines(v: Verdict) -> list[str]:
    lines = [f"**Verdict:** {v.summary()}.", "",
             f"Collapse rule (`stability.telemetry.collapse_detector`): an eval is *down* when "
             f"it is more than {v.drop_frac:g} x "
             + ("|best so far|" if v.baseline is None else f"(best so far - {v.baseline:g})")
             + f" below the best so far; a seed collapsed when it was down for {v.patience} "
             "consecutive evals. Stability score (`stability.telemetry.stability_score`, report "
             "000 Step 10): (1 - drawdown) / (1 + roughness) over the whole eval history, "
             "1 = steady.", ""]
    if v.n_evals:
        lines += ["| seed | final eval return | best | stability score | collapsed |",
                  "| --- | --- | --- | --- | --- |"]
        for i, s in enumerate(v.seeds):
            flag = ("yes" if v.collapsed[i] else "no") if v.enough_evals else "n/a"
            lines.append(f"| {s} | {v.final[i]:.2f} | {v.best[i]:.2f} | {v.score[i]:.3f} "
                         f"| {flag} |")
    return lines


def write_report(run_dir: str | Path, out_dir: str | Path | None = None,
                 drop_frac: float = 0.3, patience: int = 3,
                 baseline: float | None = None) -> Path:
    """Write ``report.md`` and one PNG per telemetry figure; returns the report's path.

    Args:
      run_dir: a run directory (``config.yaml`` + ``metrics.jsonl``).
      out_dir: where to write (default: ``run_dir``).
      drop_frac, patience, baseline: the collapse detector's rule (see its docstring);
        ``baseline`` is the return of a policy that learned nothing (Pendulum: about -1200).

    Raises:
      ConfigError: not a run directory / no metrics.
    """
    log = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else log.run_dir
    out.mkdir(parents=True, exist_ok=True)
    cfg = log.config
    agent = (cfg.get("agent") or {}).get("name", "?")
    env = (cfg.get("env") or {}).get("id", "?")
    steps, returns = log.eval_matrix()
    verdict = judge(log.seeds, returns, drop_frac, patience, baseline)
    last_step = max(int(r["step"]) for r in log.rows)
    lines = [f"# Run report: `{log.run_dir.name}`", "",
             f"`{agent}` on `{env}`, {len(log.seeds)} seed(s) ({', '.join(map(str, log.seeds))})"
             f", {last_step} env steps per seed logged, {len(steps)} evaluations.", "",
             "## Collapse detector and stability score", ""]
    lines += _verdict_lines(verdict)
    lines += ["", "## Telemetry at the last log step", ""] + _telemetry_table(log)
    figs = _figures(log)
    missing = []
    for stem, title, why in SECTIONS:
        fig = figs[stem]
        if fig is None:
            if AGENT_SECTIONS.get(stem, agent) == agent:
                missing.append(title.lower())
            continue
        fig.savefig(out / f"{stem}.png", dpi=100)
        lines += ["", f"## {title}", "", f"Watch for: {why}.", "", f"![{title}]({stem}.png)"]
    if missing:
        lines += ["", "## Not logged by this agent", "", ", ".join(missing) + "."]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
