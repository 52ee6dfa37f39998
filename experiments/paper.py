"""Reproduce Figs. 2-9 of the ISCC paper (Dong et al., 2026, Section VI): ``evaluate.py paper``.

    python evaluate.py paper --figure N|all [--trials T] [--jobs J] [--seed S] [--out DIR]

Monte Carlo over ``T`` seeded drops per x-value; every scheme of the figure (proposed =
SCA-ADMM, FL, FO, HO, CTEM, OFDMA) solves the same drops. Each drop's randomness comes
from ``SeedSequence([seed, figure, x_index, trial])`` (see :mod:`.figures`), so results
are identical for every ``--jobs``. Writes, atomically (temporary file + ``os.replace``):

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
import tempfile
import time
from pathlib import Path
from typing import Any

from experiments.iscc_figures import FIGURES, SCHEME_METHODS, FigureSpec, run_drop
from isac_gym import ray_backend
from isac_gym.cli import non_negative_int, positive_int

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
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"argument --out: {str(args.out)!r} exists and is not a directory")
    ray_backend.check_arguments(args, parser)
    numbers = list(FIGURES) if args.figure == "all" else [int(args.figure)]
    args.out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    start = time.perf_counter()
    with _Executor(args.jobs, args.backend, args.ray_address) as executor:
        for number in numbers:
            spec = FIGURES[number]
            trials = args.trials or spec.default_trials
            written += run_figure(
                spec, trials, args.seed, executor, args.out, progress=not args.no_progress
            )
    total = time.perf_counter() - start
    print(f"Done in {total:.1f} s. Results:")
    for path in written:
        print(f"  {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m experiments.paper`` (same arguments as ``evaluate.py paper``)."""
    parser = argparse.ArgumentParser(description="Reproduce a figure of the ISCC paper")
    add_arguments(parser)
    args = parser.parse_args(argv)
    return int(args.run(args, parser) or 0)


# ----------------------------------------------------------------------------- sweep


def _limit_blas_threads():
    """One BLAS thread (64x64 matrices: multi-threading only slows down); no-op if absent."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scipy's usual installs
        return None
    return threadpool_limits(1)


class _Executor:
    """Runs drops in this process (jobs = 1), in a process pool (jobs > 1) or as Ray
    tasks (backend ``ray``, on the cluster at ``address``; ``jobs`` is not used)."""

    def __init__(self, jobs: int, backend: str = "local", address: str | None = None):
        self.jobs = jobs
        self.backend, self.address = backend, address
        self.pool = None
        self._limits = None

    def __enter__(self):
        if self.backend == "ray":
            ray_backend.init(self.address)  # start-up before the sweeps (and their timing)
        elif self.jobs > 1:
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(max_workers=self.jobs, initializer=_limit_blas_threads)
        else:
            self._limits = _limit_blas_threads()
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(wait=exc[0] is None, cancel_futures=True)
        if self._limits is not None:
            self._limits.unregister()
        return False

    def map(self, tasks: list[tuple], on_done):
        """``{task: run_drop(*task)}``; ``on_done()`` after each drop (progress bar)."""
        results = {}
        if self.backend == "ray":
            values = ray_backend.ray_map(_run_drop_task, tasks, self.address, on_done)
            return dict(zip(tasks, values, strict=True))
        if self.pool is None:
            for task in tasks:
                results[task] = run_drop(*task)
                on_done()
            return results
        from concurrent.futures import as_completed

        futures = {self.pool.submit(run_drop, *task): task for task in tasks}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                on_done()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return results


def _run_drop_task(task: tuple) -> dict:
    """``run_drop(*task)`` for :func:`ray_backend.ray_map` (one argument per task)."""
    return run_drop(*task)


def run_figure(
    spec: FigureSpec, trials: int, seed: int, executor: _Executor, out: Path, progress=True
) -> list[Path]:
    """Monte Carlo sweep of one figure; writes figN.csv, figN.png, figN.json; returns paths."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    tasks = [
        (spec.number, i, trial, seed) for i in range(len(spec.x_values)) for trial in range(trials)
    ]
    with tqdm(
        total=len(tasks), desc=f"Fig. {spec.number}", unit="drop", disable=not progress
    ) as bar:
        results = executor.map(tasks, lambda: bar.update(1))
    drops = [
        [results[(spec.number, i, t, seed)] for t in range(trials)]
        for i in range(len(spec.x_values))
    ]
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

    stem = out / f"fig{spec.number}"
    csv_path, png_path, json_path = (
        stem.with_suffix(".csv"),
        stem.with_suffix(".png"),
        stem.with_suffix(".json"),
    )
    _atomic_write_text(csv_path, format_csv(rows))
    from experiments.plotting import plot_figure

    plot_figure(spec, rows, trials, png_path)
    settings = _settings(spec, trials, seed, executor, wall, drops)
    settings["solver_errors"] = errors
    _atomic_write_text(json_path, json.dumps(settings, indent=2) + "\n")
    return [csv_path, png_path, json_path]


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


def _format_value(value: Any) -> str:
    """Deterministic text: 6 significant digits; NaN (undefined) -> empty; inf -> inf."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | bool):
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def format_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text of ``rows`` (columns in the order of the first row), ``\\n`` line ends."""
    columns = list(rows[0])
    lines = [",".join(columns)]
    lines += [",".join(_format_value(row.get(c, math.nan)) for c in columns) for row in rows]
    return "\n".join(lines) + "\n"


def _atomic_write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda handle: handle.write(text.encode()))


def _atomic_write(path: Path, write) -> None:
    """``write(binary_handle)`` into a temporary file next to ``path``, then os.replace."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _settings(spec, trials, seed, executor, wall, drops) -> dict[str, Any]:
    import dataclasses

    import numpy as np

    from isac_gym import __version__
    from isac_gym.iscc import ISCCConfig

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
        "jobs": executor.jobs,
        "backend": executor.backend,
        "rng": "drop (figure, x_index, trial): numpy SeedSequence([seed, figure, x_index, trial])",
        "x_name": spec.x_name,
        "x_label": spec.x_label,
        "x_values": list(spec.x_values),
        "schemes": {s: SCHEME_METHODS[s] for s in spec.schemes},
        "config": "ISCCConfig.paper(**overrides): Table I + the overrides below (SI units)",
        "config_fixed_overrides": _jsonable(spec.fixed),
        "config_overrides_per_x": [_jsonable(spec.overrides(x)) for x in spec.x_values],
        "table_i_defaults": _jsonable(table_i),
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


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


if __name__ == "__main__":
    sys.exit(main())
