"""Open-loop ("overshooting") prediction targets for a world model's prior.

Failure it prevents (field report 002_f727d2bd93148014.txt, "Training Collapse Investigation":
"Actor is exploiting the world model"). Measured in this library (``bench/dreamer_cartpole.md``,
"w30 and w100"): DreamerV3's world-model loss trains the prior only one step ahead (the KL to the
posterior of the next observation), and every decoded observation comes from a posterior that has
just seen the real one. A drift that is small per step and that the posterior corrects every step
is then never learned by the prior: on CartPole the real cart drifted 0.2-0.55 towards the edge in
50 steps under policies that, rolled open-loop through the prior, kept it centred or brought it
back. Imagination, which is open-loop, cannot show the actor the drift, and solved seeds fall.

An overshooting loss (PlaNet's latent overshooting, here on observations) rolls the prior
open-loop from each posterior latent for ``d = 1..depth`` steps with the *replayed* actions and
decodes the observation ``d`` steps later, so the prediction error of imagination itself is
trained. This module gives the part that is about time and episodes, not networks: which
(start, depth) pairs have a real target (``overshoot_valid``), and how a ``[B, T]`` row is shifted
to line up the target ``d`` steps ahead (``shift_time``).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def overshoot_valid(is_first: jax.Array, depth: int) -> jax.Array:
    """Mask of the open-loop targets that lie in the same episode and inside the sequence.

    Rows follow the replay's one-step layout (``rlstab_jax.agents.dreamer.world_model``): the
    latent of row ``t`` is that of ``next_obs_t``; rolling it ``d`` steps with the actions of
    rows ``t+1..t+d`` predicts ``next_obs_{t+d}``. That target is real only if ``t + d < T`` and
    no row in ``t+1..t+d`` starts a new episode (``is_first``; a terminal row is always followed
    by one).

    Args:
      is_first: ``[B, T]`` bool (or 0/1): the row's ``obs`` starts an episode.
      depth: static number of open-loop steps ``D >= 1``.

    Returns:
      ``[D, B, T]`` float32 in {0, 1}; entry ``[d - 1, b, t]`` is 1 where the target of start
      ``(b, t)`` at depth ``d`` is valid. Valid entries of a start form a prefix over ``d``.
    """
    chex.assert_rank(is_first, 2)
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    T = is_first.shape[1]
    firsts = jnp.cumsum(is_first.astype(jnp.int32), axis=1)  # [B, T]: episode starts in rows <= t
    t = jnp.arange(T)
    end = t[None, :] + jnp.arange(1, depth + 1)[:, None]  # [D, T]: the target row t + d
    inside = end < T
    # episode starts among rows t+1..t+d = firsts[t+d] - firsts[t]
    starts_between = jnp.take(firsts, jnp.minimum(end, T - 1), axis=1) - firsts[:, None, :]
    starts_between = jnp.moveaxis(starts_between, 1, 0)  # [D, B, T]
    return (inside[:, None, :] & (starts_between == 0)).astype(jnp.float32)


def shift_time(x: jax.Array, d: jax.Array | int) -> jax.Array:
    """``x [B, T, ...]`` moved ``d`` rows earlier along time: ``out[:, t] = x[:, t + d]``.

    Rows past the end wrap around; ``overshoot_valid`` masks them. ``d`` may be traced (inside a
    ``lax.scan`` over depths).
    """
    chex.assert_rank(x, {2, 3, 4, 5})
    return jnp.roll(x, -jnp.asarray(d), axis=1)


def masked_mean(errors: jax.Array, valid: jax.Array) -> jax.Array:
    """Mean of ``errors`` over the entries where ``valid`` is 1 (0 when none is valid)."""
    chex.assert_equal_shape([errors, valid])
    return jnp.sum(errors * valid) / jnp.maximum(jnp.sum(valid), 1.0)


__all__ = ["overshoot_valid", "shift_time", "masked_mean"]
