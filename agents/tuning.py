"""Tune the constants of the non-learned policies on validation seeds.

    python -m agents.tuning heuristic|lyapunov|lyapunov-budget|threshold-budget
        [--seeds 1000,1001,1002,1003 | --seeds 1000-1099]
        [--env-kwargs JSON] [--jobs J] [--out FILE.json]

A grid search: every grid point runs the same validation episodes (reset seeds
``--seeds``, disjoint from evaluate.py's test seeds ``0..E-1``, from train.py's
evaluation seeds ``seed + 10000`` and from the final training seed); the point with the
highest mean episode return wins (the return already charges drops and outages). The
search and its result are written as JSON; the chosen values are copied by hand into
``HEURISTIC_DEFAULTS`` / ``LYAPUNOV_DEFAULTS`` / ``LYAPUNOV_BUDGET_DEFAULTS`` /
``THRESHOLD_BUDGET_DEFAULTS`` in :mod:`agents.policies`, whose
docstrings record them and the whole search. ``GRIDS`` are the first passes; the
follow-up passes were run with ``--grid`` around the best point::

    python -m agents.tuning heuristic --jobs 2 --out runs/tuning/heuristic_v3.json
    python -m agents.tuning heuristic --jobs 2 --grid \
        '{"beta_low": [0.001, 0.003, 0.01], "beta_high": [0.1, 0.3], "load_exponent": [0, 1]}'
    python -m agents.tuning lyapunov --jobs 2 --out runs/tuning/lyapunov_v3.json
    python -m agents.tuning lyapunov --jobs 2 --grid \
        '{"theta": [0.7, 0.85], "V": [0.05, 0.1, 0.2], "gamma_z": [0, 0.2]}'
    python -m agents.tuning lyapunov --jobs 2 --grid \
        '{"theta": [0.85, 0.95], "V": [0.07, 0.1, 0.14], "gamma_z": [0]}'

The ``beta_budget`` policies (``nice -n 10``; each pass 1-3 minutes, 500-slot
episodes on validation seeds 1000-1003, the defaults' env otherwise)::

    python -m agents.tuning lyapunov-budget --grid \
        '{"theta": [0.85], "V": [0.1, 0.2, 0.4], "rho": [0.5, 1.0, 2.0]}' \
        --out docs/results/tuning/lyapunov-budget.json
    python -m agents.tuning lyapunov-budget --grid \
        '{"theta": [0.85, 0.95], "V": [0.4, 0.8], "rho": [2.0]}' \
        --out docs/results/tuning/lyapunov-budget_pass2.json
    python -m agents.tuning threshold-budget --grid \
        '{"threshold": [0.1, 0.3, 0.5], "low_budget": [0.25, 0.5, 1.0]}' \
        --out docs/results/tuning/threshold-budget.json
    python -m agents.tuning threshold-budget --grid \
        '{"threshold": [0.5, 0.7], "low_budget": [0.1, 0.25], "beta_high": [0.3, 1.0]}' \
        --out docs/results/tuning/threshold-budget_pass2.json

and the final choice among the best points on the 100 validation seeds 1000-1099 (about
1 minute a point on one core, the 100 episodes batched)::

    python -m agents.tuning threshold-budget --seeds 1000-1099 --grid \
        '{"threshold": [0.7, 0.9], "low_budget": [0.05, 0.1]}' \
        --out docs/results/tuning/threshold-budget_val100.json
    python -m agents.tuning threshold-budget --seeds 1000-1099 --grid \
        '{"threshold": [0.9], "low_budget": [0.15, 0.2]}' \
        --out docs/results/tuning/threshold-budget_val100_pass2.json
    python -m agents.tuning lyapunov-budget --seeds 1000-1099 --grid \
        '{"theta": [0.85, 0.95], "V": [0.4, 0.8], "rho": [2.0]}' \
        --out docs/results/tuning/lyapunov-budget_val100.json

Each pass of 6-12 points takes 1-2 minutes on 2 idle cores (four 500-slot episodes per
point, ``oracle="fast"``). A point's episodes run together in the native vector env
(:func:`agents.rollout.run_batch`, one batched oracle call per round; the same episodes
as one by one). The ``beta_budget`` policies run in that action mode (set by their
class); their searches are in ``docs/results/tuning/<policy>.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from isac_gym.cli import json_object, positive_int, run_main, seed_list

VALIDATION_SEEDS = (1000, 1001, 1002, 1003)
GRIDS: dict[str, dict[str, list]] = {
    "heuristic": {
        "beta_low": [0.01, 0.03, 0.1],
        "beta_high": [0.1, 0.2, 0.3, 1.0],
        "load_exponent": [1.0],
    },
    "lyapunov": {
        "theta": [0.3, 0.5, 0.7],
        "V": [0.2, 1.0, 3.0],
        "gamma_z": [0.2],
    },
    "lyapunov-budget": {"theta": [0.85], "V": [0.1, 0.2], "rho": [0.5, 1.0, 2.0]},
    "threshold-budget": {"threshold": [0.1, 0.3], "low_budget": [0.5, 1.0]},
}


def _policy(kind: str, env: Any, params: dict) -> Any:
    """The policy ``kind`` with the constants ``params`` (the rest at their defaults)."""
    from agents import policies

    classes = {
        "heuristic": (policies.HeuristicPolicy, policies.HeuristicParams),
        "lyapunov": (policies.LyapunovPolicy, policies.LyapunovParams),
        "lyapunov-budget": (policies.LyapunovBudgetPolicy, policies.LyapunovBudgetParams),
        "threshold-budget": (policies.ThresholdBudgetPolicy, policies.ThresholdBudgetParams),
    }
    policy_class, params_class = classes[kind]
    return policy_class(env, params_class(**params))


def _score(task: tuple) -> dict:
    kind, params, env_id, env_kwargs, seeds = task
    import gymnasium

    import isac_gym  # noqa: F401 - registers the environments
    from agents.evaluation import run_episode
    from agents.rollout import has_native_vector_env, run_batch

    env = gymnasium.make(env_id, **env_kwargs)
    mode = _policy(kind, env, params).action_mode
    if getattr(env.unwrapped.config, "action_mode", mode) != mode:
        env.close()
        env = gymnasium.make(env_id, **{**env_kwargs, "action_mode": mode})
    policy = _policy(kind, env, params)
    if has_native_vector_env(env):
        results = [
            result
            for result, _ in run_batch(env, policy, kind, list(seeds), list(range(len(seeds))))
        ]
    else:
        results = [run_episode(env, policy, seed)[0] for seed in seeds]
    returns, successes, tasks, outages, ue_slots = [], 0, 0, 0, 0
    for result in results:
        returns.append(result.episode_return)
        successes += result.successes
        tasks += result.tasks
        outages += result.outages
        ue_slots += result.ue_slots
    env.close()
    return {
        "params": params,
        "return_mean": float(np.mean(returns)),
        "returns": returns,
        "success_rate": successes / max(tasks, 1),
        "outage_rate": outages / max(ue_slots, 1),
    }


def tune(
    kind: str,
    *,
    grid: dict[str, list] | None = None,
    seeds: tuple[int, ...] = VALIDATION_SEEDS,
    env_id: str = "isac_gym/ISCC-v0",
    env_kwargs: dict | None = None,
    jobs: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Grid-search the constants of ``kind`` (a key of :data:`GRIDS`).

    Returns ``{"best": params, "search": [...], ...}``, the search sorted best first.
    """
    from isac_gym.runs import map_jobs

    if kind not in GRIDS:
        raise ValueError(f"kind must be one of {sorted(GRIDS)}, got {kind!r}")
    grid = grid or GRIDS[kind]
    env_kwargs = {"oracle": "fast", **(env_kwargs or {})}
    names = list(grid)
    tasks = [
        (kind, dict(zip(names, values, strict=True)), env_id, env_kwargs, tuple(seeds))
        for values in itertools.product(*(grid[n] for n in names))
    ]
    start = time.perf_counter()
    search = map_jobs(_score, tasks, jobs, progress=kind if progress else False, unit="point")
    search.sort(key=lambda entry: -entry["return_mean"])
    return {
        "kind": kind,
        "best": search[0]["params"],
        "env_id": env_id,
        "env_kwargs": env_kwargs,
        "seeds": list(seeds),
        "grid": grid,
        "wall_time_s": round(time.perf_counter() - start, 1),
        "search": search,
    }


def _point(entry: dict) -> str:
    return f"{entry['return_mean']:10.2f}  success {entry['success_rate']:.4f}  " + (
        f"outage {entry['outage_rate']:.4f}  {entry['params']}"
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m agents.tuning`` (one command-line style: :func:`isac_gym.cli.run_main`)."""
    parser = argparse.ArgumentParser(description="tune the constants of a non-learned policy")
    parser.add_argument("kind", choices=sorted(GRIDS))
    parser.add_argument("--seeds", type=seed_list, default=VALIDATION_SEEDS)
    parser.add_argument("--env", default="isac_gym/ISCC-v0")
    parser.add_argument("--env-kwargs", type=json_object, default=None)
    parser.add_argument("--jobs", type=positive_int, default=1)
    parser.add_argument(
        "--grid",
        type=json_object,
        default=None,
        help='JSON grid, e.g. \'{"theta": [0.5], "V": [3, 10], "gamma_z": [0]}\'',
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON file of the search")
    parser.set_defaults(run=run)
    return run_main(parser, argv)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Handler of ``python -m agents.tuning``: search, write the JSON, print the best."""
    from agents.training import check_env
    from isac_gym.runs import atomic_write_text, prepare_output

    if args.out is not None:
        prepare_output(args.out.parent)
    if args.env.startswith("isac_gym/"):
        import isac_gym  # noqa: F401 - registers the environments
    check_env(args.env, {"oracle": "fast", **(args.env_kwargs or {})})
    seeds = args.seeds
    report = tune(
        args.kind,
        grid=args.grid,
        seeds=seeds,
        env_id=args.env,
        env_kwargs=args.env_kwargs,
        jobs=args.jobs,
    )
    if args.out:
        atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    for entry in report["search"][:5]:
        print(_point(entry))
    print("best:", report["best"], f"({report['wall_time_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
