"""MIMOISAC-v0 speed: ``python -m experiments.mimo_env_bench [--sizes N ...] [--frames F]``.

Env steps per CPU second of this process (and wall-clock steps/s) of the native vector
env (``MIMOVectorEnv``: the warm frames' barrier paths in one batch) against N
(``--sizes``), and of ``SyncVectorEnv`` over the same episodes for N in
``--sync-sizes``, run one after the other in this process, with two policies: ``hor``
(``fixed-omega:hor``: the same action every frame, as the README table's policies act)
and ``random`` (uniform actions: budgets jump from frame to frame, so warm starts often
need phase I or the cold starts, as under PPO's early exploration). Each env runs
``--warmup`` frames, untimed, then ``--frames`` timed frames of its episode (env i
seeded ``seed + i``): the first frame of an episode has no warm start and is solved
cold, 1 frame in 200 of a whole episode, but most of a short run's time. The returns
summed over all envs (timed frames) are printed too: native and sync must agree (the
batch gives ``solve_mimo``'s results bit for bit).

Set ``OPENBLAS_NUM_THREADS=1``.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import isac_gym  # noqa: F401  (registers the ids)
from experiments.env_bench import _positive

ENV_ID = "isac_gym/MIMOISAC-v0"
POLICIES = ("hor", "random")


def frames_run(
    kind: str, num_envs: int, policy: str, frames: int, seed: int, warmup: int = 1, **config
):
    """(env steps per CPU second, per wall second, summed return) of ``frames`` frames
    after ``warmup`` untimed ones."""
    mode = "vector_entry_point" if kind == "native" else "sync"
    envs = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode=mode, **config)
    rng = np.random.default_rng(seed)
    hor = _hor_action(config)
    envs.reset(seed=seed)
    cpu = wall = total = 0.0
    for frame in range(warmup + frames):
        if policy == "random":
            actions = rng.uniform(-1.0, 1.0, envs.action_space.shape).astype(np.float32)
        else:
            actions = np.tile(hor, (num_envs, 1))
        start, start_cpu = time.perf_counter(), time.process_time()
        rewards = envs.step(actions)[1]
        if frame < warmup:
            continue
        wall += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        total += float(np.sum(rewards))
    envs.close()
    steps = frames * num_envs
    return steps / cpu, steps / wall, total


def _hor_action(config: dict) -> np.ndarray:
    from agents.mimo_policies import make_mimo_policy

    env = gym.make(ENV_ID, **config)
    observation, _ = env.reset(seed=0)
    return make_mimo_policy("fixed-omega:hor", env).predict(observation)[0].astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    config = {"preset": args.preset}
    print(
        f"{ENV_ID} {config}: {args.frames} frames of each env's episode after {args.warmup} "
        f"untimed (env i: seed {args.seed} + i); env steps per CPU second, wall-clock "
        "steps/s, summed return"
    )
    print(f"{'policy':>7} {'N':>4} {'kind':>7} {'cpu':>8} {'wall':>8} {'return':>12}")
    for policy in args.policies:
        for num_envs in args.sizes:
            kinds = ("native", "sync") if num_envs in args.sync_sizes else ("native",)
            for kind in kinds:
                cpu, wall, total = frames_run(
                    kind, num_envs, policy, args.frames, args.seed, args.warmup, **config
                )
                print(f"{policy:>7} {num_envs:>4} {kind:>7} {cpu:8.1f} {wall:8.1f} {total:12.4f}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=_positive, default=50, help="timed frames per env")
    parser.add_argument("--warmup", type=int, default=1, help="untimed frames first (cold)")
    parser.add_argument("--sizes", type=_positive, nargs="+", default=[1, 8, 64])
    parser.add_argument("--sync-sizes", type=_positive, nargs="*", default=[64])
    parser.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES))
    return parser


if __name__ == "__main__":
    main()
