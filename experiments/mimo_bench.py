"""Benchmark of Dinkelbach-SCA on the mMIMO-OFDM ISAC cell: ``python -m experiments.mimo_bench``.

For every weight omega (default LoR 1e-5 and HoR 2e-3) and scheme (``proposed``,
``equal_com``, ``equal_cs``) it solves the same seeded drops (seeds S..S+N-1, ``rng =
np.random.default_rng(seed)``, one snapshot per seed shared by all omegas and schemes)
with :func:`optimizers.mimo.dinkelbach.solve_mimo` and prints, per omega: the feasible
fraction, the medians over feasible drops of the overall EE, EE_c, EE_s, sum SE, P_T and
CRB_theta (true model, :func:`isac_gym.mimo.evaluate`), the median Dinkelbach iterations
and wall time of one ``solve_mimo`` call, the solver statuses, and the median per-drop EE
ratio of ``proposed`` to each baseline (drops where both are feasible).

``--method both`` solves every drop with ``cvxpy`` and ``fast`` back to back (order
alternating with the seed) and adds, per omega and scheme, the per-drop EE ratio
fast / cvxpy and the wall-time ratio cvxpy / fast. ``--pmax 20 30 40`` adds a check of
the proposed EE against increasing P_max [dBm] per drop: independent solves, and
:func:`optimizers.mimo.dinkelbach.solve_mimo_sweep` (warm start from the lower budget,
non-decreasing by construction).

Settings: paper defaults (``MIMOISACConfig.paper()``: 8x8 UPA, K = 6, N = 16), or with
``--small`` a 4x4 UPA, K = 3, N = 4 with CRB ceilings 3e-3 rad^2 (seconds per run).
BLAS is pinned to one thread with ``threadpoolctl``.

Example: ``python -m experiments.mimo_bench --drops 5 --method both --pmax 20 30 40``.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from tqdm import tqdm

from isac_gym.mimo import OMEGA_HOR, OMEGA_LOR, MIMOISACConfig, MIMOSnapshot, sample_snapshot
from isac_gym.runs import limit_threads, machine_description
from isac_gym.units import dbm_to_watt
from optimizers.mimo.dinkelbach import METHODS, SCHEMES, solve_mimo, solve_mimo_sweep

CSV_COLUMNS = (
    "omega", "scheme", "method", "seed", "status", "feasible", "ee", "ee_comm", "ee_sense",
    "sum_se", "transmit_power", "crb_theta", "crb_phi", "iterations", "phase1_iterations",
    "wall_s",
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
        "--method",
        choices=(*METHODS, "both"),
        default="fast",
        help="solve_mimo method (default fast); both: cvxpy and fast on every drop, "
        "back to back in alternating order, with a per-drop comparison",
    )
    parser.add_argument(
        "--pmax",
        type=float,
        nargs="+",
        default=None,
        metavar="DBM",
        help="also check EE against increasing P_max [dBm] (proposed): independent "
        "solves and solve_mimo_sweep (fast if --method both)",
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
            omega=omega, scheme=scheme, method=method, seed=seed,
            status=f"error: {type(error).__name__}: {error}",
            feasible=False, ee=nan, ee_comm=nan, ee_sense=nan, sum_se=nan, transmit_power=nan,
            crb_theta=nan, crb_phi=nan, iterations=0, phase1_iterations=0,
            wall_s=time.perf_counter() - start,
        )  # fmt: skip
    wall = time.perf_counter() - start
    ev, info = solution.evaluation, solution.info
    return dict(
        omega=omega,
        scheme=scheme,
        method=method,
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


def methods_of(args: argparse.Namespace) -> list[str]:
    return ["cvxpy", "fast"] if args.method == "both" else [args.method]


def run(args: argparse.Namespace) -> list[dict]:
    """Every (seed, omega, scheme, method) solve, one record each; progress on stderr.
    With two methods their order alternates with the seed, so a drift of the machine's
    load does not favour one."""
    config = config_for(args.small, args.R_th)
    seeds = range(args.seed, args.seed + args.drops)
    methods = methods_of(args)
    records = []
    total = len(seeds) * len(args.omega) * len(args.schemes) * len(methods)
    with tqdm(total=total, desc="solves", unit="solve", file=sys.stderr) as bar:
        for seed in seeds:
            snapshot = sample_snapshot(config, np.random.default_rng(seed))
            order = methods if seed % 2 == 0 else methods[::-1]
            for omega in args.omega:
                for scheme in args.schemes:
                    for method in order:
                        bar.set_postfix_str(f"omega={omega:g} {scheme} {method} seed={seed}")
                        records.append(solve_record(snapshot, omega, scheme, seed, method))
                        bar.update()
    return records


def pmax_check(args: argparse.Namespace) -> list[str]:
    """EE of ``proposed`` at increasing P_max per drop and omega: how many drops are
    non-decreasing with independent solves and with :func:`solve_mimo_sweep`."""
    config = config_for(args.small, args.R_th)
    method = "fast" if args.method == "both" else args.method
    budgets = [float(dbm_to_watt(v)) for v in sorted(args.pmax)]
    lines = []
    for omega in args.omega:
        counts, worst = Counter(), {"independent": 1.0, "sweep": 1.0}
        for seed in range(args.seed, args.seed + args.drops):
            snapshot = sample_snapshot(config, np.random.default_rng(seed))
            series = {
                "independent": [
                    solve_mimo(replace(snapshot, P_max=b), omega, method=method).ee for b in budgets
                ],
                "sweep": [s.ee for s in solve_mimo_sweep(snapshot, omega, budgets, method=method)],
            }
            for name, ee in series.items():  # an infeasible lower budget (nan) bounds nothing
                low, high = np.array(ee[:-1]), np.array(ee[1:])
                counts[name] += bool(np.all(np.isnan(low) | (high >= low)))
                ratios = (high / low)[np.isfinite(low)]
                worst[name] = min(worst[name], float(np.min(ratios, initial=np.inf)))
        lines.append(
            f"omega={omega:g} P_max {'/'.join(f'{v:g}' for v in sorted(args.pmax))} dBm, "
            f"{method}: EE non-decreasing on {counts['independent']}/{args.drops} drops "
            f"(independent solves, worst step ratio {worst['independent']:.4f}), "
            f"{counts['sweep']}/{args.drops} (solve_mimo_sweep, worst {worst['sweep']:.4f})"
        )
    return lines


def compare_lines(records: list[dict], omega: float, schemes: Sequence[str]) -> list[str]:
    """Per scheme: fast against cvxpy on the same drops (EE ratio, wall-time ratio)."""
    lines = []
    for scheme in schemes:
        rows = [r for r in records if r["omega"] == omega and r["scheme"] == scheme]
        by = {m: {r["seed"]: r for r in rows if r["method"] == m} for m in ("cvxpy", "fast")}
        seeds = sorted(set(by["cvxpy"]) & set(by["fast"]))
        both = [s for s in seeds if by["cvxpy"][s]["feasible"] and by["fast"][s]["feasible"]]
        speed = [by["cvxpy"][s]["wall_s"] / by["fast"][s]["wall_s"] for s in seeds]
        quality = [by["fast"][s]["ee"] / by["cvxpy"][s]["ee"] for s in both]
        if not seeds:
            continue
        lines.append(
            f"{scheme}: fast/cvxpy EE ratio "
            + (f"min {min(quality):.4f} median {np.median(quality):.4f}" if quality else "n/a")
            + f" ({len(both)} drops feasible for both); wall cvxpy/fast per drop median "
            f"{np.median(speed):.1f}x (min {min(speed):.1f}x); median wall cvxpy "
            f"{_median(list(by['cvxpy'].values()), 'wall_s') * 1e3:.0f} ms, fast "
            f"{_median(list(by['fast'].values()), 'wall_s') * 1e3:.0f} ms"
        )
    return lines


def _median(rows: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in rows])) if rows else float("nan")


def _cell(value: float, fmt: str) -> str:
    width = len(fmt.format(1.0))
    return fmt.format(value) if math.isfinite(value) else "n/a".rjust(width)


def summarise(records: list[dict], schemes: Sequence[str], omega: float) -> list[str]:
    """Table lines for one omega: medians per scheme (and method), statuses, EE ratios
    to proposed."""
    rows = [r for r in records if r["omega"] == omega]
    methods = sorted({r["method"] for r in rows})
    widths = [len(fmt.format(1.0)) for _, _, fmt in MEDIAN_COLUMNS]
    header = " ".join(f"{h:>{w}s}" for (h, _, _), w in zip(MEDIAN_COLUMNS, widths, strict=True))
    lines = [f"{'scheme':15s} {'n':>3s} {'feasible':>8s} {header} {'iters':>6s} {'wall s':>7s}"]
    statuses = []
    for method in methods:
        for scheme in schemes:
            mine = [r for r in rows if r["scheme"] == scheme and r["method"] == method]
            feasible = [r for r in mine if r["feasible"]]
            medians = " ".join(_cell(_median(feasible, key), fmt) for _, key, fmt in MEDIAN_COLUMNS)
            name = f"{scheme} {method}" if len(methods) > 1 else scheme
            lines.append(
                f"{name:15s} {len(mine):3d} {len(feasible) / len(mine):8.2f} {medians} "
                f"{_median(mine, 'iterations'):6.1f} {_median(mine, 'wall_s'):7.2f}"
            )
            counts = Counter(r["status"].split(":")[0] for r in mine)  # details in the CSV
            statuses.append(f"{name} " + ", ".join(f"{s} {n}" for s, n in sorted(counts.items())))
    lines.append("status: " + "; ".join(statuses))
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        for base in schemes:
            if base != "proposed" and "proposed" in schemes:
                line = ee_ratio_line(mine, "proposed", base)
                lines.append(f"[{method}] {line}" if len(methods) > 1 else line)
    if len(methods) > 1:
        lines.extend(compare_lines(records, omega, schemes))
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
    if args.pmax:
        with limit_threads(1):
            lines = pmax_check(args)
        print("\nP_max check (proposed):")
        for line in lines:
            print("  " + line)
    print(f"\ntotal wall time {time.perf_counter() - start:.1f} s for {len(records)} solves")
    if args.csv:
        write_csv(records, args.csv)
        print(f"wrote {len(records)} rows to {args.csv}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
