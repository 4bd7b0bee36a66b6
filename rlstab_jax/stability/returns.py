"""Lambda returns (imagination, DreamerV3) and GAE (PPO), time-major, via ``lax.scan``.

Convention for both: index t of ``rewards``/``continues``/``terminated`` belongs to the
transition ``s_t -> s_{t+1}``; ``values[t] = V(s_t)``.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from rlstab_jax.config.errors import ConfigError

BOOTSTRAP_MODES = ("next", "current")


def lambda_returns(
    rewards: jax.Array,
    values: jax.Array,
    continues: jax.Array,
    gamma: float | jax.Array,
    lam: float | jax.Array,
    bootstrap: str = "next",
) -> jax.Array:
    """TD(lambda) returns computed backwards, bootstrapping from ``V(s_{t+1})``.

    ``R_t = r_t + gamma * c_t * ((1 - lam) * V(s_{t+1}) + lam * R_{t+1})``, with
    ``R_T = V(s_T)``, where ``c_t`` is 0 if ``s_{t+1}`` is terminal.

    ``bootstrap="current"`` uses ``V(s_t)`` in place of ``V(s_{t+1})``: the bug of field
    report 002_f727d2bd93148014.txt (Cartpole "Run 3", ``dreamed_values[i]`` instead of
    ``[i+1]``), which left the actor worse than random; fixing it took episode length
    21 -> 27 in 5k steps. Kept for ablations. The two agree when ``lam == 1``.

    Gradients flow into ``values``; wrap the result in ``stop_gradient`` when it is a
    critic target (report 002, "Missing stop_gradient on critic targets").

    Args:
      rewards: ``[T, ...]`` rewards of transitions ``t -> t+1``.
      values: ``[T + 1, ...]`` values ``V(s_0) .. V(s_T)``.
      continues: ``[T, ...]`` continuation flags/probabilities of ``s_{t+1}`` (0 at a
        terminal), float.
      gamma: discount.
      lam: lambda in [0, 1].
      bootstrap: ``"next"`` (correct) or ``"current"`` (report's bug form), static.

    Returns:
      ``[T, ...]`` returns ``R_0 .. R_{T-1}``.

    Raises:
      ConfigError: for an unknown ``bootstrap``.
    """
    if bootstrap not in BOOTSTRAP_MODES:
        raise ConfigError(f"lambda_returns bootstrap={bootstrap!r} is not one of {BOOTSTRAP_MODES}")
    chex.assert_equal_shape([rewards, continues, values[1:]])
    chex.assert_type([rewards, values, continues], float)
    boot = values[1:] if bootstrap == "next" else values[:-1]

    def step(next_return, xs):
        r, c, v = xs
        ret = r + gamma * c * ((1.0 - lam) * v + lam * next_return)
        return ret, ret

    _, returns = jax.lax.scan(step, values[-1], (rewards, continues, boot), reverse=True)
    return returns



def replay_lambda_returns(
    rewards: jax.Array,
    terminated: jax.Array,
    is_first: jax.Array,
    boot: jax.Array,
    gamma: float | jax.Array,
    lam: float | jax.Array,
) -> jax.Array:
    """Lambda returns along a *replayed* sequence, bootstrapping from imagined returns.

    Failure it prevents: a critic trained only on imagined rewards is fooled by the same
    world-model errors the actor exploits (field report 002, "Training Collapse
    Investigation": "In Dreamer the critic learns from IMAGINED rewards"). DreamerV3's
    replay-value loss also fits the critic to returns built from the *real* rewards and
    terminations of the replayed sequence, so its values stay anchored to what the env did.

    Row convention of the replay (``SeqBatch``, time-major here): row ``t`` holds
    ``obs_t -> next_obs_t`` with ``rewards[t]``, ``terminated[t]`` (``next_obs_t`` terminal)
    and ``is_first[t]`` (row ``t`` starts an episode). The Dreamer latent of row ``t`` is the
    posterior of ``next_obs_t`` (state ``S_t``); ``boot[t]`` is a value estimate of ``S_t``
    (the imagined lambda return from it). Then, for ``t < T - 1``:

    ``R_t = r_{t+1} + gamma * c_{t+1} * ((1 - lam) * boot[t+1] + lam * R_{t+1})``,
    ``c_{t+1} = 1 - terminated[t+1]``, ``R_{T-1} = boot[T-1]``,

    except where row ``t + 1`` starts a new episode (``S_t`` was the episode's last state):
    there ``R_t = boot[t]`` (a truncated episode bootstraps from its own estimate; a terminal
    ``S_t`` gets ``R_t = boot[t]`` too and should carry zero weight in the loss).

    Args:
      rewards, terminated, is_first: ``[T, ...]`` replay rows (time-major).
      boot: ``[T, ...]`` value estimates of each row's latent ``S_t``, float.
      gamma, lam: discount and lambda.

    Returns:
      ``[T - 1, ...]`` returns for ``S_0 .. S_{T-2}`` (gradients flow into ``boot``; wrap
      in ``stop_gradient`` for a critic target).
    """
    chex.assert_equal_shape([rewards, terminated, is_first, boot])
    chex.assert_type([rewards, boot], float)
    boundary = is_first[1:]
    r = jnp.where(boundary, boot[:-1], rewards[1:])
    c = jnp.where(boundary, 0.0, 1.0 - terminated[1:].astype(boot.dtype))
    return lambda_returns(r, boot, c, gamma, lam, "next")


def gae(
    rewards: jax.Array,
    values: jax.Array,
    last_value: jax.Array,
    terminated: jax.Array,
    gamma: float | jax.Array,
    lam: float | jax.Array,
    truncated: jax.Array | None = None,
    final_values: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation for a time-major rollout ``[T, B]``.

    ``delta_t = r_t + gamma * boot_t - V(s_t)``,
    ``A_t = delta_t + gamma * lam * (1 - done_t) * A_{t+1}``, ``A_T = 0``, returns
    ``A + V``. What ``boot_t`` is decides terminal vs time-limit handling:

    - not done: ``V(s_{t+1})`` (``values[t+1]``, or ``last_value`` at ``t = T-1``);
    - ``terminated[t]``: 0 (no future; wins if both flags are set);
    - ``truncated[t]`` (time limit; the env auto-reset, so ``values[t+1]`` belongs to a
      new episode): ``final_values[t] = V(final_observation_t)`` if given, else
      ``values[t]`` as a one-step-stale stand-in (documented approximation, far less
      biased than treating the cut as terminal, which teaches ``V = sum of rewards until
      the time limit`` instead of ``1 / (1 - gamma)`` on a never-ending task).

    ``done_t = terminated | truncated`` cuts the trace either way. With ``truncated=None``
    every episode end is treated as terminal (CleanRL behaviour).

    Prevents biased advantages at episode boundaries in multi-head PPO (field report
    004_6e987958da6da454.txt, "Value bootstrap at episode end"; the report's critic is
    ``Q(s, op)``, so pass the sampled-op value as ``values``/``final_values``).

    Args:
      rewards: ``[T, ...]`` rewards.
      values: ``[T, ...]`` ``V(s_t)`` recorded in the rollout.
      last_value: ``[...]`` ``V(s_T)`` of the observation after the last step.
      terminated: ``[T, ...]`` bool or {0, 1}: ``s_{t+1}`` is terminal.
      gamma: discount.
      lam: GAE lambda.
      truncated: optional ``[T, ...]`` bool: the episode was cut by a time limit at t.
      final_values: optional ``[T, ...]`` value of the true final observation
        (``info["final_observation"]``); read only where ``truncated``.

    Returns:
      ``(advantages, returns)``, both ``[T, ...]``.

    Raises:
      ConfigError: if ``final_values`` is given without ``truncated``.
    """
    if final_values is not None and truncated is None:
        raise ConfigError("gae: final_values given without truncated; pass truncated=...")
    chex.assert_equal_shape([rewards, values, terminated])
    chex.assert_equal_shape([rewards[0], last_value])
    chex.assert_type([rewards, values, last_value], float)
    dtype = rewards.dtype
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    term = terminated.astype(bool)
    if truncated is None:
        trunc = jnp.zeros_like(term)
        boot = next_values
    else:
        chex.assert_equal_shape([rewards, truncated])
        trunc = truncated.astype(bool)
        if final_values is None:
            final_values = values
        chex.assert_equal_shape([rewards, final_values])
        boot = jnp.where(trunc, final_values, next_values)
    boot = jnp.where(term, jnp.zeros_like(boot), boot)
    deltas = rewards + gamma * boot - values
    carry_on = 1.0 - (term | trunc).astype(dtype)

    def step(next_adv, xs):
        delta, keep = xs
        adv = delta + gamma * lam * keep * next_adv
        return adv, adv

    _, advantages = jax.lax.scan(step, jnp.zeros_like(last_value), (deltas, carry_on),
                                 reverse=True)
    return advantages, advantages + values
