"""Replay priorities from the world model's own per-sequence loss (Curious Replay).

Failure it prevents (``bench/dreamer_cartpole.md``, "The world model does not see the cart
leave the track"; field report 002_f727d2bd93148014.txt, "Training Collapse Investigation":
the agent solved CartPole, then fell while the world model "extrapolates optimistically").
Once a Dreamer agent balances the pole, uniform replay hands the world model sequences it
already predicts well: almost every replayed step is a 500-step balancing episode, and the
rare sequences where the cart drifted to the edge of the track (or the pole fell) are a
fraction of a percent of the samples. The model's error there stays high, imagination never
shows the drift ending the episode, and the greedy policy drifts off the track again.

Sampling a stored sequence with probability proportional to ``priority ** alpha``, where
the priority is the world-model loss the last time the sequence was trained on, replays the
sequences the model gets wrong until it gets them right (Kauvar et al. 2023, "Curious Replay
for Model-based Adaptation", on DreamerV3; prioritised experience replay, Schaul et al.
2016, with the model's loss in place of the TD error). New sequences enter with the largest
priority seen so far (flashbax's prioritised buffer), so each is trained on soon after it
is stored, the role of Curious Replay's visit-count bonus. No importance weights: the point
is to move the model's data distribution towards its mistakes, not to correct for it.
``replay.priority=false`` (uniform sampling) is the "off" variant.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

PRIORITY_FLOOR = 1e-3  # every valid sequence keeps a non-zero chance of being replayed


def sequence_priority(step_loss: jax.Array, floor: float = PRIORITY_FLOOR) -> jax.Array:
    """Replay priority of each sequence: its mean per-step loss, floored, finite.

    Args:
      step_loss: ``[B, T]`` float per-step loss terms of a sequence batch (e.g. the world
        model's decoder error + reward NLL + continue NLL + dynamics KL at each step).
      floor: added to every priority (a priority of 0 would never be sampled again, and
        flashbax treats 0 as "no item").

    Returns:
      ``[B]`` float32 priorities ``>= floor``: ``max(mean_t step_loss, 0) + floor``. A
      sequence with a non-finite loss gets ``floor`` (the run's non-finite guard reports
      the loss; the sampler's sum tree must stay finite).
    """
    chex.assert_rank(step_loss, 2)
    chex.assert_type(step_loss, float)
    mean = jnp.mean(step_loss.astype(jnp.float32), axis=1)
    mean = jnp.where(jnp.isfinite(mean), jnp.maximum(mean, 0.0), 0.0)
    return jax.lax.stop_gradient(mean + floor)
