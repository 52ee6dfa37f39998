"""Figs. 2-7 of the mMIMO ISAC paper (Nguyen et al., 2025, Sec. V): ``evaluate.py paper-mimo``.

    python evaluate.py paper-mimo --figure N|all [--trials T] [--jobs J] [--seed S]
                                  [--out DIR] [--small] [--method fast|cvxpy]

Each figure is a set of series (scheme, weight omega, configuration overrides) swept over
an x-axis. A drop's randomness comes from ``SeedSequence([seed, figure, trial])``: every
series and every x of a figure see the same drop in trial t (paired curves; a sweep of
N_x or N changes the array, so there the drop differs). Results are gathered in task
order, so the output is identical for every ``--jobs``. Writes atomically (temporary file +
``os.replace``, the ISCC figures' helper):

* ``DIR/mimo_figN.csv``: one row per (series, x): :data:`CSV_COLUMNS`, means over the
  drops where the series' solve is feasible (infeasible drops are counted, not averaged).
  Fig. 3 has x = Dinkelbach iteration and the mean Phi of the trace (held at its last
  value after convergence).
* ``DIR/mimo_figN.png``: the figure's quantity against x, one line per series.
* ``DIR/mimo_figN.json``: command, seed, trials, series, wall time.

``--small``: a 4x4 UPA, K = 3, N = 4 cell with CRB ceilings 3e-3 rad^2 (smoke tests).
Solves use ``--method`` (default ``fast``, the direct barrier method, docs/mimo_model.md
section 5.7); Fig. 3 always uses ``cvxpy``, since it plots the Dinkelbach iterations of
Algorithm 1 (the fast method's path has barrier stages instead).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isac_gym import ray_backend
from isac_gym.cli import positive_int
from isac_gym.mimo import OMEGA_HOR as HOR
from isac_gym.mimo import OMEGA_LOR as LOR

CSV_COLUMNS = (
    "series", "x", "trials", "feasible_trials", "ee", "ee_comm", "ee_sense", "sum_se",
    "transmit_power", "total_power", "crb_theta", "crb_phi",
)  # fmt: skip
SMALL = dict(N_x=4, N_y=4, K=3, N=4, crb_max_theta=3e-3, crb_max_phi=3e-3)
SCHEME_LABEL = {"proposed": "Proposed", "equal_com": "EqualCom", "equal_cs": "EqualC&S"}
ITERATIONS = 200  #: x-axis length of Fig. 3: the cvxpy loop's iteration cap


@dataclass(frozen=True)
class Series:
    label: str
    scheme: str
    omega: float | None  #: None: omega is the x value (Fig. 2)
    overrides: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FigureSpec:
    number: int
    title: str
    x_name: str  #: config field swept, "omega", "iteration", or "crb_db" (both ceilings)
    x_values: tuple
    series: tuple
    y: str = "ee"  #: CSV column plotted
    extra_y: tuple = ()
    method: str | None = None  #: a solve method pinned by the figure (else --method)
    sweep: bool = False  #: x is P_max, solved per drop by solve_mimo_sweep (monotone EE)


def _schemes(omega, tag="", **overrides):
    return tuple(
        Series(f"{SCHEME_LABEL[s]}{tag}", s, omega, dict(overrides))
        for s in ("proposed", "equal_com", "equal_cs")
    )


P_MAX_SWEEP = tuple(10 ** ((dbm - 30) / 10) for dbm in range(10, 41, 5))  #: 10-40 dBm [W]
#: Fig. 4's CRB ceilings (its value is lost): -25 dB, within reach at 10 dBm (the -40 dB
#: default needs about 0.1 W on sensing alone; docs/mimo_model.md 6.1)
FIG4_CEILINGS = dict(crb_max_theta=10**-2.5, crb_max_phi=10**-2.5)
#: Fig. 7 keeps the frame's duration when it varies N: an OFDM symbol lasts N / BW, so a
#: frame of L_0 = 64 symbols at N_0 = 16 holds L = 1024 / N symbols (docs/mimo_model.md 8.1)
FRAME_SYMBOLS = 1024


def _figures() -> dict[int, FigureSpec]:
    dbm = {25: 10**-0.5, 30: 1.0, 40: 10.0}
    return {
        2: FigureSpec(2, "EE vs omega", "omega", (1e-6, 1e-5, 1e-4, 1e-3, 2e-3, 1e-2),
                      (Series("Proposed", "proposed", None),), "ee", ("ee_comm", "ee_sense")),
        3: FigureSpec(3, "convergence", "iteration", tuple(range(ITERATIONS)),
                      _schemes(LOR, " LoR") + _schemes(HOR, " HoR"), method="cvxpy"),
        4: FigureSpec(4, "EE vs P_max [W]", "P_max", P_MAX_SWEEP,
                      _schemes(LOR, " LoR", **FIG4_CEILINGS)[:2]
                      + _schemes(HOR, " HoR", **FIG4_CEILINGS)[:2], sweep=True),
        5: FigureSpec(5, "EE vs CRB ceiling [dB]", "crb_db", (-40.0, -35.0, -30.0, -25.0),
                      _schemes(LOR, " LoR")
                      + tuple(Series(f"Proposed HoR {p} dBm", "proposed", HOR, {"P_max": w})
                              for p, w in dbm.items())
                      + tuple(Series(f"Proposed LoR R_th {r}", "proposed", LOR, {"R_th": r})
                              for r in (4.0, 6.0, 8.0))),
        6: FigureSpec(6, "vs R_th [bps/Hz]", "R_th", (4.0, 5.0, 6.0, 7.0, 8.0),
                      _schemes(LOR, " LoR") + _schemes(HOR, " HoR"), "ee",
                      ("sum_se", "total_power", "crb_theta")),
        7: FigureSpec(7, "EE_c and EE_s vs N_t", "N_x", (4, 6, 8),
                      tuple(Series(f"Proposed N={n}", "proposed", LOR,
                                   {"N": n, "L": FRAME_SYMBOLS // n})
                            for n in (8, 16)), "ee_comm", ("ee_sense",)),
    }  # fmt: skip


FIGURES = _figures()


def drop_seed(seed: int, figure: int, trial: int):
    import numpy as np

    return np.random.SeedSequence([seed, figure, trial])


def _config(spec: FigureSpec, series: Series, x, small: bool):
    from isac_gym.mimo import MIMOISACConfig

    overrides = dict(SMALL) if small else {}
    overrides.update(series.overrides)
    if spec.x_name == "crb_db":
        overrides.update(crb_max_theta=10 ** (x / 10), crb_max_phi=10 ** (x / 10))
    elif spec.x_name == "N_x":
        overrides.update(N_x=x, N_y=x)
    elif spec.x_name not in ("omega", "iteration"):
        overrides[spec.x_name] = x
    return MIMOISACConfig.paper(**overrides)


def run_task(
    number: int, x_index: int, trial: int, seed: int, small: bool, method: str = "fast"
) -> list:
    """Every series of one figure on one drop at one x: one record per series, solved by
    the figure's pinned method or ``method``. A sweep figure solves every x of the drop
    in one task (:func:`optimizers.mimo.dinkelbach.solve_mimo_sweep`) and returns one
    such list per x."""
    import numpy as np

    from isac_gym.mimo import sample_snapshot
    from optimizers.mimo.dinkelbach import solve_mimo, solve_mimo_sweep

    spec = FIGURES[number]
    method = spec.method or method
    x = spec.x_values[0 if spec.x_name == "iteration" or spec.sweep else x_index]
    per_series = []
    for series in spec.series:
        config = _config(spec, series, x, small)
        snapshot = sample_snapshot(config, np.random.default_rng(drop_seed(seed, number, trial)))
        omega = x if series.omega is None else series.omega
        if spec.sweep:
            per_series.append(
                solve_mimo_sweep(snapshot, omega, spec.x_values, series.scheme, method=method)
            )
        else:
            per_series.append([solve_mimo(snapshot, omega, series.scheme, method=method)])
    by_x = [[_record(solutions[i]) for solutions in per_series] for i in range(len(per_series[0]))]
    return by_x if spec.sweep else by_x[0]


def _record(solution) -> dict:
    ev = solution.evaluation
    return dict(
        feasible=solution.feasible, ee=solution.ee, ee_comm=ev.ee_comm,
        ee_sense=ev.ee_sense, sum_se=ev.sum_se, transmit_power=ev.transmit_power,
        total_power=ev.total_power, crb_theta=ev.crb[0], crb_phi=ev.crb[1],
        trace=list(solution.info.get("ee_trace", [])),
    )  # fmt: skip


def aggregate(spec: FigureSpec, results: dict) -> list[dict[str, Any]]:
    """Rows of the CSV: means over feasible drops per (series, x)."""
    rows = []
    x_count = 1 if spec.x_name == "iteration" else len(spec.x_values)
    for s_index, series in enumerate(spec.series):
        for x_index in range(x_count):
            drops = [r[s_index] for (xi, _), r in sorted(results.items()) if xi == x_index]
            feasible = [d for d in drops if d["feasible"]]
            if spec.x_name == "iteration":
                rows.extend(_trace_rows(series, feasible, len(drops)))
                continue
            row = dict(series=series.label, x=spec.x_values[x_index], trials=len(drops))
            row["feasible_trials"] = len(feasible)
            for key in CSV_COLUMNS[4:]:
                row[key] = _mean([d[key] for d in feasible])
            rows.append(row)
    return rows


def _trace_rows(series, feasible, trials):
    rows = []
    for iteration in range(ITERATIONS):
        values = [d["trace"][min(iteration, len(d["trace"]) - 1)] for d in feasible if d["trace"]]
        row = dict(series=series.label, x=iteration, trials=trials, feasible_trials=len(values))
        row.update({key: math.nan for key in CSV_COLUMNS[4:]})
        row["ee"] = _mean(values)
        rows.append(row)
    return rows


def _mean(values) -> float:
    return float(sum(values) / len(values)) if values else math.nan


def plot(spec: FigureSpec, rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from isac_gym.runs import atomic_write

    keys = (spec.y, *spec.extra_y)
    figure, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    for axis, key in zip(axes[0], keys, strict=True):
        for series in spec.series:
            mine = [r for r in rows if r["series"] == series.label]
            axis.plot(
                [r["x"] for r in mine], [r[key] for r in mine], marker="o", label=series.label
            )
        axis.set_xlabel(spec.x_name)
        axis.set_ylabel(key)
        if spec.x_name in ("omega", "P_max"):
            axis.set_xscale("log")
        axis.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.suptitle(f"mMIMO ISAC Fig. {spec.number}: {spec.title}")
    figure.tight_layout()
    atomic_write(path, lambda handle: figure.savefig(handle, format="png", dpi=110))
    plt.close(figure)


def _run_task(task: tuple) -> list[dict]:
    """``run_task(*task)`` for the worker pool (one argument per task)."""
    return run_task(*task)


def run_figure(
    number: int, trials: int, seed: int, pool, out: Path, small: bool, progress: bool = True,
    method: str = "fast",
):  # fmt: skip
    """Solve every (x, trial) task of one figure with ``pool`` (an open
    :class:`isac_gym.runs.JobPool`) and publish its CSV, PNG and JSON as one set."""
    from isac_gym.runs import atomic_write_text, format_csv, map_jobs, publish_set

    spec = FIGURES[number]
    x_count = 1 if spec.x_name == "iteration" or spec.sweep else len(spec.x_values)
    tasks = [(x_index, trial) for x_index in range(x_count) for trial in range(trials)]
    start = time.perf_counter()
    method = spec.method or method
    arguments = [(number, *task, seed, small, method) for task in tasks]
    title = f"mimo fig{number}" if progress else False
    values = map_jobs(_run_task, arguments, pool=pool, progress=title, unit="drop")
    if spec.sweep:  # one task per drop: spread its x values out
        results = {
            (x, t): per_x[x]
            for (_, t), per_x in zip(tasks, values, strict=True)
            for x in range(len(per_x))
        }
    else:
        results = dict(zip(tasks, values, strict=True))
    rows = aggregate(spec, results)
    settings = dict(
        command=shlex.join(sys.argv), figure=number, title=spec.title, seed=seed,
        trials=trials, jobs=pool.jobs, backend=pool.backend, small=small, method=method,
        x_name=spec.x_name, x_values=list(spec.x_values),
        series=[vars(s) for s in spec.series], wall_time_s=time.perf_counter() - start,
    )  # fmt: skip
    stem = f"mimo_fig{number}"
    with publish_set(out, stem) as staging:
        atomic_write_text(staging / f"{stem}.csv", format_csv(rows, CSV_COLUMNS))
        plot(spec, rows, staging / f"{stem}.png")
        atomic_write_text(staging / f"{stem}.json", json.dumps(settings, indent=2) + "\n")
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--figure", required=True, choices=[*map(str, FIGURES), "all"])
    parser.add_argument("--trials", type=positive_int, default=10, help="drops per x value")
    parser.add_argument("--jobs", type=positive_int, default=1, help="worker processes")
    parser.add_argument("--seed", type=int, default=0, help="base seed")
    parser.add_argument("--out", default="docs/results/mimo", help="output folder")
    parser.add_argument("--small", action="store_true", help="4x4 UPA, K=3, N=4 (smoke tests)")
    parser.add_argument(
        "--method", choices=("fast", "cvxpy"), default="fast",
        help="solve_mimo method (Fig. 3 always runs cvxpy: it plots Dinkelbach iterations)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    ray_backend.add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    from isac_gym.runs import JobPool, prepare_output, write_manifest

    ray_backend.check_arguments(args, parser)
    out = Path(args.out)
    prepare_output(out)
    numbers = list(FIGURES) if args.figure == "all" else [int(args.figure)]
    with JobPool(args.jobs, backend=args.backend, address=args.ray_address) as pool:
        for number in numbers:
            run_figure(
                number, args.trials, args.seed, pool, out, args.small,
                not args.no_progress, args.method,
            )  # fmt: skip
    write_manifest(out, shlex.join(sys.argv))
    return 0
