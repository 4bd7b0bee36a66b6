"""``python -m rlstab_jax.report RUN_DIR``: report.md + PNGs; bad input -> one line, exit 2."""

from __future__ import annotations

import argparse
import sys

from rlstab_jax.config.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m rlstab_jax.report",
        description="Write report.md and PNGs (eval curve per seed, per-dim alpha, log-std vs "
                    "floor, Q per critic, gradient norms, non-finite skips, collapse verdict and "
                    "stability score) for a run directory.")
    p.add_argument("run_dir", help="a run directory (config.yaml + metrics.jsonl)")
    p.add_argument("--out", help="output directory (default: the run directory)")
    p.add_argument("--drop-frac", type=float, default=0.3,
                   help="collapse: relative drop from the best eval that counts as down")
    p.add_argument("--patience", type=int, default=3,
                   help="collapse: consecutive down evals that make a collapse")
    p.add_argument("--baseline", type=float, default=None,
                   help="return of a policy that learned nothing (measure drops against the "
                        "improvement; Pendulum: -1200)")
    args = p.parse_args(argv)
    try:
        if not 0.0 < args.drop_frac <= 1.0:
            raise ConfigError(f"--drop-frac={args.drop_frac} must be in (0, 1]")
        if args.patience < 1:
            raise ConfigError(f"--patience={args.patience} must be >= 1")
        from rlstab_jax.report.writer import write_report

        path = write_report(args.run_dir, args.out, args.drop_frac, args.patience,
                            args.baseline)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0
