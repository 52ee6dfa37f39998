"""Mutation testing of the critical-path modules with mutmut (``make mutate``).

Each module is mutated against only the test folders that are meant to guard it, so a
mutant runs a few seconds of tests, not the suite. Every group runs in its own copy of
the repository under ``build/mutate/<group>`` (mutmut writes its ``mutants/`` there),
with the ``[tool.mutmut]`` options of ``pyproject.toml`` plus the group's module and
tests. Usage::

    python scripts/mutate.py [GROUP ...] [--max-children N] [--time-limit S]
    python scripts/mutate.py dinkelbach --functions "*_phase1__mutmut_*"  # a subset

Prints, per group, the counts and the surviving mutants (``mutmut show NAME`` in the
group's directory prints a diff) and writes ``build/mutate/<group>.json``. Not run in
CI: the full set takes hours on two cores (docs/testing.md).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutate"
COPY = ("isac_gym", "optimizers", "agents", "experiments", "tests", "evaluate.py", "train.py")

#: pytest options of every mutant run (mutmut adds -x)
PYTEST_ARGS = ["-q", "-p", "no:cacheprovider", "-m", "not slow"]
#: two env tests that take 20 s and guard the oracle and the vector env, not step's maths
SLOW_ENV_TESTS = [
    "--deselect=tests/envs/test_env.py::test_sca_admm_is_never_worse_than_fast_on_the_env_oracle_problems",
    "--deselect=tests/envs/test_env.py::test_async_vector_env_in_spawned_processes_matches_sync",
]


@dataclass(frozen=True)
class Group:
    module: str  #: the file to mutate
    tests: list[str]  #: the test files or folders that guard it
    functions: list[str] = field(default_factory=lambda: ["*"])  #: mutant name globs
    pytest_args: list[str] = field(default_factory=list)


GROUPS: dict[str, Group] = {
    "iscc_model": Group(
        "isac_gym/iscc/model.py",
        [
            "tests/physics/test_model.py",
            "tests/physics/test_model_contracts.py",
            "tests/physics/test_constraint_boundaries.py",
        ],
    ),
    "dynamics": Group(
        "isac_gym/iscc/dynamics.py",
        ["tests/physics/test_dynamics.py", "tests/envs/test_dynamics_and_reward.py"],
    ),
    "compute": Group(
        "optimizers/iscc/compute.py",
        ["tests/solvers/test_compute.py", "tests/solvers/test_compute_mutants.py"],
    ),
    "env_step": Group(  # the step, its reward and the observation map
        "isac_gym/envs/iscc.py",
        ["tests/envs/test_dynamics_and_reward.py", "tests/envs/test_env.py"],
        [
            "*ISCCEnv*step__mutmut_*",
            "*ISCCEnv*_observation__mutmut_*",
            "*ISCCEnv*_feature_ranges__mutmut_*",
        ],
        SLOW_ENV_TESTS,
    ),  # fmt: skip
    "metrics": Group(  # the policy-evaluation metrics
        "agents/evaluation.py",
        ["tests/agents/test_metrics.py"],
        [
            "*EpisodeResult*",
            "*x_run_episode__mutmut_*",
            "*x_summarize__mutmut_*",
            "*x_ci95__mutmut_*",
        ],
    ),  # fmt: skip
    "mimo_model": Group(
        "isac_gym/mimo/model.py",
        ["tests/physics/test_mimo_model.py", "tests/physics/test_mimo_contracts.py"],
    ),
    "dinkelbach": Group(
        "optimizers/mimo/dinkelbach.py",
        [
            "tests/solvers/test_dinkelbach.py",
            "tests/solvers/test_dinkelbach_parameter.py",
            "tests/solvers/test_dinkelbach_majorant.py",
            "tests/solvers/test_mimo_fast.py",  # the fast path, its fallback, the sweep
            "tests/solvers/test_dinkelbach_mutants.py",
        ],
    ),
}


def group_pyproject(group: Group) -> str:
    """The repository's pyproject.toml with the group's keys added to [tool.mutmut]."""
    text = (ROOT / "pyproject.toml").read_text()
    keys = (
        f"only_mutate = [{json.dumps(group.module)}]\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(group.tests)}\n"
        f"pytest_add_cli_args = {json.dumps(PYTEST_ARGS + group.pytest_args)}\n"
    )
    text, count = re.subn(r"^\[tool\.mutmut\]\n", lambda m: m.group(0) + keys, text, flags=re.M)
    if count != 1:
        raise SystemExit("pyproject.toml needs one [tool.mutmut] section")
    return text


def prepare(name: str) -> Path:
    """A fresh copy of the sources and tests for the group ``name``."""
    work = WORK / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for item in COPY:
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, work / item, ignore=ignore)
        else:
            shutil.copy2(source, work / item)
    (work / "pyproject.toml").write_text(group_pyproject(GROUPS[name]))
    return work


def mutmut(work: Path, *args: str, timeout: float | None = None) -> str:
    """Run mutmut in ``work``; on timeout stop it and every mutant it forked."""
    command = [str(Path(sys.executable).parent / "mutmut"), *args]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    process = subprocess.Popen(
        command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        output, _ = process.communicate()
        raise subprocess.TimeoutExpired(command, timeout, output) from None
    return output


def run_group(name: str, max_children: int, time_limit: float) -> dict:
    group = GROUPS[name]
    work = prepare(name)
    try:
        mutmut(work, "run", "--max-children", str(max_children), *group.functions,
               timeout=time_limit)  # fmt: skip
        finished = True
    except subprocess.TimeoutExpired:
        finished = False  # the results so far are on disk
    status: dict[str, str] = {}
    for line in mutmut(work, "results", "--all", "true").splitlines():
        mutant, _, state = line.strip().rpartition(": ")
        if mutant and any(fnmatch.fnmatch(mutant, glob) for glob in group.functions):
            status[mutant] = state
    counts: dict[str, int] = {}
    for state in status.values():
        counts[state] = counts.get(state, 0) + 1
    survivors = sorted(m for m, s in status.items() if s == "survived")
    return dict(module=group.module, tests=group.tests, functions=group.functions,
                finished=finished, counts=counts, survivors=survivors)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help=f"default: all of {', '.join(GROUPS)}")
    parser.add_argument("--max-children", type=int, default=1, help="parallel mutants")
    parser.add_argument("--time-limit", type=float, default=3600.0, help="seconds per group")
    parser.add_argument(
        "--functions", nargs="+", help="mutant name globs instead of the group's (one group)"
    )
    args = parser.parse_args(argv)
    unknown = set(args.groups) - set(GROUPS)
    if unknown:
        parser.error(f"unknown groups {sorted(unknown)}; choose from {list(GROUPS)}")
    if args.functions:
        if len(args.groups) != 1:
            parser.error("--functions needs exactly one group")
        GROUPS[args.groups[0]] = replace(GROUPS[args.groups[0]], functions=args.functions)
    for name in args.groups or list(GROUPS):
        result = run_group(name, args.max_children, args.time_limit)
        (WORK / f"{name}.json").write_text(json.dumps(result, indent=2))
        counts = result["counts"]
        tested = sum(n for s, n in counts.items() if s not in ("skipped", "not checked"))
        killed = counts.get("killed", 0) + counts.get("timeout", 0)
        print(f"{name}: {killed}/{tested} killed {counts}"
              + ("" if result["finished"] else " (time limit reached)"))  # fmt: skip
        for mutant in result["survivors"]:
            print(f"  survived: {mutant}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
