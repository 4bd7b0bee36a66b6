"""The Optuna study: storage, pruner, and the architecture fingerprint guard.

Storage defaults to SQLite in the sweep directory (``sqlite:///<dir>/study.db``); any Optuna
RDB URL (``postgresql://...``, ``mysql://...``) shares one study between machines. The study
records the architecture fingerprint of the config it was created for (user attribute
``fingerprint``), and every trial carries it too; opening the study with a different
architecture is refused with one line (field report 001 Phase 4: trials and replay from an old
architecture are poisoned; wipe the study after an architecture change).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.config.loader import Config
from rlstab_jax.train.fingerprint import fingerprint_diff, normalize_fingerprint


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError("sweeps need the 'sweeps' extra: pip install 'rlstab_jax[sweeps]'") \
            from None
    return optuna


def architecture_fingerprint(cfg: Config, searched: set[str]) -> dict[str, Any]:
    """Architecture-relevant config keys (minus the searched ones), JSON-normalised."""
    a = cfg.agent
    keys = a.architecture_keys() if hasattr(a, "architecture_keys") else ()
    fp: dict[str, Any] = {f"agent.{k}": getattr(a, k) for k in keys
                          if f"agent.{k}" not in searched}
    fp.update({"agent.name": cfg.agent_name, "env.id": cfg.env.id,
               "env.kwargs": dict(cfg.env.kwargs), "env.frame_stack": cfg.env.frame_stack,
               "env.history": cfg.env.history})
    return normalize_fingerprint({k: v for k, v in fp.items() if k not in searched})


def default_storage(directory: Path) -> str:
    return f"sqlite:///{(directory / 'study.db').resolve()}"


def make_pruner(kind: str, lower: float | None, startup: int, warmup: int) -> Any:
    optuna = _optuna()
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "threshold":
        if lower is None:
            raise ConfigError("--pruner threshold needs --prune-lower VALUE")
        return optuna.pruners.ThresholdPruner(lower=lower, n_warmup_steps=warmup)
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
    raise ConfigError(f"--pruner {kind!r} must be one of median, threshold, none")


def open_study(name: str, storage: str, fingerprint: dict[str, Any], pruner: Any,
               sampler_seed: int | None = None) -> Any:
    """Create or load the study; refuse a different architecture with one line."""
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize",
                                    pruner=pruner, load_if_exists=True,
                                    sampler=optuna.samplers.TPESampler(seed=sampler_seed))
    except Exception as e:  # bad URL, unreachable database, missing driver
        raise ConfigError(f"--storage {storage}: cannot open the study "
                          f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    check_fingerprint(study, fingerprint, storage)
    if "fingerprint" not in study.user_attrs:
        study.set_user_attr("fingerprint", fingerprint)
    return study


def check_fingerprint(study: Any, fingerprint: dict[str, Any], storage: str) -> None:
    stored = [study.user_attrs.get("fingerprint")]
    stored += [t.user_attrs.get("fingerprint") for t in study.get_trials(deepcopy=False)]
    for fp in stored:
        if fp is None:
            continue
        diff = fingerprint_diff(fp, fingerprint)
        if diff:
            raise ConfigError(
                f"study '{study.study_name}' in {storage} holds trials of a different "
                f"architecture: {'; '.join(diff)}; wipe it (delete the study database or use "
                "a new --study name; field report 001 phase 4)")
