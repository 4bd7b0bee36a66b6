"""Checkpoints that cannot poison a run: finite-only, architecture-checked, crash-safe, best kept.

Layout (one writer per directory)::

    <run>/checkpoints/<step>/{state,meta}     periodic, the last ``keep`` are kept
    <run>/checkpoints/best/<n>/{state,meta}   best by eval return, 1 kept (field report 003 §11D)

Each checkpoint is two Orbax items: ``state`` (a flat dict of named numpy arrays, see
:mod:`rlstab_jax.train.pytree_codec`; typed PRNG keys are stored as ``key_data`` plus the impl
name) and ``meta`` (JSON: step, env_steps, wall_time, eval_return, fingerprint, extra, per-leaf
records). Failures prevented:

* a NaN/Inf state written over the last good checkpoint (the save is refused, returns False);
* resuming a new architecture from an old run's data (field report 001, phase 4): the stored
  fingerprint is compared on open and on restore, :class:`CheckpointMismatchError` names the keys;
* shape/structure mismatches surfacing as deep Orbax tracebacks (same error, naming the leaves);
* a SIGKILL during a write: Orbax writes into ``<step>.orbax-checkpoint-tmp`` and renames it when
  complete, so the previous step stays the latest; leftover tmp directories are deleted when the
  next store opens the directory;
* losing the best policy when training later collapses (field report 003 §11D);
* resident memory growing by one state's bytes per checkpoint manager (glibc keeps the
  write buffers mapped; :mod:`rlstab_jax.train.host_memory` returns them after each write);
* a damaged checkpoint (truncated data file, deleted ``_METADATA``, missing item directory)
  ending a resume although older good ones exist: :meth:`CheckpointStore.restore_newest_good`
  falls back to the newest checkpoint that restores and moves each damaged one to
  ``<run>/checkpoints-damaged/`` (kept for inspection, out of the way of new saves). A damaged
  checkpoint is :class:`CheckpointDamagedError`; another architecture stays a plain
  :class:`CheckpointMismatchError` and never falls back (that is a config error, not damage).
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import orbax.checkpoint as ocp

from rlstab_jax.train import pytree_codec
from rlstab_jax.train.fingerprint import (
    CheckpointMismatchError,
    assert_same_fingerprint,
    normalize_fingerprint,
    to_jsonable,
)
from rlstab_jax.train.host_memory import release_freed_memory

__all__ = [
    "CheckpointDamagedError",
    "CheckpointMismatchError",
    "CheckpointStore",
    "check_compatible",
]

log = logging.getLogger(__name__)

_STATE, _META = "state", "meta"
_FORMAT_VERSION = 1
_HIDDEN_META = ("leaves", "format_version")
# Orbax (0.12.x) writes a step into "<step>.orbax-checkpoint-tmp" and renames it on success.
_TMP_SUFFIX = getattr(
    getattr(ocp.path, "atomicity_types", None), "TMP_DIR_SUFFIX", ".orbax-checkpoint-tmp"
)


class CheckpointDamagedError(CheckpointMismatchError):
    """A checkpoint's files cannot be read (truncated, deleted, half-written by a foreign tool).

    A subclass of :class:`CheckpointMismatchError` (one line, exit 2), told apart so a resume
    can fall back to an older checkpoint instead of failing.
    """


def _first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"


def _manager(directory: Path, keep: int | None, async_save: bool, read_only: bool = False):
    kwargs: dict[str, Any] = {}
    if keep is not None and not read_only:
        latest_n = getattr(ocp.checkpoint_managers, "LatestN", None)  # max_to_keep is deprecated
        kwargs = {"preservation_policy": latest_n(n=keep)} if latest_n else {"max_to_keep": keep}
    options = ocp.CheckpointManagerOptions(
        create=not read_only,
        read_only=read_only,
        cleanup_tmp_directories=not read_only,
        enable_async_checkpointing=async_save,
        **kwargs,
    )
    return ocp.CheckpointManager(directory.absolute(), options=options, item_names=(_STATE, _META))


def _remove_tmp_dirs(directory: Path) -> None:
    if not directory.is_dir():
        return
    for p in directory.iterdir():
        if _TMP_SUFFIX in p.name and p.is_dir():
            log.warning("removing unfinished checkpoint write %s", p)
            shutil.rmtree(p, ignore_errors=True)


def _read_meta(manager, step: int, where: Path) -> dict[str, Any]:
    try:
        args = ocp.args.Composite(**{_META: ocp.args.JsonRestore()})
        meta = dict(manager.restore(step, args=args)[_META])
        if "leaves" not in meta or "step" not in meta:
            raise KeyError("no 'leaves'/'step' record")
        return meta
    except Exception as e:  # noqa: BLE001  (Orbax/JSON raise many types for damaged files)
        raise CheckpointDamagedError(
            f"checkpoint step {step} in {where} has no readable metadata (damaged, or not "
            f"written by CheckpointStore): {_first_line(e)}"
        ) from e


def _check_managers(pairs: list[tuple[Any, Path]], fingerprint: dict[str, Any]) -> None:
    for manager, where in pairs:
        for step in manager.all_steps():
            try:
                stored = _read_meta(manager, step, where).get("fingerprint", {})
            except CheckpointDamagedError as e:
                log.warning("%s (ignored by the compatibility check)", e)
                continue  # damage is reported (and skipped) when that step is restored
            assert_same_fingerprint(str(where), stored, fingerprint)


class CheckpointStore:
    """Periodic (keep last ``keep``) and best-by-eval-return checkpoints of a state pytree.

    Args:
      directory: the checkpoint root, conventionally ``<run>/checkpoints`` (created if missing).
      keep: how many periodic checkpoints to keep (oldest deleted first).
      fingerprint: flat dict of architecture-relevant config keys, stored with every checkpoint.
      async_save: let Orbax finish writes in a background thread (``save`` returns earlier; call
        :meth:`wait` or :meth:`close` before exiting). Restores wait for pending writes.

    Raises:
      CheckpointMismatchError: ``directory`` already holds checkpoints written with another
        fingerprint (field report 001, phase 4). Use a new run directory.
    """

    def __init__(
        self,
        directory: str | Path,
        keep: int,
        fingerprint: Mapping[str, Any],
        async_save: bool = False,
    ):
        if int(keep) < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory = Path(directory)
        self.best_directory = self.directory / "best"
        self.keep = int(keep)
        self.fingerprint = normalize_fingerprint(fingerprint)
        self.async_save = bool(async_save)
        self.last_refusal: str | None = None  # why the last save/save_best wrote nothing
        for d in (self.directory, self.best_directory):
            _remove_tmp_dirs(d)  # unfinished writes of a killed process (never restorable)
        self._periodic = _manager(self.directory, self.keep, self.async_save)
        self._best = _manager(self.best_directory, 1, self.async_save)
        try:
            check_compatible(self, self.fingerprint)
            self._best_value: float | None = self._read_best_value()
        except BaseException:
            self.close()
            raise

    def _read_best_value(self) -> float | None:
        """Best eval return so far; a damaged best checkpoint is moved aside (best restarts)."""
        for slot in sorted(self._best.all_steps(), reverse=True):
            try:
                meta = _read_meta(self._best, slot, self.best_directory)
                return float(meta["eval_return"])
            except (CheckpointDamagedError, KeyError, TypeError, ValueError) as e:
                self._set_aside(self._best, self.best_directory, slot, _first_line(e))
        return None

    def _set_aside(self, manager, where: Path, slot: int, why: str) -> Path:
        """Move a damaged checkpoint out of ``where`` to ``<root>-damaged/`` (never deleted)."""
        root = self.directory
        sub = "best-" if where != root else ""
        dest_root = root.parent / f"{root.name}-damaged"
        dest_root.mkdir(parents=True, exist_ok=True)
        dest = dest_root / f"{sub}{slot}-{time.strftime('%Y%m%d-%H%M%S')}"
        n = 0
        while dest.exists():
            n += 1
            dest = dest.with_name(f"{dest.name.split('~')[0]}~{n}")
        shutil.move(str(where / str(slot)), str(dest))
        (dest / "WHY-DAMAGED.txt").write_text(why + "\n")
        log.info("moved damaged checkpoint %s to %s: %s", where / str(slot), dest, why)
        manager.reload()
        return dest

    # ---------------------------------------------------------------- writing
    def save(self, step: int, state: Any, metadata: Mapping[str, Any] | None = None) -> bool:
        """Write a periodic checkpoint of ``state`` at ``step`` if every float leaf is finite.

        ``metadata`` keys ``env_steps``, ``wall_time``, ``eval_return`` are stored top-level, the
        rest under ``extra``. Returns False (and sets :attr:`last_refusal`) without writing when
        any floating leaf holds NaN/Inf, so the last good checkpoint is never replaced by a
        poisoned state. Raises ValueError if ``step`` is not after the latest checkpoint.
        """
        step = int(step)
        latest = self._periodic.latest_step()
        if latest is not None and step <= latest:
            raise ValueError(
                f"cannot checkpoint step {step} in {self.directory}: not after the latest "
                f"checkpoint {latest}; resume from the latest one or use a new run directory"
            )
        return self._write(self._periodic, step, step, state, metadata, None)

    def save_best(
        self, step: int, state: Any, eval_return: float, metadata: Mapping[str, Any] | None = None
    ) -> bool:
        """Keep ``state`` as the best checkpoint if ``eval_return`` is finite and beats the best.

        The best value is the ``eval_return`` stored in the best checkpoint's metadata, so it
        survives restarts (field report 003 §11D: after a collapse, resume from the best policy).
        Orbax step numbers under ``best/`` are a save counter; the training step is in metadata.
        """
        value = float(eval_return)
        why = f"best checkpoint not written at step {step}"
        if not math.isfinite(value):
            self.last_refusal = f"{why}: eval return {value} is not finite"
            return False
        if self._best_value is not None and value <= self._best_value:
            self.last_refusal = f"{why}: {value} <= best {self._best_value}"
            return False
        slot = (self._best.latest_step() or 0) + 1
        written = self._write(self._best, slot, int(step), state, metadata, value)
        if written:
            self._best_value = value
        return written

    def _write(
        self, manager, slot: int, step: int, state: Any, metadata, eval_return: float | None
    ) -> bool:
        values, records = pytree_codec.encode(state, copy=self.async_save)
        bad = pytree_codec.nonfinite_leaves(values, records)
        if bad:
            more = f" (+{len(bad) - 5} more)" if len(bad) > 5 else ""
            self.last_refusal = (
                f"checkpoint not written at step {step}: non-finite values in "
                f"{', '.join(bad[:5])}{more}"
            )
            log.warning(self.last_refusal)
            return False
        user = dict(metadata or {})
        meta = {
            "format_version": _FORMAT_VERSION,
            "step": step,
            "env_steps": to_jsonable(user.pop("env_steps", None)),
            "wall_time": to_jsonable(user.pop("wall_time", None)),
            "eval_return": to_jsonable(user.pop("eval_return", None)),
            "saved_at": time.time(),
            "fingerprint": self.fingerprint,
            "extra": to_jsonable(user),
            "leaves": records,
        }
        if eval_return is not None:
            meta["eval_return"] = eval_return
        items = {_STATE: ocp.args.PyTreeSave(values), _META: ocp.args.JsonSave(meta)}
        manager.save(slot, args=ocp.args.Composite(**items), force=True)
        if not self.async_save:
            # The write's buffers are freed but glibc keeps them mapped: without this each
            # manager kept ~1x the state resident for the rest of the run (host_memory.py).
            release_freed_memory()
        self.last_refusal = None
        return True

    # ---------------------------------------------------------------- reading
    def latest_step(self) -> int | None:
        """Latest periodic checkpoint step (includes a write in flight with ``async_save``)."""
        return self._periodic.latest_step()

    def all_steps(self) -> list[int]:
        """All periodic checkpoint steps, ascending."""
        return sorted(self._periodic.all_steps())

    @property
    def best_eval_return(self) -> float | None:
        """Eval return of the best checkpoint so far (None if there is none)."""
        return self._best_value

    def restore(self, target: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """Restore a periodic checkpoint (latest if ``step`` is None) into ``target``'s structure.

        ``target`` is an abstract (``jax.eval_shape(init, ...)``) or concrete pytree. Leaves come
        back bit-exact, typed PRNG keys included. Returns ``(state, metadata)``.

        Raises:
          FileNotFoundError: no such checkpoint.
          CheckpointMismatchError: other fingerprint, or shapes/dtypes/structure differ.
        """
        self.wait()
        step = self.latest_step() if step is None else int(step)
        if step is None or step not in self._periodic.all_steps():
            at = "" if step is None else f" at step {step}"
            raise FileNotFoundError(f"no checkpoint{at} in {self.directory}")
        return self._read(self._periodic, step, target, self.directory)

    def restore_newest_good(
        self, target: Any
    ) -> tuple[Any, dict[str, Any], list[tuple[int, str]]]:
        """Restore the newest periodic checkpoint that restores; move damaged newer ones aside.

        Returns ``(state, metadata, skipped)`` with ``skipped`` = ``[(step, reason), ...]`` for
        every newer checkpoint that was damaged (moved to ``<root>-damaged/``, so later saves
        of those steps do not collide with them).

        Raises:
          FileNotFoundError: there is no periodic checkpoint at all.
          CheckpointDamagedError: none restores (the message names each step and why).
          CheckpointMismatchError: a readable checkpoint belongs to another architecture
            (never a fallback: an older step has the same architecture).
        """
        self.wait()
        steps = sorted(self._periodic.all_steps(), reverse=True)
        if not steps:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        skipped: list[tuple[int, str]] = []
        for step in steps:
            try:
                state, meta = self._read(self._periodic, step, target, self.directory)
            except CheckpointDamagedError as e:
                reason = str(e).split(": ", 1)[-1] if ": " in str(e) else str(e)
                skipped.append((step, reason))
                self._set_aside(self._periodic, self.directory, step, str(e))
                continue
            return state, meta, skipped
        listed = "; ".join(f"step {s}: {r}" for s, r in skipped)
        raise CheckpointDamagedError(
            f"no checkpoint in {self.directory} restores (damaged ones moved to "
            f"{self.directory.parent / (self.directory.name + '-damaged')}): {listed}"
        )

    def restore_best(self, target: Any) -> tuple[Any, dict[str, Any]]:
        """Restore the best checkpoint; ``metadata["step"]`` is the training step it was from."""
        self.wait()
        slot = self._best.latest_step()
        if slot is None:
            raise FileNotFoundError(f"no best checkpoint in {self.best_directory}")
        return self._read(self._best, slot, target, self.best_directory)

    def _read(self, manager, slot: int, target: Any, where: Path) -> tuple[Any, dict]:
        meta = _read_meta(manager, slot, where)
        assert_same_fingerprint(str(where), meta.get("fingerprint", {}), self.fingerprint)
        records = meta["leaves"]
        problems = pytree_codec.compare(records, target)
        if problems:
            more = f"; (+{len(problems) - 6} more)" if len(problems) > 6 else ""
            raise CheckpointMismatchError(
                f"checkpoint step {meta['step']} in {where} does not fit the restore target: "
                f"{'; '.join(problems[:6])}{more}; restore with the architecture it was "
                f"written with or start a new run"
            )
        restore_args = {r["name"]: ocp.RestoreArgs(restore_type=np.ndarray) for r in records}
        try:
            args = ocp.args.Composite(**{_STATE: ocp.args.PyTreeRestore(restore_args=restore_args)})
            restored = manager.restore(slot, args=args)[_STATE]
            state = pytree_codec.decode(records, dict(restored), target)
        except Exception as e:  # noqa: BLE001  (tensorstore/Orbax raise many types on damage)
            # The records matched the target above, so a failure here is in the stored files.
            raise CheckpointDamagedError(
                f"checkpoint step {meta['step']} in {where} could not be restored into the "
                f"target: {_first_line(e)}"
            ) from e
        return state, {k: v for k, v in meta.items() if k not in _HIDDEN_META}

    # ---------------------------------------------------------------- lifecycle
    def wait(self) -> None:
        """Block until pending (async) writes are finalised."""
        self._periodic.wait_until_finished()
        self._best.wait_until_finished()
        release_freed_memory()  # async writes' buffers (host_memory.py)

    def close(self) -> None:
        """Finish pending writes and release Orbax resources."""
        for m in (getattr(self, "_periodic", None), getattr(self, "_best", None)):
            if m is not None:
                m.wait_until_finished()
                m.close()

    def __enter__(self) -> CheckpointStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_compatible(
    directory_or_store: CheckpointStore | str | Path, fingerprint: Mapping[str, Any]
) -> None:
    """Raise :class:`CheckpointMismatchError` if any checkpoint there has another fingerprint.

    Checks every periodic checkpoint and the best one. A missing or empty directory is
    compatible. Given a path, nothing is created, cleaned or written (safe next to a writer).
    """
    fp = normalize_fingerprint(fingerprint)
    if isinstance(directory_or_store, CheckpointStore):
        store = directory_or_store
        store.wait()
        pairs = [(store._periodic, store.directory), (store._best, store.best_directory)]
        _check_managers(pairs, fp)
        return
    root = Path(directory_or_store)
    dirs = [d for d in (root, root / "best") if d.is_dir()]
    managers = [(_manager(d, None, False, read_only=True), d) for d in dirs]
    try:
        _check_managers(managers, fp)
    finally:
        for m, _ in managers:
            m.close()
