"""EnvSpec: the static description of an environment that agents are built from."""

from __future__ import annotations

import dataclasses

import numpy as np

from rlstab_jax.config.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """Static, hashable description of an env's spaces.

    Attributes:
      env_id: registered id (``Pendulum-v1``, ``probe/obs-continuous``, ``Racer-v0``).
      obs_shape: shape of one observation.
      obs_dtype: numpy dtype name of observations (``float32`` or ``uint8`` for pixels).
      action_kind: ``"continuous"`` (Box) or ``"discrete"``.
      action_dim: Box size for continuous; number of actions for discrete.
      action_low, action_high: Box bounds per dimension (empty for discrete).
      action_names: per-dimension names for telemetry (``("steer", "gas", "brake")``).
      max_episode_steps: step limit after which episodes are truncated (None if unknown).
      action_nvec: ``action_kind="factored"`` only: the sizes of the action heads; an action is
        int32 ``[len(action_nvec)]`` and ``action_names`` name the heads (head 0 is the op).
      op_heads: factored only: for each op index (value of head 0), the names of the heads
        that matter for that op, the op head included (field report 004 §2 "op -> heads").
      obs_mask: the observation ENDS with the per-state action validity masks as 0/1 floats
        (``sum(action_nvec)`` entries for factored, ``action_dim`` for discrete).
      obs_ids: ``(count, vocab)``: ``count`` integer ids in ``[0, vocab)`` (stored as floats)
        sit just before the masks (or at the end), for an embedding (report 004 blueprints).
      op_names: factored only: names of the op values (telemetry: ``adv_by_op/GERMINATE``).
    """

    env_id: str
    obs_shape: tuple[int, ...]
    obs_dtype: str
    action_kind: str
    action_dim: int
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()
    action_names: tuple[str, ...] = ()
    max_episode_steps: int | None = None
    action_nvec: tuple[int, ...] = ()
    op_heads: tuple[tuple[str, ...], ...] = ()
    obs_mask: bool = False
    obs_ids: tuple[int, int] = (0, 0)
    op_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.action_kind not in ("continuous", "discrete", "factored"):
            raise ValueError(
                f"action_kind must be continuous|discrete|factored, got {self.action_kind}")
        if self.action_kind == "factored" and len(self.action_nvec) != self.action_dim:
            raise ValueError(f"factored: action_dim={self.action_dim} must equal "
                             f"len(action_nvec)={len(self.action_nvec)}")
        if not self.action_names:
            n = self.action_dim if self.action_kind != "discrete" else 1
            object.__setattr__(self, "action_names", tuple(f"a{i}" for i in range(n)))

    @property
    def mask_dim(self) -> int:
        """Number of trailing validity-mask entries in the observation (0 without masks)."""
        if not self.obs_mask:
            return 0
        return sum(self.action_nvec) if self.action_kind == "factored" else self.action_dim

    @property
    def is_pixels(self) -> bool:
        return len(self.obs_shape) == 3

    def require_continuous(self, agent: str) -> None:
        """Raise a one-line ConfigError unless the action space is a bounded Box."""
        if self.action_kind != "continuous":
            raise ConfigError(
                f"agent {agent!r} needs a continuous (Box) action space but env {self.env_id!r} "
                f"has a {self.action_kind} one with {self.action_dim} actions; pick a continuous "
                f"env or an agent for discrete actions")
        low, high = np.asarray(self.action_low), np.asarray(self.action_high)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ConfigError(
                f"agent {agent!r} needs a bounded Box action space but env {self.env_id!r} has "
                f"bounds low={self.action_low} high={self.action_high}")

    def require_discrete(self, agent: str) -> None:
        if self.action_kind == "factored":
            raise ConfigError(
                f"agent {agent!r} needs a single discrete action but env {self.env_id!r} has "
                f"factored actions (heads {list(self.action_names)}); use agent.name=ppo")
        if self.action_kind != "discrete":
            raise ConfigError(
                f"agent {agent!r} needs a discrete action space but env {self.env_id!r} has a "
                f"continuous Box of size {self.action_dim}")
