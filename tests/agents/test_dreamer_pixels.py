"""Dreamer on pixels: CNN encoder, mirrored decoder, uint8 sequence batches, specs, Racer run."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlstab_jax.agents.dreamer.agent import encoder_kind, make_agent
from rlstab_jax.agents.dreamer.networks import WorldModel, decoder_target
from rlstab_jax.agents.dreamer.testing import (CONTINUOUS_SPEC, DISCRETE_SPEC, PIXEL_SPEC, build,
                                               make_seq, tiny_pixel_cfg)
from rlstab_jax.config.errors import ConfigError
from rlstab_jax.config.loader import load_config
from rlstab_jax.config.split import extract_hparams
from rlstab_jax.envs.spec import EnvSpec
from rlstab_jax.train.fingerprint import run_fingerprint

B, T = 4, 8


def _pixel_spec(shape, dtype="uint8"):
    return dataclasses.replace(PIXEL_SPEC, obs_shape=shape, obs_dtype=dtype)


def _wm(cfg, shape=PIXEL_SPEC.obs_shape, act_dim=PIXEL_SPEC.action_dim):
    """The world model ``make_agent`` builds for ``cfg`` on uint8 frames of ``shape``."""
    return WorldModel(int(np.prod(shape)), act_dim, cfg.deter, cfg.stoch_groups,
                      cfg.stoch_classes, cfg.hidden, cfg.layers, cfg.num_bins,
                      encoder_kind="cnn", obs_shape=shape, cnn_channels=cfg.cnn_channels,
                      cnn_kernels=cfg.cnn_kernels, cnn_strides=cfg.cnn_strides)


@pytest.mark.parametrize("shape", [(16, 16, 3), (30, 30, 3), (48, 48, 3), (9, 13, 6)],
                         ids=["16", "30", "racer48", "9x13x6"])
def test_decoder_output_has_the_frame_shape(shape):
    """Stride-2 stacks on sizes that are not multiples of 4 (30, 9, 13) still decode to exactly
    the frame: the decoder walks back through the encoder's SAME-padded feature-map sizes."""
    cfg = tiny_pixel_cfg()
    wm = _wm(cfg, shape)
    frames = jnp.zeros((B, T) + shape, jnp.uint8)
    # shapes only: abstract evaluation, nothing is computed
    params = jax.eval_shape(wm.init, jax.random.key(0), frames[:, 0], jnp.zeros((B, 3)))
    feat = jnp.zeros((B, T, cfg.deter + cfg.stoch))
    dec = jax.eval_shape(lambda p, f: wm.apply(p, f, method=WorldModel.decode), params, feat)
    chex.assert_shape(dec, (B, T) + shape)
    chex.assert_equal_shape([dec, decoder_target(wm, frames)])
    emb = jax.eval_shape(lambda p, o: wm.apply(p, o, method=WorldModel.encode), params, frames)
    chex.assert_shape(emb, (B, T, cfg.hidden))
    names = set(params["params"]["decoder"])
    assert {"Conv_0", "Conv_1", "GroupNorm_0", "GroupNorm_1"} <= names
    assert not any("BatchNorm" in n for n in names)


def test_pixel_target_is_frames_in_unit_range_and_vectors_stay_symlog():
    frames = jnp.array([[0, 51, 255]], jnp.uint8).reshape(1, 1, 1, 3)
    wm = WorldModel(3, 1, 4, 2, 2, 4, 1, 5, encoder_kind="cnn", obs_shape=(1, 1, 3))
    np.testing.assert_allclose(np.asarray(decoder_target(wm, frames)).ravel(), [0, 0.2, 1])
    vec = WorldModel(2, 1, 4, 2, 2, 4, 1, 5)
    got = decoder_target(vec, jnp.array([[9.0, -99.0]]))
    np.testing.assert_allclose(np.asarray(got), np.log1p([[9.0, 99.0]]) * [1, -1], rtol=1e-6)


@pytest.fixture(scope="module")
def pixel_agent():
    """One tiny pixel agent and one compiled update, shared (compiling dominates the cost)."""
    cfg = tiny_pixel_cfg(wm_lr=1e-3, batch_size=B, seq_len=T)
    agent, hp, state = build(cfg, PIXEL_SPEC)
    batch = jax.tree.map(lambda x: x[None], make_seq(PIXEL_SPEC, B, T, ends=[(0, 3)]))
    return cfg, agent, hp, state, batch, jax.jit(agent.update)


def _max_change(a, b):
    return max(jax.tree.leaves(jax.tree.map(lambda x, y: float(jnp.abs(x - y).max()), a, b)))


def test_one_update_on_a_uint8_sequence_batch(pixel_agent):
    _, _, hp, state, batch, update = pixel_agent
    assert batch.obs.dtype == jnp.uint8 and batch.next_obs.dtype == jnp.uint8
    chex.assert_shape(batch.obs, (1, B, T) + PIXEL_SPEC.obs_shape)
    new, metrics = update(state, batch, jax.random.key(3), hp, jnp.int32(0))
    bad = [k for k, v in metrics.items() if not np.isfinite(np.asarray(v)).all()]
    assert not bad, bad
    assert float(metrics["wm/loss/decoder"]) > 0 and float(metrics["ac/active"]) == 1.0
    chex.assert_trees_all_equal_shapes(new, state)
    p0, p1 = state.wm_params["params"], new.wm_params["params"]
    for module in ("encoder", "decoder"):
        assert any(k.startswith("Conv_") for k in p0[module]), module  # the conv stacks
        moved = jax.tree.map(lambda x, y: float(jnp.abs(x - y).max()), p0[module], p1[module])
        still = [jax.tree_util.keystr(p) for p, m in jax.tree_util.tree_leaves_with_path(moved)
                 if m == 0.0]
        assert not still, (module, still)  # every encoder/decoder parameter trained
    assert float(metrics["wm/grad_norm/encoder"]) > 0 and float(metrics["wm/grad_norm/decoder"]) > 0
    assert _max_change(state.actor_params, new.actor_params) > 0


def test_world_model_loss_falls_on_a_fixed_batch(pixel_agent):
    """30 updates on one batch of square frames: the model overfits it (the test fails if
    the reconstruction gradient is wrong or does not reach the decoder/encoder)."""
    _, _, hp, state, batch, update = pixel_agent
    dec, total = [], []
    for i in range(31):
        state, m = update(state, batch, jax.random.key(10 + i), hp, jnp.int32(i))
        dec.append(float(m["wm/loss/decoder"]))  # loss at the parameters before update i
        total.append(float(m["wm/loss"]))
    assert all(np.isfinite(dec + total))
    assert dec[-1] < 0.7 * dec[0], dec
    assert total[-1] < total[0] and min(dec[-5:]) < min(dec[:5]), total


def test_act_with_a_carry_on_uint8_frames(pixel_agent):
    cfg, agent, hp, state, batch, _ = pixel_agent
    act = jax.jit(agent.act, static_argnums=4)
    n = 3
    obs = batch.obs[0, :n, 0]  # [n, H, W, C] uint8 frames
    assert obs.dtype == jnp.uint8
    key = jax.random.key(7)
    carry = agent.init_carry(n)
    a0, c0, _ = act(state, obs, key, hp, False, carry, jnp.ones(n, bool))
    chex.assert_shape(a0, (n, PIXEL_SPEC.action_dim))
    chex.assert_shape(c0.h, (n, cfg.deter))
    assert np.isfinite(np.asarray(a0)).all() and np.abs(np.asarray(a0)).max() <= 1.0
    # is_first forgets any old carry; without it the latent moves on from the carry
    junk = jax.tree.map(lambda x: x + 3.0, carry)
    a0b, c0b, _ = act(state, obs, key, hp, False, junk, jnp.ones(n, bool))
    np.testing.assert_array_equal(np.asarray(a0), np.asarray(a0b))
    np.testing.assert_array_equal(np.asarray(c0.z), np.asarray(c0b.z))
    _, c1, _ = act(state, obs, key, hp, True, c0, jnp.zeros(n, bool))
    assert float(jnp.abs(c1.h - c0.h).max()) > 0
    # the frames are read: other frames give other embeddings for the posterior
    wm = _wm(cfg)
    e0 = wm.apply(state.wm_params, obs, method=WorldModel.encode)
    e1 = wm.apply(state.wm_params, batch.next_obs[0, :n, 5], method=WorldModel.encode)
    assert float(jnp.abs(e0 - e1).max()) > 0


def test_spec_and_encoder_mismatches_are_clear_config_errors():
    with pytest.raises(ConfigError, match=r"agent\.encoder='mlp'.*\(16, 16, 3\).*encoder=cnn"):
        make_agent(tiny_pixel_cfg(encoder="mlp"), PIXEL_SPEC)
    with pytest.raises(ConfigError, match=r"agent\.encoder='cnn' needs uint8 \[H, W, C\].*"
                                          r"\(3,\).*encoder=mlp"):
        make_agent(tiny_pixel_cfg(), CONTINUOUS_SPEC)
    with pytest.raises(ConfigError, match=r"'cnn' needs uint8.*float32"):
        make_agent(tiny_pixel_cfg(), _pixel_spec((16, 16, 3), "float32"))
    with pytest.raises(ConfigError, match=r"auto chose 'mlp'"):
        make_agent(tiny_pixel_cfg(encoder="auto"), _pixel_spec((16, 16, 3), "float32"))
    assert encoder_kind("auto", PIXEL_SPEC) == "cnn"
    assert encoder_kind("auto", CONTINUOUS_SPEC) == "mlp"
    assert encoder_kind("mlp", PIXEL_SPEC) == "mlp"
    cfg = tiny_pixel_cfg(encoder="auto")
    agent = make_agent(cfg, PIXEL_SPEC)  # builds the CNN path
    params = jax.eval_shape(agent.init, jax.random.key(0),
                            extract_hparams(cfg)).wm_params["params"]
    assert "Conv_0" in params["encoder"] and "Conv_0" in params["decoder"]


@pytest.mark.parametrize("override, why", [
    (dict(encoder="resnet"), r"agent\.encoder='resnet' must be one of"),
    (dict(cnn_kernels=(4,)), r"agent\.cnn_kernels=\(4,\) must have one entry per"),
    (dict(cnn_channels=()), r"agent\.cnn_channels=\(\) must be a non-empty list"),
    (dict(cnn_strides=(2, 0)), r"agent\.cnn_strides=\(2, 0\) must be a non-empty list of pos"),
    (dict(conv_impl="cudnn"), r"agent\.conv_impl='cudnn' must be one of"),
])
def test_bad_conv_settings_are_rejected(override, why):
    with pytest.raises(ConfigError, match=why):
        tiny_pixel_cfg(**override).validate()


def test_conv_stack_is_part_of_the_architecture_fingerprint():
    spec = EnvSpec("Racer-v0", (32, 32, 3), "uint8", "continuous", 3, (-1.0,) * 3, (1.0,) * 3,
                   ("steer", "gas", "brake"))

    def fp(*overrides):
        return run_fingerprint(load_config("dreamer/racer_pixels", list(overrides)), spec, "jax")

    base = fp()
    for key, value in (("cnn_channels", "[8,16,32]"), ("cnn_kernels", "[3,3,3]"),
                       ("cnn_strides", "[2,2,1]"), ("encoder", "auto")):
        changed = fp(f"agent.{key}={value}")
        assert changed[f"agent.{key}"] != base[f"agent.{key}"], key
    assert fp("agent.conv_impl=xla") == base  # same parameters either way
    # A vector (mlp) run's fingerprint has no conv keys: its checkpoints from before the pixel
    # encoder existed still resume.
    vec = run_fingerprint(load_config("dreamer/cartpole", []), DISCRETE_SPEC, "jax")
    assert not any(k.startswith("agent.cnn_") for k in vec)


def test_racer_pixels_preset_runs_end_to_end(tmp_path):
    """The preset through the shared off-policy driver at a tiny size: Racer renders 16x16
    frames, compact replay keeps them uint8, the world model and actor-critic both train."""
    from rlstab_jax.train.loop import run

    cfg = load_config("dreamer/racer_pixels", [
        "log.progress=false", "log.plot=false", "checkpoint.enabled=false",
        f"run.dir={tmp_path}", "env.n_envs=2", "env.kwargs.pixel_size=16",
        "env.kwargs.max_steps_in_episode=60", "replay.capacity=512",
        "agent.cnn_channels=[4,8]", "agent.cnn_kernels=[4,4]", "agent.cnn_strides=[2,2]",
        "agent.deter=16", "agent.hidden=16", "agent.layers=1", "agent.stoch_groups=4",
        "agent.stoch_classes=4", "agent.num_bins=15", "agent.batch_size=2", "agent.seq_len=8",
        "agent.horizon=5", "agent.train_ratio=8", "train.total_steps=256",
        "train.chunk_steps=128", "train.learning_starts=64", "train.eval_every=256",
        "train.eval_episodes=1"])
    assert cfg.env.kwargs["pixels"] is True
    res = run(cfg)
    state = res.state
    assert state.obs.dtype == jnp.uint8 and state.obs.shape[-3:] == (16, 16, 3)
    frames = [x for x in jax.tree.leaves(state.replay) if x.ndim >= 4 and x.shape[-3:] ==
              (16, 16, 3)]
    assert frames and all(x.dtype == jnp.uint8 for x in frames)  # replay keeps uint8 frames
    assert int(np.asarray(state.agent.wm_steps)[0]) > 0
    assert int(np.asarray(state.agent.ac_steps)[0]) > 0
    assert "Conv_0" in state.agent.wm_params["params"]["decoder"]
    rows = [r for r in res.rows if "wm/loss/decoder" in r]
    assert rows and all(np.isfinite(r["wm/loss/decoder"]) for r in rows)
    assert np.isfinite(float(np.mean(res.final_eval["eval/return"])))
