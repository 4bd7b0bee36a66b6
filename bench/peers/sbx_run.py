"""sbx (SB3 in JAX) SAC / TQC / DroQ recipe on gymnasium Pendulum-v1; prints one JSON line.

    bench/.venvs/sbx/bin/python bench/peers/sbx_run.py --algo sac|tqc|droq [--steps 5000]

Matched settings (issue 4): 1 env, 1 seed, UTD 1, batch 256, actor 256x256, two 256x256
critics, learning_starts 1000, no evaluation. DroQ recipe = sbx SAC with gradient_steps 20,
policy_delay 20, dropout 0.01 and LayerNorm in the Q-networks. All other settings are sbx
defaults (TQC: 25 quantiles per critic, top 2 dropped per critic).
"""

from __future__ import annotations

import gymnasium as gym
import jax
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
    ap.add_argument("--algo", choices=("sac", "tqc", "droq"), default="sac")
    args = ap.parse_args()
    skip = args.skip if args.skip is not None else (100 if args.algo == "droq" else 500)
    clock = StepClock(args.steps)
    import sbx

    env = gym.make("Pendulum-v1")
    common = dict(learning_starts=args.learning_starts, batch_size=256, buffer_size=100_000,
                  train_freq=1, seed=args.seed, verbose=0)
    net = [256, 256]
    if args.algo == "sac":
        model = sbx.SAC("MlpPolicy", env, gradient_steps=1,
                        policy_kwargs=dict(net_arch=net, n_critics=2), **common)
    elif args.algo == "tqc":
        model = sbx.TQC("MlpPolicy", env, gradient_steps=1,
                        policy_kwargs=dict(net_arch=net, n_critics=2), **common)
    else:
        model = sbx.SAC("MlpPolicy", env, gradient_steps=20, policy_delay=20,
                        policy_kwargs=dict(net_arch=net, n_critics=2, dropout_rate=0.01,
                                           layer_norm=True), **common)
    model.learn(total_timesteps=args.steps, callback=Tick(clock))
    emit(summary(args.name or f"sbx {args.algo}", clock, args.learning_starts, skip,
                 library=f"sbx {sbx.__version__}", jax=jax.__version__))


if __name__ == "__main__":
    main()
