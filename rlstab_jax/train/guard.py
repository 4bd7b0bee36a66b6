"""Host-side checks between chunks: non-finite state, and SIGINT/SIGTERM as a clean stop.

Non-finite state. The in-jit guard (``episodes.nonfinite_streak``) counts update calls that
skipped a non-finite gradient or reported a non-finite loss. It cannot see a state that went
bad while every gradient stayed finite: with ``agent.critic_lr=1e6`` the squared gradients
overflow Adam's second moment to Inf, every later update is 0 and the parameters freeze, the
losses stay finite and the skip counter stays 0 (issue 13). :func:`nonfinite_state_leaves`
checks every floating leaf of the agent state (parameters, target networks, optimiser state
with the Adam moments) at each chunk end with one jitted reduction. Such a state never heals
(a NaN parameter makes every later gradient NaN, so every step is skipped; an Inf moment stays
Inf under the moving average), so the loop stops at once instead of waiting for
``train.max_nonfinite`` more updates.

Preemption. SLURM, Kubernetes and preemptible VMs send SIGTERM before killing; a user presses
Ctrl-C (SIGINT). :class:`StopSignals` turns the first of either into a request the loop honours
at the next chunk end (finish the chunk, write a checkpoint, exit 130/143 with a resume hint);
a second signal abandons the chunk at once (:class:`RunInterrupted`), leaving the last written
checkpoint as the resume point.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import jax
import jax.numpy as jnp

from rlstab_jax.train import pytree_codec

SIGNAL_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class RunInterrupted(KeyboardInterrupt):
    """The run stopped on a signal; ``exit_code`` is 128 + signal number (130, 143)."""

    def __init__(self, signum: int, message: str = ""):
        super().__init__(message or f"interrupted by {SIGNAL_NAMES.get(signum, signum)}")
        self.signum = int(signum)
        self.message = message

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@jax.jit
def _all_finite(tree: Any) -> jax.Array:
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    if not leaves:
        return jnp.array(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def nonfinite_state_leaves(tree: Any) -> list[str]:
    """Names of the floating leaves of ``tree`` holding NaN/Inf (``[]`` when all finite).

    One jitted reduction in the common (finite) case; leaf names only on failure.
    """
    if bool(_all_finite(tree)):
        return []
    values, records = pytree_codec.encode(tree)
    return pytree_codec.nonfinite_leaves(values, records)


class StopSignals:
    """Context manager: the first SIGINT/SIGTERM sets :attr:`signum`, the second raises.

    Installed only in the main thread (Python delivers signals there); previous handlers are
    restored on exit.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        name = SIGNAL_NAMES.get(signum, str(signum))
        if self.signum is not None:
            raise RunInterrupted(signum, f"{name} again: abandoned the current chunk")
        self.signum = signum
        # os.write, not print: a handler may interrupt a print in progress (re-entrant I/O).
        os.write(2, f"{name} received: finishing the current chunk and writing a checkpoint "
                    f"(send it again to stop at once)\n".encode())

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in SIGNAL_NAMES:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()
