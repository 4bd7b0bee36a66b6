"""Compile ``conv.cc`` against the installed jaxlib and oneDNN, once per machine, and cache it.

Nothing here runs at import time. ``library()`` returns the path of the shared library,
building it the first time (a few seconds of ``g++``) into a cache directory keyed by the
source, the jaxlib version and the oneDNN library, so a jax or oneDNN upgrade rebuilds it.
Concurrent builds (pytest-xdist workers, vmapped runs in several processes) each write a private
temporary file and rename it into place, so nobody ever loads a half-written library.

Where things are looked up:

* oneDNN: ``$RLSTAB_ONEDNN_ROOT`` (a prefix with ``include/oneapi/dnnl/dnnl.hpp`` and
  ``lib/libdnnl.so``), else the Python environment's prefix (or the user base of
  ``pip install --user``), where the ``onednn-cpu-gomp`` / ``onednn-devel-cpu-gomp`` wheels of
  ``pip install 'rlstab_jax[onednn]'`` put them. (The newer ``onednn`` wheels are built for
  Intel's SYCL runtime and do not load without it; ``BuildError`` says so.)
* the XLA FFI headers: ``jax.ffi.include_dir()``.
* the compiler: ``$CXX``, else ``c++`` / ``g++`` on ``PATH``.
* the cache: ``$RLSTAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/rlstab_jax``, else
  ``~/.cache/rlstab_jax`` (the system's temporary directory if that cannot be created).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import jaxlib

SOURCE = Path(__file__).with_name("conv.cc")


class BuildError(RuntimeError):
    """The oneDNN convolution cannot be built or loaded here (the message says why and how)."""


def onednn_root() -> Path:
    """The prefix holding oneDNN's headers and library (see the module docstring)."""
    env = os.environ.get("RLSTAB_ONEDNN_ROOT")
    if env:
        return Path(env)
    for prefix in (sys.prefix, site.getuserbase()):  # a venv / pip install --user
        if (Path(prefix) / "include" / "oneapi" / "dnnl" / "dnnl.hpp").exists():
            return Path(prefix)
    return Path(sys.prefix)


def _find_library(root: Path) -> Path:
    for name in ("libdnnl.so", "libdnnl.so.3"):
        for sub in ("lib", "lib64"):
            if (root / sub / name).exists():
                return root / sub / name
    raise BuildError(f"no libdnnl.so under {root}/lib: pip install 'rlstab_jax[onednn]' "
                     "(or set RLSTAB_ONEDNN_ROOT to a oneDNN install prefix)")


def _compiler() -> str:
    for cxx in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if cxx and shutil.which(cxx):
            return cxx
    raise BuildError("no C++ compiler found (set CXX, or install g++) to build the oneDNN conv")


def cache_dir() -> Path:
    env = os.environ.get("RLSTAB_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rlstab_jax"


def library() -> Path:
    """Path of the compiled handlers (built now if not cached); ``BuildError`` if impossible."""
    root = onednn_root()
    header = root / "include" / "oneapi" / "dnnl" / "dnnl.hpp"
    if not header.exists():
        raise BuildError(f"no oneDNN headers at {header}: pip install 'rlstab_jax[onednn]' "
                         "(or set RLSTAB_ONEDNN_ROOT to a oneDNN install prefix)")
    dnnl = _find_library(root)
    try:  # load it first: a library with missing runtime dependencies fails here, clearly
        ctypes.CDLL(str(dnnl))
    except OSError as e:
        raise BuildError(f"{dnnl} does not load ({e}); the CPU/OpenMP build of oneDNN "
                         "(pip install onednn-cpu-gomp) is the one this needs") from None
    source = SOURCE.read_bytes()
    key = hashlib.sha256(source + jaxlib.__version__.encode() + str(dnnl.resolve()).encode()
                         + str(dnnl.stat().st_size).encode()).hexdigest()[:16]
    out = cache_dir() / "onednn" / f"conv-{key}.so"
    if out.exists():
        return out
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home (some CI runners): the system's temporary directory
        out = Path(tempfile.gettempdir()) / "rlstab_jax" / "onednn" / out.name
        if out.exists():
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    cmd = [_compiler(), "-O2", "-std=c++17", "-shared", "-fPIC", "-w",
           f"-I{jax.ffi.include_dir()}", f"-I{root / 'include'}", str(SOURCE),
           f"-L{dnnl.parent}", f"-l:{dnnl.name}", f"-Wl,-rpath,{dnnl.parent}", "-o", tmp]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            tail = " ".join(done.stderr.strip().splitlines()[-3:])
            raise BuildError(f"building the oneDNN conv failed: {' '.join(cmd)}: {tail}")
        os.replace(tmp, out)  # atomic: concurrent builders all end with a complete file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
