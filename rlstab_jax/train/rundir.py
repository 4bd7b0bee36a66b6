"""Run-directory safety: one process per run directory, no new run over an old one.

Failures prevented (issue 13): two processes training into one directory (interleaved metrics
rows, one config lost, ``best/`` overwritten by the worse run); a new run started into a
directory that already holds a run (``config.yaml`` overwritten, stray rows appended to
``metrics.jsonl``, a later resume keeping the damage); empty run directories left behind by
starts that failed before anything was written.

The lock is ``fcntl.flock`` on ``<run>/.lock`` (the file holds the holder's pid). The kernel
releases it when the holder exits in any way, SIGKILL included, so a stale lock file never
blocks a resume. ``flock`` is advisory and per open file: it protects against other rlstab_jax
processes, not against other programs writing into the directory. On network file systems
without ``flock`` support the lock may not be exclusive across machines.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from pathlib import Path

from rlstab_jax.config.errors import ConfigError

LOCK_NAME = ".lock"
# What makes a directory "hold a run": any of these written by an earlier start.
RUN_FILES = ("config.yaml", "metrics.jsonl", "checkpoints")


def holds_run(run_dir: Path) -> bool:
    return any((Path(run_dir) / name).exists() for name in RUN_FILES)


class RunDirLock:
    """Exclusive lock on a run directory for the life of the process (or until ``release``).

    Args:
      run_dir: the run directory; created if missing (and removed again by
        :meth:`release` when ``remove_if_empty`` and nothing but the lock was written).

    Raises:
      ConfigError: another process holds the lock (the message names its pid).
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.created = not self.run_dir.exists()
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"run dir {self.run_dir}: cannot create it ({e.strerror})") from None
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_pid(self._fd)
            os.close(self._fd)
            self._fd = None
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ConfigError(f"run dir {self.run_dir}: cannot lock {self.path}: {e}") from None
            who = f"process {holder}" if holder else "another process"
            raise ConfigError(
                f"run dir {self.run_dir} is in use by {who} (lock {self.path}); wait for it "
                f"to finish or use another run.dir"
            ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())
        os.fsync(self._fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self, remove_if_empty: bool = False) -> bool:
        """Drop the lock. Returns True if a failed start's leftovers were removed.

        With ``remove_if_empty``, a directory this start created is removed when still "empty";
        in a directory that existed before, only the files a start writes are removed.

        "Empty" means no file with content but the lock and ``config.yaml`` (no metrics row, no
        checkpoint): what a start that failed before its first chunk leaves behind.
        """
        removed = False
        if self._fd is None:
            return False
        if remove_if_empty and _only_lock(self.run_dir):
            if self.created:
                shutil.rmtree(self.run_dir, ignore_errors=True)
            else:  # the user's own (empty) directory: take back only what this start wrote
                for name in RUN_FILES:
                    p = self.run_dir / name
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(True)
                self.path.unlink(True)
            removed = True
        else:
            try:
                os.ftruncate(self._fd, 0)  # no pid in a released lock
            except OSError:
                pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
        return removed

    def __enter__(self) -> RunDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        raw = os.pread(fd, 32, 0).decode().strip()
        return int(raw) if raw else None
    except (OSError, ValueError):
        return None


def _only_lock(run_dir: Path) -> bool:
    for p in run_dir.rglob("*"):
        if p.parent == run_dir and p.name in (LOCK_NAME, "config.yaml"):
            continue
        if p.is_file() and p.stat().st_size > 0:
            return False
    return True
