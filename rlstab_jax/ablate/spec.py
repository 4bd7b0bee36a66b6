"""Grid files: parse, validate every variant's config, and group variants into programs.

A grid file (``ablations/<name>.yaml``) names a base preset, overrides shared by every
variant, the variants (explicit and/or the product of ``grid:`` axes), the seeds and the
statistics settings. Every key a variant sets is classified: ``agent.<field>`` where the field
is an ``hparam()`` of the agent's config is *numeric* (a vmapped leaf); anything else is
*structural* (it changes the compiled graph). Variants whose configs agree on everything but
numeric hyper-parameters form one *program*: one compiled chunk trains all their seeds.

Bad input (unknown key or value, an empty grid, a variant whose config fails validation)
raises a one-line :class:`ConfigError` naming the grid file, the variant and the key, before
anything is traced or compiled.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from rlstab_jax.config.errors import ConfigError, did_you_mean
from rlstab_jax.config.loader import Config, load_config, read_yaml, resolve_preset
from rlstab_jax.config.split import hparam_names

PRESET_DIR = Path(__file__).resolve().parent / "presets"
TOP_KEYS = ("name", "description", "base", "set", "seeds", "seed", "seed_block", "variants",
            "grid", "baseline", "compare", "stats", "claims")
STATS_KEYS = ("metric", "collapse_drop", "collapse_patience", "collapse_baseline", "threshold",
              "min_score", "max_score", "reps", "ci", "final_evals", "floor_frac", "bootstrap_seed")


@dataclasses.dataclass(frozen=True)
class StatsSpec:
    """How runs are scored (see ``rlstab_jax.ablate.stats``)."""

    metric: str = "eval/return"
    collapse_drop: float = 0.3  # a seed is "down" below best - drop * |best| (or vs baseline)
    collapse_patience: int = 3  # consecutive down evals that make a collapse
    collapse_baseline: float | None = None  # return of a policy that learned nothing
    threshold: float | None = None  # time-to-threshold level (default: see stats.py)
    min_score: float | None = None  # normalisation for the optimality gap (default: grid min)
    max_score: float | None = None  # (default: grid max)
    reps: int = 2000  # bootstrap replications
    ci: float = 0.95
    final_evals: int = 1  # the final score averages this many last evaluations
    floor_frac: float = 0.5  # log_std/frac_at_floor above this = entropy floor hit
    bootstrap_seed: int = 0


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    overrides: dict[str, Any]  # dotted key -> value
    cfg: Config
    numeric: dict[str, float]  # the variant's hyper-parameters (agent hparams)


@dataclasses.dataclass(frozen=True)
class Program:
    """Variants that differ only in numeric hyper-parameters: one compiled chunk."""

    index: int
    name: str
    variants: tuple[Variant, ...]
    structural: dict[str, Any]  # structural keys the grid sets for this program

    @property
    def slug(self) -> str:
        return f"p{self.index}-{_slug(self.name)}"


@dataclasses.dataclass(frozen=True)
class GridSpec:
    name: str
    path: str
    description: str
    base: str
    programs: tuple[Program, ...]
    seeds: tuple[int, ...]
    seed_block: int
    baseline: str | None
    compare: tuple[tuple[str, str], ...]
    stats: StatsSpec
    claims: dict[str, str]
    raw: dict[str, Any]

    @property
    def variants(self) -> tuple[Variant, ...]:
        return tuple(v for p in self.programs for v in p.variants)

    def blocks(self) -> list[tuple[int, ...]]:
        b = self.seed_block
        return [self.seeds[i:i + b] for i in range(0, len(self.seeds), b)]


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", s)[:60]


def list_grid_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def resolve_grid(path: str) -> Path:
    """A grid file path or a preset short name (``sac_racer_000``)."""
    p = Path(path)
    if p.is_file():
        return p
    for cand in (PRESET_DIR / path, PRESET_DIR / f"{path}.yaml",
                 Path("ablations") / f"{path}.yaml"):
        if cand.is_file():
            return cand
    raise ConfigError(f"grid {path!r}: no such file or preset"
                      f"{did_you_mean(path, list_grid_presets())}; presets: "
                      f"{', '.join(list_grid_presets())}")


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"agent.gamma": 0.9}`` -> ``{"agent": {"gamma": 0.9}}`` (one dot level + env.kwargs)."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        d = out
        for part in parts[:-1]:
            d = d.setdefault(part, {})
        d[parts[-1]] = value
    return out


def _check_flat(where: str, mapping: Any) -> dict[str, Any]:
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise ConfigError(f"{where} must be a mapping of dotted keys (agent.gamma: 0.99)")
    for key in mapping:
        if not isinstance(key, str) or "." not in key:
            raise ConfigError(f"{where}: key {key!r} must be dotted like 'agent.gamma'")
    return dict(mapping)


def _variant_cfg(base: dict[str, Any], shared: dict[str, Any], over: dict[str, Any]) -> Config:
    merged = OmegaConf.to_container(
        OmegaConf.merge(OmegaConf.create(base), OmegaConf.create(_nest(shared)),
                        OmegaConf.create(_nest(over))), resolve=True)
    return load_config(base=merged)


def _static_signature(cfg: Config) -> str:
    d = cfg.to_dict()
    for name in hparam_names(cfg.agent):
        d["agent"].pop(name, None)
    d["train"].pop("seed", None)
    d["train"].pop("seeds", None)
    d.pop("run", None)
    d.pop("log", None)
    return json.dumps(d, sort_keys=True, default=str)


def _variants_from(data: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    variants = data.get("variants") or {}
    if not isinstance(variants, dict):
        raise ConfigError(f"{where}: 'variants' must be a mapping name -> {{dotted key: value}}")
    for name, over in variants.items():
        out[str(name)] = _check_flat(f"{where}: variant '{name}'", over)
    grid = data.get("grid") or {}
    if not isinstance(grid, dict):
        raise ConfigError(f"{where}: 'grid' must be a mapping dotted key -> list of values")
    grid = _check_flat(f"{where}: grid", grid)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: grid axis '{key}' must be a non-empty list of values")
    if grid:
        for combo in itertools.product(*grid.values()):
            over = dict(zip(grid.keys(), combo))
            name = ",".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in over.items())
            if name in out:
                raise ConfigError(f"{where}: variant name {name!r} given twice")
            out[name] = over
    return out


def load_grid(path: str, overrides: dict[str, Any] | None = None) -> GridSpec:
    """Read and fully validate a grid file (no JAX tracing or compilation).

    Args:
      path: a grid file or a preset short name.
      overrides: dotted keys applied to every variant after the file's ``set:`` (the CLI's
        ``key=value`` arguments, e.g. ``train.total_steps=2000`` for a quick check).

    Raises:
      ConfigError: one line naming the file, the variant (cell) and the key.
    """
    file = resolve_grid(path).resolve()
    data = _resolve_paths(read_yaml(file), file)
    where = str(file)
    for key in data:
        if key not in TOP_KEYS:
            raise ConfigError(f"{where}: unknown grid key '{key}'{did_you_mean(key, TOP_KEYS)}")
    if not data.get("base"):
        raise ConfigError(f"{where}: 'base' (a preset name or config file) is required")
    base_path = resolve_preset(str(data["base"]))
    base = read_yaml(base_path)
    shared = _check_flat(f"{where}: set", data.get("set"))
    shared.update(overrides or {})
    raw_variants = _variants_from(data, where)
    if not raw_variants:
        raise ConfigError(f"{where}: empty grid (give 'variants:' or 'grid:' with at least "
                          "one variant)")
    seeds_n = data.get("seeds", 5)
    if not isinstance(seeds_n, int) or isinstance(seeds_n, bool) or seeds_n < 1:
        raise ConfigError(f"{where}: seeds={seeds_n!r} must be an integer >= 1")
    variants: list[Variant] = []
    for name, over in raw_variants.items():
        for key in over:
            if key.split(".")[0] == "train" and key.split(".")[1] in ("seed", "seeds"):
                raise ConfigError(f"{where}: variant '{name}': {key} is set by the grid "
                                  "('seeds:'/'seed:'), not per variant")
        try:
            cfg = _variant_cfg(base, shared, over)
        except ConfigError as e:
            raise ConfigError(f"{where}: variant '{name}': {e}") from None
        # plain floats (no jnp): validating a grid must not touch JAX at all
        numeric = {k: float(getattr(cfg.agent, k)) for k in hparam_names(cfg.agent)}
        variants.append(Variant(name, over, cfg, numeric))
    seed0 = data.get("seed", variants[0].cfg.train.seed)
    if not isinstance(seed0, int) or isinstance(seed0, bool) or seed0 < 0:
        raise ConfigError(f"{where}: seed={seed0!r} must be an integer >= 0")
    seed_block = data.get("seed_block", seeds_n)
    if not isinstance(seed_block, int) or isinstance(seed_block, bool) or seed_block < 1:
        raise ConfigError(f"{where}: seed_block={seed_block!r} must be an integer >= 1")
    groups: dict[str, list[Variant]] = {}
    for v in variants:
        groups.setdefault(_static_signature(v.cfg), []).append(v)
    programs = []
    for i, members in enumerate(groups.values()):
        hp_names = set(hparam_names(members[0].cfg.agent))
        structural = {k: val for k, val in members[0].overrides.items()
                      if not (k.startswith("agent.") and k[6:] in hp_names)}
        keys = sorted({k for m in members for k in m.overrides
                       if not (k.startswith("agent.") and k[6:] in hp_names)})
        if len(members) == 1:
            name = members[0].name
        elif keys and all(set(keys) <= set(m.overrides) for m in members):
            name = ",".join(f"{k.rsplit('.', 1)[-1]}={members[0].overrides[k]}" for k in keys)
        else:
            name = "+".join(m.name for m in members) if len(members) <= 3 else (
                f"{members[0].name}+{len(members) - 1}more")
        programs.append(Program(i, name, tuple(members), structural))
    names = [v.name for v in variants]
    baseline = data.get("baseline", names[0])
    if baseline is not None and baseline not in names:
        raise ConfigError(f"{where}: baseline {baseline!r} is not a variant"
                          f"{did_you_mean(str(baseline), names)}")
    compare = []
    for pair in data.get("compare") or []:
        if not (isinstance(pair, list) and len(pair) == 2 and all(p in names for p in pair)):
            raise ConfigError(f"{where}: compare entry {pair!r} must be [variant, variant] "
                              f"from {names}")
        compare.append((pair[0], pair[1]))
    if not compare and baseline is not None:
        compare = [(n, baseline) for n in names if n != baseline]
    stats = _stats(where, data.get("stats") or {})
    claims = data.get("claims") or {}
    if not isinstance(claims, dict):
        raise ConfigError(f"{where}: 'claims' must map a comparison 'a vs b' to the claim text")
    return GridSpec(
        name=str(data.get("name") or file.stem), path=str(file),
        description=str(data.get("description") or ""), base=str(data["base"]),
        programs=tuple(programs), seeds=tuple(range(seed0, seed0 + seeds_n)),
        seed_block=min(seed_block, seeds_n), baseline=baseline, compare=tuple(compare),
        stats=stats, claims={str(k): str(v) for k, v in claims.items()}, raw=data)


PATH_KEYS = ("replay.demos",)


def _resolve_paths(data: dict[str, Any], file: Path) -> dict[str, Any]:
    """Relative file paths (``replay.demos``) that exist next to the grid file become absolute.

    The results directory stores the grid with these absolute paths, so ``--resume`` and Ray
    workers find the same files.
    """

    def fix(mapping: Any) -> None:
        if not isinstance(mapping, dict):
            return
        for key in PATH_KEYS:
            v = mapping.get(key)
            if isinstance(v, str) and not Path(v).is_absolute():
                cand = file.parent / v
                if cand.exists():
                    mapping[key] = str(cand.resolve())

    fix(data.get("set"))
    for over in (data.get("variants") or {}).values() if isinstance(
            data.get("variants"), dict) else ():
        fix(over)
    return data


def _stats(where: str, d: Any) -> StatsSpec:
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: 'stats' must be a mapping")
    for key in d:
        if key not in STATS_KEYS:
            raise ConfigError(f"{where}: unknown stats key 'stats.{key}'"
                              f"{did_you_mean(key, STATS_KEYS)}")
    try:
        s = StatsSpec(**d)
    except TypeError as e:
        raise ConfigError(f"{where}: stats: {e}") from None
    for key in ("collapse_drop", "floor_frac"):
        v = getattr(s, key)
        if not (isinstance(v, (int, float)) and 0 < v <= 1):
            raise ConfigError(f"{where}: stats.{key}={v!r} must be in (0, 1]")
    for key in ("collapse_patience", "reps", "final_evals"):
        v = getattr(s, key)
        if not (isinstance(v, int) and v >= 1):
            raise ConfigError(f"{where}: stats.{key}={v!r} must be an integer >= 1")
    if not 0 < s.ci < 1:
        raise ConfigError(f"{where}: stats.ci={s.ci!r} must be in (0, 1)")
    for key in ("threshold", "min_score", "max_score", "collapse_baseline"):
        v = getattr(s, key)
        if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v)):
            raise ConfigError(f"{where}: stats.{key}={v!r} must be a finite number or null")
    return s


def with_seeds(spec: GridSpec, n: int) -> GridSpec:
    """``spec`` with ``n`` seeds (``--seeds``), keeping the first seed."""
    if n < 1:
        raise ConfigError(f"--seeds={n} must be >= 1")
    block = min(spec.seed_block, n)
    # ``raw`` is what ``prepare`` writes to ``grid.yaml``: record the new seeds there too, so
    # that ``--resume``/``--analyse-only`` plan the same cells (same seed blocks).
    raw = {**spec.raw, "seeds": n, "seed_block": block}
    return dataclasses.replace(spec, seeds=tuple(range(spec.seeds[0], spec.seeds[0] + n)),
                               seed_block=block, raw=raw)
