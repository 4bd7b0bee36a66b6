"""A host-side gymnasium vector env stepped from inside a jitted scan (``io_callback``).

The host loop of :mod:`rlstab_jax.train.offpolicy_gym` pays a jitted-call launch, its sync and
the Python loop on every env step (~1 ms on 2 CPU cores, against a 2 ms SAC update). Stepping
the simulator through ``jax.experimental.io_callback`` inside the chunk's ``lax.scan`` costs one
callback per env step instead (~0.2 ms here, simulator included), so the whole chunk is one
compiled call, as on the pure-JAX path. The callback is *ordered*: env steps run in program
order, exactly once each.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from rlstab_jax.envs.gym_env import GymVecEnv


def host_env_step(venv: GymVecEnv, batch_shape: tuple[int, ...]) -> Callable[[jax.Array], tuple]:
    """``step(action) -> (obs, reward, terminated, truncated, final_obs)`` callable under jit.

    ``action`` has leading axes ``batch_shape`` (``[S, n_envs]`` or ``[n_envs]``); outputs are
    shaped the same way. The vector env holds ``prod(batch_shape)`` sub-envs.
    """
    spec = venv.spec
    n = int(np.prod(batch_shape))
    if venv.num_envs != n:
        raise ValueError(f"vector env has {venv.num_envs} envs, the scan steps {n}")
    obs_dtype = jnp.uint8 if spec.obs_dtype == "uint8" else jnp.float32
    obs = jax.ShapeDtypeStruct(batch_shape + spec.obs_shape, obs_dtype)
    flag = jax.ShapeDtypeStruct(batch_shape, jnp.bool_)
    result = (obs, jax.ShapeDtypeStruct(batch_shape, jnp.float32), flag, flag, obs)

    def on_host(action: np.ndarray) -> tuple:
        a = np.asarray(action)
        out = venv.step(a.reshape((n,) + a.shape[len(batch_shape):]))
        return tuple(
            np.ascontiguousarray(x, r.dtype).reshape(r.shape) for x, r in zip(out, result)
        )

    def step(action: jax.Array) -> tuple[Any, ...]:
        return io_callback(on_host, result, action, ordered=True)

    return step
