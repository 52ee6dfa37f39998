"""The fast method (optimizers.mimo.direct, with the phase I of optimizers.mimo.phase_one)
against the true model and the CVXPY reference."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from conftest import MIMO_SMALL_CELL

from isac_gym.mimo import MIMOISACConfig, evaluate, sample_snapshot, stream_constants
from optimizers.mimo import dinkelbach, direct, phase_one
from optimizers.mimo.dinkelbach import equal_split, solve_mimo, solve_mimo_sweep

SMALL = MIMOISACConfig.paper(**MIMO_SMALL_CELL)
LOOSE = SMALL.replace(R_th=0.5, crb_max_theta=0.3, crb_max_phi=0.3)


def _snapshot(config=SMALL, seed=0):
    return sample_snapshot(config, np.random.default_rng(seed))


@pytest.mark.parametrize("omega", [1e-5, pytest.param(2e-3, marks=pytest.mark.slow)])
def test_scheme_order_wherever_feasible(omega):
    snapshot = _snapshot(SMALL.replace(R_th=2.0, crb_max_theta=5e-3, crb_max_phi=5e-3), 3)
    solutions = {s: solve_mimo(snapshot, omega, s, method="cvxpy") for s in dinkelbach.SCHEMES}
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
    first = solve_mimo(snapshot, 2e-3, method="cvxpy")
    again = solve_mimo(snapshot, 2e-3, warm_start=first.allocation, method="cvxpy")
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
    _assert_finite_differences(problem, z, t, gradient, hessian, gradient_at, 1e-6 * z)


def _assert_finite_differences(problem, y, t, gradient, hessian, gradient_at, steps):
    """The gradient against central differences of the merit, the Hessian against
    central differences of ``gradient_at``, coordinate by coordinate."""
    basis = np.eye(y.size)
    merit = [
        (problem.merit(problem.state(y + h * e), t) - problem.merit(problem.state(y - h * e), t))
        / (2 * h)
        for h, e in zip(steps, basis, strict=True)
    ]
    np.testing.assert_allclose(gradient, merit, rtol=1e-6, atol=1e-7 * np.abs(gradient).max())
    numeric = np.array(
        [
            (gradient_at(y + h * e) - gradient_at(y - h * e)) / (2 * h)
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


_OTHER_BASIN = pytest.mark.xfail(reason="a local method: another basin, 0.985x", strict=True)
#: the 20-step stage rule ends this slow climb (9.81 with 40 steps and 1e-4; CVXPY 9.23):
#: the price of 1.5x faster LoR solves at the paper's size (BENCHMARKS.md, MIMO Dinkelbach)
_CUT_CLIMB = pytest.mark.xfail(reason="climb cut by the stage rule, 0.93x", strict=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    "seed, omega",
    [(seed, omega) for seed in (0, 1, 2, 3, 4, 6) for omega in (1e-5, 2e-3)]
    + [pytest.param(5, omega, marks=_OTHER_BASIN) for omega in (1e-5, 2e-3)]
    + [(7, 1e-5), pytest.param(7, 2e-3, marks=_CUT_CLIMB)],
)
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


# -- phase I on the true constraints (optimizers.mimo.phase_one) --------------------------


def _phase_one(scheme="proposed", config=SMALL, seed=0):
    snapshot = _snapshot(config, seed)
    constants = stream_constants(snapshot)
    model = direct.ExactModel(snapshot, constants, scheme, 1e-5)
    split = model.to_z(equal_split(snapshot, constants, snapshot.P_max / 2))
    return snapshot, constants, model, phase_one.PhaseOneProblem(model, 1e-4), split


@pytest.mark.parametrize("scheme", dinkelbach.SCHEMES)
def test_phase_one_gradient_and_hessian_match_finite_differences(scheme):
    """In y = (z, tau), with the multipliers at 1/slack (the exact Hessian)."""
    _, _, _, problem, split = _phase_one(scheme)
    z = split * np.exp(0.3 * np.random.default_rng(2).standard_normal(split.size))
    y, t = problem.start(z)["y"], 41.0

    def parts_at(point):
        state = problem.state(point)
        dual = (1.0 / problem.slacks(state), 1.0 / point[:-1])
        gradient, parts, _ = problem.newton(state, t, dual)
        return problem.reduce_gradient(point[:-1], gradient), parts

    gradient, parts = parts_at(y)
    hessian = problem.hessian(y[:-1], parts)
    steps = 1e-6 * np.maximum(np.abs(y), 1e-3)
    _assert_finite_differences(
        problem, y, t, gradient, hessian, lambda point: parts_at(point)[0], steps
    )


@pytest.mark.parametrize("scheme", ["proposed", "equal_com"])  # equal_cs: no feasible split
def test_phase_one_reaches_a_strictly_feasible_point(scheme):
    snapshot, constants, model, _, split = _phase_one(scheme)
    start = evaluate(snapshot, model.allocation(split), 1e-5, constants)
    assert not start.feasible  # the equal split misses a floor: phase I has work to do
    z, status, steps = phase_one.restore_feasibility(model, split, margin=1e-4, max_steps=300)
    judged = evaluate(snapshot, model.allocation(z), 1e-5, constants)
    assert status == "feasible" and judged.feasible and 0 < steps < 300
    assert direct.BarrierProblem(model, 1e-4, 1.0).state(z) is not None  # interior: a start


def test_phase_one_reports_infeasible_early_and_respects_its_budget():
    tight = SMALL.replace(crb_max_theta=1e-5, crb_max_phi=1e-5)  # beyond any power split
    _, _, model, _, split = _phase_one(config=tight)
    _, status, steps = phase_one.restore_feasibility(model, split, margin=1e-4, max_steps=300)
    assert status == "infeasible" and steps < 300  # the certificate, not the budget
    _, status, steps = phase_one.restore_feasibility(model, split, margin=1e-4, max_steps=3)
    assert status == "infeasible" and steps == 3


def _near_the_ceilings_power(factor, seed=0):
    """Phase I's model and start on a default MIMOISAC-v0 frame whose budget is
    ``factor`` times the least power the CRB ceilings need."""
    from isac_gym.envs.mimo_config import MIMOEnvConfig
    from optimizers.mimo.certificate import crb_power_bound

    snapshot = sample_snapshot(MIMOEnvConfig().cell, np.random.default_rng(seed))
    constants = stream_constants(snapshot)
    snapshot = dataclasses.replace(snapshot, P_max=factor * crb_power_bound(snapshot, constants))
    model = direct.ExactModel(snapshot, constants, "proposed", 1e-5)
    return model, model.to_z(equal_split(snapshot, constants, snapshot.P_max / 2))


def test_phase_one_gives_up_once_a_full_budget_stage_stalls():
    """At 1.05x the CRB power bound the margins plateau below 0 with the budget spent:
    phase I stops there, not after its 300 steps."""
    model, z = _near_the_ceilings_power(1.05)
    _, status, steps = phase_one.restore_feasibility(model, z, margin=1e-4, max_steps=300)
    assert status == "infeasible" and steps < 200


def test_phase_one_keeps_a_slow_climb_at_the_full_budget():
    """At 1.5x the bound tau needs 100 steps at the full budget, closing most of its gap
    per stage: a feasible point, not a stall."""
    model, z = _near_the_ceilings_power(1.5)
    _, status, steps = phase_one.restore_feasibility(model, z, margin=1e-4, max_steps=300)
    assert status == "feasible" and steps > 80


@pytest.mark.parametrize("phase", ["main", "phase_one"])
def test_slack_change_is_the_slacks_derivative_along_a_step(phase):
    """The multipliers' Newton step uses it: first order in a random direction."""
    _, _, model, problem, split = _phase_one(config=LOOSE)
    if phase == "main":
        problem = direct.BarrierProblem(model, 1e-4, 1.0)
        y = split
    else:
        y = problem.start(split)["y"]
    state = problem.state(y)
    dual = (1.0 / problem.slacks(state), 1.0 / state["z"])
    jacobian = problem.newton(state, 5.0, dual)[2]
    direction = np.random.default_rng(3).standard_normal(y.size) * np.abs(y)
    h = 1e-7
    numeric = (problem.slacks(problem.state(y + h * direction)) - problem.slacks(state)) / h
    np.testing.assert_allclose(
        problem.slack_change(jacobian, direction), numeric, rtol=1e-4, atol=1e-9
    )


def _previous_and_harder(change):
    """A frame, its solution, and the frame made harder so that the solution misses it."""
    snapshot = _snapshot(seed=1)
    previous = solve_mimo(snapshot, 2e-3, method="fast")
    if change == "crb":
        harder = dataclasses.replace(snapshot, crb_max=0.9 * snapshot.crb_max)
    else:  # a smaller power budget, as the environment's actions give
        harder = dataclasses.replace(snapshot, P_max=0.9 * previous.evaluation.transmit_power)
    assert not evaluate(harder, previous.allocation, 2e-3).feasible
    return previous, harder


def test_an_infeasible_warm_start_is_restored_by_phase_one_and_keeps_its_path(monkeypatch):
    """Phase I starts from the previous solution, then the warm path follows: neither
    the EqualCom path nor the equal split runs."""
    monkeypatch.setattr(dinkelbach, "_RESTORE_ROUNDS", 300)  # this one needs 61 steps
    previous, harder = _previous_and_harder("crb")
    restored = solve_mimo(harder, 2e-3, method="fast", warm_start=previous.allocation)
    assert restored.info["starts"] == ["warm_restored"] and restored.feasible
    assert restored.info["phase1_iterations"] > 0
    assert restored.info["iterations"] == 4  # barrier stages from 1e3 m_c to 1e6 m_c (cold: 7)


@pytest.mark.parametrize(("change", "budget"), [("crb", 50), ("budget", 300)])
def test_the_cold_starts_follow_when_the_restoration_fails(monkeypatch, change, budget):
    """Out of its 50 steps (crb: 61 needed), or no feasible point (budget)."""
    monkeypatch.setattr(dinkelbach, "_RESTORE_ROUNDS", budget)
    previous, harder = _previous_and_harder(change)
    restored = solve_mimo(harder, 2e-3, method="fast", warm_start=previous.allocation)
    cold = solve_mimo(harder, 2e-3, method="fast")
    assert restored.info["starts"][0] == "warm_restored" and len(restored.info["starts"]) > 1
    assert cold.feasible and restored.feasible and restored.ee >= cold.ee


def test_a_stage_runs_past_its_step_budget_only_while_phi_rises():
    stalled = direct._stalled_after(3, 2, 1e-4)
    rising = [{"phi": 1.0 + 0.01 * k} for k in range(6)]
    assert not any(stalled(state) for state in rising)  # before 3 steps, then still rising
    assert stalled({"phi": 1.0502}) is False  # against 1.04, two steps back: rising
    assert stalled({"phi": 1.0511}) is False  # against 1.05: +1.05e-3
    assert stalled({"phi": 1.0503}) is True  # against 1.0502: less than 1e-4 in 2 steps
    early = direct._stalled_after(5, 2, 1e-4)
    assert not any(early({"phi": 1.0}) for _ in range(4)) and early({"phi": 1.0})


def test_the_climb_is_not_cut_at_the_stage_budget(monkeypatch):
    """Small cell 7 at LoR: with a hard 40-step cap per stage the path stopped mid-climb
    (8.26, below CVXPY's 8.68); run past it while Phi rises, it reaches 9.25."""
    snapshot = _snapshot(seed=7)
    full = solve_mimo(snapshot, 1e-5, method="fast")
    path = direct.barrier_path
    monkeypatch.setattr(direct, "barrier_path", lambda *a, **k: path(*a, **{**k, "cap": 40}))
    capped = solve_mimo(snapshot, 1e-5, method="fast")
    assert full.ee > 1.1 * capped.ee


def test_the_hessian_views_address_the_entries_they_name():
    """``stream_entries`` is stream k's 2x2 block at rows/columns (p K + k, q K + k) of a
    subcarrier block; ``diagonal_blocks`` the diagonal m x m blocks. Writes go through."""
    N, K = 3, 4
    blocks = np.arange(N * 4 * K * K, dtype=float).reshape(N, 2 * K, 2 * K)
    view = direct.stream_entries(blocks, K)
    for n, p, q, k in np.ndindex(N, 2, 2, K):
        assert view[n, p, q, k] == blocks[n, p * K + k, q * K + k]
    expected = blocks.copy()
    stream = np.random.default_rng(0).normal(size=(N, K, 2, 2))
    for k in range(K):
        expected[:, k::K, k::K][:, :2, :2] += stream[:, k]
    direct.add_stream_blocks(blocks, stream, K)
    np.testing.assert_array_equal(blocks, expected)

    matrix = np.arange(36.0).reshape(6, 6)
    diagonal = direct.diagonal_blocks(matrix, 2)
    np.testing.assert_array_equal(diagonal, [matrix[i : i + 2, i : i + 2] for i in (0, 2, 4)])
    diagonal[...] += 100.0
    assert matrix[2, 3] == 115.0 and matrix[2, 4] == 16.0  # inside a block, then outside


@pytest.mark.parametrize("least", [0, 1, 4, 19])
def test_the_levenberg_shift_is_the_least_that_factors_whatever_the_guess(monkeypatch, least):
    """``shifted_solve`` returns the direction at the least shift of its ladder for which
    Cholesky succeeds, from every first guess (below, at, above it), and a guess at that
    rung costs two factorisations (the success and the failure one rung lower)."""
    shifts = direct._SHIFTS
    # the least eigenvalue lies between two rungs' shifts: the upper one is the answer
    rng = np.random.default_rng(least)
    basis, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    lowest = -0.5 * (shifts[least] + shifts[least - 1]) if least else 0.5
    hessian = basis @ np.diag([lowest, 1.0, 2.0, 3.0, 4.0, 5.0]) @ basis.T
    gradient, scale = rng.normal(size=6), np.ones(6)
    expected = -np.linalg.solve(hessian + shifts[least] * np.eye(6), gradient)
    calls = []
    factor = direct.scipy.linalg.lapack.dpotrf
    monkeypatch.setattr(
        direct.scipy.linalg.lapack, "dpotrf", lambda *a, **k: calls.append(1) or factor(*a, **k)
    )
    for guess in sorted({0, max(least - 1, 0), least, min(least + 3, len(shifts) - 1)}):
        calls.clear()
        direction, rung = direct.shifted_solve(hessian.copy(), scale, gradient, guess)
        assert rung == least, guess
        np.testing.assert_allclose(direction, expected, rtol=1e-9)
        if guess == least:
            assert len(calls) == (2 if least else 1)


@pytest.mark.parametrize("scheme", ["proposed", "equal_com"])
def test_the_power_ray_flags_only_steps_past_the_budget(scheme):
    """``power_ray``'s test against P_T computed at the trial point: a flagged step is
    over P_max; steps a little past the root are flagged, steps a little short of it
    are not (both sides of the boundary), also from a point at the budget's edge."""
    snapshot = dataclasses.replace(_snapshot(), P_max=0.2)  # not 1 W: the slack is relative
    model = direct.ExactModel(snapshot, stream_constants(snapshot), scheme, 1e-5)
    rng = np.random.default_rng(1)
    for slack in (0.5, 1e-7):  # a point well inside, and one at the full budget
        z = rng.uniform(0.5, 1.5, model.nz)
        z *= np.sqrt((1.0 - slack) * snapshot.P_max / model.power(model.full(z)))
        step = rng.normal(size=model.nz)
        power = model.power(model.full(z))
        over = direct.power_ray(
            model, z, step, (snapshot.P_max - power) / snapshot.P_max, snapshot.P_max
        )
        sizes = np.geomspace(1e-12, 1e3, 400)
        past = [model.power(model.full(z + s * step)) > snapshot.P_max for s in sizes]
        root = sizes[past.index(True)]
        for s, beyond in zip(sizes, past, strict=True):
            assert beyond or not over(s), s
        assert over(1.01 * root) and over(4.0 * root)
        assert not over(0.5 * root)


def test_skipping_trials_past_the_budget_keeps_every_step(monkeypatch):
    """Phase I at a budget near the CRB ceilings' least power accepts the same steps with
    and without the power-ray test (the same point to the bit), with far fewer trial
    points."""
    model, split = _near_the_ceilings_power(1.2)
    calls = []
    state = phase_one.PhaseOneProblem.state
    monkeypatch.setattr(phase_one.PhaseOneProblem, "state", lambda *a: calls.append(1) or state(*a))
    runs = {}
    for name, ray in (("skip", direct.power_ray), ("all", lambda *a: lambda s: False)):
        monkeypatch.setattr(direct, "power_ray", ray)
        calls.clear()
        runs[name] = (
            phase_one.restore_feasibility(model, split, margin=1e-4, max_steps=300),
            len(calls),
        )
    (z_skip, status, steps), evaluated = runs["skip"]
    (z_all, status_all, steps_all), evaluated_all = runs["all"]
    assert (status, steps) == (status_all, steps_all) and steps > 50
    np.testing.assert_array_equal(z_skip, z_all)
    assert evaluated < 0.5 * evaluated_all


@pytest.mark.parametrize("scheme", ["proposed", "equal_com"])
def test_a_point_past_the_budget_goes_back_along_its_ray(scheme):
    """``onto_budget``: a point inside the power ball is returned as it is (to the bit),
    one past it is scaled, on its own ray, to P_T = P_max (1 - slack / 2); both sides of
    the boundary, and P_max != 1 W."""
    snapshot = dataclasses.replace(_snapshot(), P_max=0.2)
    constants = stream_constants(snapshot)
    problem = direct.BarrierProblem(direct.ExactModel(snapshot, constants, scheme, 2e-3), 1e-4, 1.0)
    model = problem.model
    z = np.random.default_rng(2).uniform(0.5, 1.5, model.nz)
    z *= np.sqrt(snapshot.P_max / model.power(model.full(z)))  # on the boundary
    for factor in (1.0 - 1e-9, 0.5):
        inside = z * factor
        assert problem.onto_budget(inside, 0.3) is inside
    for factor, slack in ((1.0 + 1e-9, 1e-6), (1.5, 0.3), (3.0, 0.3)):
        back = problem.onto_budget(z * factor, slack)
        power = model.power(model.full(back))
        assert power == pytest.approx(snapshot.P_max * (1.0 - slack / 2), rel=1e-12)
        ratio = back / z
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-12)  # the same ray


def test_full_budget_paths_no_longer_creep(monkeypatch):
    """A paper-size HoR frame whose optimum spends the whole budget (P_c = 25.6 dBm):
    with trials past P_max scaled back onto the ball, the EqualCom and proposed paths
    take under half the Newton steps of plain rejection, and end no lower."""
    snapshot = _snapshot(MIMOISACConfig.paper(), seed=200)
    runs = {}
    steps = []
    centre = direct.centre
    monkeypatch.setattr(
        direct, "centre", lambda *a, **k: (lambda out: steps.append(out[2]) or out)(centre(*a, **k))
    )
    for name, project in (("onto", True), ("reject", False)):
        monkeypatch.setattr(
            direct.BarrierProblem,
            "onto_budget",
            direct.BarrierProblem.onto_budget if project else lambda self, z, slack, power=None: z,
        )
        steps.clear()
        runs[name] = (solve_mimo(snapshot, 2e-3, method="fast"), sum(steps))
    (onto, onto_steps), (reject, reject_steps) = runs["onto"], runs["reject"]
    assert onto.feasible and reject.feasible
    assert onto.evaluation.transmit_power > 0.999 * snapshot.P_max  # the budget binds
    assert onto.ee >= 0.999 * reject.ee
    assert onto_steps < 0.5 * reject_steps
