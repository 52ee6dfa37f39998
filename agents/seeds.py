"""Train one configuration over several seeds, or sweep hyperparameters with Ray Tune.

    python train.py --env ID --algo ppo --timesteps T --out DIR --seeds N \
        [--backend local|ray] [--ray-address ADDR] [--tune SWEEP.yml]

Seeds ``S, S+1, ..., S+N-1`` (``S = --seed``) are ordinary :func:`agents.training.train`
runs in ``DIR/seed_<s>/``, trained at the same time: in worker processes on this
machine (``local``, one per core) or as Ray tasks (``ray``). Each run's seeding depends
only on its seed, so a seed's run is the same on either backend. Outputs under ``DIR``:

* ``curves.csv`` -- the learning curves over seeds: one row per ``(curve, timesteps)``,
  ``curve`` = ``eval`` (mean deterministic evaluation return at each evaluation) or
  ``train`` (mean return of the training episodes that ended since the previous grid
  point), with ``seeds`` (how many have a value), ``mean``, ``std`` and the 95%
  confidence band ``ci95_low``/``ci95_high`` (Student t over seeds), then one column
  ``seed_<s>`` per seed.
* ``curves.png`` -- both curves, mean and 95% band.
* ``seeds.json`` -- the command, the settings and each seed's timesteps and wall time.

On a cluster each seed's run folder is written on the node that trained it (a shared
file system keeps the models together); the curves come back with the results.

``--tune SWEEP.yml`` (needs ``--backend ray``) samples hyperparameters with Ray Tune and
trains ``--seeds`` seeds for each sample in ``DIR/trials/<trial>/seed_<s>/`` (Tune's own
records in ``DIR/tune/``); a sample scores the mean over its seeds of the last
evaluation return. ``DIR/trials.csv`` lists the samples best first (``trial``,
``eval_return``, the sampled values), and ``curves.csv``/``curves.png`` show the best
one. The file::

    space:                 # sampled over the algorithm's YAML entry
      learning_rate: {loguniform: [1.0e-4, 1.0e-3]}
      n_steps: {choice: [64, 128]}
      gamma: {uniform: [0.95, 0.999]}
      batch_size: 64       # a plain value is fixed
    samples: 8             # configurations tried (default 4)
    searcher: random       # or optuna (Optuna's TPE under Tune; pip install optuna)
    seed: 0                # seed of the searcher (default 0)
    validation_seeds: 1000-1009  # score on these episodes instead (one range; see below)

With ``validation_seeds`` a sample scores the mean return of its final models on those
episodes (each seed's model, the policy spec ``ALGO:model.zip`` of ``evaluate.py``,
with the run's env settings): the validation seeds of ``evaluate.py`` rather than the
two evaluation episodes of training.

Random search with a seed draws the same samples every time; Optuna's suggestions also
depend on the order in which trials finish.
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
from typing import Any

import numpy as np

from isac_gym import ray_backend
from isac_gym.cli import seed_list

CURVE_COLUMNS = ("curve", "timesteps", "seeds", "mean", "std", "ci95_low", "ci95_high")
SEARCHERS = ("random", "optuna")
_SAMPLERS = ("uniform", "loguniform", "choice", "randint", "lograndint")
_TRAIN_KEYS = (
    "n_envs",
    "n_procs",
    "env_kwargs",
    "eval_freq",
    "eval_episodes",
    "checkpoint_freq",
    "vec_env",
    "max_minutes",
)


# ----------------------------------------------------------------------------- one seed


def train_seed(task: tuple[dict, int, str]) -> dict:
    """Train one seed (``(settings, seed, out)``) and return its curves and counters.

    ``settings`` holds ``env_id, algo, timesteps, hyperparams`` and :data:`_TRAIN_KEYS`.
    Module-level so that worker processes and Ray tasks import it by name.
    """
    from agents.training import train

    settings, seed, out = task
    extra = {key: settings[key] for key in _TRAIN_KEYS if settings.get(key) is not None}
    result = train(
        settings["env_id"],
        settings["algo"],
        settings["timesteps"],
        out,
        seed=seed,
        hyperparams=settings.get("hyperparams"),
        progress=False,
        threads=1,
        command=settings.get("command"),
        **extra,
    )
    return run_summary(out, seed, result.num_timesteps, result.wall_time_s)


def run_summary(out: str | Path, seed: int, num_timesteps: int, wall_time_s: float) -> dict:
    """A run folder's learning curves and counters (the result of :func:`train_seed`)."""
    from agents.training import read_monitor

    steps, returns = read_monitor(out)
    eval_steps, eval_returns = np.zeros(0, int), np.zeros(0)
    eval_file = Path(out) / "eval" / "evaluations.npz"
    if eval_file.is_file():
        with np.load(eval_file) as data:
            eval_steps, eval_returns = data["timesteps"], data["results"].mean(axis=1)
    return {
        "seed": seed,
        "out": str(out),
        "num_timesteps": int(num_timesteps),
        "wall_time_s": round(float(wall_time_s), 2),
        "eval_timesteps": [int(s) for s in eval_steps],
        "eval_returns": [float(r) for r in eval_returns],
        "train_timesteps": [int(s) for s in steps],
        "train_returns": [float(r) for r in returns],
    }


def train_seeds(
    settings: dict,
    seeds: list[int],
    out: Path,
    *,
    backend: str = "local",
    ray_address: str | None = None,
) -> list[dict]:
    """:func:`train_seed` for every seed into ``out/seed_<s>``; results in seed order."""
    from isac_gym.runs import map_jobs

    tasks = [(settings, seed, str(Path(out).resolve() / f"seed_{seed}")) for seed in seeds]
    if backend == "ray":  # one Ray task per seed (a training is long)
        return ray_backend.ray_map(train_seed, tasks, ray_address, chunksize=1)
    workers = min(len(tasks), os.cpu_count() or 1)
    return map_jobs(train_seed, tasks, workers, torch=True)


def gather(out: str | Path) -> list[dict]:
    """:func:`run_summary` of every finished run ``out/seed_<s>/`` (its ``config.json``
    says the seed and steps): runs trained apart, resumed or longer, as one set."""
    results = []
    for folder in sorted(Path(out).glob("seed_*"), key=lambda p: p.name):
        config_path = folder / "config.json"
        if not config_path.is_file():
            continue
        config = json.loads(config_path.read_text())
        results.append(
            run_summary(folder, config["seed"], config["num_timesteps"], config["wall_time_s"])
        )
    if not results:
        raise ValueError(f"no finished run (seed_<s>/config.json) under {out}")
    return sorted(results, key=lambda r: r["seed"])


# ----------------------------------------------------------------------------- curves


def band(values: np.ndarray) -> dict[str, np.ndarray]:
    """Mean, std and 95% Student-t band over axis 0 (seeds), ignoring NaN entries.

    ``values``: (seeds, points). With fewer than two finite values at a point the std
    and the band are NaN (no interval from one sample).
    """
    from agents.evaluation import ci95

    columns = [column[np.isfinite(column)] for column in np.asarray(values, float).T]
    count = np.array([column.size for column in columns], int)
    mean = np.array([column.mean() if column.size else np.nan for column in columns])
    std = np.array([column.std(ddof=1) if column.size > 1 else np.nan for column in columns])
    half = np.array([ci95(column) for column in columns])
    return {"seeds": count, "mean": mean, "std": std, "low": mean - half, "high": mean + half}


def curves(results: list[dict]) -> list[dict[str, Any]]:
    """Rows of ``curves.csv`` from :func:`train_seed` results (see the module doc)."""
    grid = sorted({s for r in results for s in r["eval_timesteps"]})
    eval_values = np.full((len(results), len(grid)), np.nan)
    for row, result in zip(eval_values, results, strict=True):
        index = {step: i for i, step in enumerate(grid)}
        for step, value in zip(result["eval_timesteps"], result["eval_returns"], strict=True):
            row[index[step]] = value
    if not grid:  # no evaluation: ten even steps up to the longest run
        last = max([r["num_timesteps"] for r in results] + [1])
        grid = [math.ceil(last * (i + 1) / 10) for i in range(10)]
    train_values = np.array([_binned(r, grid) for r in results])
    rows = []
    for name, values in (("eval", eval_values), ("train", train_values)):
        if values.shape[1] != len(grid):
            continue
        stats = band(values)
        for i, step in enumerate(grid):
            rows.append(
                {
                    "curve": name,
                    "timesteps": step,
                    "seeds": int(stats["seeds"][i]),
                    "mean": stats["mean"][i],
                    "std": stats["std"][i],
                    "ci95_low": stats["low"][i],
                    "ci95_high": stats["high"][i],
                    **{f"seed_{r['seed']}": values[k, i] for k, r in enumerate(results)},
                }
            )
    return rows


def _binned(result: dict, grid: list[int]) -> list[float]:
    """Mean training return of the episodes ending in (grid[i-1], grid[i]] (NaN if none)."""
    steps = np.asarray(result["train_timesteps"], float)
    returns = np.asarray(result["train_returns"], float)
    edges = [0, *grid]
    means = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (steps > low) & (steps <= high)
        means.append(float(returns[inside].mean()) if inside.any() else math.nan)
    return means


def write_curves(out: Path, rows: list[dict], title: str) -> list[Path]:
    """Write ``curves.csv`` and ``curves.png`` (mean and 95% band of both curves)."""
    from isac_gym.runs import atomic_write_text, format_csv

    csv_path, png_path = out / "curves.csv", out / "curves.png"
    atomic_write_text(csv_path, format_csv(rows))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, color, label in (
        ("train", "tab:blue", "training episodes"),
        ("eval", "tab:red", "evaluation (deterministic)"),
    ):
        part = [row for row in rows if row["curve"] == name]
        if not part:
            continue
        steps = [row["timesteps"] for row in part]
        ax.plot(steps, [row["mean"] for row in part], color=color, marker=".", label=label)
        low = [row["ci95_low"] for row in part]
        high = [row["ci95_high"] for row in part]
        ax.fill_between(steps, low, high, color=color, alpha=0.2, lw=0)
    ax.set(xlabel="timesteps", ylabel="episode return", title=title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return [csv_path, png_path]


# ----------------------------------------------------------------------------- Ray Tune


def load_sweep(path: str | Path) -> dict[str, Any]:
    """Read and check a ``--tune`` file (format in the module doc); ValueError if bad."""
    from agents.training import load_yaml

    sweep = load_yaml(path)
    if not isinstance(sweep, dict) or not isinstance(sweep.get("space"), dict):
        raise ValueError(f"{path}: needs a mapping 'space' of hyperparameters to sample")
    allowed = ("space", "samples", "searcher", "seed", "validation_seeds")
    unknown = set(sweep) - set(allowed)
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}; allowed: {', '.join(allowed)}")
    validation = sweep.get("validation_seeds")
    if validation is not None:
        try:
            validation = list(seed_list(str(validation)))
        except argparse.ArgumentTypeError as error:
            raise ValueError(f"{path}: validation_seeds {error}") from None
        if validation != list(range(validation[0], validation[0] + len(validation))):
            raise ValueError(f"{path}: validation_seeds must be one range A-B, got {validation}")
    samples, seed = sweep.get("samples", 4), sweep.get("seed", 0)
    for name, value in (("samples", samples), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (name == "samples"):
            raise ValueError(
                f"{path}: {name} must be an integer >= {int(name == 'samples')}, got {value!r}"
            )
    searcher = sweep.get("searcher", "random")
    if searcher not in SEARCHERS:
        raise ValueError(f"{path}: searcher must be one of {SEARCHERS}, got {searcher!r}")
    for name, spec in sweep["space"].items():
        if isinstance(spec, dict) and (len(spec) != 1 or next(iter(spec)) not in _SAMPLERS):
            raise ValueError(
                f"{path}: space.{name} must be a value or one of "
                f"{{{', '.join(_SAMPLERS)}: [...]}}, got {spec!r}"
            )
    return {
        "space": sweep["space"],
        "samples": samples,
        "searcher": searcher,
        "seed": seed,
        "validation_seeds": validation,
    }


def _param_space(space: dict) -> dict:
    """Tune's search space from the ``space`` mapping (plain values stay fixed)."""
    from ray import tune

    params = {}
    for name, spec in space.items():
        if isinstance(spec, dict):
            kind, arguments = next(iter(spec.items()))
            params[name] = (
                tune.choice(arguments) if kind == "choice" else getattr(tune, kind)(*arguments)
            )
        else:
            params[name] = spec
    return params


def _tune_trial(config: dict) -> None:
    """One Tune trial: train every seed with ``config`` over the base hyperparameters."""
    from ray import tune

    settings = dict(config["settings"])
    settings["hyperparams"] = {**settings["hyperparams"], **config["sampled"]}
    folder = Path(config["out"]) / tune.get_context().get_trial_id()
    results = [
        train_seed((settings, seed, str(folder / f"seed_{seed}"))) for seed in config["seeds"]
    ]
    if config.get("validation_seeds"):
        finals = [
            validation_return(r["out"], settings, config["validation_seeds"]) for r in results
        ]
    else:
        finals = [r["eval_returns"][-1] if r["eval_returns"] else math.nan for r in results]
    tune.report({"eval_return": float(np.mean(finals)), "seeds": json.dumps(results)})


def validation_return(out: str | Path, settings: dict, seeds: list[int]) -> float:
    """Mean return of the run ``out``'s final model over the consecutive episode
    ``seeds``, as ``evaluate.py policies --policies ALGO:OUT/model.zip`` plays them."""
    from agents.evaluation import evaluate_policies

    spec = f"{settings['algo']}:{Path(out) / 'model.zip'}"
    results, _ = evaluate_policies(
        settings["env_id"], [spec], len(seeds), seed=seeds[0], trace_episode=None,
        progress=False,
    )  # fmt: skip
    return float(np.mean([result.episode_return for result in results]))


def tune_sweep(settings: dict, seeds: list[int], sweep: dict, out: Path, address=None):
    """Run the sweep; returns ``(trial rows best first, best trial's seed results)``."""
    ray_backend.init(address)
    from ray import tune

    out = Path(out).resolve()
    tuner = tune.Tuner(
        tune.with_resources(_tune_trial, {"cpu": 1}),
        param_space={
            "sampled": _param_space(sweep["space"]),
            "settings": settings,
            "seeds": seeds,
            "out": str(out / "trials"),
            "validation_seeds": sweep.get("validation_seeds"),
        },
        tune_config=tune.TuneConfig(
            metric="eval_return",
            mode="max",
            num_samples=sweep["samples"],
            search_alg=_searcher(sweep["searcher"], sweep["seed"]),
        ),
        run_config=tune.RunConfig(name="sweep", storage_path=str(out / "tune"), verbose=0),
    )
    rows = [_trial_row(result) for result in tuner.fit()]
    rows.sort(key=lambda row: (not math.isfinite(row["eval_return"]), -row["eval_return"]))
    best = rows[0].pop("_seeds", None) if rows else None
    if best is None:
        raise RuntimeError(f"every Tune trial failed; first error: {rows[0].get('error')}")
    for row in rows:
        row.pop("_seeds", None)
    return rows, best


def _searcher(name: str, seed: int):
    """Tune's seeded random search, or Optuna's TPE under Tune."""
    if name == "optuna":
        try:
            from ray.tune.search.optuna import OptunaSearch

            return OptunaSearch(seed=seed)
        except (ImportError, AssertionError):  # Tune asserts that optuna is importable
            raise ValueError("searcher: optuna needs Optuna: pip install optuna") from None
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return BasicVariantGenerator(random_state=seed)


def _trial_row(result) -> dict:
    """One row of ``trials.csv`` (and, under ``_seeds``, the trial's seed results)."""
    if result.error is not None or "eval_return" not in (result.metrics or {}):
        return {
            "trial": Path(result.path).name,
            "eval_return": math.nan,
            "error": str(result.error),
        }
    sampled = result.config["sampled"]
    return {
        "trial": result.metrics["trial_id"],
        "eval_return": result.metrics["eval_return"],
        **{name: sampled[name] for name in sorted(sampled)},
        "_seeds": json.loads(result.metrics["seeds"]),
    }


# ----------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--seeds``, ``--tune``, ``--backend`` and ``--ray-address`` for train.py."""
    from isac_gym.cli import positive_int

    parser.add_argument(
        "--seeds",
        type=positive_int,
        default=None,
        help="train N seeds (--seed, --seed+1, ...) into OUT/seed_<s>/ and write the learning "
        "curves over seeds with 95%% bands to OUT/curves.csv and curves.png",
    )
    parser.add_argument(
        "--tune",
        type=Path,
        default=None,
        metavar="SWEEP.yml",
        help="hyperparameter sweep with Ray Tune (needs --backend ray); see agents/seeds.py",
    )
    ray_backend.add_arguments(parser)


def wanted(args: argparse.Namespace) -> bool:
    """Whether train.py should run this module (``--seeds``, ``--tune`` or a Ray option)."""
    options = (args.seeds, args.tune, args.ray_address)
    return any(option is not None for option in options) or args.backend != "local"


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Handler of ``train.py --seeds N`` (and ``--tune``)."""
    ray_backend.check_arguments(args, parser)
    if args.resume:
        parser.error("--resume: resume the seeds one at a time (train.py --out OUT/seed_<s>)")
    if args.tune is not None and args.backend != "ray":
        parser.error("--tune: runs on Ray Tune, add --backend ray")
    try:
        sweep = load_sweep(args.tune) if args.tune is not None else None
        settings = _settings(args)
    except (ValueError, OSError) as error:
        parser.error(str(error))
    seeds = [args.seed + i for i in range(args.seeds or 1)]
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    trials = None
    if sweep is None:
        results = train_seeds(
            settings, seeds, args.out, backend=args.backend, ray_address=args.ray_address
        )
    else:
        trials, results = tune_sweep(settings, seeds, sweep, args.out, args.ray_address)
    wall = time.perf_counter() - start
    written = _write_outputs(args, settings, results, trials, wall)
    print(f"Done in {wall:.1f} s ({len(seeds)} seed(s), backend {args.backend}). Results:")
    for path in written:
        print(f"  {path}")
    return 0


def _settings(args: argparse.Namespace) -> dict:
    """What every seed's :func:`train_seed` needs (hyperparameters resolved here)."""
    from agents.training import load_hyperparams

    hyperparams = load_hyperparams(args.algo, args.env, args.hyperparams)
    return {
        "env_id": args.env,
        "algo": args.algo,
        "timesteps": args.timesteps,
        "hyperparams": hyperparams,
        "command": shlex.join([sys.executable, *sys.argv]),
        **{key: getattr(args, key) for key in _TRAIN_KEYS},
    }


def _write_outputs(args, settings, results, trials, wall) -> list[Path]:
    from isac_gym.runs import atomic_write_text, format_csv

    count = len(results)
    title = f"{args.algo.upper()} on {args.env}: {count} seed(s), mean and 95% band"
    written = write_curves(args.out, curves(results), title)
    if trials is not None:
        written.append(args.out / "trials.csv")
        atomic_write_text(written[-1], format_csv(trials))
    summary = {
        "command": settings["command"],
        "backend": args.backend,
        "ray_address": args.ray_address,
        "settings": settings,
        "tune": str(args.tune) if args.tune else None,
        "wall_time_s": round(wall, 2),
        "seeds": [
            {k: r[k] for k in ("seed", "out", "num_timesteps", "wall_time_s")} for r in results
        ],
    }
    written.append(args.out / "seeds.json")
    atomic_write_text(written[-1], json.dumps(summary, indent=2, default=str) + "\n")
    return written


def gather_and_plot(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Handler of ``python -m agents.seeds DIR``."""
    from isac_gym.cli import UsageError

    try:
        results = gather(args.out)
    except ValueError as error:
        raise UsageError(str(error)) from None
    title = args.title or f"{len(results)} seed(s), mean and 95% band"
    for path in write_curves(args.out, curves(results), title):
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m agents.seeds DIR``: the curves over the runs ``DIR/seed_<s>/``."""
    from isac_gym.cli import run_main

    parser = argparse.ArgumentParser(
        prog="python -m agents.seeds",
        description="Learning curves (mean, 95%% band) over the finished runs DIR/seed_<s>/ "
        "into DIR/curves.csv and DIR/curves.png",
    )
    parser.add_argument("out", type=Path, help="folder holding seed_<s>/ run folders")
    parser.add_argument("--title", default=None, help="plot title")
    parser.set_defaults(run=gather_and_plot)
    return run_main(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
