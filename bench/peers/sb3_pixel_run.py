"""stable-baselines3 SAC ``CnnPolicy`` on pixel observations: ms per gradient step (issue 14).

    bench/.venvs/sb3/bin/python bench/peers/sb3_pixel_run.py --env racer|carracing

The preset's CNN (``torch_pixel_nets.Encoder``: GroupNorm, SAME padding) as SB3's features
extractor, ``net_arch=[256, 256]``, 2 critics, batch 128, SB3's own defaults otherwise (the
actor and the critic each own an extractor, ``share_features_extractor=False``). The replay
buffer is filled with random transitions of the env's observation space, then
``model.train(gradient_steps=1, batch_size=128)`` is timed (replay sample included).
``--env-steps N`` also times ``model.learn`` on gymnasium CarRacing-v3 (1 env, UTD 1).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC, __version__ as sb3_version
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from torch_pixel_nets import PRESET_CNN, Encoder


class PresetCNN(BaseFeaturesExtractor):
    def __init__(self, observation_space, env="racer"):
        p = PRESET_CNN[env]
        super().__init__(observation_space, p["feature_dim"])
        self.enc = Encoder(p["shape"], p["channels"], p["kernels"], p["strides"],
                           p["feature_dim"])

    def forward(self, obs):  # SB3 hands channels-first floats in [0, 1]
        return self.enc((obs.permute(0, 2, 3, 1) * 255.0))


class Dummy(gym.Env):
    def __init__(self, shape):
        self.observation_space = gym.spaces.Box(0, 255, shape, np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)

    def reset(self, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, a):
        return self.observation_space.sample(), 0.0, False, False, {}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", default="racer")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--env-steps", type=int, default=0)
    args = ap.parse_args()
    p = PRESET_CNN[args.env]
    env = Dummy(p["shape"])
    kw = dict(features_extractor_class=PresetCNN, features_extractor_kwargs={"env": args.env},
              net_arch=[256, 256], n_critics=2)
    model = SAC("CnnPolicy", env, batch_size=128, buffer_size=2000, learning_starts=10**9,
                train_freq=1, gradient_steps=1, verbose=0, device="cpu", policy_kwargs=kw)
    model.learn(total_timesteps=300)  # fills the buffer with random actions, no training
    model.train(gradient_steps=1, batch_size=128)  # warm-up
    ts = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        model.train(gradient_steps=1, batch_size=128)
        ts.append(time.perf_counter() - t0)
    row = {"side": "sb3", "env": args.env, "batch": 128, "ms": 1e3 * statistics.median(ts),
           "ms_min": 1e3 * min(ts), "library": f"stable-baselines3 {sb3_version}",
           "torch": torch.__version__, "threads": torch.get_num_threads(),
           "repeats": args.repeats}
    if args.env_steps and args.env == "carracing":
        cr = gym.make("CarRacing-v3")
        m2 = SAC("CnnPolicy", cr, batch_size=128, buffer_size=5000, learning_starts=100,
                 train_freq=1, gradient_steps=1, verbose=0, device="cpu", policy_kwargs=kw)
        m2.learn(total_timesteps=110)
        t0 = time.perf_counter()
        m2.learn(total_timesteps=args.env_steps, reset_num_timesteps=False)
        row["ms_per_env_step"] = 1e3 * (time.perf_counter() - t0) / args.env_steps
    print(json.dumps(row))


if __name__ == "__main__":
    main()
