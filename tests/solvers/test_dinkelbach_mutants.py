"""The Dinkelbach driver's bookkeeping, pinned where mutation testing found it unguarded:
which start points a solve tries and names, when phase I gives up, and which of two
solutions wins (docs/testing.md, group ``dinkelbach``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import MIMO_SMALL_CELL
from conftest import cvxpy_solve_mimo as solve_mimo

from isac_gym.mimo import MIMOISACConfig, evaluate, sample_snapshot, stream_constants
from optimizers.mimo import dinkelbach
from optimizers.mimo.dinkelbach import (
    _better,
    _SurrogateProgram,
    equal_split,
    solve_mimo_sweep,
)

SMALL = MIMOISACConfig.paper(**MIMO_SMALL_CELL)
EASY = SMALL.replace(R_th=1.0, crb_max_theta=1e-1, crb_max_phi=1e-1)  # the split is feasible
HARD = SMALL.replace(crb_max_theta=1e-4, crb_max_phi=1e-4)  # -40 dB: out of reach


def _snapshot(config, seed=0):
    return sample_snapshot(config, np.random.default_rng(seed))


def test_better_prefers_feasible_then_a_strictly_higher_ee():
    feasible, infeasible = (
        SimpleNamespace(feasible=True, ee=1.0),
        SimpleNamespace(feasible=False, ee=9.0),
    )
    assert _better(feasible, infeasible) and not _better(infeasible, feasible)
    assert _better(SimpleNamespace(feasible=True, ee=1.5), feasible)
    assert not _better(SimpleNamespace(feasible=True, ee=1.0), feasible)  # a tie keeps the first
    assert not _better(SimpleNamespace(feasible=True, ee=0.5), feasible)


def test_phase1_out_of_rounds_is_infeasible_after_exactly_those_rounds(monkeypatch):
    # HARD's budget is below the CRB ceilings' least power, which solve_mimo reports
    # without phase I; phase I's own bookkeeping is the subject here
    monkeypatch.setattr(dinkelbach.certificate, "crb_power_bound", lambda *args: 0.0)
    snapshot = _snapshot(HARD)
    constants = stream_constants(snapshot)
    split = equal_split(snapshot, constants, snapshot.P_max / 2)
    one = solve_mimo(snapshot, 1e-5, "equal_cs", phase1_rounds=1)
    assert one.info["status"] == "infeasible" and one.info["phase1_iterations"] == 1
    assert "fallback" not in one.info  # phase I itself said so, not the fast method
    # the point is one phase-I step from the split: the program's own step, no more
    step, tau = _SurrogateProgram(snapshot, constants, "equal_cs", 1e-4).phase1_step(split)
    assert tau < 0 and not np.allclose(step.a, split.a)
    np.testing.assert_allclose(one.allocation.a, step.a, rtol=1e-9, atol=1e-12)
    # with rounds to spare, phase I stops once its margin tau converges below 0
    full = solve_mimo(snapshot, 1e-5, "equal_cs", phase1_rounds=300)
    assert full.info["status"] == "infeasible" and "fallback" not in full.info
    assert 1 < full.info["phase1_iterations"] < 300


def test_starts_are_named_and_the_split_spends_half_the_budget():
    snapshot = _snapshot(EASY)
    constants = stream_constants(snapshot)
    split = equal_split(snapshot, constants, snapshot.P_max / 2)
    equal_cs = solve_mimo(snapshot, 1e-5, "equal_cs", max_iterations=1)
    assert equal_cs.info["starts"] == ["equal_split"] and equal_cs.info["phase1_iterations"] == 0
    first = equal_cs.info["ee_trace"][0]
    assert first == pytest.approx(evaluate(snapshot, split, 1e-5, constants).ee, rel=1e-12)

    proposed = solve_mimo(snapshot, 1e-5, "proposed", max_iterations=2)
    assert proposed.info["starts"] == ["equal_split", "equal_com"]
    assert (proposed.info["scheme"], proposed.info["method"]) == ("proposed", "cvxpy")
    assert 0.0 < proposed.info["wall_time_s"] < 60.0
    given = solve_mimo(snapshot, 1e-5, "proposed", start=split, max_iterations=1)
    assert given.info["starts"] == ["given"] and given.info["start"] == "given"
    warm = solve_mimo(snapshot, 1e-5, "proposed", warm_start=proposed.allocation)
    assert warm.info["starts"] == ["warm"] and warm.ee >= proposed.ee


@pytest.mark.parametrize(
    ("method", "calls", "starts"),
    [
        # cvxpy: EqualCom from the split first, then proposed from the split and from it
        ("cvxpy", [("equal_com", False), ("proposed", False), ("proposed", True)],
         ["equal_split", "equal_com"]),
        # fast: only from the EqualCom solution (the split's basin is worse)
        ("fast", [("equal_com", False), ("proposed", True)], ["equal_com"]),
    ],
)  # fmt: skip
def test_proposed_starts_from_the_equal_com_solution(monkeypatch, method, calls, starts):
    seen = []
    solver = dinkelbach._SOLVERS[method]

    def spy(snapshot, constants, omega, scheme, point, settings, *, warm=False, **options):
        seen.append((scheme, bool(warm)))
        return solver(snapshot, constants, omega, scheme, point, settings, warm=warm, **options)

    monkeypatch.setitem(dinkelbach._SOLVERS, method, spy)
    solution = solve_mimo(_snapshot(EASY), 1e-5, "proposed", method=method, max_iterations=2)
    assert seen == calls and solution.info["starts"] == starts


def test_the_loop_counts_its_iterations_and_names_why_it_stopped():
    snapshot = _snapshot(EASY)
    for cap in (1, 2):
        solution = solve_mimo(snapshot, 1e-5, "equal_cs", max_iterations=cap, tol=1e-12)
        info = solution.info
        assert info["status"] == "max_iterations" and info["iterations"] == cap
        assert len(info["ee_trace"]) == cap + 1 and info["ee_trace"][-1] == solution.ee


def _split(snapshot, fraction):
    return equal_split(snapshot, stream_constants(snapshot), fraction * snapshot.P_max)


def _scripted_steps(monkeypatch, step):
    """Every Dinkelbach step of the cvxpy loop returns ``step(point)``."""
    monkeypatch.setattr(
        dinkelbach._SurrogateProgram,
        "dinkelbach_step",
        lambda self, point, lam, omega: (step(point), "optimal"),
    )


def test_a_worse_feasible_step_is_rejected_and_the_last_point_kept(monkeypatch):
    snapshot = _snapshot(EASY)
    start, worse = _split(snapshot, 0.25), _split(snapshot, 0.9)
    judge = lambda point: evaluate(snapshot, point, 1e-5)  # noqa: E731
    assert judge(worse).feasible and judge(worse).ee < judge(start).ee  # the premise
    _scripted_steps(monkeypatch, lambda point: worse)
    solution = solve_mimo(snapshot, 1e-5, "equal_cs", start=start)
    assert solution.info["status"] == "stalled" and solution.info["iterations"] == 0
    np.testing.assert_array_equal(solution.allocation.a, start.a)


def test_a_step_to_the_same_point_is_accepted_and_converges(monkeypatch):
    """The same point has exactly the EE lam: not a loss (the 1e-9 band is on the loss
    side), and a gain of 0 meets any tolerance."""
    snapshot = _snapshot(EASY)
    start = _split(snapshot, 0.25)
    _scripted_steps(monkeypatch, lambda point: point)
    solution = solve_mimo(snapshot, 1e-5, "equal_cs", start=start)
    assert solution.info["status"] == "converged" and solution.info["iterations"] == 1


@pytest.mark.parametrize(("where", "scheme"), [("loop", "equal_com"), ("phase1", "equal_cs")])
def test_a_failed_clarabel_solve_falls_back_to_fast_from_either_stage(monkeypatch, where, scheme):
    """Clarabel fails in the Dinkelbach loop (a feasible start) or in phase I (an
    infeasible start): both hand the frame, in its scheme, to the fast method."""
    monkeypatch.setattr(
        dinkelbach._SurrogateProgram, "_solve", lambda self, problem: (None, "solver error: mock")
    )
    snapshot = _snapshot(EASY)
    start = _split(snapshot, 0.25) if where == "loop" else _split(snapshot, 1e-4)
    assert evaluate(snapshot, start, 1e-5).feasible == (where == "loop")  # the premise
    solution = solve_mimo(snapshot, 1e-5, scheme, start=start)
    assert solution.info["fallback"] == "fast" and solution.feasible
    assert solution.info["reference_status"] == "solver_failed: solver error: mock"
    a, b = solution.allocation.a, solution.allocation.b
    if scheme == "equal_com":  # one power pair per subcarrier, the same for every user
        np.testing.assert_array_equal(a, a[:, :1] * np.ones(snapshot.K))
        np.testing.assert_array_equal(b, b[:, :1] * np.ones(snapshot.K))
        assert solution.ee >= evaluate(snapshot, start, 1e-5).ee  # from the last point
    else:
        np.testing.assert_array_equal(a, b)


def test_no_phase1_rounds_reports_the_start_as_infeasible():
    snapshot = _snapshot(HARD)
    solution = solve_mimo(snapshot, 1e-5, "equal_cs", phase1_rounds=0)
    assert solution.info["status"] == "infeasible" and solution.info["phase1_iterations"] == 0
    assert solution.info["iterations"] == 0 and solution.info["ee_trace"] == []  # no loop
    assert not solution.feasible and np.isfinite(solution.evaluation.ee)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(method="newton"), "method must be one of"),
        (dict(max_iterations=0), "^tol must be > 0, max_iterations >= 1, phase1_rounds >= 0, "),
        (dict(phase1_rounds=-1), "phase1_rounds >= 0"),
        (dict(margin=1.0), r"margin in \[0, 1\)"),
        (dict(margin=-1e-9), r"margin in \[0, 1\)"),
    ],
)
def test_bad_loop_settings_name_the_setting(kwargs, message):
    with pytest.raises(ValueError, match=message):
        solve_mimo(_snapshot(EASY), 1e-5, **kwargs)


def test_a_zero_margin_is_allowed():
    assert solve_mimo(_snapshot(EASY), 1e-5, "equal_cs", margin=0.0, max_iterations=2).feasible


@pytest.mark.parametrize("where", ["interior", "zero_a", "zero_b", "full_power"])
def test_the_fallback_starts_the_fast_method_from_the_last_point_if_interior(monkeypatch, where):
    """From an interior point the fast method continues there; from an amplitude at 0
    or a point spending all of P_max it restarts at the equal split of P_max / 2; it
    runs cold (warm=False) either way."""
    snapshot = _snapshot(EASY)
    constants = stream_constants(snapshot)
    point = _split(snapshot, 1.0 if where == "full_power" else 0.25)
    if where in ("zero_a", "zero_b"):
        getattr(point, where[-1])[1, 2] = 0.0
    seen = []
    monkeypatch.setattr(
        dinkelbach.direct,
        "solve_direct",
        lambda snapshot, constants, omega, scheme, point, **kw: (
            seen.append((point, kw["warm"]))
            or (point, evaluate(snapshot, point, omega, constants), {})
        ),
    )
    settings = dict(phase1_rounds=300, margin=1e-4, tol=1e-3, max_iterations=5)
    dinkelbach._fast_fallback(snapshot, constants, 1e-5, "proposed", point, settings,
                              {"status": "solver_failed: mock"})  # fmt: skip
    expected = point if where == "interior" else _split(snapshot, 0.5)
    ((started, warm),) = seen
    np.testing.assert_array_equal(started.a, expected.a)
    np.testing.assert_array_equal(started.b, expected.b)
    assert warm is False


def test_cvxpy_reaches_most_of_the_fast_ee_without_falling_back():
    """The CVXPY loop, judged on the true model against the independent fast method:
    converged by its own steps (no fallback) to at least 85 % of fast's EE, at LoR,
    HoR and pure sensing (the majorant) on drop 0 (measured: 89, 90 and 98 %)."""
    snapshot = _snapshot(SMALL)
    for omega in (1e-5, 2e-3, 1.0):
        reference = solve_mimo(snapshot, omega, method="fast")
        solution = solve_mimo(snapshot, omega)
        assert solution.info["status"] == "converged" and "fallback" not in solution.info
        assert solution.feasible and solution.ee >= 0.85 * reference.ee, omega


def _fake_solve(calls, warm_gain):
    """A stand-in for solve_mimo: EE = the frame's P_max, plus ``warm_gain`` when warm
    started; records (P_max, scheme, warm start given, options)."""

    def fake(frame, omega, scheme, warm_start=None, **options):
        calls.append((frame.P_max, scheme, warm_start is not None, options))
        ee = frame.P_max + (warm_gain if warm_start is not None else 0.0)
        evaluation = SimpleNamespace(feasible=True, ee=ee)
        return SimpleNamespace(feasible=True, evaluation=evaluation, allocation=frame.P_max,
                               info={})  # fmt: skip

    return fake


@pytest.mark.parametrize(("gain", "labels"), [
    (0.5, ["default", "previous_pmax", "previous_pmax"]),  # the warm start wins
    (-0.5, ["default", "default", "default"]),  # it loses: the default solve stays
])  # fmt: skip
def test_the_sweep_solves_each_budget_and_keeps_the_better_start(monkeypatch, gain, labels):
    calls = []
    monkeypatch.setattr(dinkelbach, "solve_mimo", _fake_solve(calls, gain))
    snapshot = _snapshot(EASY)
    out = solve_mimo_sweep(snapshot, 1e-5, [0.1, 0.2, 0.4], "equal_com", method="fast")
    assert [solution.info["sweep_start"] for solution in out] == labels
    assert calls == [
        (0.1, "equal_com", False, {"method": "fast"}),
        (0.2, "equal_com", False, {"method": "fast"}),
        (0.2, "equal_com", True, {"method": "fast"}),
        (0.4, "equal_com", False, {"method": "fast"}),
        (0.4, "equal_com", True, {"method": "fast"}),
    ]
    solve_mimo_sweep(snapshot, 1e-5, [0.1])
    assert calls[-1][1] == "proposed"  # the default scheme


@pytest.mark.parametrize("budgets", [[], [0.0, 1.0], [-1.0], [float("nan")], [float("inf")]])
def test_the_sweep_refuses_budgets_that_are_not_positive_and_finite(budgets):
    with pytest.raises(ValueError, match="P_max_values must be positive and non-decreasing"):
        solve_mimo_sweep(_snapshot(EASY), 1e-5, budgets)


def test_a_pure_sensing_step_raises_the_fisher_information():
    """omega = 1 at price 0: the step maximises the FIM minorant's F_thth + F_phph (the
    sensing term of (27)), tight at the point, so the true FIM trace of the angles rises
    (here from a quarter of P_max: to the whole budget)."""
    from isac_gym.mimo import fisher_information

    snapshot = _snapshot(EASY)
    constants = stream_constants(snapshot)
    point = _split(snapshot, 0.25)
    step, status = _SurrogateProgram(snapshot, constants, "proposed", 1e-4).dinkelbach_step(
        point, 0.0, 1.0
    )
    assert step is not None, status
    angles = lambda x: np.trace(fisher_information(constants, x)[:2, :2])  # noqa: E731
    assert angles(step) >= 2.0 * angles(point)  # measured: 3.4x


def _program_at(snapshot, point):
    """The proposed scheme's program, linearised at ``point``, its amplitudes fixed there."""
    constants = stream_constants(snapshot)
    program = _SurrogateProgram(snapshot, constants, "proposed", 1e-4)
    program._linearise(point)
    program.variables[0].value, program.variables[1].value = point.a, point.b
    return constants, program


def test_the_programs_power_is_the_true_transmit_power():
    """P_T in the programs is (11) exactly, (a + eps b)^2 + (1 - eps^2) b^2 per stream,
    on a cell whose stream correlations eps reach 0.27."""
    snapshot = _snapshot(EASY)
    rng = np.random.default_rng(0)
    for _ in range(3):
        point = equal_split(snapshot, stream_constants(snapshot), 0.5)
        point.a[...], point.b[...] = (
            0.2 * rng.random(point.a.shape),
            0.2 * rng.random(point.b.shape),
        )
        constants, program = _program_at(snapshot, point)
        assert np.abs(constants.eps).max() > 0.2  # the premise: eps matters
        true = evaluate(snapshot, point, 0.0, constants).transmit_power
        assert program.P_T.value == pytest.approx(true, rel=1e-12)


def test_the_crb_constraint_bounds_t_by_the_true_crb():
    """At the point the FIM minorant is the FIM (Jacobi-scaled, D F D with D = diag(F)^-1/2),
    so the largest t_i with F~ - t_i e_i e_i^T PSD is 1 / [(D F D)^-1]_ii, i.e.
    t_i F_ii CRB_i = 1 (Schur complement), with the CRB of the true model."""
    import cvxpy as cp

    snapshot = _snapshot(EASY)
    point = _split(snapshot, 0.5)
    constants, program = _program_at(snapshot, point)
    judged = evaluate(snapshot, point, 1e-5, constants)
    A, B = program.variables[0], program.variables[1]
    for i, crb in enumerate(judged.crb):  # (CRB_theta, CRB_phi), eq. (19)
        problem = cp.Problem(
            cp.Maximize(program.t[i]), [*program.crb_constraints, A == point.a, B == point.b]
        )
        problem.solve(solver=cp.CLARABEL)
        assert program.t.value[i] * program.fim_diag[i] * crb == pytest.approx(1.0, rel=1e-5)
