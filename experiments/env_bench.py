"""Environment overhead: ``python -m experiments.env_bench [--steps N] [--oracle ...]``.

Prints, per oracle, steps/s, the mean step time, the mean time of the oracle calls the
step contains (``info["oracle_time_s"]``: the whole ``optimizers.iscc.solve`` calls,
true-model evaluation included) and their ratio, measured in the same run. Set
``OPENBLAS_NUM_THREADS=1``: on 64 x 64 matrices one BLAS thread is several times faster.

``--compare-oracles`` instead records the per-slot problems the environment hands to
its oracle (batteries as energy budgets, background load as reduced C_ap, the drop-cause
relaxations) over ``--steps`` random-beta steps, solves each with ``fast`` and
``sca_admm`` and prints how often and by how much they differ, and their times.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import gymnasium as gym
import numpy as np

import isac_gym  # noqa: F401  (registers the ids)
import optimizers


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


@contextlib.contextmanager
def recorded_oracle_calls():
    """Record ``(snapshot, beta, options)`` of every ``optimizers.iscc.solve`` call meanwhile.

    The environment looks ``optimizers.iscc.solve`` up at each step, so wrapping it there
    sees exactly the problems the oracle gets.
    """
    calls, original = [], optimizers.iscc.solve

    def recording(snapshot, beta, method="sca_admm", **options):
        calls.append((snapshot, beta, options))
        return original(snapshot, beta, method=method, **options)

    optimizers.iscc.solve = recording
    try:
        yield calls
    finally:
        optimizers.iscc.solve = original


def compare_oracles(steps: int, seed: int = 0, **config) -> dict[str, float]:
    """``fast`` vs ``sca_admm`` on the oracle problems of ``steps`` random-beta steps."""
    env = gym.make("isac_gym/ISCC-v0", oracle="fast", **config)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    with recorded_oracle_calls() as calls:
        for _ in range(steps):
            _, _, _, truncated, _ = env.step(env.action_space.sample())
            if truncated:
                env.reset()
    served = {"fast": 0, "sca_admm": 0}
    times = {"fast": [], "sca_admm": []}
    gains, more, fewer = [], 0, 0
    for snapshot, beta, options in calls:
        result = {}
        for method in ("fast", "sca_admm"):
            start = time.perf_counter()
            result[method] = optimizers.iscc.solve(snapshot, beta, method=method, **options)
            times[method].append(time.perf_counter() - start)
            served[method] += int(result[method].feasible.sum())
        fast, sca = result["fast"], result["sca_admm"]
        more += int(sca.feasible.sum() > fast.feasible.sum())
        fewer += int(sca.feasible.sum() < fast.feasible.sum())
        # Costs (17a) over the UEs both serve: an unserved UE's best-effort cost means
        # nothing, so it is left out.
        both = fast.feasible & sca.feasible
        if both.any():
            gains.append(1.0 - sca.evaluation.cost_of(both) / fast.evaluation.cost_of(both))
    gains = np.asarray(gains)
    return {
        "problems": len(calls),
        "ues": sum(s.K for s, _, _ in calls),
        "served_fast": served["fast"],
        "served_sca_admm": served["sca_admm"],
        "sca_admm_serves_more": more,
        "sca_admm_serves_fewer": fewer,
        "sca_admm_cheaper": int(np.sum(gains > 1e-6)),
        "sca_admm_dearer": int(np.sum(gains < -1e-6)),
        "max_saving": float(gains.max(initial=0.0)),
        "mean_saving": float(gains.mean()) if gains.size else 0.0,
        "max_loss": max(0.0, float(-gains.min(initial=0.0))),
        "fast_ms": 1e3 * float(np.median(times["fast"])),
        "sca_admm_ms": 1e3 * float(np.median(times["sca_admm"])),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="steps per oracle (>= 1)")
    parser.add_argument("--oracle", nargs="+", default=["sca_admm", "fast"])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--compare-oracles", action="store_true", help="fast vs sca_admm on the env's problems"
    )
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    if args.compare_oracles:
        r = compare_oracles(args.steps, args.seed, preset=args.preset)
        print(
            f"isac_gym/ISCC-v0 preset={args.preset}, {args.steps} random-beta steps, seed "
            f"{args.seed}: {r['problems']} oracle problems, {r['ues']} UE tasks\n"
            f"served: fast {r['served_fast']}, sca_admm {r['served_sca_admm']} (sca_admm "
            f"serves more on {r['sca_admm_serves_more']}, fewer on "
            f"{r['sca_admm_serves_fewer']} problems)\n"
            f"cost of the UEs both serve: sca_admm cheaper by > 1e-6 on "
            f"{r['sca_admm_cheaper']}, dearer on {r['sca_admm_dearer']} problems; largest "
            f"saving {100 * r['max_saving']:.2f} %, largest loss {100 * r['max_loss']:.2f} %, "
            f"mean saving {100 * r['mean_saving']:.3f} %\n"
            f"median time per problem: fast {r['fast_ms']:.2f} ms, sca_admm "
            f"{r['sca_admm_ms']:.2f} ms"
        )
        return
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
