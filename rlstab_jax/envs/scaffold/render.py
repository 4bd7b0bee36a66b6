"""``render_frame(state, params) -> uint8 [H, W, 3]``: alphas over time per slot, by stage.

One horizontal strip per slot; column ``t`` is step ``t`` of the episode (2 px each), the bar
height is the slot's alpha and its colour the stage (training amber, blending blue, pruning
red, fossilised green; empty steps dark). Pure JAX (jit it once); for notebooks and the
gymnasium ``render()``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rlstab_jax.envs.scaffold.env import EnvParams, EnvState

STRIP = 40
COLORS = jnp.array([[40, 40, 40], [230, 160, 40], [60, 120, 230], [220, 60, 60],
                    [60, 190, 90]], jnp.uint8)


def render_frame(state: EnvState, params: EnvParams) -> jax.Array:
    T = state.alpha_hist.shape[0]
    S = params.n_slots
    H, W = S * STRIP, 2 * T
    y = jnp.arange(H)[:, None]
    x = jnp.arange(W)[None, :]
    s = y // STRIP
    t = x // 2
    yy = (y % STRIP).astype(jnp.float32)
    alpha = state.alpha_hist[t, s]
    stage = state.stage_hist[t, s]
    seen = t < state.time
    # a live seed with alpha 0 still shows a thin line of its stage colour
    filled = seen & ((yy >= (STRIP - 2) * (1.0 - alpha)) | (yy >= STRIP - 3)) & (stage > 0)
    img = jnp.where(filled[..., None], COLORS[stage], jnp.uint8(15))
    sep = (y % STRIP) == 0
    return jnp.where(sep[..., None], jnp.uint8(90), img).astype(jnp.uint8)


render_frame_jit = jax.jit(render_frame, static_argnums=1)
