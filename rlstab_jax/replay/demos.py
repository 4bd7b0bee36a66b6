"""Demonstration files (``.npz``): schema, validated loading and saving.

Field report 003 §9 injects human runs tagged ``is_demo`` into replay; §11 shows what a bad
demo stream does (Q divergence). A malformed file must therefore fail loudly, before training,
with one line naming the key, what was found and what was expected.

Schema (``docs/design.md``, "Demo files"), ``N`` transitions:

=============  ======================  ===========================================
key            shape                   dtype / constraint
=============  ======================  ===========================================
obs            ``[N, *obs_shape]``     float32 (uint8 allowed for pixel envs), finite
action         ``[N, act_dim]``        float32, finite, in ``[-1, 1]``
reward         ``[N]``                 float32, finite
next_obs       ``[N, *obs_shape]``     as ``obs`` (true next obs at episode ends)
terminated     ``[N]``                 bool
truncated      ``[N]``                 bool
episode_id     ``[N]`` (optional)      integer (loaded as int32)
env_id         ``[]`` (optional)       str, must equal ``spec.env_id``
action_names   ``[act_dim]`` (opt.)    str, must equal ``spec.action_names``
=============  ======================  ===========================================

Files are read with ``allow_pickle=False``: object arrays (pickles) are refused.
"""

from __future__ import annotations

import os
import zipfile
from typing import Any

import numpy as np

from rlstab_jax.config.errors import ConfigError, did_you_mean
from rlstab_jax.envs.spec import EnvSpec

REQUIRED = ("obs", "action", "reward", "next_obs", "terminated", "truncated")
OPTIONAL = ("episode_id", "env_id", "action_names")


def _fail(path: str, msg: str) -> ConfigError:
    return ConfigError(f"demo file {path}: {msg}")


def _read(path: str) -> dict[str, np.ndarray]:
    if not os.path.isfile(path):
        raise _fail(path, "not found")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if not (magic.startswith(b"PK") or magic == b"\x93NUMPY"):
        raise _fail(path, "is not an .npz archive (unrecognised format; pickles are refused)")
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):
            raise _fail(path, "is a single .npy array, expected an .npz archive of named "
                              "arrays (save with rlstab_jax.replay.demos.save_demos)")
        with f:
            return {k: f[k] for k in f.files}
    except ConfigError:
        raise
    except ValueError as e:
        if "allow_pickle" in str(e) or "pickle" in str(e).lower():
            raise _fail(path, "contains pickled object arrays, refused (allow_pickle=False); "
                              "store plain numeric/bool/str arrays") from None
        raise _fail(path, f"cannot be read as .npz ({e})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise _fail(path, f"cannot be read as .npz ({type(e).__name__}: {e})") from None


def _check_float(path: str, key: str, x: np.ndarray, allow_uint8: bool = False) -> None:
    ok = x.dtype == np.float32 or (allow_uint8 and x.dtype == np.uint8)
    if not ok:
        want = "float32 or uint8" if allow_uint8 else "float32"
        raise _fail(path, f"{key} has dtype {x.dtype}, expected {want} "
                          f"(cast with .astype(np.{want.split()[0]}))")
    if x.dtype != np.uint8 and not np.all(np.isfinite(x)):
        bad = int(np.argmax(~np.isfinite(x).reshape(len(x), -1).all(axis=1)))
        raise _fail(path, f"{key} has non-finite values (NaN/Inf), first at row {bad}")


def _check_shape(path: str, key: str, x: np.ndarray, shape: tuple[int, ...]) -> None:
    if tuple(x.shape) != shape:
        raise _fail(path, f"{key} has shape {tuple(x.shape)}, expected {shape}")


def load_demos(path: str | os.PathLike, spec: EnvSpec) -> dict[str, np.ndarray]:
    """Load and validate a demo file for the env described by ``spec``.

    Args:
      path: ``.npz`` file following the schema above.
      spec: the env the demos will be replayed in (continuous actions in ``[-1, 1]``).

    Returns:
      ``{"obs", "action", "reward", "next_obs", "terminated", "truncated", "is_demo"}`` numpy
      arrays (``is_demo`` all True, field report 003 §9) plus ``episode_id`` if present.

    Raises:
      ConfigError: one line naming the file and the offending key (missing key, unknown key,
        wrong shape vs ``spec``, wrong dtype, non-finite values, actions outside ``[-1, 1]``,
        mismatched lengths, pickled content, env/action-name mismatch, empty file).
    """
    path = os.fspath(path)
    data = _read(path)
    for key in REQUIRED:
        if key not in data:
            raise _fail(path, f"missing key {key!r}{did_you_mean(key, data)}; required: "
                              f"{', '.join(REQUIRED)}")
    for key in data:
        if key not in REQUIRED + OPTIONAL:
            raise _fail(path, f"unknown key {key!r}{did_you_mean(key, REQUIRED + OPTIONAL)}; "
                              f"allowed: {', '.join(REQUIRED + OPTIONAL)}")
    if spec.action_kind != "continuous":
        raise _fail(path, f"env {spec.env_id!r} has discrete actions; demo files hold "
                          f"continuous actions in [-1, 1]")
    if "env_id" in data and str(data["env_id"]) != spec.env_id:
        raise _fail(path, f"env_id {str(data['env_id'])!r} does not match env {spec.env_id!r}")
    if "action_names" in data and tuple(map(str, data["action_names"])) != spec.action_names:
        raise _fail(path, f"action_names {tuple(map(str, data['action_names']))} do not match "
                          f"env action names {spec.action_names}")
    n = data["reward"].shape[0] if data["reward"].ndim else -1
    if n < 1:
        raise _fail(path, f"reward has shape {data['reward'].shape}; expected [N] with N >= 1")
    keys = REQUIRED + (("episode_id",) if "episode_id" in data else ())
    lengths = {k: (data[k].shape[0] if data[k].ndim else None) for k in keys}
    if len(set(lengths.values())) != 1:
        raise _fail(path, f"mismatched lengths {lengths}; every array needs the same N")
    pixels = spec.obs_dtype == "uint8"
    for key in ("obs", "next_obs"):
        _check_shape(path, key, data[key], (n, *spec.obs_shape))
        _check_float(path, key, data[key], allow_uint8=pixels)
    _check_shape(path, "action", data["action"], (n, spec.action_dim))
    _check_float(path, "action", data["action"])
    if np.any(np.abs(data["action"]) > 1.0):
        bad = int(np.argmax(np.any(np.abs(data["action"]) > 1.0, axis=1)))
        raise _fail(path, f"action values outside [-1, 1] (first at row {bad}: "
                          f"{data['action'][bad].tolist()}); store actions normalised to "
                          f"[-1, 1], not in env units")
    _check_shape(path, "reward", data["reward"], (n,))
    _check_float(path, "reward", data["reward"])
    for key in ("terminated", "truncated"):
        _check_shape(path, key, data[key], (n,))
        if data[key].dtype != np.bool_:
            raise _fail(path, f"{key} has dtype {data[key].dtype}, expected bool")
    out: dict[str, Any] = {k: data[k] for k in REQUIRED}
    out["is_demo"] = np.ones((n,), bool)
    if "episode_id" in data:
        if not np.issubdtype(data["episode_id"].dtype, np.integer):
            raise _fail(path, f"episode_id has dtype {data['episode_id'].dtype}, expected int32")
        out["episode_id"] = data["episode_id"].astype(np.int32)
    return out


def save_demos(path: str | os.PathLike, **arrays: Any) -> None:
    """Write demo arrays to ``path`` (``.npz``, compressed) in the schema above.

    Floats are stored as float32 (``obs``/``next_obs`` keep uint8), flags as bool,
    ``episode_id`` as int32 and ``env_id``/``action_names`` as str arrays. No pickling.

    Raises:
      ConfigError: if a required key is missing or a key is unknown.
    """
    path = os.fspath(path)
    for key in REQUIRED:
        if key not in arrays:
            raise _fail(path, f"save_demos: missing key {key!r}")
    out: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        x = np.asarray(value)
        if key in ("obs", "next_obs"):
            x = x if x.dtype == np.uint8 else x.astype(np.float32)
        elif key in ("action", "reward"):
            x = x.astype(np.float32)
        elif key in ("terminated", "truncated"):
            x = x.astype(bool)
        elif key == "episode_id":
            x = x.astype(np.int32)
        elif key in ("env_id", "action_names"):
            x = x.astype(str)
        else:
            raise _fail(path, f"save_demos: unknown key {key!r}"
                              f"{did_you_mean(key, REQUIRED + OPTIONAL)}")
        out[key] = x
    np.savez_compressed(path, **out)
