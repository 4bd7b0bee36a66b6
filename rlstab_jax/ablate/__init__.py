"""Ablation grids: variants x seeds in vmapped programs, rliable statistics, stability metrics.

``python -m rlstab_jax.ablate GRID`` (see ``__main__``); the pieces: ``spec`` (grid files),
``cells`` (one program x seed block through the shared loop), ``runner`` (the grid, resume,
Ray), ``curves``/``stats``/``plots``/``report`` (the results directory).
"""
