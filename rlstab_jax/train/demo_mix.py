"""Mix demonstration rows into off-policy batches with a linearly decaying weight.

Field report 003 §9 and §11C: demos tagged ``is_demo``, injected ``demo_repeat`` times and
sampled with a weight that decays linearly to 1 as agent data accumulates, so demos stop
dominating the batch (their fixed weight caused a permanent distribution mismatch and Q drift).
``decay_samples = 0`` is the fixed-weight baseline (``stability.demos.demo_sampling_weight``).

The expected demo fraction is ``w * n_demo / (w * n_demo + n_agent)`` with
``n_demo = size * repeat`` (the injected copies) and ``n_agent = min(env_steps, capacity)``:
the agent rows actually in replay, not the cumulative env steps (which keep growing after the
ring buffer is full). The weight's decay counts cumulative env steps (the report's "as the
buffer fills"; with a capacity below ``decay_samples`` a buffer-size count would never reach
the end of the decay).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from rlstab_jax.agents.base import Batch
from rlstab_jax.stability import demos as demo_fns


@dataclasses.dataclass(frozen=True, eq=False)
class DemoMixer:
    """Demo rows (device constants) and the decay schedule."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    initial_weight: float
    decay_samples: int
    repeat: int
    capacity: int

    @staticmethod
    def from_arrays(data: dict[str, np.ndarray], initial_weight: float, decay_samples: int,
                    repeat: int, capacity: int) -> "DemoMixer":
        """``capacity``: agent rows the replay holds per seed (``replay.capacity``)."""
        return DemoMixer(*(jnp.asarray(data[k]) for k in
                           ("obs", "action", "reward", "next_obs", "terminated", "truncated")),
                         initial_weight=float(initial_weight), decay_samples=int(decay_samples),
                         repeat=int(repeat), capacity=int(capacity))

    @property
    def size(self) -> int:
        return int(self.reward.shape[0])

    def mix(self, key: jax.Array, batch: Batch, env_steps: jax.Array, gamma: jax.Array):
        """Replace a weighted fraction of ``batch`` rows (``[U, B, ...]``) by demo rows."""
        k_idx, k_mix = jax.random.split(key)
        idx = jax.random.randint(k_idx, batch.reward.shape, 0, self.size)
        demo = Batch(obs=self.obs[idx], action=self.action[idx], reward=self.reward[idx],
                     next_obs=self.next_obs[idx], terminated=self.terminated[idx],
                     discount=jnp.full(batch.reward.shape, gamma, jnp.float32),
                     is_demo=jnp.ones(batch.reward.shape, jnp.float32))
        weight = demo_fns.demo_sampling_weight(env_steps, self.initial_weight, self.decay_samples)
        n_agent = jnp.minimum(env_steps, self.capacity)  # rows in replay, not steps taken
        frac = demo_fns.demo_fraction(weight, self.size * self.repeat, n_agent)
        shape = batch.reward.shape  # [U, B]
        flat = lambda t: jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), t)  # noqa: E731
        mixed, frac_in_batch = demo_fns.mix_demo_batch(k_mix, flat(batch), flat(demo), frac)
        mixed = jax.tree.map(lambda x: x.reshape(shape + x.shape[1:]), mixed)
        return mixed, {"demo/sampling_weight": jnp.asarray(weight, jnp.float32),
                       "demo/expected_fraction": jnp.asarray(frac, jnp.float32),
                       "demo/fraction_in_batch": jnp.asarray(frac_in_batch, jnp.float32)}
