"""The installed command lines (``[project.scripts]`` in pyproject.toml), one style:
argparse, ``main(argv=None) -> int``, user errors as one line with exit code 2
(:func:`isac_gym.cli.run_main`).

* ``isac-train`` -- :func:`agents.training.main` (also ``python train.py``).
* ``isac-evaluate`` -- :func:`evaluate_main`: ``paper`` (the ISCC paper's figures,
  :mod:`experiments.paper`), ``paper-mimo`` (the mMIMO paper's figures,
  :mod:`experiments.mimo_figures`) and ``policies`` (:mod:`agents.evaluation`); also
  ``python evaluate.py``.
* ``isac-bench`` -- :func:`bench_main`: ``solver`` (:mod:`experiments.solver_bench`),
  ``env`` (:mod:`experiments.env_bench`), ``mimo`` (:mod:`experiments.mimo_bench`);
  everything after the benchmark's name goes to that benchmark's own ``main``.

Importing this module is light (argparse only).
"""

from __future__ import annotations

import argparse
import importlib
import sys

BENCHES = {
    "solver": ("experiments.solver_bench", "per-slot solver speed and quality vs CVXPY"),
    "env": ("experiments.env_bench", "environment steps per second and the oracle's share"),
    "mimo": ("experiments.mimo_bench", "the mMIMO-OFDM ISAC schemes over seeded drops"),
}


def evaluate_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """``isac-evaluate`` / ``evaluate.py``: the ``paper``, ``paper-mimo`` and ``policies``
    commands."""
    from agents import evaluation
    from experiments import mimo_figures, paper

    parser = argparse.ArgumentParser(
        prog=prog,
        description="Evaluate isac-gym: reproduce the papers' figures, or compare policies.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    paper.add_arguments(
        commands.add_parser("paper", help="reproduce a figure of the ISCC paper (Sec. VI)")
    )
    mimo_figures.add_arguments(
        commands.add_parser("paper-mimo", help="reproduce a figure of the mMIMO ISAC paper")
    )
    evaluation.add_arguments(
        commands.add_parser("policies", help="compare policies on the same seeded episodes")
    )
    return parser


def evaluate_main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """``isac-evaluate paper|paper-mimo|policies ...``; the exit code."""
    from isac_gym.cli import run_main

    return run_main(evaluate_parser(prog), argv)


def bench_parser() -> argparse.ArgumentParser:
    """``isac-bench BENCH [arguments of BENCH]``."""
    parser = argparse.ArgumentParser(
        prog="isac-bench",
        description="Run a benchmark; `isac-bench BENCH --help` lists its arguments.",
    )
    parser.add_argument(
        "bench",
        choices=list(BENCHES),
        help="; ".join(f"{name}: {text}" for name, (_, text) in BENCHES.items()),
    )
    return parser


def bench_main(argv: list[str] | None = None) -> int:
    """Dispatch to the benchmark's ``main(argv)``; its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = bench_parser()
    if not argv or argv[0].startswith("-"):
        parser.parse_args(argv[:1])  # prints help (-h) or the usage error (exit 2)
    name = parser.parse_args(argv[:1]).bench
    error = _check_csv_path(argv[1:])
    if error:
        print(f"isac-bench {name}: error: {error}", file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHES[name][0])
    return int(module.main(argv[1:]) or 0)


def _check_csv_path(argv: list[str]) -> str | None:
    """The benchmarks write ``--csv FILE``: check its folder before any work."""
    from pathlib import Path

    from isac_gym.runs import OutputError, prepare_output

    paths = [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "--csv"]
    paths += [word.split("=", 1)[1] for word in argv if word.startswith("--csv=")]
    for path in paths:
        try:
            if Path(path).is_dir():
                raise OutputError(f"--csv {path}: is a folder, give a file name")
            prepare_output(Path(path).parent, option="--csv")
        except OutputError as error:
            return str(error)
    return None


if __name__ == "__main__":  # python -m experiments.cli BENCH ... (isac-bench)
    sys.exit(bench_main())
