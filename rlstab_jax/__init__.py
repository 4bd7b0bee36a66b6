"""rlstab_jax: stable, measurably stable deep RL in JAX/Flax."""

from rlstab_jax._xla_flags import add_cpu_scheduler_flag as _add_cpu_scheduler_flag

_add_cpu_scheduler_flag()

__version__ = "0.1.0"
