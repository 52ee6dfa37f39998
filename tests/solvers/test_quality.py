"""Solution quality of ``fast`` and ``sca_admm`` and the benchmark command.

Target: on seeded paper-default snapshots (K = 2, M = 64, tau = 0.4 s, beta = 0.1) both
methods reach within 1% of the better of {cvxpy reference, each other} on the weighted
cost (17a), and every allocation reported feasible satisfies all constraints under
``evaluate``. The 50-snapshot version with the CVXPY reference is ``@pytest.mark.slow``.
"""

import csv

import numpy as np
import pytest
from independent_check import feasible_per_ue

from experiments.solver_bench import CSV_COLUMNS
from experiments.solver_bench import main as bench_main
from isac_gym.iscc import ISCCConfig, evaluate, sample_snapshot
from optimizers import solve

BETA = 0.1
TOLERANCE = 0.01


def _snapshot(seed):
    return sample_snapshot(ISCCConfig.paper(), np.random.default_rng(seed))


def _check_reported_feasibility(snapshot, solution):
    """Re-evaluate from scratch: a UE reported feasible meets every constraint."""
    ev = evaluate(snapshot, solution.allocation, BETA)
    np.testing.assert_array_equal(ev.feasible, solution.feasible)
    # and a judge that shares no code with evaluate agrees
    independent = feasible_per_ue(snapshot, solution.allocation)
    np.testing.assert_array_equal(independent, solution.feasible, err_msg=str(ev.violations()))
    if "feasible" in solution.info:  # sca_admm reports its own verdict
        np.testing.assert_array_equal(solution.info["feasible"], ev.feasible)
    assert ev.cost == pytest.approx(solution.cost, rel=1e-12)


def _gaps(snapshot, methods):
    """Solve with every method; return {method: gap to the best feasible cost}."""
    solutions = {m: solve(snapshot, BETA, method=m) for m in methods}
    for solution in solutions.values():
        _check_reported_feasibility(snapshot, solution)
    feasible = {m: s.cost for m, s in solutions.items() if s.feasible.all()}
    if not feasible:
        return None  # physically infeasible slot: nothing to compare
    best = min(feasible.values())
    return {m: (feasible[m] / best - 1.0 if m in feasible else np.inf) for m in solutions}


def _assert_quality(seeds, methods):
    worst = {m: 0.0 for m in ("fast", "sca_admm")}
    compared = 0
    for seed in seeds:
        gaps = _gaps(_snapshot(seed), methods)
        if gaps is None:
            continue
        compared += 1
        for method in worst:
            assert gaps[method] <= TOLERANCE, (seed, method, gaps)
            worst[method] = max(worst[method], gaps[method])
    assert compared >= 0.9 * len(seeds)
    return worst


def test_fast_and_sca_admm_within_one_percent_of_each_other():
    # 20 snapshots without CVXPY (about a second): each method against the better of
    # the two, and both against the paper's baselines, which they must not lose to.
    worst = _assert_quality(range(100, 120), ("fast", "sca_admm", "fo", "ctem"))
    assert max(worst.values()) <= TOLERANCE


def test_fast_and_sca_admm_within_one_percent_of_cvxpy_on_two_snapshots():
    _assert_quality((1, 2), ("fast", "sca_admm", "cvxpy"))


@pytest.mark.slow
def test_quality_target_against_cvxpy_on_50_snapshots(capsys):
    worst = _assert_quality(range(50), ("fast", "sca_admm", "cvxpy"))
    with capsys.disabled():
        print(f"\nworst gap to the best of {{cvxpy, fast, sca_admm}}: {worst}")


def test_bench_smoke(tmp_path, capsys):
    path = tmp_path / "bench.csv"
    code = bench_main(["--K", "2", "--snapshots", "2", "--methods", "fast,fo", "--csv", str(path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "machine:" in out and "K=2, M=64" in out
    header = next(line for line in out.splitlines() if "median ms" in line).split()
    assert header == [
        "method", "n", "median", "ms", "p90", "ms", "solver", "ms", "x", "fast", "x", "sca_admm",
        "mean",
        "gap", "feasible", "UE", "ASR",
    ]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  f")}
    assert set(rows) == {"fast", "fo"} and rows["fast"][1] == "2"
    assert 0 < float(rows["fast"][4]) < float(rows["fast"][2])  # solver-only < with evaluate
    assert float(rows["fo"][5]) > 0  # fo's median time relative to fast
    with open(path, newline="") as handle:
        table = list(csv.DictReader(handle))
    assert tuple(table[0]) == CSV_COLUMNS
    assert len(table) == 4 and {r["method"] for r in table} == {"fast", "fo"}
    for r in table:
        assert 0 < float(r["solver_s"]) < float(r["wall_s"]) and float(r["cost"]) > 0
    best = {r["seed"]: r for r in table if r["method"] == "fast"}
    assert all(float(best[s]["gap"]) <= 1e-12 for s in best)  # fast beats fo here


def test_bench_rejects_unknown_method():
    with pytest.raises(SystemExit):
        bench_main(["--methods", "fast,magic"])
