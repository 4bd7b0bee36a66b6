"""Live progress bar (tqdm): env steps, steps/s, recent return, last evaluation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tqdm.auto import tqdm


def critical_heads(rows: list[dict[str, Any]]) -> list[str]:
    """Heads any seed flagged ``critical/<head> > 0`` in this chunk (field report 004 thresholds:
    a per-head ratio above 10 or an entropy below the head's critical level; PPO telemetry)."""
    names = {k.split("/", 1)[1] for r in rows for k, v in r.items()
             if k.startswith("critical/") and k != "critical/heads" and v and v > 0}
    return sorted(names)


class Progress:
    def __init__(self, total: int, start: int, enabled: bool = True):
        self._bar = tqdm(total=total, initial=start, unit="step", disable=not enabled,
                         dynamic_ncols=True, smoothing=0.1)
        self._pos = start

    def update(self, steps: int, sps: float, rows: list[dict[str, Any]],
               last_eval: dict[str, np.ndarray]) -> None:
        self._bar.update(max(0, min(steps, self._bar.total) - self._pos))
        self._pos = min(steps, self._bar.total)
        post = {"sps": f"{sps:,.0f}"}
        rets = [r.get("train/episode_return") for r in rows]
        rets = [x for x in rets if x is not None and math.isfinite(x)]
        if rets:
            post["return"] = f"{np.mean(rets):.1f}"
        if "eval/return" in last_eval:
            post["eval"] = f"{float(np.mean(last_eval['eval/return'])):.1f}"
        crit = critical_heads(rows)
        if crit:
            post["CRITICAL"] = ",".join(crit)
        self._bar.set_postfix(post, refresh=False)

    def write(self, msg: str) -> None:
        self._bar.write(msg)

    def close(self) -> None:
        self._bar.close()
