"""A seeded family of smooth closed tracks, sampled uniformly in arc length, and projection.

A track is a star-shaped closed curve in polar form
``r(theta) = R * (1 + sum_k a_k cos(k theta) + b_k sin(k theta))`` for harmonics
``k = 2 .. 1 + H`` with small random amplitudes (so it never self-intersects and its radius of
curvature stays well above the track half-width), driven counter-clockwise. The centre line is
resampled to ``N`` points equally spaced in arc length; tangents and signed curvature
(``+`` = left turn) come from the analytic derivatives.

A seed names a shape through numpy's PCG64 (``sample_coefs``, host side, stable across JAX
versions). ``build_track`` runs in JAX (jit/vmap-able, for in-graph generation) or numpy;
``fixed_track``/``track_bank`` build on the host once per seed and cache the arrays, so the env
bakes its track (or its bank of tracks for the random-per-episode option) into the compiled
step. Projection and interpolation are pure JAX.

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


def sample_coefs(seed: int, n_harmonics: int = 4,
                 min_radius_ratio: float = MIN_RADIUS_RATIO) -> np.ndarray:
    """Shape coefficients ``[H, 2]`` float32 (cos, sin amplitudes) of harmonics 2 .. H+1.

    Drawn on the host with numpy's PCG64 from ``seed`` (so a seed names the same track across
    JAX versions). A random direction (harmonic k weighted by ``1/k``) is scaled by bisection
    so that the tightest corner has radius ``min_radius_ratio * R``: every seed is equally
    demanding, and the radius never approaches the track half-width (no overlapping edges).
    """
    rng = np.random.default_rng(int(seed))
    k = np.arange(2, 2 + n_harmonics, dtype=np.float64)
    u = rng.uniform(-1.0, 1.0, (n_harmonics, 2)) / k[:, None]
    theta = np.arange(512) * (2.0 * np.pi / 512)
    lo, hi = 0.0, 0.9 / np.sum(np.abs(u))  # hi keeps r(theta) > 0.1 R
    if np.max(np.abs(_kappa_polar(hi * u, theta, np))) <= 1.0 / min_radius_ratio:
        return (hi * u).astype(np.float32)
    for _ in range(20):
        mid = 0.5 * (lo + hi)
        if np.max(np.abs(_kappa_polar(mid * u, theta, np))) > 1.0 / min_radius_ratio:
            hi = mid
        else:
            lo = mid
    return (lo * u).astype(np.float32)


def _kappa_polar(coefs, theta, xp=jnp):
    """Signed curvature of the unit-radius curve at ``theta``."""
    r, dr, ddr = _polar(coefs, theta, xp)
    return (r**2 + 2.0 * dr**2 - r * ddr) / (r**2 + dr**2) ** 1.5


def _polar(coefs, theta, xp=jnp):
    """r/R and its first two theta-derivatives at ``theta [M]``."""
    k = xp.arange(2, 2 + coefs.shape[0]).astype(theta.dtype)
    kt = theta[:, None] * k[None, :]
    c, s = xp.cos(kt), xp.sin(kt)
    a, b = coefs[:, 0], coefs[:, 1]
    r = 1.0 + c @ a + s @ b
    dr = (-s * k) @ a + (c * k) @ b
    ddr = (-c * k**2) @ a + (-s * k**2) @ b
    return r, dr, ddr


def build_track(coefs, radius: float, n_points: int, oversample: int = 8, xp=jnp) -> Track:
    """Sample the closed curve given by ``coefs [H, 2]`` uniformly in arc length.

    Args:
      coefs: harmonic amplitudes from :func:`sample_coefs`.
      radius: mean radius ``R`` (m); the lap is roughly ``2 pi R`` long.
      n_points: number of centre-line samples ``N`` (static).
      oversample: dense evaluation factor used to integrate arc length.
      xp: ``jax.numpy`` (default; jit/vmap-able) or ``numpy`` (host, float64 then float32).

    Returns:
      A :class:`Track`.
    """
    m = n_points * oversample
    coefs = xp.asarray(coefs, xp.float64 if xp is np else xp.float32)
    theta = xp.arange(m).astype(coefs.dtype) * (2.0 * np.pi / m)
    r, dr, ddr = _polar(coefs, theta, xp)
    r, dr, ddr = r * radius, dr * radius, ddr * radius
    ct, st = xp.cos(theta), xp.sin(theta)
    x, y = r * ct, r * st
    dx, dy = dr * ct - r * st, dr * st + r * ct
    ddx = ddr * ct - 2.0 * dr * st - r * ct
    ddy = ddr * st + 2.0 * dr * ct - r * st
    speed = xp.sqrt(dx**2 + dy**2)
    kappa = (dx * ddy - dy * ddx) / speed**3
    # Arc length by the trapezoid rule on the dense grid (periodic).
    dtheta = 2.0 * np.pi / m
    seg = 0.5 * (speed + xp.roll(speed, -1)) * dtheta
    s_dense = xp.concatenate([xp.zeros(1, seg.dtype), xp.cumsum(seg)])
    length = s_dense[-1]
    s_new = xp.arange(n_points).astype(seg.dtype) * (length / n_points)
    # One binary search shared by every interpolated quantity (cheaper to compile and run).
    j = xp.clip(xp.searchsorted(s_dense, s_new, side="right") - 1, 0, m - 1)
    w = (s_new - s_dense[j]) / (s_dense[j + 1] - s_dense[j])

    def interp(v):
        v = xp.concatenate([v, v[:1]])
        return (1.0 - w) * v[j] + w * v[j + 1]

    tx, ty = interp(dx / speed), interp(dy / speed)
    norm = xp.sqrt(tx**2 + ty**2)
    xy = xp.stack([interp(x), interp(y)], -1)
    tangent = xp.stack([tx / norm, ty / norm], -1)
    f32 = xp.float32
    return Track(xy=xp.asarray(xy, f32), tangent=xp.asarray(tangent, f32),
                 kappa=xp.asarray(interp(kappa), f32), length=xp.asarray(length, f32))


@functools.lru_cache(maxsize=64)
def _bank_np(first_seed: int, n_tracks: int, radius: float, n_points: int, n_harmonics: int):
    tracks = [build_track(sample_coefs(first_seed + i, n_harmonics), radius, n_points, xp=np)
              for i in range(n_tracks)]
    return tuple(np.stack([getattr(t, f) for t in tracks]) for f in Track.__dataclass_fields__)


def track_bank(first_seed: int, n_tracks: int, radius: float, n_points: int,
               n_harmonics: int = 4) -> Track:
    """Tracks of seeds ``first_seed .. first_seed + n_tracks - 1`` stacked on a leading axis.

    Host constants (numpy, computed once per argument set and cached; safe to call while
    tracing): a random-per-episode env indexes this bank instead of building a track every
    step, which keeps it close to the fixed-track env's speed.
    """
    xy, tangent, kappa, length = _bank_np(int(first_seed), int(n_tracks), float(radius),
                                          int(n_points), int(n_harmonics))
    return Track(xy=jnp.asarray(xy), tangent=jnp.asarray(tangent), kappa=jnp.asarray(kappa),
                 length=jnp.asarray(length))


def fixed_track(seed: int, radius: float, n_points: int, n_harmonics: int = 4) -> Track:
    """The track of ``seed`` as host constants (entry 0 of ``track_bank(seed, 1, ...)``)."""
    return jax.tree.map(lambda x: x[0], track_bank(seed, 1, radius, n_points, n_harmonics))


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
