"""Turn an arbitrary state pytree into a flat dict of numpy arrays for Orbax, and back.

Why flat: the target pytree given at restore time (``jax.eval_shape(init, ...)`` or a concrete
state) supplies the structure (flax struct dataclasses, NamedTuples, optax states, dicts), so the
checkpoint only needs named leaves plus a JSON record per leaf (kind, dtype, shape). Comparing
those records with the target before reading any array gives one clear line naming the leaves
that differ instead of a deep Orbax traceback (field report 001, phase 4).

Typed PRNG keys (``jax.random.key``, dtype ``key<impl>``) cannot be written as raw arrays:
they are stored as their ``jax.random.key_data`` (uint32 ``[*shape, impl_words]``) with the impl
name (e.g. ``"threefry2x32"``) in the record, and rebuilt with ``jax.random.wrap_key_data``,
which is bit-exact. Legacy raw ``PRNGKey`` uint32 arrays are ordinary arrays.

Python scalar leaves (``int``/``float``/``bool``) are stored as 0-d numpy arrays (int64,
float64, bool: exact) and restored as the target's type.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

_PY_SCALARS = (bool, int, float, complex)
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


def _is_key_dtype(dtype: Any) -> bool:
    return jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _part(entry: Any) -> str:
    tu = jax.tree_util
    if isinstance(entry, tu.DictKey):
        raw = entry.key
    elif isinstance(entry, tu.GetAttrKey):
        raw = entry.name
    elif isinstance(entry, tu.SequenceKey):
        raw = entry.idx
    elif isinstance(entry, tu.FlattenedIndexKey):
        raw = entry.key
    else:
        raw = entry
    return _UNSAFE.sub("_", str(raw)) or "_"


def leaf_names(paths: list[tuple]) -> list[str]:
    """Readable, unique, filesystem-safe leaf names, e.g. ``actor.params.Dense_0.kernel``.

    Deterministic in the tree structure, so the same structure gives the same names at save and
    restore time. Names that collide after sanitising get a ``~<leaf index>`` suffix.
    """
    names = [".".join(_part(e) for e in p) or "root" for p in paths]
    seen: dict[str, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
    return [f"{n}~{i}" if seen[n] > 1 else n for i, n in enumerate(names)]


def _describe(kind: str, dtype: str, shape: list[int] | tuple[int, ...]) -> str:
    dims = ",".join(str(int(d)) for d in shape)
    return f"{'python ' if kind == 'python' else ''}{dtype}[{dims}]"


def encode(state: Any, copy: bool = False) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Flatten ``state`` into ``({name: np.ndarray}, records)``.

    Args:
      state: any pytree of jax/numpy arrays (typed PRNG keys included) and Python scalars.
      copy: return host copies that share no memory with the inputs (needed for async saves,
        so later in-place edits or buffer donation by the caller cannot change what is written).

    Returns:
      the named host arrays and one JSON-able record per leaf, in flatten order:
      ``{"name", "kind": "array"|"key"|"python", "dtype", "shape", "impl"?}``.
    """
    with_path, _ = jax.tree_util.tree_flatten_with_path(state)
    names = leaf_names([p for p, _ in with_path])
    raw, records = [], []
    for name, (_, leaf) in zip(names, with_path):
        if isinstance(leaf, jax.ShapeDtypeStruct):
            raise TypeError(f"cannot checkpoint abstract leaf {name} (a ShapeDtypeStruct)")
        if isinstance(leaf, _PY_SCALARS):
            arr = np.asarray(leaf)
            rec = {"name": name, "kind": "python", "dtype": str(arr.dtype), "shape": []}
            raw.append(arr)
        elif hasattr(leaf, "dtype") and hasattr(leaf, "shape"):
            if _is_key_dtype(leaf.dtype):
                rec = {"name": name, "kind": "key", "dtype": str(leaf.dtype),
                       "shape": list(leaf.shape), "impl": str(jax.random.key_impl(leaf))}
                raw.append(jax.random.key_data(leaf))
            else:
                rec = {"name": name, "kind": "array", "dtype": str(np.dtype(leaf.dtype)),
                       "shape": list(leaf.shape)}
                raw.append(leaf)
        else:
            raise TypeError(f"cannot checkpoint leaf {name} of type {type(leaf).__name__}")
        records.append(rec)
    host = jax.device_get(raw)  # one batched transfer for all device arrays
    # On CPU, device_get may return views of jax buffers and numpy inputs are the caller's:
    # an async write must own its bytes (a donated buffer or in-place edit must not leak in).
    as_host = (lambda h: np.array(h, copy=True)) if copy else np.asarray
    return {r["name"]: as_host(h) for r, h in zip(records, host)}, records


def nonfinite_leaves(values: dict[str, np.ndarray], records: list[dict[str, Any]]) -> list[str]:
    """Names of floating/complex leaves holding NaN or Inf (keys and integers are skipped)."""
    bad = []
    for rec in records:
        v = values[rec["name"]]
        floating = rec["kind"] != "key" and jnp.issubdtype(v.dtype, jnp.inexact)
        if floating and not np.isfinite(v).all():
            bad.append(rec["name"])
    return bad


@lru_cache(maxsize=None)
def _key_dtype(impl: str) -> Any:
    return jax.eval_shape(lambda: jax.random.key(0, impl=impl)).dtype


def _target_spec(leaf: Any) -> tuple[str, str, tuple[int, ...]]:
    if isinstance(leaf, _PY_SCALARS):
        return "python", str(np.asarray(leaf).dtype), ()
    if hasattr(leaf, "dtype") and hasattr(leaf, "shape"):
        if _is_key_dtype(leaf.dtype):
            return "key", str(leaf.dtype), tuple(leaf.shape)
        return "array", str(np.dtype(leaf.dtype)), tuple(leaf.shape)
    raise TypeError(f"restore target leaf of type {type(leaf).__name__} has no shape/dtype")


def _castable(rec: dict[str, Any], leaf: Any, t_dtype: str) -> bool:
    """A Python-scalar or weakly typed side may change width (int64 <-> int32), not kind."""
    loose = (
        rec["kind"] == "python"
        or isinstance(leaf, _PY_SCALARS)
        or getattr(leaf, "weak_type", False)
    )
    return loose and np.can_cast(np.dtype(rec["dtype"]), np.dtype(t_dtype), "same_kind")


def compare(records: list[dict[str, Any]], target: Any) -> list[str]:
    """Differences between stored leaf records and a target pytree, one string per problem.

    Per-leaf shape/dtype/key problems come first (``"a.b: float32[3,8] -> float32[3,16]"``),
    then one entry each for leaves only in the target and only in the checkpoint.
    """
    with_path, _ = jax.tree_util.tree_flatten_with_path(target)
    names = leaf_names([p for p, _ in with_path])
    stored = {r["name"]: r for r in records}
    name_set = set(names)
    problems: list[str] = []
    only_target = [n for n in names if n not in stored]
    only_ckpt = [n for n in stored if n not in name_set]
    for name, (_, leaf) in zip(names, with_path):
        rec = stored.get(name)
        if rec is None:
            continue
        kind, t_dtype, t_shape = _target_spec(leaf)
        old = _describe(rec["kind"], rec["dtype"], rec["shape"])
        new = _describe(kind, t_dtype, t_shape)
        if tuple(rec["shape"]) != t_shape or (rec["kind"] == "key") != (kind == "key"):
            problems.append(f"{name}: {old} -> {new}")
        elif kind == "key" and _key_dtype(rec["impl"]) != leaf.dtype:
            problems.append(f"{name}: PRNG impl {rec['impl']} -> {new}")
        elif kind != "key" and rec["dtype"] != t_dtype and not _castable(rec, leaf, t_dtype):
            problems.append(f"{name}: {old} -> {new}")
    for label, group in (("only in target", only_target), ("only in checkpoint", only_ckpt)):
        if group:
            more = f" (+{len(group) - 4} more)" if len(group) > 4 else ""
            problems.append(f"{label}: {', '.join(group[:4])}{more}")
    return problems


def _decode_leaf(rec: dict[str, Any], leaf: Any, value: np.ndarray) -> Any:
    host_leaf = isinstance(leaf, (np.ndarray, np.generic) + _PY_SCALARS)
    sharding = None if host_leaf else getattr(leaf, "sharding", None)
    if rec["kind"] == "key":
        key = jax.random.wrap_key_data(jnp.asarray(value), impl=rec["impl"])
        return key if sharding is None else jax.device_put(key, sharding)
    if isinstance(leaf, _PY_SCALARS):
        return type(leaf)(value.item())
    _, t_dtype, _ = _target_spec(leaf)
    if str(value.dtype) != t_dtype:
        value = value.astype(np.dtype(t_dtype))
    if isinstance(leaf, np.ndarray):
        return value
    if isinstance(leaf, np.generic):
        return value[()]
    if getattr(leaf, "weak_type", False) and value.ndim == 0:
        weak = jnp.asarray(value.item())  # keep weak typing: a restored state must not retrace jit
        if weak.dtype == value.dtype:
            return weak if sharding is None else jax.device_put(weak, sharding)
    return jax.device_put(value, sharding) if sharding is not None else jnp.asarray(value)


def decode(records: list[dict[str, Any]], values: dict[str, np.ndarray], target: Any) -> Any:
    """Rebuild a pytree with the structure of ``target`` from named host arrays.

    Leaves come back as the target's leaf type: ``jax.Array`` for jax arrays and
    ``ShapeDtypeStruct`` (placed on the target's sharding when it has one), numpy for numpy,
    Python scalars for Python scalars, typed PRNG keys for key leaves. Call :func:`compare`
    first; this assumes the records fit the target.
    """
    with_path, treedef = jax.tree_util.tree_flatten_with_path(target)
    names = leaf_names([p for p, _ in with_path])
    stored = {r["name"]: r for r in records}
    leaves = []
    for name, (_, leaf) in zip(names, with_path):
        value = np.asarray(values[name])
        rec = stored[name]
        expected = tuple(rec["shape"]) if rec["kind"] != "key" else value.shape
        if value.shape != expected or (rec["kind"] != "key" and str(value.dtype) != rec["dtype"]):
            raise ValueError(
                f"{name}: stored array {value.dtype}{list(value.shape)} does not match its record"
            )
        leaves.append(_decode_leaf(rec, leaf, value))
    return jax.tree_util.tree_unflatten(treedef, leaves)
