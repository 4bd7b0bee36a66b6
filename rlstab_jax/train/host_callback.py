"""A host-side gymnasium vector env stepped from inside a jitted scan (``io_callback``).

JAX has the mechanism (``io_callback``); what lives here is the shape/dtype contract between a
:class:`~rlstab_jax.envs.gym_env.GymVecEnv` and the scan, and plain error reporting.

The host loop of :mod:`rlstab_jax.train.offpolicy_gym` pays a jitted-call launch, its sync and
the Python loop on every env step (~1 ms on 2 CPU cores, against a 2 ms SAC update). Stepping
the simulator through ``jax.experimental.io_callback`` inside the chunk's ``lax.scan`` costs one
callback per env step instead (~0.2 ms here, simulator included), so the whole chunk is one
compiled call, as on the pure-JAX path. The callback is *ordered*: env steps run in program
order, exactly once each.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from rlstab_jax.envs.gym_env import GymVecEnv


class HostEnvError(RuntimeError):
    """The simulator raised inside a jitted chunk; ``__cause__`` is its original exception."""


class HostEnvStep:
    """``step(action) -> (obs, reward, terminated, truncated, final_obs)``, callable under jit.

    ``action`` has leading axes ``batch_shape`` (``[S, n_envs]`` or ``[n_envs]``); outputs are
    shaped the same way. The vector env holds ``prod(batch_shape)`` sub-envs.

    An exception in the simulator aborts the compiled call, and JAX reports it as an XLA
    runtime error from deep inside the callback machinery; the original exception is kept in
    ``error`` so :meth:`reraise` can report it plainly.
    """

    def __init__(self, venv: GymVecEnv, batch_shape: tuple[int, ...]):
        n = int(np.prod(batch_shape))
        if venv.num_envs != n:
            raise ValueError(f"vector env has {venv.num_envs} envs, the scan steps {n}")
        spec = venv.spec
        obs_dtype = jnp.uint8 if spec.obs_dtype == "uint8" else jnp.float32
        obs = jax.ShapeDtypeStruct(batch_shape + spec.obs_shape, obs_dtype)
        flag = jax.ShapeDtypeStruct(batch_shape, jnp.bool_)
        self.result = (obs, jax.ShapeDtypeStruct(batch_shape, jnp.float32), flag, flag, obs)
        self.venv, self.batch_shape, self.n = venv, batch_shape, n
        self.error: BaseException | None = None

    def _on_host(self, action: np.ndarray) -> tuple:
        a = np.asarray(action)
        try:
            out = self.venv.step(a.reshape((self.n,) + a.shape[len(self.batch_shape):]))
        except Exception as e:
            self.error = e
            raise
        return tuple(
            np.ascontiguousarray(x, r.dtype).reshape(r.shape) for x, r in zip(out, self.result)
        )

    def __call__(self, action: jax.Array) -> tuple[Any, ...]:
        return io_callback(self._on_host, self.result, action, ordered=True)

    def reraise(self) -> None:
        """Raise :class:`HostEnvError` if the simulator failed in the last call, else nothing."""
        err, self.error = self.error, None
        if err is not None:
            env_id = self.venv.spec.env_id
            raise HostEnvError(
                f"env {env_id!r} raised in step(): {type(err).__name__}: {err}"
            ) from err
