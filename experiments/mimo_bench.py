"""Benchmark of Dinkelbach-SCA on the mMIMO-OFDM ISAC cell: ``python -m experiments.mimo_bench``.

For every weight omega (default LoR 1e-5 and HoR 2e-3) and scheme (``proposed``,
``equal_com``, ``equal_cs``) it solves the same seeded drops (seeds S..S+N-1, ``rng =
np.random.default_rng(seed)``, one snapshot per seed shared by all omegas and schemes)
with :func:`optimizers.mimo.dinkelbach.solve_mimo` and prints, per omega: the feasible
fraction, the medians over feasible drops of the overall EE, EE_c, EE_s, sum SE, P_T and
CRB_theta (true model, :func:`isac_gym.mimo.evaluate`), the median Dinkelbach iterations
and wall time of one ``solve_mimo`` call, the solver statuses, and the median per-drop EE
ratio of ``proposed`` to each baseline (drops where both are feasible).

Settings: paper defaults (``MIMOISACConfig.paper()``: 8x8 UPA, K = 6, N = 16), or with
``--small`` a 4x4 UPA, K = 3, N = 4 with CRB ceilings 3e-3 rad^2 (seconds per run).
BLAS is pinned to one thread with ``threadpoolctl``.

Example: ``python -m experiments.mimo_bench --drops 5 --omega 1e-5 2e-3 --csv mimo.csv``.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from isac_gym.mimo import OMEGA_HOR, OMEGA_LOR, MIMOISACConfig, MIMOSnapshot, sample_snapshot
from isac_gym.runs import limit_threads, machine_description
from optimizers.mimo.dinkelbach import METHODS, SCHEMES, solve_mimo

CSV_COLUMNS = (
    "omega", "scheme", "seed", "status", "feasible", "ee", "ee_comm", "ee_sense", "sum_se",
    "transmit_power", "crb_theta", "crb_phi", "iterations", "phase1_iterations", "wall_s",
)  # fmt: skip
SMALL = dict(N_x=4, N_y=4, K=3, N=4, crb_max_theta=3e-3, crb_max_phi=3e-3)
#: (header, record key, format) of the per-omega table's median columns
MEDIAN_COLUMNS = (
    ("EE", "ee", "{:10.4g}"),
    ("EE_c", "ee_comm", "{:9.4g}"),
    ("EE_s", "ee_sense", "{:9.4g}"),
    ("sum SE", "sum_se", "{:7.3f}"),
    ("P_T W", "transmit_power", "{:7.4f}"),
    ("CRB_theta", "crb_theta", "{:9.3e}"),
)


def config_for(small: bool, R_th: float) -> MIMOISACConfig:
    """Paper defaults, or the quick 4x4 / K = 3 / N = 4 setting; SE floor ``R_th``."""
    return MIMOISACConfig.paper(**(SMALL if small else {}), R_th=R_th)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.mimo_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--drops", type=int, default=10, help="seeded drops per omega and scheme")
    parser.add_argument("--seed", type=int, default=0, help="first drop seed")
    parser.add_argument(
        "--omega", type=float, nargs="+", default=[OMEGA_LOR, OMEGA_HOR], help="weights in [0, 1]"
    )
    parser.add_argument(
        "--schemes", default=",".join(SCHEMES), help=f"comma-separated, from {','.join(SCHEMES)}"
    )
    parser.add_argument("--R-th", type=float, default=4.0, help="per-user SE floor [bps/Hz]")
    parser.add_argument(
        "--method", choices=METHODS, default="cvxpy", help="solve_mimo method (default cvxpy)"
    )
    parser.add_argument("--csv", default=None, help="write one row per (omega, scheme, seed)")
    parser.add_argument(
        "--small", action="store_true", help="4x4 UPA, K=3, N=4, CRB ceilings 3e-3 (quick)"
    )
    args = parser.parse_args(argv)
    schemes = [s.strip() for s in args.schemes.split(",") if s.strip()]
    unknown = [s for s in schemes if s not in SCHEMES]
    if unknown or not schemes:
        parser.error(f"--schemes: unknown {unknown}; choose from {','.join(SCHEMES)}")
    if args.drops < 1:
        parser.error("--drops must be >= 1")
    bad = [w for w in args.omega if not 0.0 <= w <= 1.0]
    if bad:
        parser.error(f"--omega values must be in [0, 1], got {bad}")
    if not (math.isfinite(args.R_th) and args.R_th > 0):
        parser.error("--R-th must be finite and > 0")
    args.schemes = schemes
    return args


def solve_record(
    snapshot: MIMOSnapshot, omega: float, scheme: str, seed: int, method: str = "cvxpy"
) -> dict:
    """Solve one drop and flatten the result into a CSV row (NaNs if solve_mimo raised)."""
    start = time.perf_counter()
    try:
        solution = solve_mimo(snapshot, omega, scheme, method=method)
    except Exception as error:  # a benchmark records the failure and goes on
        nan = float("nan")
        return dict(
            omega=omega, scheme=scheme, seed=seed, status=f"error: {type(error).__name__}: {error}",
            feasible=False, ee=nan, ee_comm=nan, ee_sense=nan, sum_se=nan, transmit_power=nan,
            crb_theta=nan, crb_phi=nan, iterations=0, phase1_iterations=0,
            wall_s=time.perf_counter() - start,
        )  # fmt: skip
    wall = time.perf_counter() - start
    ev, info = solution.evaluation, solution.info
    return dict(
        omega=omega,
        scheme=scheme,
        seed=seed,
        status=info["status"],
        feasible=bool(ev.feasible),
        ee=float(solution.ee),
        ee_comm=float(ev.ee_comm),
        ee_sense=float(ev.ee_sense),
        sum_se=float(ev.sum_se),
        transmit_power=float(ev.transmit_power),
        crb_theta=float(ev.crb[0]),
        crb_phi=float(ev.crb[1]),
        iterations=int(info["iterations"]),
        phase1_iterations=int(info["phase1_iterations"]),
        wall_s=wall,
    )


def run(args: argparse.Namespace) -> list[dict]:
    """Every (seed, omega, scheme) solve, one record each; progress bar on stderr."""
    config = config_for(args.small, args.R_th)
    seeds = range(args.seed, args.seed + args.drops)
    records = []
    total = len(seeds) * len(args.omega) * len(args.schemes)
    with tqdm(total=total, desc="solves", unit="solve", file=sys.stderr) as bar:
        for seed in seeds:
            snapshot = sample_snapshot(config, np.random.default_rng(seed))
            for omega in args.omega:
                for scheme in args.schemes:
                    bar.set_postfix_str(f"omega={omega:g} {scheme} seed={seed}")
                    records.append(solve_record(snapshot, omega, scheme, seed, args.method))
                    bar.update()
    return records


def _median(rows: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in rows])) if rows else float("nan")


def _cell(value: float, fmt: str) -> str:
    width = len(fmt.format(1.0))
    return fmt.format(value) if math.isfinite(value) else "n/a".rjust(width)


def summarise(records: list[dict], schemes: Sequence[str], omega: float) -> list[str]:
    """Table lines for one omega: medians per scheme, statuses, EE ratios to proposed."""
    rows = [r for r in records if r["omega"] == omega]
    widths = [len(fmt.format(1.0)) for _, _, fmt in MEDIAN_COLUMNS]
    header = " ".join(f"{h:>{w}s}" for (h, _, _), w in zip(MEDIAN_COLUMNS, widths, strict=True))
    lines = [f"{'scheme':9s} {'n':>3s} {'feasible':>8s} {header} {'iters':>6s} {'wall s':>7s}"]
    statuses = []
    for scheme in schemes:
        mine = [r for r in rows if r["scheme"] == scheme]
        feasible = [r for r in mine if r["feasible"]]
        medians = " ".join(_cell(_median(feasible, key), fmt) for _, key, fmt in MEDIAN_COLUMNS)
        lines.append(
            f"{scheme:9s} {len(mine):3d} {len(feasible) / len(mine):8.2f} {medians} "
            f"{_median(mine, 'iterations'):6.1f} {_median(mine, 'wall_s'):7.2f}"
        )
        counts = Counter(r["status"].split(":")[0] for r in mine)  # details in the CSV
        statuses.append(f"{scheme} " + ", ".join(f"{s} {n}" for s, n in sorted(counts.items())))
    lines.append("status: " + "; ".join(statuses))
    for base in schemes:
        if base != "proposed" and "proposed" in schemes:
            lines.append(ee_ratio_line(rows, "proposed", base))
    return lines


def ee_ratio_line(rows: list[dict], scheme: str, base: str) -> str:
    """Median over drops (both feasible) of EE(scheme) / EE(base)."""
    ee = {
        name: {r["seed"]: r["ee"] for r in rows if r["scheme"] == name and r["feasible"]}
        for name in (scheme, base)
    }
    common = sorted(set(ee[scheme]) & set(ee[base]))
    if not common:
        return f"EE {scheme} / {base}: n/a (no drop feasible for both)"
    ratios = [ee[scheme][s] / ee[base][s] for s in common]
    return (
        f"EE {scheme} / {base}: median {np.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f}; {len(common)} drops feasible for both)"
    )


def write_csv(records: list[dict], path: str) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows({k: r[k] for k in CSV_COLUMNS} for r in records)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    config = config_for(args.small, args.R_th)
    command = " ".join(sys.argv[1:] if argv is None else argv)
    print(f"machine: {machine_description()}")
    print("BLAS threads: pinned to 1 (threadpoolctl)")
    print(f"command: python -m experiments.mimo_bench {command}".rstrip())
    print(
        f"setting: {'small' if args.small else 'paper defaults'}: N_t={config.N_t} "
        f"({config.N_x}x{config.N_y} UPA), K={config.K}, N={config.N}, L={config.L}, "
        f"P_max={config.P_max:g} W, R_th={config.R_th:g} bps/Hz, method {args.method}, "
        f"CRB ceilings {config.crb_max_theta:g}/{config.crb_max_phi:g} rad^2"
    )
    print(
        f"drops: seeds {args.seed}..{args.seed + args.drops - 1}; medians of EE..CRB over "
        "feasible drops, of iterations and wall time (one solve_mimo call) over all drops"
    )
    start = time.perf_counter()
    with limit_threads(1):
        records = run(args)
    for omega in args.omega:
        print(f"\nomega={omega:g}")
        for line in summarise(records, args.schemes, omega):
            print("  " + line)
    print(f"\ntotal wall time {time.perf_counter() - start:.1f} s for {len(records)} solves")
    if args.csv:
        write_csv(records, args.csv)
        print(f"wrote {len(records)} rows to {args.csv}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
