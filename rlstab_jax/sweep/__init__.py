"""Stability-aware Optuna sweeps over vmapped trial batches (``python -m rlstab_jax.sweep``)."""
