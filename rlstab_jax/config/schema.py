"""Typed schemas of the sections every run shares (the agent section is per family).

Field types are restricted to what the loader checks: int, float, bool, str, tuple[...] and
``X | None``. Each section's ``validate`` raises a one-line ConfigError naming key and reason.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from rlstab_jax.config.errors import ConfigError


def _require(cond: bool, key: str, value: Any, why: str) -> None:
    if not cond:
        raise ConfigError(f"{key}={value!r} {why}")


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Which environment and how many copies per seed.

    ``backend``: ``auto`` picks the pure-JAX implementation when one exists (rlstab_jax's own
    envs, then gymnasium ids, then gymnax ids), ``gymnax`` forces the pure-JAX path (collect and
    update inside one ``lax.scan``), ``gymnasium`` forces host-side vector envs.

    ``host_step`` (gymnasium backend, off-policy agents): ``scan`` runs each chunk as one jitted
    ``lax.scan`` that steps the simulator through an ordered ``io_callback``; ``loop`` makes one
    jitted call per env step from a Python loop. Same transitions, updates and random streams
    either way (tested); ``scan`` is faster (no per-step launch and sync).

    Fields:
      id: environment id (a gymnax or gymnasium id, ``probe/...``, ``Racer-v0``).
      backend: ``auto`` | ``gymnax`` | ``gymnasium`` (see above).
      n_envs: env copies per seed stepped together (env steps per iteration).
      async_vector: gymnasium backend: ``AsyncVectorEnv`` (subprocesses) instead of sync.
      host_step: gymnasium backend, off-policy agents: ``scan`` | ``loop`` (see above).
      frame_stack: stack the last K observations (0 = off; pure-JAX envs).
      history: expose the last K (obs, action) pairs for context encoders (0 = off; pure-JAX
        envs; set to ``agent.context_len``).
      kwargs: keyword arguments of the env constructor (e.g. Racer's ``max_steps_in_episode``).
    """

    id: str = "Pendulum-v1"
    backend: Literal["auto", "gymnax", "gymnasium"] = "auto"
    n_envs: int = 1
    async_vector: bool = False
    host_step: Literal["scan", "loop"] = "scan"
    frame_stack: int = 0
    history: int = 0
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def validate(self) -> None:
        _require(self.n_envs >= 1, "env.n_envs", self.n_envs, "must be >= 1")
        _require(self.frame_stack >= 0, "env.frame_stack", self.frame_stack, "must be >= 0")
        _require(self.history >= 0, "env.history", self.history, "must be >= 0")


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
    """Replay capacity (transitions per seed) and demonstration mixing (field report 003 §9).

    Fields:
      capacity: transitions kept per seed (oldest overwritten first).
      demos: path of a demo ``.npz`` (``scripts/record_demos.py``) mixed into every batch, or
        null.
      demo_weight: initial sampling weight of a demo transition relative to an agent one
        (report value 2.5; 1 = no demo bias).
      demo_decay_samples: samples over which the demo weight decays to 1 (report 200000).
      demo_repeat: how many copies of the demo set the demo store holds.
      layout: ``auto`` | ``compact`` | ``flat``: ``compact`` stores one frame per row and
        rebuilds ``next_obs`` and frame stacks at sample time (``replay/compact.py``, issue
        14); ``flat`` stores obs and next_obs (flashbax). ``auto`` = compact for pixel (uint8)
        or frame-stacked observations, flat for vector ones.
      final_fraction: compact replay only: episode-end observations kept per env, as a
        fraction of its rows (0.01 = one per 100 rows); rows whose episode end fell out are
        not sampled (``replay/usable_fraction``).
      priority: sample stored windows in proportion to ``priority ** priority_exponent``, the
        priority being the agent's own loss on the window when it was last trained on (Dreamer:
        the world-model loss, Curious Replay; ``stability/replay_priority.py``); new windows
        enter with the largest priority so far. Flat layout only. false = uniform (the off
        variant).
      priority_exponent: ``alpha`` of prioritised replay, > 0 (0.6, the flashbax and PER
        default; smaller is closer to uniform).
    """

    capacity: int = 100_000
    demos: str | None = None
    demo_weight: float = 1.0
    demo_decay_samples: int = 200_000
    demo_repeat: int = 1
    layout: Literal["auto", "compact", "flat"] = "auto"
    final_fraction: float = 0.01
    priority: bool = False
    priority_exponent: float = 0.6

    def validate(self) -> None:
        _require(self.capacity >= 1, "replay.capacity", self.capacity, "must be >= 1")
        _require(self.priority_exponent > 0.0, "replay.priority_exponent",
                 self.priority_exponent, "must be > 0 (use replay.priority=false for uniform)")
        _require(0.0 < self.final_fraction <= 1.0, "replay.final_fraction",
                 self.final_fraction, "must be in (0, 1]")
        _require(
            self.demo_weight >= 1.0,
            "replay.demo_weight",
            self.demo_weight,
            "must be >= 1 (1 = no demo bias)",
        )
        _require(
            self.demo_decay_samples >= 0,
            "replay.demo_decay_samples",
            self.demo_decay_samples,
            "must be >= 0 (0 = fixed demo weight, the report 003 §9 baseline)",
        )
        _require(self.demo_repeat >= 1, "replay.demo_repeat", self.demo_repeat, "must be >= 1")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Budget, seeds, evaluation and the chunking of the jitted loop.

    ``total_steps``, ``eval_every``, ``learning_starts`` and ``chunk_steps`` count env steps per
    seed (all ``env.n_envs`` copies together). Seed ``i`` of a run with ``seeds=N`` uses
    ``seed + i`` and equals a single run with ``seed=seed+i``.

    Fields:
      total_steps: env steps per seed to train for.
      seeds: independent seeds run in one vmapped call.
      seed: seed of the first seed.
      eval_every: evaluate every this many env steps (0 = only at the end).
      eval_episodes: episodes per evaluation (deterministic and stochastic policy).
      learning_starts: env steps of random actions before the first update.
      chunk_steps: env steps per jitted chunk (metrics are logged once per chunk).
      max_nonfinite: stop the run after this many consecutive non-finite updates.
      early_stop_return: stop once every seed's deterministic EVAL return is >= this for
        train.early_stop_patience consecutive evaluations (null = off; never training returns).
      early_stop_patience: consecutive evaluations at or above train.early_stop_return.
    """

    total_steps: int = 20_000
    seeds: int = 1
    seed: int = 0
    eval_every: int = 2_000
    eval_episodes: int = 5
    learning_starts: int = 1_000
    chunk_steps: int = 1_000
    max_nonfinite: int = 50
    early_stop_return: float | None = None
    early_stop_patience: int = 1

    def validate(self) -> None:
        _require(self.total_steps >= 1, "train.total_steps", self.total_steps, "must be >= 1")
        _require(self.seeds >= 1, "train.seeds", self.seeds, "must be >= 1")
        _require(self.seed >= 0, "train.seed", self.seed, "must be >= 0")
        _require(
            self.eval_every >= 0,
            "train.eval_every",
            self.eval_every,
            "must be >= 0 (0 = only at the end)",
        )
        _require(self.eval_episodes >= 1, "train.eval_episodes", self.eval_episodes, "must be >= 1")
        _require(
            self.learning_starts >= 0, "train.learning_starts", self.learning_starts, "must be >= 0"
        )
        _require(self.chunk_steps >= 1, "train.chunk_steps", self.chunk_steps, "must be >= 1")
        _require(self.max_nonfinite >= 1, "train.max_nonfinite", self.max_nonfinite, "must be >= 1")
        _require(self.early_stop_patience >= 1, "train.early_stop_patience",
                 self.early_stop_patience, "must be >= 1")


@dataclasses.dataclass(frozen=True)
class LogConfig:
    """Where metrics go. JSONL is always written; the other sinks are optional extras.

    Credentials come only from environment variables (``WANDB_API_KEY``,
    ``MLFLOW_TRACKING_URI``, ...) and are never written to disk or logs.

    Fields:
      progress: show a progress bar.
      plot: write ``learning_curve.png`` at the end of a run.
      tensorboard: also log to TensorBoard (``tracking`` extra).
      wandb: also log to Weights & Biases (``tracking`` extra; key from ``WANDB_API_KEY``).
      wandb_project: W&B project name.
      mlflow: also log to MLflow (``tracking`` extra; server from ``MLFLOW_TRACKING_URI``).
      mlflow_experiment: MLflow experiment name.
    """

    progress: bool = True
    plot: bool = True
    tensorboard: bool = False
    wandb: bool = False
    wandb_project: str = "rlstab_jax"
    mlflow: bool = False
    mlflow_experiment: str = "rlstab_jax"


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """Orbax checkpoints every ``every`` env steps (keep last ``keep``) plus best-by-eval.

    Fields:
      enabled: write checkpoints at all (resume needs them).
      every: checkpoint every this many env steps (and at the end).
      keep: periodic checkpoints kept (the best one is kept separately).
      best: keep ``checkpoints/best/``, the state with the best mean eval return.
    """

    enabled: bool = True
    every: int = 10_000
    keep: int = 3
    best: bool = True

    def validate(self) -> None:
        _require(self.every >= 1, "checkpoint.every", self.every, "must be >= 1")
        _require(self.keep >= 1, "checkpoint.keep", self.keep, "must be >= 1")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Output directory (default ``runs/<name>-<timestamp>``).

    Fields:
      dir: run directory (config, metrics, checkpoints, plots); null = ``runs/<name>-<time>``.
      name: name used in the default directory; null = ``<agent>-<env id>``.
    """

    dir: str | None = None
    name: str | None = None


SECTIONS: dict[str, type] = {
    "env": EnvConfig,
    "replay": ReplayConfig,
    "train": TrainConfig,
    "log": LogConfig,
    "checkpoint": CheckpointConfig,
    "run": RunConfig,
}
