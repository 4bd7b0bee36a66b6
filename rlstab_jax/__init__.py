"""rlstab_jax: stable, measurably stable deep RL in JAX/Flax."""

__version__ = "0.1.0"
