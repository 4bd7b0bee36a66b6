"""Pure-JAX rasterisers: a small egocentric pixel observation and a full rgb_array frame.

``pixel_obs`` is the ``pixels=True`` observation (``[P, P, 3]`` uint8, default 48x48): a
top-down view rotated so the car points up, placed 3/4 of the way down, with a speed bar on the
left edge and a steering bar on the bottom edge (a single frame then carries speed). The
asphalt is drawn by scattering track-frame points ahead of and behind the car, so it stays
cheap enough to vmap (other parts of the lap that enter the view are not drawn).

``render_frame`` draws the whole track, the trail and the car for videos and notebooks
(``[size, size, 3]`` uint8); the static track image is computed once by ``background``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rlstab_jax.envs.racer import track as tracklib

GRASS = jnp.array([34, 110, 40], jnp.uint8)
ASPHALT = jnp.array([100, 100, 104], jnp.uint8)
CAR = jnp.array([230, 40, 40], jnp.uint8)
TRAIL = jnp.array([250, 210, 40], jnp.uint8)
WHITE = jnp.array([240, 240, 240], jnp.uint8)
BLUE = jnp.array([60, 120, 250], jnp.uint8)
CAR_LENGTH, CAR_WIDTH = 4.5, 2.0
N_ACROSS = 16  # asphalt samples across the track (gap-free for half-widths up to ~6 m)


def _in_car(dx: jax.Array, dy: jax.Array, heading: jax.Array, scale: float = 1.0) -> jax.Array:
    """Whether world offsets ``(dx, dy)`` from the car centre fall inside its rectangle."""
    c, s = jnp.cos(heading), jnp.sin(heading)
    fwd, left = c * dx + s * dy, -s * dx + c * dy
    return (jnp.abs(fwd) < 0.5 * CAR_LENGTH * scale) & (jnp.abs(left) < 0.5 * CAR_WIDTH * scale)


def pixel_obs(track: tracklib.Track, state, params) -> jax.Array:
    """Egocentric top-down view ``[P, P, 3]`` uint8 (``P = params.pixel_size``).

    ``params.pixel_view`` (m, static) is the side of the square view; the car sits at the
    horizontal centre, a quarter of the view from the bottom, heading up.
    """
    p, view = params.pixel_size, params.pixel_view
    mpp = view / p
    rows = jnp.arange(p, dtype=jnp.float32)
    fwd = (0.75 * p - rows - 0.5) * mpp  # [P] metres ahead of the car
    left = (0.5 * p - rows - 0.5) * mpp  # [P] metres to the left (reused for columns)
    c, s = jnp.cos(state.heading), jnp.sin(state.heading)
    wx = state.x + c * fwd[:, None] - s * left[None, :]
    wy = state.y + s * fwd[:, None] + c * left[None, :]
    # Rasterise the asphalt by scattering a grid of track-frame points (arc length x offset),
    # spaced at half a pixel, into the view: O(points) instead of O(pixels x centre samples).
    step = 0.5 * mpp
    along = jnp.arange(-0.36 * view, 1.07 * view, step, dtype=jnp.float32)  # view diagonal
    i0, i1, t = tracklib.interp_index(track, state.s + along)
    centre = (1.0 - t)[:, None] * track.xy[i0] + t[:, None] * track.xy[i1]
    tan = (1.0 - t)[:, None] * track.tangent[i0] + t[:, None] * track.tangent[i1]
    tan = tan / jnp.linalg.norm(tan, axis=-1, keepdims=True)
    normal = jnp.stack([-tan[:, 1], tan[:, 0]], -1)
    across = jnp.linspace(-1.0, 1.0, N_ACROSS, dtype=jnp.float32) * params.half_width
    pts = centre[:, None, :] + across[None, :, None] * normal[:, None, :]  # [A, U, 2]
    dx, dy = pts[..., 0] - state.x, pts[..., 1] - state.y
    r = jnp.floor(0.75 * p - (c * dx + s * dy) / mpp).astype(jnp.int32)
    col = jnp.floor(0.5 * p - (-s * dx + c * dy) / mpp).astype(jnp.int32)
    r, col = _clip_idx(r, col, p)
    on_track = jnp.zeros((p, p), bool).at[r, col].set(True, mode="drop")
    img = jnp.where(on_track[..., None], ASPHALT, GRASS)
    car = _in_car(wx - state.x, wy - state.y, state.heading)
    img = jnp.where(car[..., None], CAR, img)
    cols = jnp.arange(p)
    bar_h = jnp.round(jnp.clip(state.speed / params.max_speed, 0.0, 1.0) * p)
    speed_bar = (cols[None, :] < 2) & (rows[:, None] >= p - bar_h)
    img = jnp.where(speed_bar[..., None], WHITE, img)
    steer_px = -state.prev_action[0] * 0.5 * p  # + steer = left = towards column 0
    centre = 0.5 * p
    lo, hi = jnp.minimum(centre, centre + steer_px), jnp.maximum(centre, centre + steer_px)
    steer_bar = (rows[:, None] >= p - 2) & (cols[None, :] >= lo - 0.5) & (cols[None, :] <= hi + 0.5)
    return jnp.where(steer_bar[..., None], BLUE, img).astype(jnp.uint8)


class View(NamedTuple):
    """World-to-pixel transform of a full frame: ``col = (x - x0) * scale``, rows flipped."""

    x0: jax.Array
    y0: jax.Array
    scale: jax.Array


def background(track: tracklib.Track, half_width: float, size: int = 256,
               margin: float = 8.0) -> tuple[jax.Array, View]:
    """The static track image ``[size, size, 3]`` uint8 and its :class:`View`."""
    lo = jnp.min(track.xy, 0) - half_width - margin
    hi = jnp.max(track.xy, 0) + half_width + margin
    scale = size / jnp.max(hi - lo)
    centre = 0.5 * (lo + hi)
    x0, y0 = centre[0] - 0.5 * size / scale, centre[1] - 0.5 * size / scale
    view = View(x0, y0, scale)
    xs = x0 + (jnp.arange(size, dtype=jnp.float32) + 0.5) / scale
    tan0, start = track.tangent[0], track.xy[0]

    def row(r):
        wy = y0 + (size - r - 0.5) / scale
        d2 = jnp.min((xs[:, None] - track.xy[:, 0]) ** 2 + (wy - track.xy[:, 1]) ** 2, -1)
        on = d2 < half_width**2
        along = (xs - start[0]) * tan0[0] + (wy - start[1]) * tan0[1]
        across2 = (xs - start[0]) ** 2 + (wy - start[1]) ** 2 - along**2
        line = on & (jnp.abs(along) < 0.6 / scale + 0.3) & (across2 < half_width**2)
        px = jnp.where(on[:, None], ASPHALT, GRASS)
        return jnp.where(line[:, None], WHITE, px)

    img = jax.lax.map(row, jnp.arange(size, dtype=jnp.float32))
    return img.astype(jnp.uint8), view


def to_pixels(view: View, xy: jax.Array, size: int) -> tuple[jax.Array, jax.Array]:
    """World points ``[..., 2]`` -> integer ``(row, col)`` (may fall outside the frame)."""
    col = jnp.floor((xy[..., 0] - view.x0) * view.scale).astype(jnp.int32)
    row = jnp.floor(size - (xy[..., 1] - view.y0) * view.scale).astype(jnp.int32)
    return row, col


def _clip_idx(r: jax.Array, c: jax.Array, size: int) -> tuple[jax.Array, jax.Array]:
    """Send out-of-frame indices to ``size`` (dropped by ``mode="drop"``; negatives would wrap)."""
    bad = (r < 0) | (r >= size) | (c < 0) | (c >= size)
    return jnp.where(bad, size, r), jnp.where(bad, size, c)


def render_frame(bg: jax.Array, view: View, x: jax.Array, y: jax.Array, heading: jax.Array,
                 trail: jax.Array | None = None, trail_mask: jax.Array | None = None,
                 car_scale: float = 1.5) -> jax.Array:
    """Draw the trail ``[T, 2]`` (where ``trail_mask [T]``) and the car on ``bg``.

    Returns an rgb_array frame ``[size, size, 3]`` uint8. ``car_scale`` enlarges the car so
    it stays visible on a whole-track frame.
    """
    img = bg
    size = bg.shape[0]
    if trail is not None:
        r, c = to_pixels(view, trail, size)
        if trail_mask is not None:
            r = jnp.where(trail_mask, r, -1)
        r, c = _clip_idx(r, c, size)
        img = img.at[r, c].set(TRAIL, mode="drop")
    # Car rectangle: test only a small box of pixels around it.
    box = int(math.ceil(0.5 * CAR_LENGTH * car_scale * size / 50.0)) + 2  # world >= 50 m wide
    rc, cc = to_pixels(view, jnp.stack([x, y]), size)
    offs = jnp.arange(-box, box + 1)
    rr, ccol = rc + offs[:, None], cc + offs[None, :]
    wx = view.x0 + (ccol + 0.5) / view.scale
    wy = view.y0 + (size - rr - 0.5) / view.scale
    inside = _in_car(wx - x, wy - y, heading, car_scale)
    rr, ccol = _clip_idx(jnp.where(inside, rr, -1), jnp.broadcast_to(ccol, inside.shape), size)
    return img.at[rr, ccol].set(CAR, mode="drop")
