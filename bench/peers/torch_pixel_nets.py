"""The rlstab_jax pixel SAC networks written in plain PyTorch (bench only, issue 14).

Same layout as ``rlstab_jax.nn.CNNEncoder`` + ``SquashedGaussianActor`` (decoupled std_net:
Dense(64) -> SiLU -> Dense(D)) + a 2-member ``CriticEnsemble``: conv (TF ``SAME`` padding) ->
GroupNorm(1) -> SiLU per block, flatten -> Linear -> LayerNorm -> tanh; ReLU MLP heads.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

PRESET_CNN = {"racer": dict(shape=(32, 32, 6), channels=(8, 16, 16), kernels=(4, 3, 3),
                            strides=(2, 2, 1), feature_dim=64),
              "carracing": dict(shape=(96, 96, 3), channels=(32, 64, 64), kernels=(8, 4, 3),
                                strides=(4, 2, 1), feature_dim=256)}


def same_pads(size: int, k: int, s: int):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2, out


class SameConv(nn.Module):
    def __init__(self, c_in, c_out, k, s, size):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, s)
        lo, hi, self.out = same_pads(size, k, s)
        self.pad = (lo, hi, lo, hi)

    def forward(self, x):
        return self.conv(F.pad(x, self.pad))


class Encoder(nn.Module):
    def __init__(self, shape, channels, kernels, strides, feature_dim):
        super().__init__()
        h, _, c = shape
        layers = []
        for co, k, s in zip(channels, kernels, strides):
            conv = SameConv(c, co, k, s, h)
            layers += [conv, nn.GroupNorm(1, co), nn.SiLU()]
            c, h = co, conv.out
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(c * h * h, feature_dim)
        self.ln = nn.LayerNorm(feature_dim)
        self.feature_dim = feature_dim

    def forward(self, obs_uint8_nhwc):
        x = obs_uint8_nhwc.permute(0, 3, 1, 2).float() / 255.0
        x = self.convs(x).flatten(1)
        return torch.tanh(self.ln(self.fc(x)))


def mlp(i, hidden, o):
    layers, d = [], i
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        d = h
    return nn.Sequential(*layers, nn.Linear(d, o))


class Actor(nn.Module):
    def __init__(self, f, d, hidden=(256, 256)):
        super().__init__()
        self.trunk = mlp(f, hidden, d)
        self.std = nn.Sequential(nn.Linear(f, 64), nn.SiLU(), nn.Linear(64, d))

    def forward(self, feats, lo=-20.0, hi=2.0):
        mean = self.trunk(feats)
        log_std = lo + 0.5 * (hi - lo) * (torch.tanh(self.std(feats)) + 1.0)
        std = log_std.exp()
        u = mean + std * torch.randn_like(mean)
        a = torch.tanh(u)
        logp = (-0.5 * ((u - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
                - torch.log(1 - a * a + 1e-6))
        return a, logp  # logp per dim


class Critic(nn.Module):
    def __init__(self, f, d, hidden=(256, 256), n=2):
        super().__init__()
        self.qs = nn.ModuleList([mlp(f + d, hidden, 1) for _ in range(n)])

    def forward(self, feats, a):
        x = torch.cat([feats, a], -1)
        return torch.stack([q(x).squeeze(-1) for q in self.qs])
