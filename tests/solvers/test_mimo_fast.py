"""The fast (barrier Newton) Dinkelbach-SCA of optimizers.mimo.fast against the CVXPY reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from isac_gym.mimo import MIMOISACConfig, evaluate, sample_snapshot, stream_constants
from optimizers.mimo import dinkelbach, fast
from optimizers.mimo.dinkelbach import equal_split, solve_mimo

SMALL = MIMOISACConfig.paper(N_x=4, N_y=4, K=3, N=4, crb_max_theta=3e-3, crb_max_phi=3e-3)
LOOSE = SMALL.replace(R_th=0.5, crb_max_theta=0.3, crb_max_phi=0.3)


def _snapshot(config=SMALL, seed=0):
    return sample_snapshot(config, np.random.default_rng(seed))


def _program(phase1, scheme="proposed", seed=0):
    snapshot = _snapshot(LOOSE, seed)
    constants = stream_constants(snapshot)
    surrogate = fast.FastSurrogate(snapshot, constants, scheme)
    point = equal_split(snapshot, constants, snapshot.P_max / 2)
    surrogate.linearise(point)
    program = fast.BarrierProgram(surrogate, phase1=phase1, margin=0.0, lam=5.0, omega=1e-3)
    return program, program.start(surrogate.to_z(point))


@pytest.mark.parametrize("phase1", [True, False])
def test_barrier_gradient_matches_finite_differences(phase1):
    program, y = _program(phase1)
    value, grad, _ = program.newton(y, 3.0)
    assert value == pytest.approx(program.value(y, 3.0))
    step = 1e-7
    numeric = [
        (program.value(y + step * e, 3.0) - program.value(y - step * e, 3.0)) / (2 * step)
        for e in np.eye(y.size)
    ]
    np.testing.assert_allclose(grad, numeric, atol=1e-5 * np.abs(grad).max())


@pytest.mark.parametrize("phase1", [True, False])
def test_newton_direction_solves_the_hessian_system(phase1):
    """H d = -g, checked by differencing the gradient along d (the structured solve)."""
    program, y = _program(phase1)
    _, grad, direction = program.newton(y, 3.0)
    h = 1e-6
    _, plus, _ = program.newton(y + h * direction, 3.0)
    _, minus, _ = program.newton(y - h * direction, 3.0)
    np.testing.assert_allclose((plus - minus) / (2 * h), -grad, atol=1e-5 * np.abs(grad).max())


def test_structured_and_dense_newton_agree():
    program, y = _program(False)
    _, _, structured = program.newton(y, 3.0)
    program.sur.E = np.eye(y.size - 2)  # forces the dense path
    _, _, dense = program.newton(y, 3.0)
    np.testing.assert_allclose(structured, dense, rtol=1e-8, atol=1e-12)


@pytest.mark.slow
@pytest.mark.xfail(reason="target open: fast ends below cvxpy on 3 of these 6 cells")
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("omega", [1e-5, 2e-3])
def test_fast_reaches_the_reference_on_small_cells(seed, omega):
    snapshot = _snapshot(seed=seed)
    reference = solve_mimo(snapshot, omega, method="cvxpy")
    quick = solve_mimo(snapshot, omega, method="fast")
    assert quick.feasible == reference.feasible
    if reference.feasible:
        assert quick.ee >= 0.999 * reference.ee


def test_every_accepted_iterate_is_feasible_and_lam_is_its_true_ee():
    snapshot = _snapshot()
    constants = stream_constants(snapshot)
    judged = []

    def recording(*args):
        result = evaluate(*args)
        judged.append(result)
        return result

    start = equal_split(snapshot, constants, snapshot.P_max / 2)
    point, final, info = fast.solve_fast(
        snapshot, constants, 2e-3, "proposed", start, tol=1e-7, max_iterations=12,
        phase1_rounds=100, margin=1e-4, evaluate=recording,
    )  # fmt: skip
    trace = np.array(info["ee_trace"])
    assert len(trace) > 3
    assert np.all(np.diff(trace) > 0)  # (76): lam rises at every accepted step
    feasible_values = {r.ee for r in judged if r.feasible}
    assert set(trace) <= feasible_values  # every lam is the true Phi of a feasible point
    assert trace[-1] == evaluate(snapshot, point, 2e-3, constants).ee == final.ee


@pytest.mark.parametrize("omega", [1e-5, pytest.param(2e-3, marks=pytest.mark.slow)])
def test_scheme_order_wherever_feasible(omega):
    snapshot = _snapshot(SMALL.replace(R_th=2.0, crb_max_theta=5e-3, crb_max_phi=5e-3), 3)
    solutions = {s: solve_mimo(snapshot, omega, s) for s in dinkelbach.SCHEMES}
    assert solutions["proposed"].info["starts"] == ["equal_split", "equal_com"]
    ee = {s: solution.ee for s, solution in solutions.items()}
    assert all(math.isfinite(v) for v in ee.values())
    assert ee["proposed"] >= ee["equal_com"] >= ee["equal_cs"]


@pytest.mark.parametrize("method", ["cvxpy", pytest.param("fast", marks=pytest.mark.slow)])
def test_infeasible_instance_has_nan_ee(method):
    snapshot = _snapshot(SMALL.replace(crb_max_theta=1e-5, crb_max_phi=1e-5))
    solution = solve_mimo(snapshot, 1e-5, method=method)
    assert solution.info["status"] == "infeasible" and not solution.feasible
    assert math.isnan(solution.ee)
    assert np.isfinite(solution.evaluation.ee)  # the point's own value stays inspectable


def test_warm_start_from_a_solution_keeps_its_value():
    snapshot = _snapshot()
    first = solve_mimo(snapshot, 2e-3)
    again = solve_mimo(snapshot, 2e-3, warm_start=first.allocation)
    assert again.info["starts"] == ["warm"]
    assert again.ee >= first.ee
    assert again.info["iterations"] < first.info["iterations"] + 5


def test_clarabel_failure_falls_back_to_fast(monkeypatch):
    monkeypatch.setattr(
        dinkelbach._SurrogateProgram, "_solve", lambda self, problem: (None, "solver error: mock")
    )
    solution = solve_mimo(_snapshot(), 1e-5, "equal_com", method="cvxpy", max_iterations=10)
    assert solution.info["fallback"] == "fast"
    assert solution.info["reference_status"].startswith("solver_failed")
    assert solution.feasible and solution.info["iterations"] >= 1


def test_bad_method_raises():
    with pytest.raises(ValueError, match="method"):
        solve_mimo(_snapshot(), 1e-5, method="newton")
