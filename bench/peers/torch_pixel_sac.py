"""One pixel SAC update in plain PyTorch, matched to rlstab_jax's preset (issue 14).

    bench/.venvs/sb3/bin/python bench/peers/torch_pixel_sac.py --env racer|carracing

Shared encoder owned by the critic, actor on detached features (report 001 §4), target
encoder + target critics, per-dim alpha; the same passes as ``agents/sac`` per update: actor
and target encoder on next_obs (no grad), critic encoder forward+backward on obs, actor
forward on the updated encoder's (detached) features, alpha step, polyak. Batch 128, random
uint8 batch (no replay sample). Prints one JSON line: ms per update (median of --repeats).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch

from torch_pixel_nets import PRESET_CNN, Actor, Critic, Encoder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env", default="racer")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    p = PRESET_CNN[args.env]
    d, b = 3, args.batch
    enc = Encoder(p["shape"], p["channels"], p["kernels"], p["strides"], p["feature_dim"])
    critic, actor = Critic(p["feature_dim"], d), Actor(p["feature_dim"], d)
    t_enc, t_critic = copy.deepcopy(enc), copy.deepcopy(critic)
    for m in (t_enc, t_critic):
        m.requires_grad_(False)
    log_alpha = torch.zeros(d, requires_grad=True)
    c_opt = torch.optim.Adam(list(enc.parameters()) + list(critic.parameters()), 3e-4)
    a_opt = torch.optim.Adam(actor.parameters(), 3e-4)
    al_opt = torch.optim.Adam([log_alpha], 3e-4)
    obs = torch.randint(0, 256, (b, *p["shape"]), dtype=torch.uint8)
    nobs = torch.randint(0, 256, (b, *p["shape"]), dtype=torch.uint8)
    act = torch.rand(b, d) * 2 - 1
    rew, done = torch.randn(b), torch.zeros(b)

    def update():
        alpha = log_alpha.exp().detach()
        with torch.no_grad():
            na, nlogp = actor(enc(nobs))
            tq = t_critic(t_enc(nobs), na).min(0).values
            y = rew + 0.99 * (1 - done) * (tq - (alpha * nlogp).sum(-1))
        q = critic(enc(obs), act)
        c_loss = ((q - y) ** 2).mean()
        c_opt.zero_grad()
        c_loss.backward()
        c_opt.step()
        with torch.no_grad():
            feats = enc(obs)
        a, logp = actor(feats)
        a_loss = ((alpha * logp).sum(-1) - critic(feats, a).min(0).values).mean()
        a_opt.zero_grad()
        a_loss.backward()
        a_opt.step()
        al_loss = -(log_alpha * (logp.detach() + 1.0)).mean()
        al_opt.zero_grad()
        al_loss.backward()
        al_opt.step()
        with torch.no_grad():
            for src, dst in ((enc, t_enc), (critic, t_critic)):
                for ps, pd in zip(src.parameters(), dst.parameters()):
                    pd.mul_(0.995).add_(ps, alpha=0.005)

    update()
    ts = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        update()
        ts.append(time.perf_counter() - t0)
    print(json.dumps({"side": "torch", "env": args.env, "batch": b,
                      "ms": 1e3 * statistics.median(ts), "ms_min": 1e3 * min(ts),
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "repeats": args.repeats}))


if __name__ == "__main__":
    main()
