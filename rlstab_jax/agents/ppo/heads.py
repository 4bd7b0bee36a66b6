"""Action heads of PPO: one code path for a Discrete head, factored heads and a Box.

A :class:`HeadLayout` is read from the :class:`EnvSpec`: head names and sizes, the static
op -> active-heads table (field report 004 §2), where the validity masks and embedding ids sit
in the observation. A plain ``Discrete(n)`` env is the one-head case (``("action",)``, no op
table: the head is always active, all actions valid unless the env puts masks in its obs).
Sampling, log-probs and entropies of categorical heads go through the masked primitives of
``rlstab_jax.stability.multihead``; a Box is one diagonal-Gaussian head named ``action``.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.config.errors import ConfigError
from rlstab_jax.envs.spec import EnvSpec
from rlstab_jax.stability import multihead as mh

# Field report 004 §4 "Sparse Head Entropy Monitoring": (warning, critical) entropy in nats.
REPORT_ENTROPY_THRESHOLDS: dict[str, tuple[float, float]] = {
    "op": (1.0, 0.5), "slot": (0.6, 0.3), "blueprint": (1.5, 0.7), "style": (0.8, 0.4),
    "tempo": (0.6, 0.3), "alpha_target": (0.6, 0.3), "alpha_speed": (0.8, 0.4),
    "alpha_curve": (0.9, 0.5),
}
# Heads the table does not name: the same fractions of the maximum entropy ln(k) as the table
# (op: 1.0 / ln 6 = 0.56, 0.5 / ln 6 = 0.28).
WARN_FRACTION, CRITICAL_FRACTION = 0.56, 0.28
# Field report 004 "Differential Entropy Coefficients".
REPORT_ENTROPY_COEFS: dict[str, float] = {
    "op": 1.0, "slot": 1.0, "blueprint": 1.3, "style": 1.2, "tempo": 1.3,
    "alpha_target": 1.2, "alpha_speed": 1.2, "alpha_curve": 1.2,
}
# A head used in fewer than this fraction of steps whose entropy is below its warning level has
# collapsed before meaningful use (report 004 §4 "SILENT BUG").
MIN_USAGE = 0.10


@dataclasses.dataclass(frozen=True)
class HeadLayout:
    """Static description of the action heads and the observation layout.

    Attributes:
      kind: ``"categorical"`` (Discrete or factored) or ``"gaussian"`` (Box).
      names, sizes: heads in order (factored: head 0 is the op).
      table: ``[n_ops, n_heads]`` bool "head matters for op", or None (every head always).
      factored: the env action is ``[n_heads]`` int32 (else ``[]`` int32 or ``[D]`` float).
      n_features: observation entries before the ids and masks.
      n_ids, vocab: embedding ids after the features.
      obs_mask: the observation ends with the concatenated validity masks.
    """

    kind: str
    names: tuple[str, ...]
    sizes: tuple[int, ...]
    table: tuple[tuple[bool, ...], ...] | None
    factored: bool
    n_features: int
    n_ids: int
    vocab: int
    obs_mask: bool
    obs_rank: int = 1
    op_names: tuple[str, ...] = ()

    @staticmethod
    def from_spec(spec: EnvSpec) -> HeadLayout:
        if len(spec.obs_shape) != 1 and (spec.obs_mask or spec.obs_ids[0]):
            raise ConfigError(f"env {spec.env_id!r}: masks/ids need a flat observation")
        n_obs = int(np.prod(spec.obs_shape))
        n_ids, vocab = spec.obs_ids
        if spec.action_kind == "continuous":
            return HeadLayout("gaussian", ("action",), (spec.action_dim,), None, False,
                              n_obs - n_ids, n_ids, vocab, False, len(spec.obs_shape))
        if spec.action_kind == "discrete":
            return HeadLayout("categorical", ("action",), (spec.action_dim,), None, False,
                              n_obs - n_ids - spec.mask_dim, n_ids, vocab, spec.obs_mask,
                              len(spec.obs_shape))
        names, sizes = tuple(spec.action_names), tuple(spec.action_nvec)
        table = None
        if spec.op_heads:
            if len(spec.op_heads) != sizes[0]:
                raise ConfigError(f"env {spec.env_id!r}: op_heads has {len(spec.op_heads)} "
                                  f"rows for an op head of size {sizes[0]}")
            heads_by_op = {str(i): hs for i, hs in enumerate(spec.op_heads)}
            t = mh.make_op_head_table([str(i) for i in range(sizes[0])], names, heads_by_op)
            table = tuple(tuple(bool(v) for v in row) for row in t)
        return HeadLayout("categorical", names, sizes, table, True,
                          n_obs - n_ids - spec.mask_dim, n_ids, vocab, spec.obs_mask, 1,
                          tuple(spec.op_names))

    @property
    def has_ops(self) -> bool:
        return self.table is not None

    @property
    def n_ops(self) -> int:
        return self.sizes[0] if self.has_ops else 0

    def split_obs(self, obs: jax.Array) -> tuple[jax.Array, jax.Array | None, dict | None]:
        """``obs[..., F_total] -> (features[..., F], ids[..., n_ids] int32 | None, masks)``.

        ``masks`` is ``{head: [..., k] bool}`` (all True when the env gives no masks) for
        categorical heads, None for a Box.
        """
        lead = obs.shape[:obs.ndim - self.obs_rank]
        flat = obs.reshape(lead + (-1,)).astype(jnp.float32)
        feats = flat[..., :self.n_features]
        ids = None
        if self.n_ids:
            ids = flat[..., self.n_features:self.n_features + self.n_ids].astype(jnp.int32)
        if self.kind == "gaussian":
            return feats, ids, None
        masks = {}
        off = self.n_features + self.n_ids
        for name, k in zip(self.names, self.sizes):
            if self.obs_mask:
                masks[name] = flat[..., off:off + k] > 0.5
                off += k
            else:
                masks[name] = jnp.ones(lead + (k,), bool)
        return feats, ids, masks

    def causal(self, op: jax.Array | None, shape: tuple[int, ...]) -> dict[str, jax.Array]:
        """``{head: bool[shape]}``: the head mattered for the sampled op (report 004 §1-2)."""
        if not self.has_ops or op is None:
            return {h: jnp.ones(shape, bool) for h in self.names}
        return mh.causal_head_masks(op.astype(jnp.int32), np.asarray(self.table), self.names)

    def entropy_coefs(self, per_head: bool, explicit: tuple[float, ...]) -> dict[str, float]:
        """Per-head entropy multipliers: explicit list, the report's table, or all 1.0."""
        if explicit:
            if len(explicit) != len(self.names):
                raise ConfigError(f"agent.entropy_head_coefs has {len(explicit)} values for "
                                  f"{len(self.names)} heads {list(self.names)}")
            return dict(zip(self.names, map(float, explicit)))
        if not per_head:
            return {h: 1.0 for h in self.names}
        return {h: REPORT_ENTROPY_COEFS.get(h, 1.0) for h in self.names}

    def entropy_thresholds(self) -> dict[str, tuple[float, float]]:
        """``{head: (warn, critical)}``: report 004 §4's table, else fractions of ``ln k``."""
        out = {}
        for h, k in zip(self.names, self.sizes):
            if self.kind == "categorical" and h in REPORT_ENTROPY_THRESHOLDS:
                out[h] = REPORT_ENTROPY_THRESHOLDS[h]
            elif self.kind == "categorical":
                out[h] = (WARN_FRACTION * math.log(k), CRITICAL_FRACTION * math.log(k))
        return out

    def to_env_action(self, actions: dict[str, jax.Array]) -> jax.Array:
        """Per-head actions -> the env action (``[B]`` int, ``[B, H]`` int or ``[B, D]``)."""
        if self.kind == "gaussian":
            return jnp.clip(actions["action"], -1.0, 1.0)
        if not self.factored:
            return actions["action"].astype(jnp.int32)
        return jnp.stack([actions[h] for h in self.names], -1).astype(jnp.int32)

    def from_env_action(self, action: jax.Array) -> dict[str, jax.Array]:
        if self.kind == "gaussian" or not self.factored:
            return {"action": action}
        return {h: action[..., i].astype(jnp.int32) for i, h in enumerate(self.names)}


def sample_heads(layout: HeadLayout, logits: dict[str, jax.Array], masks: dict[str, jax.Array],
                 key: jax.Array, deterministic: bool) -> dict[str, jax.Array]:
    """Sample (or argmax) every categorical head from its masked logits."""
    keys = jax.random.split(key, len(layout.names))
    out = {}
    for k, h in zip(keys, layout.names):
        masked = jnp.where(masks[h], logits[h], mh.MASK_LOGIT)
        a = jnp.argmax(masked, -1) if deterministic else jax.random.categorical(k, masked)
        out[h] = a.astype(jnp.int32)
    return out


def categorical_logp_entropy(logits: dict[str, jax.Array], masks: dict[str, jax.Array],
                             actions: dict[str, jax.Array]) -> tuple[dict, dict]:
    """Per-head masked log-probs of ``actions`` and entropies, computed for EVERY head."""
    logp = {h: mh.masked_categorical_log_prob(logits[h], actions[h], masks[h]) for h in logits}
    ent = {h: mh.masked_categorical_entropy(logits[h], masks[h]) for h in logits}
    return logp, ent


def gaussian_logp_entropy(mean: jax.Array, log_std: jax.Array, u: jax.Array
                          ) -> tuple[jax.Array, jax.Array]:
    """Diagonal Gaussian log-prob of the raw (unclipped) action and entropy, summed over D."""
    log_std = jnp.broadcast_to(log_std, mean.shape)
    z = (u - mean) * jnp.exp(-log_std)
    logp = jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), -1)
    ent = jnp.sum(log_std + 0.5 * jnp.log(2 * jnp.pi * jnp.e), -1)
    return logp, ent
