"""``python -m rlstab_jax.sweep``: stability-aware Optuna sweeps over vmapped trial batches.

Bad input (unknown key, bad space, unreachable storage, a study of another architecture) exits
with code 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from rlstab_jax.config.errors import ConfigError

EPILOG = """examples:
  python -m rlstab_jax.sweep --config sac/racer --space report001_phase3 --trials 24 --batch 4
  python -m rlstab_jax.sweep --config sac/racer --space my_space.yaml --stability-weight 50
  python -m rlstab_jax.sweep ... --storage postgresql://user@host/db --study racer-phase3
  python -m rlstab_jax.sweep ... --ray 10.0.0.1:6379
  python -m rlstab_jax.sweep --resume sweeps/sweep-20260101-120000    # after an interruption
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m rlstab_jax.sweep", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Optuna sweep; trials that differ only in numeric values train as one "
                    "vmapped batch; the stability score is logged at every evaluation and "
                    "before a trial is pruned.")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the base config")
    p.add_argument("--config", "-c", help="base preset (default sac/pendulum)")
    p.add_argument("--space", default="report001_phase3",
                   help="search space YAML or preset (default report001_phase3)")
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--batch", type=int, default=4, help="trials asked (and vmapped) at once")
    p.add_argument("--seeds", type=int, default=1, help="seeds per trial (objective = mean)")
    p.add_argument("--dir", help="sweep directory (default sweeps/<study>-<timestamp>)")
    p.add_argument("--study", default="sweep", help="study name")
    p.add_argument("--storage", help="Optuna RDB URL (default sqlite:///<dir>/study.db)")
    p.add_argument("--pruner", default="median", help="median | threshold | none")
    p.add_argument("--prune-lower", type=float, help="threshold pruner: prune below this")
    p.add_argument("--prune-warmup", type=int, default=0,
                   help="evaluation steps (env steps) before pruning may happen")
    p.add_argument("--stability-weight", type=float, default=0.0,
                   help="objective = eval return + W * stability score (0 = return only)")
    p.add_argument("--sampler-seed", type=int, default=0)
    p.add_argument("--ray", metavar="ADDRESS", help="run trial batches as Ray tasks")
    p.add_argument("--resume", metavar="DIR",
                   help="continue the sweep in DIR with its recorded settings: an "
                        "interrupted batch continues from its checkpoint")
    return p


def _resumed(args: argparse.Namespace) -> dict:
    """Settings of the sweep in ``args.resume`` (its ``sweep.json``)."""
    import json

    from rlstab_jax.config.loader import load_config
    from rlstab_jax.sweep.space import Param
    from rlstab_jax.sweep.study import make_pruner

    path = Path(args.resume) / "sweep.json"
    if not path.is_file():
        raise ConfigError(f"--resume {args.resume}: no sweep.json there (not a sweep directory)")
    meta = json.loads(path.read_text())
    pr = meta.get("pruner") or {"kind": "median", "lower": None, "startup": meta["batch"],
                                "warmup": 0}
    return dict(cfg=load_config(base=meta["base"]),
                space=tuple(Param(**{**p, "values": tuple(p["values"])})
                            for p in meta["space"]),
                directory=Path(args.resume), n_trials=meta.get("trials", args.trials),
                batch_size=meta["batch"], seeds=meta["seeds"], study_name=meta["study"],
                storage=meta["storage"], stability_weight=meta["stability_weight"],
                sampler_seed=meta.get("sampler_seed", args.sampler_seed), pruner_spec=pr,
                pruner=make_pruner(pr["kind"], pr["lower"], pr["startup"], pr["warmup"]))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        from rlstab_jax.config.loader import load_config
        from rlstab_jax.sweep.runner import run_sweep
        from rlstab_jax.sweep.space import load_space
        from rlstab_jax.sweep.study import make_pruner

        for name in ("trials", "batch", "seeds"):
            if getattr(args, name) < 1:
                raise ConfigError(f"--{name}={getattr(args, name)} must be >= 1")
        if args.resume:
            kw = _resumed(args)
            directory = kw.pop("directory")
            cfg, space = kw.pop("cfg"), kw.pop("space")
            result = run_sweep(cfg, space, directory, **kw, ray_address=args.ray, resume=True)
        else:
            cfg = load_config(args.config, args.overrides)
            space = load_space(args.space)
            directory = Path(args.dir) if args.dir else Path("sweeps") / (
                f"{args.study}-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
            pr = {"kind": args.pruner, "lower": args.prune_lower, "startup": args.batch,
                  "warmup": args.prune_warmup}
            pruner = make_pruner(pr["kind"], pr["lower"], pr["startup"], pr["warmup"])
            result = run_sweep(cfg, space, directory, n_trials=args.trials,
                               batch_size=args.batch, seeds=args.seeds, study_name=args.study,
                               storage=args.storage, pruner=pruner,
                               stability_weight=args.stability_weight,
                               sampler_seed=args.sampler_seed, ray_address=args.ray,
                               pruner_spec=pr)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; continue with --resume <sweep dir> (finished trials are in the "
              "study storage)", file=sys.stderr)
        return 130
    for r in result["trials"]:
        print(f"trial {r['number']}: {r['state']} value={r.get('value')} "
              f"stability={r.get('stability_score')} params={r.get('params')}")
    best = result["best"]
    if best:
        print(f"best: trial {best['number']} value={best['value']:.3f} params={best['params']}")
    print(f"sweep directory: {directory} (storage {result['storage']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
