"""Continue-head loss that rare terminations cannot be outvoted in.

Failure it prevents (field report 002_f727d2bd93148014.txt, "Training Collapse Investigation": the
agent solved CartPole, then fell while "the WM extrapolates optimistically" and the critic's values
kept rising). Measured in this library (``bench/dreamer_cartpole.md``, "The world model does not see
the cart leave the track"): once a Dreamer agent balances the pole, almost every replayed step is a
non-terminal one (episodes end by the 500-step time limit, which is not a termination), and the few
steps where the cart left the track are a fraction of a percent of the replay. The plain Bernoulli
continue loss then predicts "continue" (0.999) on the very step that terminated by leaving the
track, imagination never sees that ending, the critic values every cart position alike, and nothing
stops the policy from drifting off the track.

``terminal_weighted_bce`` weighs each terminal step ``terminal_weight`` times a non-terminal one
(``pos_weight`` of a class-balanced cross-entropy), as a weighted mean so the loss keeps the
scale of the unweighted one. ``terminal_weight = 1`` is the plain DreamerV3 loss (the "off"
variant). For a termination that the state decides (CartPole's edges and angle) the minimiser
is unchanged: it is 0 on terminal states and 1 on the others whatever the weight; only where
the latent cannot tell the two apart does the weight move the prediction towards "terminal",
i.e. towards caution.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import optax


def terminal_weighted_bce(cont_logit: jax.Array, terminated: jax.Array,
                          terminal_weight: jax.Array | float) -> jax.Array:
    """Weighted mean Bernoulli NLL of the continue head, terminal steps weighted up.

    Args:
      cont_logit: ``[...]`` float logits of ``p(continue)``.
      terminated: ``[...]`` bool (or 0/1 float), same shape: the step ended the episode by
        termination (not a time-limit truncation).
      terminal_weight: scalar ``>= 0`` (a traced hyper-parameter is fine): weight of a
        terminal step relative to a non-terminal one. 1 is the unweighted mean.

    Returns:
      ``[]`` float32 loss: ``sum(w * bce) / sum(w)`` with ``w = terminal_weight`` on terminal
      steps and 1 elsewhere.
    """
    chex.assert_equal_shape([cont_logit, terminated])
    chex.assert_type(cont_logit, float)
    term = terminated.astype(jnp.float32)
    bce = optax.sigmoid_binary_cross_entropy(cont_logit.astype(jnp.float32), 1.0 - term)
    w = 1.0 + (jnp.asarray(terminal_weight, jnp.float32) - 1.0) * term
    return jnp.sum(w * bce) / jnp.maximum(jnp.sum(w), 1e-8)


def terminal_recall(cont_logit: jax.Array, terminated: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Telemetry: share of terminal steps the continue head calls terminal, and how many.

    Returns ``(recall [], count [])``; ``recall`` is 1 when the batch has no terminal step (so
    an EMA or a plot is not pulled to 0 by batches without one; read it beside ``count``).
    """
    chex.assert_equal_shape([cont_logit, terminated])
    term = terminated.astype(jnp.float32)
    hit = (cont_logit < 0).astype(jnp.float32) * term
    count = jnp.sum(term)
    return jnp.where(count > 0, jnp.sum(hit) / jnp.maximum(count, 1.0), 1.0), count
