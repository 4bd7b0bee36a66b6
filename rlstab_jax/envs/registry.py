"""Resolve ``env.id`` + ``env.backend`` into a pure-JAX env or a gymnasium vector env factory."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from rlstab_jax.config.errors import ConfigError, did_you_mean

# rlstab_jax's own pure-JAX envs: id -> builder(kwargs) -> (gymnax env, params).
_OWN: dict[str, Callable[[dict[str, Any]], tuple[Any, Any]]] = {}


def register_jax_env(env_id: str, builder: Callable[[dict[str, Any]], tuple[Any, Any]]) -> None:
    _OWN[env_id] = builder


def _own_envs() -> dict[str, Callable[[dict[str, Any]], tuple[Any, Any]]]:
    if not _OWN:
        from rlstab_jax.envs import probes

        for name in probes.PROBES:
            register_jax_env(name, lambda kw, n=name: probes.make_probe(n, **kw))
        try:
            from rlstab_jax.envs import racer

            register_jax_env("Racer-v0", lambda kw: racer.make_racer(**kw))
            register_jax_env("RacerPixels-v0", lambda kw: racer.make_racer(pixels=True, **kw))
        except ImportError:  # pragma: no cover - racer not built yet
            pass
        from rlstab_jax.envs import scaffold

        register_jax_env("Scaffold-v0", lambda kw: scaffold.make_scaffold(**kw))
    return _OWN


def _gymnax_ids() -> list[str]:
    import gymnax

    return list(gymnax.registered_envs)


def _gymnasium_ids() -> list[str]:
    import gymnasium

    return list(gymnasium.registry.keys())


@dataclasses.dataclass(frozen=True)
class EnvChoice:
    env_id: str
    backend: str  # "jax" | "gymnasium"


def resolve(env_id: str, backend: str) -> EnvChoice:
    """Pick the implementation: own JAX envs, then gymnax for ``gymnax``/``auto``."""
    own = _own_envs()
    if backend in ("auto", "gymnax"):
        if env_id in own or env_id in _gymnax_ids():
            return EnvChoice(env_id, "jax")
        if backend == "gymnax":
            known = list(own) + _gymnax_ids()
            raise ConfigError(
                f"env.id={env_id!r} has no pure-JAX implementation"
                f"{did_you_mean(env_id, known)}; use env.backend=gymnasium"
            )
    if env_id in _gymnasium_ids():
        return EnvChoice(env_id, "gymnasium")
    known = list(own) + _gymnax_ids() + _gymnasium_ids()
    raise ConfigError(f"env.id={env_id!r} is not a registered env{did_you_mean(env_id, known)}")


def make_jax(env_id: str, kwargs: dict[str, Any], frame_stack: int = 0, history: int = 0):
    """Build a :class:`JaxEnv` (with optional frame stacking / history context wrappers)."""
    from rlstab_jax.envs.jax_env import make_jax_env

    own = _own_envs()
    if env_id in own:
        env, params = own[env_id](dict(kwargs))
    else:
        import gymnax

        if kwargs:
            raise ConfigError(
                f"env.kwargs are only supported for rlstab_jax's own envs, "
                f"got {sorted(kwargs)} for {env_id!r}"
            )
        env, params = gymnax.make(env_id)
    if frame_stack or history:
        from rlstab_jax.envs import wrappers

        if frame_stack:
            env = wrappers.FrameStack(env, frame_stack)
        if history:
            env = wrappers.HistoryContext(env, history)
    return make_jax_env(env_id, env, params)


def list_envs() -> dict[str, list[str]]:
    return {
        "rlstab_jax (pure JAX)": sorted(_own_envs()),
        "gymnax (pure JAX)": sorted(_gymnax_ids()),
        "gymnasium (host)": [
            "any registered id, e.g. Pendulum-v1, HalfCheetah-v5 (mujoco extra),"
            " CarRacing-v3 (box2d extra)"
        ],
    }
