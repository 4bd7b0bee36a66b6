"""stable-baselines3 (PyTorch, CPU) SAC on gymnasium Pendulum-v1; prints one JSON line.

    bench/.venvs/sb3/bin/python bench/peers/sb3_run.py [--steps 5000]

Matched settings (issue 4): 1 env, 1 seed, UTD 1, batch 256, actor 256x256, two 256x256
critics, learning_starts 1000, no evaluation; torch's default thread count.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from stable_baselines3 import SAC, __version__ as sb3_version
from stable_baselines3.common.callbacks import BaseCallback

from _timing import StepClock, emit, parser, summary


class Tick(BaseCallback):
    def __init__(self, clock: StepClock):
        super().__init__()
        self.clock = clock

    def _on_training_start(self) -> None:
        self.clock.start()

    def _on_step(self) -> bool:
        self.clock.tick(self.training_env.num_envs)
        return True


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--torch-threads", type=int, default=None,
                    help="torch.set_num_threads (default: torch's own choice, all cores)")
    args = ap.parse_args()
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    skip = args.skip if args.skip is not None else 500
    clock = StepClock(args.steps)
    env = gym.make("Pendulum-v1")
    model = SAC("MlpPolicy", env, learning_starts=args.learning_starts, batch_size=256,
                buffer_size=100_000, train_freq=1, gradient_steps=1, seed=args.seed, verbose=0,
                device="cpu", policy_kwargs=dict(net_arch=[256, 256], n_critics=2))
    model.learn(total_timesteps=args.steps, callback=Tick(clock))
    emit(summary(args.name or "sb3 sac", clock, args.learning_starts, skip,
                 library=f"stable-baselines3 {sb3_version}", torch=torch.__version__,
                 torch_threads=torch.get_num_threads()))


if __name__ == "__main__":
    main()
