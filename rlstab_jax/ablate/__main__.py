"""``python -m rlstab_jax.ablate GRID``: variants x seeds, statistics, plots, report.

Bad input exits with code 2 and one line on stderr (naming the grid file, the variant and the
key) before anything compiles.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rlstab_jax.config.errors import ConfigError

EPILOG = """examples:
  python -m rlstab_jax.ablate ablations/sac_racer_000.yaml
  python -m rlstab_jax.ablate sac_racer_000 --seeds 3 train.total_steps=4000   # quick look
  python -m rlstab_jax.ablate sac_racer_000 --dry-run        # validate + compile, no training
  python -m rlstab_jax.ablate --resume ablations/sac_racer_000-20260101-120000
  python -m rlstab_jax.ablate sac_racer_000 --ray 10.0.0.1:6379
  python -m rlstab_jax.ablate --list
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m rlstab_jax.ablate", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run an ablation grid (structural variants = separately compiled programs, "
                    "numeric variants x seeds = one vmapped batch) and report rliable "
                    "statistics and stability metrics.")
    p.add_argument("grid", nargs="?", help="grid YAML file or preset name")
    p.add_argument("overrides", nargs="*",
                   help="key=value applied to every variant (e.g. train.total_steps=2000)")
    p.add_argument("--out", help="results directory (default ablations/<name>-<timestamp>)")
    p.add_argument("--resume", metavar="DIR", help="continue a grid: run only missing cells")
    p.add_argument("--seeds", type=int, help="override the grid's number of seeds")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run cells as Ray tasks on this cluster ('local' starts one here)")
    p.add_argument("--ray-cpus", type=float, default=1, help="CPUs per Ray task (cell)")
    p.add_argument("--ray-gpus", type=float, default=0, help="GPUs per Ray task (cell)")
    p.add_argument("--ray-no-shared-fs", action="store_true",
                   help="workers train in local temp dirs and ship results back (no resume "
                        "of an interrupted cell across machines)")
    p.add_argument("--max-cells", type=int, help="train at most N missing cells, then stop")
    p.add_argument("--dry-run", action="store_true",
                   help="validate, then build and compile every program's chunk once; no "
                        "training")
    p.add_argument("--analyse-only", action="store_true",
                   help="recompute statistics/plots/report of --resume DIR")
    p.add_argument("--list", action="store_true", help="list grid presets")
    p.add_argument("--no-progress", action="store_true")
    return p


def _overrides(items: list[str]) -> dict:
    from rlstab_jax.config.loader import _parse_overrides

    nested = _parse_overrides(items)
    flat = {}
    for section, values in nested.items():
        if not isinstance(values, dict):
            raise ConfigError(f"override {section}={values!r} must look like section.key=value")
        for k, v in values.items():
            flat[f"{section}.{k}"] = v
    return flat


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        from rlstab_jax.ablate.spec import list_grid_presets, load_grid, with_seeds

        if args.list:
            for name in list_grid_presets():
                print(name)
            return 0
        from rlstab_jax.ablate import runner

        if args.resume:
            if args.grid:
                raise ConfigError("--resume uses the directory's grid.yaml; drop the grid file")
            out = Path(args.resume)
            spec, overrides = runner.load_resumed(out)
        else:
            if not args.grid:
                raise ConfigError("give a grid file or preset name (or --list, --resume DIR)")
            overrides = _overrides(args.overrides)
            spec = load_grid(args.grid, overrides)
            out = Path(args.out) if args.out else runner.default_out(spec)
        if args.seeds is not None:
            spec = with_seeds(spec, args.seeds)
        if args.dry_run:
            from rlstab_jax.ablate.dryrun import dry_run

            for line in dry_run(spec):
                print(line)
            return 0
        if args.analyse_only:
            from rlstab_jax.ablate.cells import plan
            from rlstab_jax.ablate.report import analyse

            analyse(spec, plan(spec), out)
            print(f"report: {out / 'report.md'}")
            return 0
        result = runner.run_grid(spec, out, overrides=overrides, ray_address=args.ray,
                                 progress=not args.no_progress, max_cells=args.max_cells,
                                 ray_shared_fs=False if args.ray_no_shared_fs else None,
                                 ray_cpus=args.ray_cpus, ray_gpus=args.ray_gpus)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; continue with --resume <results dir>", file=sys.stderr)
        return 130
    print(f"cells trained: {len(result['ran'])}, already finished: {len(result['skipped'])}")
    if result["summary"] is None:
        print(f"grid not finished; continue with: python -m rlstab_jax.ablate --resume {out}")
    else:
        print(f"report: {out / 'report.md'}")
    print(f"results directory: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
