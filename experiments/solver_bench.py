"""Benchmark of the per-slot solvers: ``python -m experiments.solver_bench``.

For each K (default 2 and 10, M = 64 antennas) it solves seeded paper-default snapshots
(K = 2: ``ISCCConfig.paper()``, tau = 0.4 s; K = 10: ``ISCCConfig.paper(K=10, tau=0.5,
C_ap=20e9)``, the setting of Fig. 5) with every method and prints, measured in the same
run: the median and 90th-percentile wall time per snapshot of ``solve()`` (the solver
plus one true-model ``evaluate``; best of ``--repeats`` runs per snapshot), the median
solver-only time (``info["wall_time_s"]``: ``solve()`` less its ``evaluate``), the
ratios of the median times, the mean objective gap to the best feasible method of each
snapshot and the feasible fractions. ``cvxpy`` (seconds per slot) runs on the first
``--cvxpy-snapshots`` snapshots only, and its ratios are taken on those snapshots.

BLAS is pinned to one thread with ``threadpoolctl`` when it is installed (multi-threaded
BLAS is several times slower on 64 x 64 matrices); otherwise a warning asks for
``OPENBLAS_NUM_THREADS=1``.

Example: ``python -m experiments.solver_bench --K 2 --snapshots 50 --cvxpy-snapshots 5 --csv
bench.csv``.

Batch mode (``--batch B``): for each K and method, B slots solved by ``solve_batch`` and
by B ``solve`` calls, interleaved in this process (best of ``--repeats`` rounds each);
prints wall ms per slot of both, their ratio (batch throughput / loop throughput; also
in CPU time, which a loaded machine distorts less, and for the solvers alone, without
the per-slot true-model evaluation: ``info["wall_time_s"]``) and how far
the batch results are from the loop's (largest relative cost difference, slots whose
feasible UEs differ). ``--source env`` takes the slots from the oracle calls of
``isac_gym/ISCC-v0`` (default preset with ``K``, ``fast`` oracle, random actions, seed
``--seed``) that have all K UEs, with their ``weight_ue``; ``--source paper`` (default)
draws them as above. Example: ``python -m experiments.solver_bench --batch 64 --K 4
--source env --methods fast,fo,ofdma``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time

import numpy as np

from isac_gym.iscc import ISCCConfig, sample_snapshot
from isac_gym.runs import limit_threads, machine_description
from optimizers.iscc.batch import solve_batch
from optimizers.iscc.solve import METHODS, solve

DEFAULT_METHODS = ("fast", "sca_admm", "cvxpy", "fl", "fo", "ho", "ctem", "ofdma")
CSV_COLUMNS = (
    "K", "seed", "method", "wall_s", "solver_s", "cost", "feasible", "success_rate", "gap"
)  # fmt: skip


def config_for(K: int) -> ISCCConfig:
    """The benchmark setting for K UEs (M = 64): Table I, Fig. 5's setting for K = 10."""
    if K == 2:
        return ISCCConfig.paper(tau=0.4)
    if K == 10:
        return ISCCConfig.paper(K=10, tau=0.5, C_ap=20e9)
    return ISCCConfig.paper(K=K)


def _parse(argv):
    parser = argparse.ArgumentParser(
        prog="python -m experiments.solver_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--K", type=int, nargs="+", default=[2, 10], help="UE counts")
    parser.add_argument("--snapshots", type=int, default=20, help="snapshots per K")
    parser.add_argument(
        "--cvxpy-snapshots", type=int, default=2, help="snapshots per K for cvxpy (slow)"
    )
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help=f"comma-separated subset of {','.join(METHODS)}",
    )
    parser.add_argument("--seed", type=int, default=0, help="first snapshot seed")
    parser.add_argument("--beta", type=float, default=0.1, help="AP energy weight beta")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs per snapshot (best kept)"
    )
    parser.add_argument("--csv", default=None, help="write one row per (K, seed, method)")
    parser.add_argument(
        "--batch", type=int, default=0, help="batch mode: solve_batch vs a loop over B slots"
    )
    parser.add_argument(
        "--source", choices=("paper", "env"), default="paper", help="batch mode: slot source"
    )
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        parser.error(f"--methods: unknown {unknown}; choose from {','.join(METHODS)}")
    if args.snapshots < 1 or args.cvxpy_snapshots < 0 or args.repeats < 1:
        parser.error("--snapshots and --repeats must be >= 1, --cvxpy-snapshots >= 0")
    if args.batch < 0:
        parser.error("--batch must be >= 0")
    if any(k < 1 for k in args.K):
        parser.error("--K values must be >= 1")
    if not np.isfinite(args.beta) or args.beta <= 0:
        parser.error("--beta must be finite and > 0")
    args.methods = methods
    return args


def run(args) -> list[dict]:
    """Solve and time every (K, snapshot, method); one record per run."""
    records = []
    for K in args.K:
        config = config_for(K)
        for i in range(args.snapshots):
            seed = args.seed + i
            snapshot = sample_snapshot(config, np.random.default_rng(seed))
            rows = []
            for method in args.methods:
                if method == "cvxpy" and i >= args.cvxpy_snapshots:
                    continue
                repeats = 1 if method == "cvxpy" else args.repeats
                best = solver = np.inf
                for _ in range(repeats):
                    start = time.perf_counter()
                    solution = solve(snapshot, args.beta, method=method)
                    best = min(best, time.perf_counter() - start)
                    solver = min(solver, solution.info["wall_time_s"])
                rows.append(
                    dict(
                        K=K,
                        seed=seed,
                        method=method,
                        wall_s=best,
                        solver_s=solver,
                        cost=solution.cost,
                        feasible=bool(np.all(solution.feasible)),
                        success_rate=float(np.mean(solution.feasible)),
                    )
                )
            feasible_costs = [r["cost"] for r in rows if r["feasible"]]
            reference = min(feasible_costs) if feasible_costs else np.nan
            for r in rows:
                r["gap"] = r["cost"] / reference - 1.0 if r["feasible"] else np.nan
            records.extend(rows)
    return records


def batch_problems(K: int, size: int, source: str, seed: int, beta: float):
    """``(snapshots, beta (B, K), weight_ue (B, K) or None)``: drawn or recorded slots."""
    if source == "paper":
        config = config_for(K)
        snapshots = [sample_snapshot(config, np.random.default_rng(seed + i)) for i in range(size)]
        return snapshots, np.full((size, K), beta), None
    import gymnasium as gym

    import isac_gym  # noqa: F401  (registers the environments)
    from experiments.env_bench import recorded_oracle_calls

    env = gym.make("isac_gym/ISCC-v0", oracle="fast", K=K)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    problems = []
    with recorded_oracle_calls() as calls:
        while len(problems) < size:
            _, _, _, truncated, _ = env.step(env.action_space.sample())
            problems += [c for c in calls if c[0].K == K and "alpha_fixed" not in c[2]]
            calls.clear()
            if truncated:
                env.reset()
    problems = problems[:size]
    betas = np.stack([np.broadcast_to(b, (K,)) for _, b, _ in problems])
    weights = np.stack([options["weight_ue"] for _, _, options in problems])
    return [snapshot for snapshot, _, _ in problems], betas, weights


def _time_batch(snapshots, beta, weight, method: str, repeats: int):
    """Best-of-``repeats`` (wall, CPU) times of a ``solve`` loop and of ``solve_batch``.

    The two alternate within each round, so both see the same machine load.
    """
    loop_time = batch_time = np.full(2, np.inf)
    per_slot = [{}] * len(snapshots) if weight is None else [{"weight_ue": w} for w in weight]
    together = {} if weight is None else {"weight_ue": weight}
    for _ in range(repeats):
        start = np.array([time.perf_counter(), time.process_time()])
        loop = [
            solve(s, b, method=method, **o)
            for s, b, o in zip(snapshots, beta, per_slot, strict=True)
        ]
        middle = np.array([time.perf_counter(), time.process_time()])
        batch = solve_batch(snapshots, beta, method=method, **together)
        end = np.array([time.perf_counter(), time.process_time()])
        loop_time = np.minimum(loop_time, middle - start)
        batch_time = np.minimum(batch_time, end - middle)
    return loop_time, batch_time, loop, batch


def run_batch(args) -> list[str]:
    """Batch mode: ms per slot of ``solve_batch`` and of a loop of ``solve``, same run."""
    lines = [
        f"{'K':>3s} {'method':9s} {'B':>4s} {'loop ms/slot':>12s} {'batch ms/slot':>13s} "
        f"{'x loop':>7s} {'x loop (CPU)':>12s} {'x loop (solver)':>15s} "
        f"{'max rel cost diff':>17s} {'feasible differ':>15s}"
    ]
    for K in args.K:
        snapshots, beta, weight = batch_problems(K, args.batch, args.source, args.seed, args.beta)
        size = len(snapshots)
        for method in args.methods:
            loop_time, batch_time, loop, batch = _time_batch(
                snapshots, beta, weight, method, args.repeats
            )
            pairs = list(zip(loop, batch, strict=True))
            solver = sum(a.info["wall_time_s"] for a in loop) / (
                size * batch[0].info["wall_time_s"]
            )
            diff = max(abs(a.cost - b.cost) / abs(a.cost) for a, b in pairs)
            differ = sum(not np.array_equal(a.feasible, b.feasible) for a, b in pairs)
            lines.append(
                f"{K:3d} {method:9s} {size:4d} {1e3 * loop_time[0] / size:12.3f} "
                f"{1e3 * batch_time[0] / size:13.3f} {loop_time[0] / batch_time[0]:7.2f} "
                f"{loop_time[1] / batch_time[1]:12.2f} {solver:15.2f} {diff:17.1e} {differ:15d}"
            )
    return lines


def summarise(records, methods, K) -> list[str]:
    """Table lines for one K: times, ratios, gaps, feasible fractions."""
    rows = [r for r in records if r["K"] == K]
    lines = [
        f"{'method':9s} {'n':>4s} {'median ms':>10s} {'p90 ms':>9s} {'solver ms':>9s} "
        f"{'x fast':>8s} {'x sca_admm':>10s} {'mean gap':>9s} {'feasible':>8s} {'UE ASR':>7s}"
    ]
    times = {m: {r["seed"]: r["wall_s"] for r in rows if r["method"] == m} for m in methods}

    def ratio(method, base):
        common = sorted(set(times[method]) & set(times.get(base, {})))
        if method == base or not common:
            return "" if method == base or base not in times else "n/a"
        mine = np.median([times[method][s] for s in common])
        theirs = np.median([times[base][s] for s in common])
        return f"{mine / theirs:.2f}"

    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        wall = np.array([r["wall_s"] for r in mine]) * 1e3
        solver = np.median([r["solver_s"] for r in mine]) * 1e3
        gaps = np.array([r["gap"] for r in mine if r["feasible"]])
        gap = f"{100 * np.mean(gaps):.3f}%" if gaps.size else "n/a"
        lines.append(
            f"{method:9s} {len(mine):4d} {np.median(wall):10.3f} "
            f"{np.percentile(wall, 90):9.3f} {solver:9.3f} {ratio(method, 'fast'):>8s} "
            f"{ratio(method, 'sca_admm'):>10s} {gap:>9s} "
            f"{np.mean([r['feasible'] for r in mine]):8.2f} "
            f"{np.mean([r['success_rate'] for r in mine]):7.3f}"
        )
    if "cvxpy" in times and times["cvxpy"]:
        for base in ("fast", "sca_admm"):
            if base in times:
                common = sorted(set(times["cvxpy"]) & set(times[base]))
                speedup = np.median([times["cvxpy"][s] / times[base][s] for s in common])
                lines.append(
                    f"cvxpy / {base}: {speedup:.0f}x (median per-snapshot ratio, "
                    f"{len(common)} snapshots)"
                )
    return lines


def main(argv=None) -> int:
    args = _parse(argv)
    limiter = limit_threads(1)  # 64 x 64 matrices: one BLAS thread is several times faster
    print(f"machine: {machine_description()}")
    print("BLAS threads: pinned to 1 (threadpoolctl)")
    command = " ".join(sys.argv[1:] if argv is None else argv)
    print(f"command: python -m experiments.solver_bench {command}")
    if args.batch:
        print(
            f"batch mode: B={args.batch} slots from {args.source!r} (seed {args.seed}), "
            f"best of {args.repeats} interleaved rounds; times include each slot's evaluate"
        )
        with limiter:
            lines = run_batch(args)
        print("\n".join("  " + line for line in lines))
        return 0
    print(
        f"beta={args.beta}, snapshots={args.snapshots} (cvxpy {args.cvxpy_snapshots}), "
        f"seeds {args.seed}..{args.seed + args.snapshots - 1}, best of {args.repeats} runs; "
        "time = solve() incl. one evaluate; gap vs the best feasible method per snapshot"
    )
    with limiter:
        records = run(args)
    for K in args.K:
        config = config_for(K)
        print()
        print(
            f"K={K}, M={config.M_a}: tau={config.per_ue('tau')[0]:g} s, "
            f"C_ap={config.C_ap:g} cycle/s"
        )
        for line in summarise(records, args.methods, K):
            print("  " + line)
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            for r in records:
                writer.writerow({k: r[k] for k in CSV_COLUMNS})
        print(f"\nwrote {len(records)} rows to {args.csv}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
