"""A seeded family of smooth closed tracks, sampled uniformly in arc length, and projection.

A track is a star-shaped closed curve in polar form
``r(theta) = R * (1 + sum_k a_k cos(k theta) + b_k sin(k theta))`` for harmonics
``k = 2 .. 1 + H`` with small random amplitudes (so it never self-intersects and its radius of
curvature stays well above the track half-width), driven counter-clockwise. The centre line is
resampled to ``N`` points equally spaced in arc length; tangents and signed curvature
(``+`` = left turn) come from the analytic derivatives.

Everything is pure JAX (``build_track`` runs inside ``reset`` for random-per-episode tracks);
``fixed_track`` evaluates it once per seed on the host and caches numpy constants so the default
fixed-track env bakes its track into the compiled step.

Field reports 000/001/003 (TrackMania) are the reason this exists: a fast, jit/vmap-able track
on which steering precision at speed matters.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

#: Default tightest-corner radius as a fraction of the mean radius ``R``.
MIN_RADIUS_RATIO = 0.25

@struct.dataclass
class Track:
    """Centre line sampled at ``N`` points, equally spaced in arc length.

    Attributes:
      xy: ``[N, 2]`` centre-line points (m); point 0 is the start line.
      tangent: ``[N, 2]`` unit tangents (direction of travel).
      kappa: ``[N]`` signed curvature (1/m), positive for left turns.
      length: ``[]`` total arc length (m); sample spacing is ``length / N``.
    """

    xy: jax.Array
    tangent: jax.Array
    kappa: jax.Array
    length: jax.Array

    @property
    def n(self) -> int:
        return self.xy.shape[-2]

    @property
    def ds(self) -> jax.Array:
        return self.length / self.n


class Projection(NamedTuple):
    """Where a point sits relative to the centre line.

    ``s`` arc length in ``[0, length)``; ``offset`` signed lateral offset (m, + = left of the
    direction of travel); ``idx`` index of the segment start; ``tangent`` ``[2]`` and ``kappa``
    interpolated at the projection.
    """

    s: jax.Array
    offset: jax.Array
    idx: jax.Array
    tangent: jax.Array
    kappa: jax.Array


def sample_coefs(key: jax.Array, n_harmonics: int = 4,
                 min_radius_ratio: float = MIN_RADIUS_RATIO) -> jax.Array:
    """Random shape coefficients ``[H, 2]`` (cos, sin amplitudes) for harmonics 2 .. H+1.

    A random direction (harmonic k weighted by ``1/k``) is scaled by bisection so that the
    tightest corner has radius ``min_radius_ratio * R``: every seed is equally demanding,
    and the radius never approaches the track half-width (no self-overlapping edges).
    """
    k = jnp.arange(2, 2 + n_harmonics, dtype=jnp.float32)
    u = jax.random.uniform(key, (n_harmonics, 2), jnp.float32, -1.0, 1.0) / k[:, None]
    hi0 = 0.9 / jnp.sum(jnp.abs(u))  # keeps r(theta) > 0.1 R
    theta = jnp.arange(512, dtype=jnp.float32) * (2.0 * jnp.pi / 512)

    def max_kappa(alpha):
        return jnp.max(jnp.abs(_kappa_polar(alpha * u, theta)))

    def bisect(_, lo_hi):
        lo, hi = lo_hi
        mid = 0.5 * (lo + hi)
        too_sharp = max_kappa(mid) > 1.0 / min_radius_ratio
        return jnp.where(too_sharp, lo, mid), jnp.where(too_sharp, mid, hi)

    lo, _ = jax.lax.fori_loop(0, 14, bisect, (jnp.float32(0.0), hi0))
    return u * lo


def _kappa_polar(coefs: jax.Array, theta: jax.Array) -> jax.Array:
    """Signed curvature of the unit-radius curve at ``theta``."""
    r, dr, ddr = _polar(coefs, theta)
    return (r**2 + 2.0 * dr**2 - r * ddr) / (r**2 + dr**2) ** 1.5


def _polar(coefs: jax.Array, theta: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """r/R and its first two theta-derivatives at ``theta [M]``."""
    k = jnp.arange(2, 2 + coefs.shape[0], dtype=jnp.float32)
    kt = theta[:, None] * k[None, :]
    c, s = jnp.cos(kt), jnp.sin(kt)
    a, b = coefs[:, 0], coefs[:, 1]
    r = 1.0 + c @ a + s @ b
    dr = (-s * k) @ a + (c * k) @ b
    ddr = (-c * k**2) @ a + (-s * k**2) @ b
    return r, dr, ddr


def build_track(coefs: jax.Array, radius: float, n_points: int, oversample: int = 8) -> Track:
    """Sample the closed curve given by ``coefs [H, 2]`` uniformly in arc length.

    Args:
      coefs: harmonic amplitudes from :func:`sample_coefs`.
      radius: mean radius ``R`` (m); the lap is roughly ``2 pi R`` long.
      n_points: number of centre-line samples ``N`` (static).
      oversample: dense evaluation factor used to integrate arc length.

    Returns:
      A :class:`Track`.
    """
    m = n_points * oversample
    theta = jnp.arange(m, dtype=jnp.float32) * (2.0 * jnp.pi / m)
    r, dr, ddr = _polar(coefs, theta)
    r, dr, ddr = r * radius, dr * radius, ddr * radius
    ct, st = jnp.cos(theta), jnp.sin(theta)
    x, y = r * ct, r * st
    dx, dy = dr * ct - r * st, dr * st + r * ct
    ddx = ddr * ct - 2.0 * dr * st - r * ct
    ddy = ddr * st + 2.0 * dr * ct - r * st
    speed = jnp.sqrt(dx**2 + dy**2)
    kappa = (dx * ddy - dy * ddx) / speed**3
    # Arc length by the trapezoid rule on the dense grid (periodic).
    dtheta = 2.0 * jnp.pi / m
    seg = 0.5 * (speed + jnp.roll(speed, -1)) * dtheta
    s_dense = jnp.concatenate([jnp.zeros(1), jnp.cumsum(seg)])
    length = s_dense[-1]
    s_new = jnp.arange(n_points, dtype=jnp.float32) * (length / n_points)

    # One binary search shared by every interpolated quantity (cheaper to compile and run).
    j = jnp.clip(jnp.searchsorted(s_dense, s_new, side="right") - 1, 0, m - 1)
    w = (s_new - s_dense[j]) / (s_dense[j + 1] - s_dense[j])

    def interp(v):
        v = jnp.concatenate([v, v[:1]])
        return (1.0 - w) * v[j] + w * v[j + 1]

    tx, ty = interp(dx / speed), interp(dy / speed)
    norm = jnp.sqrt(tx**2 + ty**2)
    xy = jnp.stack([interp(x), interp(y)], -1)
    tangent = jnp.stack([tx / norm, ty / norm], -1)
    return Track(xy=xy.astype(jnp.float32), tangent=tangent.astype(jnp.float32),
                 kappa=interp(kappa).astype(jnp.float32), length=length.astype(jnp.float32))


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _seeded_track(seed: jax.Array, radius: float, n_points: int, n_harmonics: int) -> Track:
    return build_track(sample_coefs(jax.random.key(seed), n_harmonics), radius, n_points)


@functools.lru_cache(maxsize=64)
def _fixed_track_np(seed: int, radius: float, n_points: int, n_harmonics: int):
    with jax.ensure_compile_time_eval():
        t = _seeded_track(np.uint32(seed), radius, n_points, n_harmonics)
        return tuple(np.asarray(v) for v in (t.xy, t.tangent, t.kappa, t.length))


def fixed_track(seed: int, radius: float, n_points: int, n_harmonics: int = 4) -> Track:
    """The track of ``seed`` as host constants (cached; safe to call while tracing)."""
    xy, tangent, kappa, length = _fixed_track_np(int(seed), float(radius), int(n_points),
                                                 int(n_harmonics))
    return Track(xy=jnp.asarray(xy), tangent=jnp.asarray(tangent), kappa=jnp.asarray(kappa),
                 length=jnp.asarray(length))


def wrap_s(ds: jax.Array, length: jax.Array) -> jax.Array:
    """Wrap an arc-length difference into ``[-length/2, length/2)``."""
    return jnp.mod(ds + 0.5 * length, length) - 0.5 * length


def interp_index(track: Track, s: jax.Array):
    """Index, fraction and interpolated tangent/curvature at arc length ``s`` (any shape)."""
    u = jnp.mod(s, track.length) / track.ds
    i0 = jnp.floor(u).astype(jnp.int32) % track.n
    i1 = (i0 + 1) % track.n
    t = u - jnp.floor(u)
    return i0, i1, t


def curvature_at(track: Track, s: jax.Array) -> jax.Array:
    """Curvature (1/m) at arc lengths ``s [...]`` (linear interpolation, periodic)."""
    i0, i1, t = interp_index(track, s)
    return (1.0 - t) * track.kappa[i0] + t * track.kappa[i1]


def point_at(track: Track, s: jax.Array) -> jax.Array:
    """Centre-line points ``[..., 2]`` at arc lengths ``s [...]``."""
    i0, i1, t = interp_index(track, s)
    return (1.0 - t)[..., None] * track.xy[i0] + t[..., None] * track.xy[i1]


def project(track: Track, p: jax.Array, hint: jax.Array | None = None,
            window: int = 12) -> Projection:
    """Project point ``p [2]`` onto the centre line (nearest segment, interpolated).

    Args:
      track: the track.
      p: ``[2]`` world position (vmap for batches).
      hint: previous segment index; only segments ``hint - window .. hint + window`` are
        searched (O(window), and the car can never "jump" to a nearby part of the lap). With
        ``None`` every segment is searched (O(N)).
      window: half-width of the searched index window when ``hint`` is given (static).

    Returns:
      A :class:`Projection`.
    """
    n = track.n
    if hint is None:
        idx = jnp.arange(n)
    else:
        idx = (hint + jnp.arange(-window, window + 1)) % n
    a = track.xy[idx]
    b = track.xy[(idx + 1) % n]
    d = b - a
    t = jnp.clip(jnp.sum((p - a) * d, -1) / jnp.maximum(jnp.sum(d * d, -1), 1e-9), 0.0, 1.0)
    q = a + t[:, None] * d
    j = jnp.argmin(jnp.sum((p - q) ** 2, -1))
    i0, tj, qj = idx[j], t[j], q[j]
    i1 = (i0 + 1) % n
    tan = (1.0 - tj) * track.tangent[i0] + tj * track.tangent[i1]
    tan = tan / jnp.maximum(jnp.linalg.norm(tan), 1e-9)
    rel = p - qj
    offset = jnp.sign(tan[0] * rel[1] - tan[1] * rel[0]) * jnp.sqrt(jnp.sum(rel**2) + 1e-12)
    s = jnp.mod((i0.astype(jnp.float32) + tj) * track.ds, track.length)
    kappa = (1.0 - tj) * track.kappa[i0] + tj * track.kappa[i1]
    return Projection(s=s, offset=offset, idx=i0.astype(jnp.int32), tangent=tan, kappa=kappa)
