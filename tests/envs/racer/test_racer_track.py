"""Track family: closed, uniformly sampled, bounded curvature; projection round trips."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.envs.racer import track as T

R, N = 80.0, 256


@pytest.fixture(scope="module")
def tracks():
    return T.track_bank(0, 64, R, N)  # seeds 0..63, built on the host with numpy


def test_tracks_are_closed_and_uniform(tracks):
    xy = np.asarray(tracks.xy)
    seg = np.linalg.norm(np.roll(xy, -1, axis=1) - xy, axis=-1)  # includes the closing segment
    ds = np.asarray(tracks.length)[:, None] / N
    np.testing.assert_allclose(seg, np.broadcast_to(ds, seg.shape), rtol=0.02)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(tracks.tangent), axis=-1), 1.0, atol=1e-5)


def test_tightest_corner_is_bounded_and_edges_never_overlap(tracks):
    kmax = np.abs(np.asarray(tracks.kappa)).max(1)
    assert np.all(1.0 / kmax > 0.95 * T.MIN_RADIUS_RATIO * R)  # 20 m >> half-width 3 m
    xy = np.asarray(tracks.xy[:16])
    i = np.arange(N)
    sep = np.abs(i[:, None] - i[None])
    far = np.minimum(sep, N - sep) * (np.asarray(tracks.length[:16]) / N)[:, None, None] > 60.0
    d = np.linalg.norm(xy[:, :, None] - xy[:, None], axis=-1)
    assert d[far].min() > 20.0  # distinct parts of the lap stay far apart


def test_jax_build_matches_host_build():
    coefs = T.sample_coefs(5)
    host = T.build_track(coefs, R, N, xp=np)
    dev = jax.jit(lambda c: T.build_track(c, R, N))(coefs)  # in-graph builder (jit/vmap-able)
    np.testing.assert_allclose(dev.xy, host.xy, atol=2e-3)
    np.testing.assert_allclose(dev.kappa, host.kappa, atol=1e-5)
    np.testing.assert_allclose(dev.length, host.length, rtol=1e-5)


def test_fixed_track_is_cached_per_seed():
    a, b, c = T.fixed_track(3, R, N), T.fixed_track(3, R, N), T.fixed_track(4, R, N)
    np.testing.assert_array_equal(a.xy, b.xy)
    assert np.abs(np.asarray(a.xy) - np.asarray(c.xy)).max() > 1.0
    assert T._bank_np.cache_info().hits >= 1


def test_projection_round_trip_global_and_windowed():
    trk = T.fixed_track(0, R, N)
    s = jnp.linspace(0.0, float(trk.length), 50, endpoint=False) + 0.37
    off = jnp.linspace(-4.0, 4.0, 50)

    def place(s, o):
        i0, i1, t = T.interp_index(trk, s)
        tan = (1 - t) * trk.tangent[i0] + t * trk.tangent[i1]
        tan = tan / jnp.linalg.norm(tan)
        return T.point_at(trk, s) + o * jnp.stack([-tan[1], tan[0]]), i0

    @jax.jit
    def run(s, off):
        p, hint = jax.vmap(place)(s, off)
        return jax.vmap(lambda q: T.project(trk, q))(p), jax.vmap(
            lambda q, h: T.project(trk, q, h))(p, hint)

    glob, win = run(s, off)
    for proj in (glob, win):
        np.testing.assert_allclose(T.wrap_s(proj.s - s, trk.length), 0.0, atol=0.15)
        np.testing.assert_allclose(proj.offset, off, atol=0.05)


def test_wrap_s():
    np.testing.assert_allclose(T.wrap_s(jnp.array([399.0, -399.0, 1.0]), 400.0), [-1.0, 1.0, 1.0],
                               atol=1e-4)
