"""Fork server for ``scripts/mutation.sh``: pay JAX's import once, not once per mutant.

mutmut 2 runs its ``--runner`` command once per mutant; importing jax, flax, optax, chex and
pytest costs ~4 s of the ~5-10 s a small stability test file takes. This server imports
them once (no JAX backend is initialised, so forking is safe), then for every request forks a
child that runs ``pytest.main(args)`` on the mutated tree: the child imports ``rlstab_jax`` and
the tests fresh (the parent never imports them) and writes no bytecode, so each mutant is
tested exactly as a new ``python -m pytest`` would test it.

  python scripts/mutation_forkserver.py serve SOCKET        # from $MUT_DIR, in the background
  python -S scripts/mutation_forkserver.py run SOCKET ARGS  # the --runner: exit code of pytest

The client's exit code is pytest's, except that 2 (collection error or interrupt: a mutant
that breaks importing the module) is reported as 1 (a failed test), since mutmut 2 counts only
exit code 1 as killed. If the client dies (mutmut's timeout), the child's process group is
killed before the next request is served.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys


def serve(path: str) -> None:
    sys.dont_write_bytecode = True
    import chex  # noqa: F401  (imported once for every child)
    import distrax  # noqa: F401
    import flax  # noqa: F401
    import jax  # noqa: F401
    import numpy  # noqa: F401
    import optax  # noqa: F401
    import pytest

    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    log = os.path.join(os.path.dirname(os.path.abspath(path)), "forkserver_last.log")
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    while True:
        conn, _ = srv.accept()
        with conn:
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            if not data.endswith(b"\n"):
                continue
            req = json.loads(data)
            if req.get("cmd") == "stop":
                conn.sendall(b"0\n")
                break
            pid = os.fork()
            if pid == 0:  # child: fresh pytest run on the (mutated) tree
                os.setpgid(0, 0)
                srv.close()
                conn.close()
                fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                signal.alarm(int(req.get("alarm", 1800)))
                try:
                    code = int(pytest.main(req["args"]))
                except BaseException:  # noqa: BLE001 - report any crash as a failed run
                    code = 3
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
            code = None
            while code is None:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    code = os.waitstatus_to_exitcode(status)
                    break
                readable, _, _ = select.select([conn], [], [], 0.05)
                if readable and not conn.recv(1):  # client gone (mutmut timeout)
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    os.waitpid(pid, 0)
                    code = -9
            try:
                conn.sendall(f"{code}\n".encode())
            except OSError:
                pass
    srv.close()
    os.unlink(path)


def run(path: str, args: list[str]) -> int:
    cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cli.connect(path)
    cli.sendall((json.dumps({"args": args}) + "\n").encode())
    data = b""
    while not data.endswith(b"\n"):
        chunk = cli.recv(64)
        if not chunk:
            return 3
        data += chunk
    code = int(data)
    if code == 2:
        return 1
    return code if 0 <= code < 256 else 3


def stop(path: str) -> None:
    cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cli.connect(path)
    cli.sendall(b'{"cmd": "stop"}\n')
    cli.recv(8)


if __name__ == "__main__":
    mode, sock = sys.argv[1], sys.argv[2]
    if mode == "serve":
        serve(sock)
    elif mode == "run":
        sys.exit(run(sock, sys.argv[3:]))
    elif mode == "stop":
        stop(sock)
    else:
        sys.exit(f"unknown mode {mode!r}: serve | run | stop")
