"""rejax SAC on gymnax Pendulum-v1 (fully jitted), 1 or N vmapped seeds; prints one JSON line.

    bench/.venvs/rejax/bin/python bench/peers/rejax_run.py [--steps 5000] [--seeds 16]

Matched settings (issue 4): 1 env per seed, UTD 1 (num_epochs 1), batch 256, 256x256 actor and
two 256x256 critics, fill_buffer (learning starts) 1000, replay 100k, polyak 0.995 every step.
rejax's own ``train`` interleaves evaluations (128 episodes each) with training inside one jit;
to keep evaluation out of the timed part this runner drives rejax's ``train_iteration`` (the
body of that loop, one env step + update) in jitted chunks of ``--chunk`` env steps and times
the chunks, exactly as the rlstab_jax side times its ``session.chunk``.
"""

from __future__ import annotations

import jax
import rejax

from _timing import StepClock, emit, parser, summary


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=None,
                    help="env steps per jitted call (default: --skip, else 250); should divide "
                         "learning_starts and skip so the timed window starts on a chunk edge")
    args = ap.parse_args()
    args.chunk = args.chunk or args.skip or 250
    skip = args.skip if args.skip is not None else args.chunk
    n_chunks = -(-args.steps // args.chunk)
    steps = n_chunks * args.chunk
    clock = StepClock(steps)
    algo = rejax.SAC.create(
        env="Pendulum-v1", num_envs=1, total_timesteps=steps, eval_freq=steps,
        skip_initial_evaluation=True, buffer_size=100_000, fill_buffer=args.learning_starts,
        batch_size=256, hidden_layer_sizes=(256, 256), num_critics=2, num_epochs=1,
        learning_rate=1e-3, gamma=0.99, polyak=0.995, target_update_freq=1)

    def chunk(ts):
        return jax.lax.fori_loop(0, args.chunk, lambda _, t: algo.train_iteration(t), ts)

    keys = jax.random.split(jax.random.key(args.seed), args.seeds)
    if args.seeds == 1:
        ts = jax.jit(algo.init_state)(keys[0])
        run = jax.jit(chunk, donate_argnums=0)
    else:
        ts = jax.jit(jax.vmap(algo.init_state))(keys)
        run = jax.jit(jax.vmap(chunk), donate_argnums=0)
    jax.block_until_ready(ts)
    clock.start()
    for _ in range(n_chunks):
        ts = run(ts)
        jax.block_until_ready(ts)
        clock.tick(args.chunk)
    import importlib.metadata as md

    emit(summary(args.name or "rejax sac", clock, args.learning_starts, skip, seeds=args.seeds,
                 library=f"rejax {md.version('rejax')}", jax=jax.__version__,
                 gymnax=md.version("gymnax")))


if __name__ == "__main__":
    main()
