"""The fast method (optimizers.mimo.direct, with the phase I of optimizers.mimo.fast)
against the true model and the CVXPY reference."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from isac_gym.mimo import MIMOISACConfig, evaluate, sample_snapshot, stream_constants
from optimizers.mimo import dinkelbach, direct, fast
from optimizers.mimo.dinkelbach import equal_split, solve_mimo, solve_mimo_sweep

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


@pytest.mark.parametrize("bad", ["zero_amplitude", "full_power"])
def test_fallback_from_a_point_outside_the_barrier_domain(monkeypatch, bad):
    """Clarabel fails at a point with an amplitude at 0, or one spending all of P_max
    (no interior start for the barrier): the fallback restarts from the equal split."""
    snapshot = _snapshot()
    constants = stream_constants(snapshot)
    point = equal_split(snapshot, constants, snapshot.P_max)  # full power
    if bad == "zero_amplitude":
        point = equal_split(snapshot, constants, snapshot.P_max / 2)
        point.a[0, 0] = 0.0
    info = {"status": "solver_failed: mock"}
    settings = dict(phase1_rounds=300, margin=1e-4, tol=1e-4, max_iterations=30)
    _, judged, new_info = dinkelbach._fast_fallback(
        snapshot, constants, 1e-5, "proposed", point, settings, info
    )
    assert new_info["fallback"] == "fast" and judged.feasible


def test_bad_method_raises():
    with pytest.raises(ValueError, match="method"):
        solve_mimo(_snapshot(), 1e-5, method="newton")


# -- the direct barrier method (optimizers.mimo.direct) ---------------------------------


def _direct(scheme="proposed", omega=1e-3, seed=0, config=LOOSE):
    snapshot = _snapshot(config, seed)
    constants = stream_constants(snapshot)
    model = direct.ExactModel(snapshot, constants, scheme, omega)
    return snapshot, constants, model, direct.BarrierProblem(model, 1e-4, 10.0)


def test_exact_model_matches_the_true_model():
    snapshot, constants, model, problem = _direct()
    rng = np.random.default_rng(5)
    for _ in range(3):
        z = 0.2 * rng.random(model.nz) + 1e-3
        state = problem.state(z)
        judged = evaluate(snapshot, model.allocation(z), 1e-3, constants)
        assert state is not None and judged.feasible
        np.testing.assert_allclose(state["v"]["rate"], judged.se, rtol=1e-12)
        np.testing.assert_allclose(1.0 / state["crb"][0], judged.crb, rtol=1e-9)
        assert state["v"]["power"] == pytest.approx(judged.transmit_power, rel=1e-12)
        assert state["phi"] == pytest.approx(judged.ee, rel=1e-10)


@pytest.mark.parametrize("scheme", dinkelbach.SCHEMES)
def test_direct_gradient_and_hessian_match_finite_differences(scheme):
    """With the multipliers at 1/c the primal-dual Hessian is the exact one."""
    _, _, model, problem = _direct(scheme)
    z = model.to_z(equal_split(model.snapshot, stream_constants(model.snapshot), 0.5))
    z = z * np.exp(0.3 * np.random.default_rng(1).standard_normal(z.size))
    state, t = problem.state(z), 37.0

    def gradient_at(point):
        s = problem.state(point)
        dual = (1.0 / problem.slacks(s), 1.0 / point)
        return problem.reduce_gradient(point, problem.newton(s, t, dual)[0])

    dual = (1.0 / problem.slacks(state), 1.0 / z)
    gradient, parts, _ = problem.newton(state, t, dual)
    gradient, hessian = problem.reduce_gradient(z, gradient), problem.hessian(z, parts)
    steps = 1e-6 * z
    basis = np.eye(z.size)
    merit = [
        (problem.merit(problem.state(z + h * e), t) - problem.merit(problem.state(z - h * e), t))
        / (2 * h)
        for h, e in zip(steps, basis, strict=True)
    ]
    np.testing.assert_allclose(gradient, merit, rtol=1e-6, atol=1e-7 * np.abs(gradient).max())
    numeric = np.array(
        [
            (gradient_at(z + h * e) - gradient_at(z - h * e)) / (2 * h)
            for h, e in zip(steps, basis, strict=True)
        ]
    )
    np.testing.assert_allclose(hessian, numeric, atol=1e-6 * np.abs(hessian).max())


def test_every_iterate_is_feasible_on_the_true_model(monkeypatch):
    snapshot, constants, _, _ = _direct(omega=2e-3)
    iterates = []
    original = direct.BarrierProblem.newton

    def recording(self, state, t, dual):
        iterates.append(self.model.allocation(state["z"]))
        return original(self, state, t, dual)

    monkeypatch.setattr(direct.BarrierProblem, "newton", recording)
    start = equal_split(snapshot, constants, snapshot.P_max / 2)
    point, judged, info = direct.solve_direct(
        snapshot, constants, 2e-3, "proposed", start, warm=False,
        phase1_rounds=0, margin=1e-4, evaluate=evaluate,
    )  # fmt: skip
    assert info["phase1_iterations"] == 0 and len(iterates) > 20
    assert all(evaluate(snapshot, it, 2e-3, constants).feasible for it in iterates)
    assert judged.feasible and judged.ee > 1.5 * evaluate(snapshot, start, 2e-3, constants).ee
    assert info["ee_trace"][-1] == pytest.approx(judged.ee, rel=1e-10)


def test_a_warm_start_is_never_lost(monkeypatch):
    """If the barrier path ends below a feasible start, the start is returned."""
    snapshot, constants, _, _ = _direct()
    start = equal_split(snapshot, constants, snapshot.P_max / 2)
    first = evaluate(snapshot, start, 1e-3, constants)
    worse = equal_split(snapshot, constants, 0.9 * snapshot.P_max)  # same split, more power
    assert evaluate(snapshot, worse, 1e-3, constants).ee < first.ee

    def path_to_worse(problem, state, **_):
        end = problem.state(problem.model.to_z(worse))
        return end, [end], 0

    monkeypatch.setattr(direct, "barrier_path", path_to_worse)
    point, judged, info = direct.solve_direct(
        snapshot, constants, 1e-3, "proposed", start, warm=True,
        phase1_rounds=0, margin=1e-4, evaluate=evaluate,
    )  # fmt: skip
    assert info["status"] == "kept_start" and judged.ee == first.ee
    np.testing.assert_array_equal(point.a, start.a)


def test_pmax_sweep_is_monotone_and_checks_its_budgets():
    snapshot = _snapshot(LOOSE, 2)
    budgets = [0.1, 1.0, 10.0]  # 20, 30, 40 dBm
    solutions = solve_mimo_sweep(snapshot, 2e-3, budgets, "equal_com", method="fast")
    ee = [s.ee for s in solutions]
    assert all(s.feasible for s in solutions) and np.all(np.diff(ee) >= 0), ee
    powers = [s.evaluation.transmit_power for s in solutions]
    assert np.all(np.array(powers) <= np.array(budgets) * (1 + 1e-6))
    with pytest.raises(ValueError, match="P_max_values"):
        solve_mimo_sweep(snapshot, 2e-3, [1.0, 0.1])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("omega", [1e-5, 2e-3])
def test_fast_reaches_the_reference_on_small_cells(seed, omega):
    """fast >= 0.999x cvxpy (its default tolerance and starts) on small random cells."""
    snapshot = _snapshot(seed=seed)
    reference = solve_mimo(snapshot, omega, method="cvxpy")
    quick = solve_mimo(snapshot, omega, method="fast")
    assert quick.feasible == reference.feasible
    if reference.feasible:
        assert quick.ee >= 0.999 * reference.ee


@pytest.mark.slow
@pytest.mark.parametrize("omega", [1e-5, 2e-3])
def test_fast_scheme_order_wherever_feasible(omega):
    snapshot = _snapshot(SMALL.replace(R_th=2.0, crb_max_theta=5e-3, crb_max_phi=5e-3), 3)
    ee = {s: solve_mimo(snapshot, omega, s, method="fast").ee for s in dinkelbach.SCHEMES}
    assert all(math.isfinite(v) for v in ee.values())
    assert ee["proposed"] >= ee["equal_com"] >= 0.999 * ee["equal_cs"]


@pytest.mark.parametrize(
    "floors, method",
    [([9.0, 0.5, 0.5], "fast"), ([0.5, 0.5, 6.5], "fast"), ([9.0, 0.5, 0.5], "cvxpy")],
)
def test_per_user_rate_floors(floors, method):
    """A (K,) R_th: each user meets its own floor on the true model, and a user with a
    low floor may stay below another's (so the floors are not read as their maximum).
    The floors above bind (without them the SEs are about 8.3, 8.0, 4.9)."""
    snapshot = _snapshot(SMALL.replace(R_th=2.0, crb_max_theta=5e-3, crb_max_phi=5e-3), 3)
    snapshot = dataclasses.replace(snapshot, R_th=np.array(floors))
    solution = solve_mimo(snapshot, 1e-5, method=method)
    se = evaluate(snapshot, solution.allocation, 1e-5).se
    assert solution.feasible
    assert np.all(se >= np.array(floors) * (1 - 1e-9))
    assert se.min() < max(floors)
