"""Flax modules: MLP, critic ensembles, encoders (CNN with GroupNorm), a pixel decoder,
context + FiLM, actor."""

from rlstab_jax.nn.actor import SquashedGaussianActor
from rlstab_jax.nn.context import (ContextEncoder, FiLMGenerator, context_obs_dim,
                                   split_context_obs)
from rlstab_jax.nn.critics import CriticEnsemble, QNetwork
from rlstab_jax.nn.decoders import CNNDecoder
from rlstab_jax.nn.encoders import CNNEncoder, VectorEncoder
from rlstab_jax.nn.mlp import MLP, apply_film, get_activation, kernel_init

__all__ = [
    "MLP", "apply_film", "get_activation", "kernel_init", "CriticEnsemble", "QNetwork",
    "CNNEncoder", "CNNDecoder", "VectorEncoder", "ContextEncoder", "FiLMGenerator",
    "context_obs_dim", "split_context_obs", "SquashedGaussianActor",
]
