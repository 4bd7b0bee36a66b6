"""Episode statistics accumulated on device (no host sync per env step)."""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class EpisodeStats:
    """Running return/length per env plus sums over the episodes finished in this chunk."""

    ret: jax.Array
    length: jax.Array
    done_return: jax.Array
    done_length: jax.Array
    done_count: jax.Array

    @staticmethod
    def zeros(n_envs: int) -> "EpisodeStats":
        # Separate zeros per field: outside jit one shared array would be one buffer in three
        # leaves, which a donating call refuses ("donate the same buffer twice").
        z = lambda: jnp.zeros((), jnp.float32)  # noqa: E731
        return EpisodeStats(jnp.zeros((n_envs,), jnp.float32), jnp.zeros((n_envs,), jnp.int32),
                            z(), z(), z())

    def reset_chunk(self) -> "EpisodeStats":
        z = lambda: jnp.zeros((), jnp.float32)  # noqa: E731
        return self.replace(done_return=z(), done_length=z(), done_count=z())

    def summary(self) -> dict[str, jax.Array]:
        n = jnp.maximum(self.done_count, 1.0)
        nan = jnp.float32(jnp.nan)
        has = self.done_count > 0
        return {"train/episode_return": jnp.where(has, self.done_return / n, nan),
                "train/episode_length": jnp.where(has, self.done_length / n, nan),
                "train/episodes": self.done_count}


def episode_update(stats: EpisodeStats, reward: jax.Array, done: jax.Array) -> EpisodeStats:
    """Add one vector step of rewards ``[n_envs]``; ``done`` closes episodes."""
    ret = stats.ret + reward
    length = stats.length + 1
    d = done.astype(jnp.float32)
    return EpisodeStats(
        ret=jnp.where(done, 0.0, ret), length=jnp.where(done, 0, length),
        done_return=stats.done_return + jnp.sum(d * ret),
        done_length=stats.done_length + jnp.sum(d * length.astype(jnp.float32)),
        done_count=stats.done_count + jnp.sum(d))


def nonfinite_streak(streak: jax.Array, metrics: dict) -> tuple[jax.Array, dict]:
    """Count consecutive update calls that were non-finite (the loop stops at K).

    A call is non-finite when the agent skipped a non-finite gradient step (agents report
    ``nonfinite/skipped``) or any loss it reports (a metric named ``.../loss`` or ``..._loss``)
    is NaN/Inf: huge learning rates make parameters overflow while every gradient step still
    "succeeds", and then only the losses show it (issue 13). The streak resets on the first
    clean call and is added to the metrics as ``nonfinite/streak``; ``nonfinite/loss`` is 1 when
    a loss of this call was non-finite. Non-finite parameters and optimiser state are checked
    by the host loop at each chunk end (``rlstab_jax.train.guard``).
    """
    skipped = metrics.get("nonfinite/skipped", jnp.zeros(()))
    losses = [v for k, v in metrics.items() if "loss" in k.rsplit("/", 1)[-1]]
    bad_loss = jnp.zeros((), bool)
    for v in losses:
        bad_loss = jnp.logical_or(bad_loss, ~jnp.all(jnp.isfinite(v)))
    bad = jnp.logical_or(skipped > 0, bad_loss)
    streak = jnp.where(bad, streak + 1, 0).astype(jnp.int32)
    return streak, dict(metrics, **{"nonfinite/streak": streak.astype(jnp.float32),
                                    "nonfinite/loss": bad_loss.astype(jnp.float32)})
