"""``python -m rlstab_jax.train``: run the default (SAC on Pendulum-v1) or any preset.

Bad input exits with code 2 and one line on stderr, never a JAX traceback. Exit codes: 0 done
(or nothing to do), 2 bad input / occupied run dir / no restorable checkpoint, 3 the non-finite
guard stopped the run, 130 SIGINT, 143 SIGTERM (docs/reliability.md).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from rlstab_jax.config.errors import ConfigError

EPILOG = """examples:
  python -m rlstab_jax.train                                  # SAC on Pendulum-v1
  python -m rlstab_jax.train --config configs/tqc/pendulum.yaml train.seeds=4
  python -m rlstab_jax.train agent.actor_lr=1e-4 train.total_steps=50000 run.dir=runs/mine
  python -m rlstab_jax.train --resume runs/mine train.total_steps=100000
  python -m rlstab_jax.train --list
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m rlstab_jax.train", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train an rlstab_jax agent. Config layers: schema defaults -> preset YAML "
                    "(--config) -> key=value overrides.")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.seeds=4")
    p.add_argument("--config", "-c", help="preset YAML file or name (default: sac/pendulum)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    p.add_argument("--list", action="store_true", help="list agents, envs and presets, then exit")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config and exit")
    p.add_argument("--no-progress", action="store_true", help="disable the progress bar")
    return p


def _list() -> None:
    from rlstab_jax.agents import registry
    from rlstab_jax.config.loader import list_presets
    from rlstab_jax.envs.registry import list_envs

    print("agents:")
    for name in registry.names():
        e = registry.get(name)
        print(f"  {name:10s} {e.kind:10s} {e.description}")
    print("envs:")
    for group, ids in list_envs().items():
        print(f"  {group}: {', '.join(ids)}")
    print("presets (--config NAME or configs/NAME.yaml):")
    for p in list_presets():
        print(f"  {p.removesuffix('.yaml')}")


def _on_sigterm(signum, frame):  # until the training loop installs its graceful handler
    from rlstab_jax.train.guard import RunInterrupted

    raise RunInterrupted(signum, "stopped by SIGTERM outside the training loop (nothing is "
                                 "written there); the last written checkpoint is intact")


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done, 2 bad input, 3 non-finite stop, 130 SIGINT, 143 SIGTERM."""
    args = _parser().parse_args(argv)
    previous = signal.getsignal(signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _main(args)
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


def _main(args: argparse.Namespace) -> int:
    try:
        if args.list:
            _list()
            return 0
        import yaml

        from rlstab_jax.config.loader import load_config, read_yaml

        if args.resume:
            run_dir = Path(args.resume)
            if not (run_dir / "config.yaml").is_file():
                raise ConfigError(f"--resume {run_dir}: no config.yaml there (not a run directory)")
            if args.config:
                raise ConfigError("--resume uses the run's own config.yaml; drop --config")
            cfg = load_config(base=read_yaml(run_dir / "config.yaml"), overrides=args.overrides)
        else:
            cfg = load_config(args.config, args.overrides)
        if args.print_config:
            print(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
            return 0
        from rlstab_jax.train.loop import NonFiniteError, run

        try:
            result = run(cfg, resume=Path(args.resume) if args.resume else None,
                         progress=False if args.no_progress else None)
        except NonFiniteError as e:
            print(f"error: {e}", file=sys.stderr)
            return 3
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        from rlstab_jax.train.guard import RunInterrupted

        if isinstance(e, RunInterrupted):
            print(e.message or str(e), file=sys.stderr)
            return e.exit_code
        print("interrupted before training started; nothing written", file=sys.stderr)
        return 130
    if result.stopped:  # "nothing to do" on a resume that already reached train.total_steps
        print(result.stopped)
        return 0
    if result.early_stopped:
        print(result.early_stopped)
    ev = result.final_eval
    if "eval/return" in ev:
        import numpy as np

        per_seed = ", ".join(f"{v:.1f}" for v in np.asarray(ev["eval/return"]))
        print(f"final eval/return (deterministic) per seed: {per_seed}")
    print(f"run directory: {result.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
