"""Reproduce Figs. 2-9 of the ISCC paper (Dong et al., 2026, Section VI): ``evaluate.py paper``.

    python evaluate.py paper --figure N|all [--trials T] [--jobs J] [--seed S] [--out DIR]

Monte Carlo over ``T`` seeded drops per x-value; every scheme of the figure (proposed =
SCA-ADMM, FL, FO, HO, CTEM, OFDMA) solves the same drops. Each drop's randomness comes
from ``SeedSequence([seed, figure, x_index, trial])`` (see :mod:`.figures`), so results
are identical for every ``--jobs``. Publishes each figure's three files as one set
(:func:`isac_gym.runs.publish_set`: a killed run leaves the previous set, and the next
run cleans its temporaries):

* ``DIR/figN.csv``: one row per (scheme, x), columns :data:`CSV_COLUMNS` (+ per-figure
  columns: ``alpha_ue1..alpha_ueK`` for Fig. 8; ``sinr_loss_db, t_com_believed_ms`` for
  Fig. 9). Meanings are in :data:`COLUMN_DOC` and ``docs/reproduction.md``.
* ``DIR/figN.png``: ASR [%], average alpha and weighted energy cost (Figs. 2-7); the
  per-UE alpha (Fig. 8); sensing SINR loss, offloading latency and ASR (Fig. 9).
* ``DIR/figN.json``: command line, seed, trials, configuration overrides, wall time.

Importing this module is light (argparse only); numpy, the optimizers, tqdm and
matplotlib are imported when a figure runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments.iscc_figures import FIGURES, SCHEME_METHODS, FigureSpec, run_drop
from isac_gym import ray_backend
from isac_gym.cli import non_negative_int, positive_int

if TYPE_CHECKING:
    from isac_gym.runs import JobPool

#: Columns every figure's CSV starts with (the contract of ``docs/reproduction.md``).
CSV_COLUMNS = (
    "scheme",
    "x",
    "asr",
    "mean_alpha",
    "mean_cost",
    "trials",
    "feasible_trials",
    "mean_cost_all",
    "cost_vs_proposed",
    "mean_energy_ue",
    "mean_energy_ap",
    "mean_t_com_ms",
    "solver_errors",
)
COLUMN_DOC = {
    "scheme": "proposed (SCA-ADMM), fl, fo, ho, ctem, ofdma",
    "x": "the swept value in the unit of the x-axis (JSON: x_name)",
    "asr": "average success rate, eq. (58), in percent: UEs meeting every constraint",
    "mean_alpha": "offloading coefficient alpha_k averaged over all UEs of all drops",
    "mean_cost": (
        "weighted cost sum_k E_k^u + beta_k E_k^ap [J], eq. (17a) at the true beta, "
        "averaged over the feasible drops only (all K UEs feasible); empty if none"
    ),
    "trials": "number of drops (snapshots) at this x",
    "feasible_trials": "drops in which every UE of this scheme meets every constraint",
    "mean_cost_all": "weighted cost averaged over all drops, feasible or not [J]",
    "cost_vs_proposed": (
        "sum of this scheme's cost / sum of the proposed scheme's cost over the drops "
        "where both are feasible (paired); empty if there is no such drop"
    ),
    "mean_energy_ue": "sum_k E_k^u [J] (eq. 16), averaged over the feasible drops",
    "mean_energy_ap": "sum_k E_k^ap [J] (eq. 15, unweighted), averaged over the feasible drops",
    "mean_t_com_ms": "transmission latency alpha_k Q_k / R_k [ms], mean over all UEs and drops",
    "solver_errors": (
        "drops in which the solver raised (every UE counted infeasible; values of that "
        "drop left out of the means); the JSON lists them"
    ),
    "alpha_ueK": "Fig. 8: alpha of UE k averaged over all drops",
    "sinr_loss_db": (
        "Fig. 9: 10 log10(sensing SINR the optimiser expects on the estimate / true "
        "sensing SINR) [dB], mean over all UEs and drops"
    ),
    "t_com_believed_ms": "Fig. 9: transmission latency on the estimated channel [ms]",
}


# ----------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``paper`` sub-command's arguments; sets ``args.run``. Imports nothing."""
    defaults = ", ".join(f"Fig. {n}: {s.default_trials}" for n, s in FIGURES.items())
    parser.add_argument(
        "--figure",
        required=True,
        choices=[str(n) for n in FIGURES] + ["all"],
        help="figure of Section VI to reproduce (2-9), or all",
    )
    parser.add_argument(
        "--trials",
        type=positive_int,
        default=None,
        help=f"Monte Carlo drops per x-value (default per figure: {defaults})",
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=os.cpu_count() or 1,
        help="worker processes over drops (default: all cores); results do not depend on it",
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="base seed (default 0)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("results/paper"),
        help="output folder for figN.csv/png/json (default results/paper)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    ray_backend.add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the requested figure(s), write CSV/PNG/JSON, print the paths; exit code 0."""
    from isac_gym.runs import JobPool, prepare_output, write_manifest

    ray_backend.check_arguments(args, parser)
    prepare_output(args.out)
    numbers = list(FIGURES) if args.figure == "all" else [int(args.figure)]
    written: list[Path] = []
    start = time.perf_counter()
    with JobPool(args.jobs, backend=args.backend, address=args.ray_address) as pool:
        for number in numbers:
            spec = FIGURES[number]
            trials = args.trials or spec.default_trials
            written += run_figure(
                spec, trials, args.seed, pool, args.out, progress=not args.no_progress
            )
    total = time.perf_counter() - start
    write_manifest(args.out, shlex.join(sys.argv), wall_time_s=round(total, 1))
    print(f"Done in {total:.1f} s. Results:")
    for path in written:
        print(f"  {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m experiments.paper`` (same arguments as ``evaluate.py paper``)."""
    from isac_gym.cli import run_main

    parser = argparse.ArgumentParser(description="Reproduce a figure of the ISCC paper")
    add_arguments(parser)
    return run_main(parser, argv)


# ----------------------------------------------------------------------------- sweep


def _run_drop_task(task: tuple) -> dict:
    """``run_drop(*task)`` (a module-level function, so that workers can unpickle it)."""
    return run_drop(*task)


def run_figure(
    spec: FigureSpec, trials: int, seed: int, pool: JobPool, out: Path, progress=True
) -> list[Path]:
    """Monte Carlo sweep of one figure; publishes figN.csv, figN.png, figN.json as one
    set (:func:`isac_gym.runs.publish_set`); returns their paths."""
    from isac_gym.runs import map_jobs

    start = time.perf_counter()
    tasks = [
        (spec.number, i, trial, seed) for i in range(len(spec.x_values)) for trial in range(trials)
    ]
    title = f"Fig. {spec.number}" if progress else False
    results = map_jobs(_run_drop_task, tasks, pool=pool, progress=title, unit="drop")
    drops = [results[i * trials : (i + 1) * trials] for i in range(len(spec.x_values))]
    rows = aggregate(spec, drops)
    wall = time.perf_counter() - start
    errors = [
        {"x_index": i, "trial": t, "scheme": scheme, "error": record["error"]}
        for i, at_x in enumerate(drops)
        for t, drop in enumerate(at_x)
        for scheme, record in drop.items()
        if "error" in record
    ]
    if errors:
        print(
            f"warning: Fig. {spec.number}: {len(errors)} solver call(s) raised; counted as "
            f"failed drops (CSV column solver_errors, JSON solver_errors). First: {errors[0]}",
            file=sys.stderr,
        )

    from experiments.plotting import plot_figure
    from isac_gym.runs import publish_set

    stem = f"fig{spec.number}"
    settings = _settings(spec, trials, seed, pool, wall, drops)
    settings["solver_errors"] = errors
    with publish_set(out, stem) as staging:
        (staging / f"{stem}.csv").write_text(format_csv(rows))
        plot_figure(spec, rows, trials, staging / f"{stem}.png")
        (staging / f"{stem}.json").write_text(json.dumps(settings, indent=2) + "\n")
    return [out / f"{stem}.{suffix}" for suffix in ("csv", "png", "json")]


def aggregate(spec: FigureSpec, drops: list[list[dict]]) -> list[dict[str, Any]]:
    """Rows (scheme-major, then x) from ``drops[x_index][trial][scheme]`` records."""
    import numpy as np

    rows = []
    for scheme in spec.schemes:
        for x, at_x in zip(spec.x_values, drops, strict=True):
            recs = [drop[scheme] for drop in at_x]
            prop = [drop["proposed"] for drop in at_x] if "proposed" in spec.schemes else recs
            feasible = np.array([r["feasible"] for r in recs])  # (T, K)
            ok = feasible.all(axis=1)
            both = ok & np.array([p["feasible"].all() for p in prop])
            cost = np.array([r["cost"] for r in recs])
            cost_p = np.array([p["cost"] for p in prop])
            row = {
                "scheme": scheme,
                "x": x,
                "asr": 100.0 * float(feasible.mean()),
                "mean_alpha": _nanmean([r["alpha"] for r in recs]),
                "mean_cost": _mean(cost[ok]),
                "trials": len(recs),
                "feasible_trials": int(ok.sum()),
                "mean_cost_all": _nanmean(cost),
                "cost_vs_proposed": (
                    float(cost[both].sum() / cost_p[both].sum()) if both.any() else math.nan
                ),
                "mean_energy_ue": _mean(np.array([r["energy_ue"] for r in recs])[ok]),
                "mean_energy_ap": _mean(np.array([r["energy_ap"] for r in recs])[ok]),
                "mean_t_com_ms": 1e3 * _nanmean([r["t_com"] for r in recs]),
                "solver_errors": sum("error" in r for r in recs),
            }
            if spec.kind == "per_ue":
                per_ue = np.nanmean([r["alpha"] for r in recs], axis=0)
                row.update({f"alpha_ue{k + 1}": float(a) for k, a in enumerate(per_ue)})
            if spec.kind == "csi":
                row["sinr_loss_db"] = _nanmean([r["sinr_loss_db"] for r in recs])
                row["t_com_believed_ms"] = 1e3 * _nanmean([r["t_com_believed"] for r in recs])
            rows.append(row)
    return rows


def _mean(values) -> float:
    return float(sum(values) / len(values)) if len(values) else math.nan


def _nanmean(values) -> float:
    """Mean of the non-NaN entries (NaN where there is none); inf stays inf."""
    import numpy as np

    array = np.asarray(values, dtype=float).ravel()
    array = array[~np.isnan(array)]
    return float(np.mean(array)) if array.size else math.nan


# ----------------------------------------------------------------------------- output


def format_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text of ``rows`` (columns in the order of the first row), ``\\n`` line ends;
    numbers by :func:`isac_gym.runs.format_value` (NaN, undefined, is empty)."""
    from isac_gym.runs import format_csv as runs_format_csv

    return runs_format_csv(rows)


def _settings(spec, trials, seed, pool, wall, drops) -> dict[str, Any]:
    import dataclasses

    import numpy as np

    from isac_gym import __version__
    from isac_gym.iscc import ISCCConfig
    from isac_gym.runs import to_jsonable

    solve_ms = {
        scheme: 1e3 * _nanmean([d[scheme]["solve_s"] for at_x in drops for d in at_x])
        for scheme in spec.schemes
    }
    table_i = dataclasses.asdict(ISCCConfig.paper())
    return {
        "figure": spec.number,
        "title": spec.title,
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "seed": seed,
        "trials": trials,
        "jobs": pool.jobs,
        "backend": pool.backend,
        "rng": "drop (figure, x_index, trial): numpy SeedSequence([seed, figure, x_index, trial])",
        "x_name": spec.x_name,
        "x_label": spec.x_label,
        "x_values": list(spec.x_values),
        "schemes": {s: SCHEME_METHODS[s] for s in spec.schemes},
        "config": "ISCCConfig.paper(**overrides): Table I + the overrides below (SI units)",
        "config_fixed_overrides": to_jsonable(spec.fixed),
        "config_overrides_per_x": [to_jsonable(spec.overrides(x)) for x in spec.x_values],
        "table_i_defaults": to_jsonable(table_i),
        "notes": list(spec.notes),
        "columns": COLUMN_DOC,
        "wall_time_s": round(wall, 3),
        "mean_solve_ms": {k: round(v, 3) for k, v in solve_ms.items()},
        "versions": {
            "isac_gym": __version__,
            "python": sys.version.split()[0],
            "numpy": np.__version__,
        },
        "cpu_count": os.cpu_count(),
    }


if __name__ == "__main__":
    sys.exit(main())
