"""Builders for PPO tests and notebooks: tiny agents, real rollouts through the on-policy driver."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from rlstab_jax.agents.ppo import PPOConfig, make_agent
from rlstab_jax.config.split import extract_hparams
from rlstab_jax.envs import registry
from rlstab_jax.train.onpolicy import OnPolicyDriver

TINY_LSTM = dict(network="lstm", feature_dim=8, lstm_hidden=8, head_hidden=8, embed_dim=2,
                 rollout_len=8, bptt_len=4, epochs=1, minibatches=1)


def build(env_id="Scaffold-v0", n_envs=2, **over):
    env = registry.make_jax(env_id, {})
    cfg = PPOConfig(**{**TINY_LSTM, **over}) if env_id == "Scaffold-v0" else PPOConfig(**over)
    cfg.validate()
    agent = make_agent(cfg, env.spec)
    hp = extract_hparams(cfg)
    driver = OnPolicyDriver(agent, env, n_envs, 1)
    return cfg, env, agent, hp, driver


def rollout(driver, hp, key):
    """One rollout of ``driver.agent.rollout_len`` steps: ``(driver_state, rollout)``."""

    @jax.jit
    def go(key):
        s = driver.init_one(key, hp)
        return collect(driver, s, hp)

    return go(key)


def collect(driver, s, hp):
    """The driver's own rollout scan (the update is not run)."""
    captured = {}

    def fake_update(state, ro, last_obs, key, hp_):
        captured["ro"], captured["last"] = ro, last_obs
        return state, {}

    d = dataclasses.replace(driver, agent=dataclasses.replace(driver.agent, update=fake_update))
    s, _ = d.iteration(s, hp)
    return s, captured["ro"], captured["last"]


def with_hp(hp, **kw):
    return {**hp, **{k: jnp.float32(v) for k, v in kw.items()}}
