"""The contract between agents and the shared training drivers.

An agent family offers ``make_agent(cfg, spec) -> OffPolicyAgent | OnPolicyAgent``: a frozen
bundle of pure functions. The drivers in ``rlstab_jax.train`` own env stepping, replay,
logging and checkpointing; agents own networks, losses and the fixes they compose.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.struct
import jax

PyTree = Any
Metrics = dict[str, jax.Array]


@flax.struct.dataclass
class Batch:
    """What an off-policy agent's ``update`` sees; leaves are ``[U, B, ...]``.

    ``reward`` is the (n-step) discounted reward sum, ``next_obs`` the observation to bootstrap
    from, ``terminated`` whether the window ended in a true termination (no bootstrap) and
    ``discount`` the factor ``gamma**k`` for the ``k`` folded steps (a truncated window still
    bootstraps). ``is_demo`` marks demonstration rows (field report 003 §9).
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    discount: jax.Array
    is_demo: jax.Array


@flax.struct.dataclass
class SeqBatch:
    """Replayed subsequences for a sequence (world-model) agent; leaves are ``[U, B, T, ...]``.

    Row ``t`` is one env step as stored (``obs_t``, ``action_t``, ``reward_t``, the true
    ``next_obs_t``, ``terminated_t``, ``truncated_t``). ``is_first[..., t]`` is True where an
    episode starts inside the sequence (after a termination or truncation at ``t - 1``) and at
    ``t = 0`` (the sequence may start mid-episode with no earlier latent), so a recurrent model
    resets its state there (field report 002, "Fixed-Length Subsequence Sampling").
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    is_first: jax.Array


@flax.struct.dataclass
class Rollout:
    """What an on-policy agent's ``update`` sees; leaves are time-major ``[T, N, ...]``.

    ``final_obs`` is the true last observation of an episode that ended at this step (equal to
    the next observation otherwise) so that truncated episodes can bootstrap from it.
    ``policy_info`` holds whatever the agent's ``act`` returned for the update (log-probs,
    values, masks, recurrent states, ...).
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    policy_info: PyTree


@dataclasses.dataclass(frozen=True)
class OffPolicyAgent:
    """Pure functions of an off-policy agent (SAC/DroQ/TQC, ...).

    Attributes:
      init: ``(key, hparams) -> state``; the state's pytree structure never depends on hparams.
      act: ``(state, obs[B, ...], key, hparams, deterministic) -> action[B, ...]``
        (``deterministic`` is a Python bool).
      update: ``(state, batch: Batch[U, B, ...], key, hparams) -> (state, metrics)``; scans over
        ``U`` inside so all updates of one env step are one compiled call. With
        ``seq_len > 0`` the batch is a :class:`SeqBatch` ``[U, B, seq_len, ...]`` instead.
      updates_per_step: ``U`` per vector-env step and per env (UTD ratio).
      batch_size: ``B``.
      n_step: length of the return window the driver folds into ``Batch``.
      seq_len: ``0`` (rows folded into ``Batch``) or the length of the replayed subsequences
        a sequence model (Dreamer) trains on; the driver then passes a :class:`SeqBatch`.
      update_every: env steps (summed over the vector envs) per ``update`` call; with
        ``updates_per_step`` this sets the train ratio (Dreamer replays
        ``batch_size * seq_len`` steps per update, so ``update_every = B * T / ratio``).
      action_names: names for per-dimension telemetry (``alpha/steer``).
      init_carry: ``None`` for feedforward agents. A recurrent agent (Dreamer's RSSM latent)
        gives ``(n_envs) -> carry`` (leaves ``[n_envs, ...]``) and its ``act`` then is
        ``(state, obs[N, ...], key, hparams, deterministic, carry, is_first[N]) ->
        (action, carry, info)``; the agent resets the carry where ``is_first``. The driver
        keeps the carry in its scanned state (vmapped over seeds, checkpointed with it).
      takes_update_index: the driver then calls ``update(state, batch, key, hparams,
        update_index)`` where ``update_index`` (int32 scalar) counts the ``update`` calls
        before this one. It is a function of the step counter alone, the same for every seed,
        and the driver passes it *unbatched* under the seed ``vmap``: a schedule that gates
        work on it (Dreamer's world-model warm-up and ``wm_ac_ratio``) stays a real
        ``lax.cond``. A gate on a counter inside the per-seed state is batched, and ``vmap``
        turns such a ``cond`` into a ``select`` that runs both branches.
      update_with_priorities: ``None``, or ``update`` (same arguments) that also returns
        ``priorities[U, B]`` (float32 ``> 0``), one per sampled batch entry: the driver
        writes them back into a prioritised replay (``replay.priority=true``) so the entries
        are sampled again in proportion to ``priority ** replay.priority_exponent``
        (docs/design.md, "Prioritised replay"). Agents without it cannot use that replay.
    """

    init: Callable[..., PyTree]
    act: Callable[..., jax.Array]
    update: Callable[..., tuple[PyTree, Metrics]]
    updates_per_step: int
    batch_size: int
    n_step: int = 1
    kind: str = "off_policy"
    init_carry: Callable[[int], PyTree] | None = None
    seq_len: int = 0
    update_every: int = 1
    takes_update_index: bool = False
    update_with_priorities: Callable[..., tuple[PyTree, Metrics, jax.Array]] | None = None

    @property
    def recurrent(self) -> bool:
        return self.init_carry is not None


@dataclasses.dataclass(frozen=True)
class OnPolicyAgent:
    """Pure functions of an on-policy agent (PPO, REINFORCE, ...).

    Attributes:
      init: ``(key, hparams) -> state``.
      act: ``(state, obs[N, ...], key, hparams, deterministic) -> (action, policy_info)``.
      update: ``(state, rollout: Rollout[T, N, ...], last_obs[N, ...], key, hparams)
        -> (state, metrics)``.
      rollout_len: ``T`` env steps per env between updates.
      init_carry: as for ``OffPolicyAgent`` (an LSTM policy's state); a recurrent on-policy
        ``act`` returns ``(action, carry, policy_info)``.
    """

    init: Callable[..., PyTree]
    act: Callable[..., tuple[jax.Array, PyTree]]
    update: Callable[..., tuple[PyTree, Metrics]]
    rollout_len: int
    kind: str = "on_policy"
    init_carry: Callable[[int], PyTree] | None = None

    @property
    def recurrent(self) -> bool:
        return self.init_carry is not None


def act_step(agent: Any, state: PyTree, obs: jax.Array, key: jax.Array, hparams: PyTree,
             deterministic: bool, carry: PyTree = None, is_first: jax.Array | None = None
             ) -> tuple[jax.Array, PyTree, PyTree]:
    """Call any agent's ``act`` through one signature: ``-> (action, carry, info)``.

    Feedforward agents ignore ``carry``/``is_first`` and return ``carry`` unchanged (``None``);
    off-policy feedforward agents return ``info = {}``; on-policy ones their ``policy_info``.
    Recurrent agents (``agent.init_carry is not None``) get the carry and the ``is_first[N]``
    flags (True where an episode starts: the agent resets its carry there itself).
    """
    if agent.init_carry is not None:
        return agent.act(state, obs, key, hparams, deterministic, carry, is_first)
    out = agent.act(state, obs, key, hparams, deterministic=deterministic)
    if isinstance(out, tuple):
        return out[0], carry, out[1]
    return out, carry, {}
