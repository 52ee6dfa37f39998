"""Environment overhead: ``python -m isac_gym.envs.benchmark [--steps N] [--oracle ...]``.

Prints, per oracle, steps/s, the mean step time, the mean time of the oracle calls the
step contains (``info["oracle_time_s"]``: the whole ``optimizers.solve`` calls,
true-model evaluation included) and their ratio, measured in the same run. Set
``OPENBLAS_NUM_THREADS=1``: on 64 x 64 matrices one BLAS thread is several times faster.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import isac_gym  # noqa: F401  (registers the ids)


def measure(oracle: str, steps: int, seed: int = 0, **config) -> dict[str, float]:
    """Mean step and oracle times [ms] over ``steps`` beta = mu steps (after a warm-up)."""
    env = gym.make("isac_gym/ISCC-v0", oracle=oracle, **config)
    env.reset(seed=seed)
    action = env.unwrapped.beta_to_action(np.full(env.unwrapped.K, env.unwrapped.config.mu))
    for _ in range(5):  # warm-up: imports, caches
        env.step(action)
    step_time = oracle_time = 0.0
    for _ in range(steps):
        start = time.perf_counter()
        _, _, _, truncated, info = env.step(action)
        step_time += time.perf_counter() - start
        oracle_time += float(info["oracle_time_s"])
        if truncated:
            env.reset()
    return {
        "steps_per_s": steps / step_time,
        "step_ms": 1e3 * step_time / steps,
        "oracle_ms": 1e3 * oracle_time / steps,
        "overhead": step_time / oracle_time - 1.0,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="steps per oracle (>= 1)")
    parser.add_argument("--oracle", nargs="+", default=["sca_admm", "fast"])
    parser.add_argument("--preset", default="default")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    print(f"isac_gym/ISCC-v0 preset={args.preset}, {args.steps} steps, beta = mu")
    print(f"{'oracle':>9} {'steps/s':>8} {'step ms':>8} {'oracle ms':>9} {'overhead':>9}")
    for oracle in args.oracle:
        r = measure(oracle, args.steps, preset=args.preset)
        print(
            f"{oracle:>9} {r['steps_per_s']:8.1f} {r['step_ms']:8.2f} {r['oracle_ms']:9.2f} "
            f"{100 * r['overhead']:8.1f}%"
        )


if __name__ == "__main__":
    main()
