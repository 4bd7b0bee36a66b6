"""Run fingerprints stored with checkpoints, and the error raised when they differ.

A fingerprint is a flat dict of the config keys that old replay / parameter / optimiser state
depends on, e.g.
``{"agent.hidden_sizes": [256, 256], "env.obs_shape": [3]}``. It is written into every
checkpoint's metadata; restoring (or resuming into) a directory whose checkpoints carry a
different fingerprint is refused with one line naming the differing keys, because data from
an old architecture must not poison a new run (field report 001, phase 4).

Which keys, class by class (``run_fingerprint``; each class has a refusal test in
``tests/train/test_fingerprint.py``):

* architecture (array shapes or what stored parameters compute): the agent's
  ``architecture_keys()`` (widths, critics, encoder, ``activation``, ...) and the env's
  ``obs_shape``/``action_kind``/``action_dim``, plus ``replay.capacity``, ``env.n_envs``,
  ``train.seeds``, ``env.backend`` (replay and env-state shapes).
* what stored transitions and actor parameters MEAN (``data_keys()``): the log-std bounds and
  parametrisation (``log_std_min``/``max``/``init``, ``log_std_param``): report 001 Phase 4
  wipes replay after ``LOG_STD_MIN -2 -> -20`` because the old data holds the old policy's
  wobbles, and the same actor weights give another policy under other bounds.
* optimiser-state layout: ``detach_actor_features`` (with a shared encoder the actor's Adam
  state holds the encoder's moments or not).
* the environment that produced the data: ``env.kwargs`` (reward and dynamics: stored rewards
  from another reward function), ``env.frame_stack``, ``env.history``.

Deliberately NOT in it (resume with a new value is sound): learning rates, Adam betas, tau,
gamma, ``n_step`` (replay stores single steps and folds windows at sampling), alpha settings,
clip values, ``utd``/``policy_delay``/``batch_size``, ``init_kind`` (initialisation only),
the demo mixing keys (demos are not stored in replay), eval and checkpoint settings.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from rlstab_jax.config.errors import ConfigError

_ABSENT = "<absent>"
_ADVICE = (
    "start a new run (field report 001 phase 4: data from an old architecture or policy "
    "parametrisation must not poison a new run)"
)


class CheckpointMismatchError(ConfigError):
    """A checkpoint does not fit the current run: other architecture, shapes or structure.

    Raised instead of a deep Orbax traceback so the CLI prints one line and exits with code 2.
    """


def to_jsonable(x: Any) -> Any:
    """Convert ``x`` to plain JSON types (dict/list/str/int/float/bool/None).

    Tuples become lists, numpy/JAX scalars and arrays become Python numbers/lists, paths become
    strings, anything else its ``repr``. Used so that a fingerprint compares equal to itself
    after a JSON round trip (``(256, 256)`` and ``[256, 256]`` are the same architecture).
    """
    if x is None or isinstance(x, (str, bool, int, float)):
        return x
    if isinstance(x, Mapping):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    if isinstance(x, np.generic) or hasattr(x, "__array__"):
        return to_jsonable(np.asarray(x).tolist())
    return repr(x)


def normalize_fingerprint(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """Return a JSON-normalised copy of a flat fingerprint with keys sorted."""
    if not isinstance(fingerprint, Mapping):
        raise TypeError(f"fingerprint must be a flat dict, got {type(fingerprint).__name__}")
    return {str(k): to_jsonable(fingerprint[k]) for k in sorted(fingerprint, key=str)}


def _fmt(value: Any) -> str:
    if value is _ABSENT:
        return _ABSENT
    return json.dumps(value, sort_keys=True)


def _same(a: Any, b: Any) -> bool:
    if a is _ABSENT or b is _ABSENT:
        return a is b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b or _fmt(a) == _fmt(b)


def fingerprint_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """List ``"key: old -> new"`` for every key whose value differs (absent keys included).

    Example: ``["agent.hidden_sizes: [256, 256] -> [64, 64]"]``.
    """
    old_n, new_n = normalize_fingerprint(old), normalize_fingerprint(new)
    out = []
    for key in sorted(set(old_n) | set(new_n)):
        a, b = old_n.get(key, _ABSENT), new_n.get(key, _ABSENT)
        if not _same(a, b):
            out.append(f"{key}: {_fmt(a)} -> {_fmt(b)}")
    return out


def mismatch_message(where: str, diff: list[str]) -> str:
    """The one-line message of :class:`CheckpointMismatchError` for a fingerprint difference."""
    return (
        f"checkpoint in {where} was written with a different architecture or data setting: "
        f"{'; '.join(diff)}; {_ADVICE}"
    )


def assert_same_fingerprint(
    where: str, stored: Mapping[str, Any], current: Mapping[str, Any]
) -> None:
    """Raise :class:`CheckpointMismatchError` if ``stored`` and ``current`` differ."""
    diff = fingerprint_diff(stored, current)
    if diff:
        raise CheckpointMismatchError(mismatch_message(where, diff))


def run_fingerprint(cfg: Any, spec: Any, backend: str) -> dict[str, Any]:
    """The fingerprint of a run: ``cfg`` (``config.loader.Config``), its ``EnvSpec`` and the
    resolved env backend. See the module docstring for which keys and why."""
    a = cfg.agent
    keys = tuple(getattr(a, "architecture_keys", tuple)()) + tuple(
        getattr(a, "data_keys", tuple)())
    fp: dict[str, Any] = {f"agent.{k}": to_jsonable(getattr(a, k)) for k in keys}
    fp.update(
        {
            "agent.name": cfg.agent_name,
            "env.id": spec.env_id,
            "env.obs_shape": list(spec.obs_shape),
            "env.action_kind": spec.action_kind,
            "env.action_dim": spec.action_dim,
            "env.n_envs": cfg.env.n_envs,
            "env.backend": backend,
            "env.kwargs": to_jsonable(dict(cfg.env.kwargs)),
            "env.frame_stack": cfg.env.frame_stack,
            "env.history": cfg.env.history,
            "train.seeds": cfg.train.seeds,
            "replay.capacity": cfg.replay.capacity,
        }
    )
    # The compact replay's state has another layout (only present when used, so checkpoints
    # of flat-replay runs written before it existed still resume).
    from rlstab_jax.agents import registry
    from rlstab_jax.replay.compact import compact_layout

    try:
        off_policy = registry.get(cfg.agent_name).kind == "off_policy"
    except Exception:  # an unregistered name fails elsewhere with its own message
        off_policy = False
    if off_policy and compact_layout(cfg.replay.layout, spec.obs_dtype, cfg.env.frame_stack,
                                     cfg.env.history)[0]:
        fp["replay.layout"] = "compact"
        fp["replay.final_fraction"] = cfg.replay.final_fraction
    if off_policy and cfg.replay.priority:  # a sum tree in the replay state (absent when off)
        fp["replay.priority"] = True
        fp["replay.priority_exponent"] = cfg.replay.priority_exponent
    return fp
