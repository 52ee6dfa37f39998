"""The CVXPY reference of optimizers/iscc/reference.py against closed forms and the true model."""

import numpy as np
import pytest
from conftest import tiny_snapshot
from scipy.optimize import minimize_scalar

from isac_gym.demo import simple_allocation
from isac_gym.iscc import (
    Allocation,
    ISCCConfig,
    beam_directions,
    comm_combiners,
    evaluate,
    sample_snapshot,
    sensing_combiners,
)
from optimizers.iscc.reference import (
    compute_allocation_cvxpy,
    compute_objective,
    sdr_beams_cvxpy,
    solve_reference,
)

OK = ("optimal", "optimal_inaccurate")


def paper_snapshot(seed=0, **config):
    return sample_snapshot(ISCCConfig.paper(**config), np.random.default_rng(seed))


def single_ue(**overrides):
    """K = 1 paper-like compute data (Q = 1e6 bit, tau = 0.4 s, varpi = 1e3, xi = 1e-28)."""
    fields = dict(
        Q=np.array([1e6]),
        tau=np.array([0.4]),
        C_u=np.array([1e15]),
        xi_u=np.array([1e-28]),
        varpi=np.array([1e3]),
        xi_ap=1e-28,
        C_ap=1e15,
        energy_budget=np.array([np.inf]),
    )
    fields.update(overrides)
    return tiny_snapshot(np.ones((1, 1, 1)), np.ones((1, 1, 1)), **fields)


def energy_coefficients(snap, beta):
    cube = snap.varpi**3 * snap.Q**3 / snap.tau**2
    return snap.xi_u * cube, beta * snap.xi_ap * cube  # a, b of (14), (15)


def test_closed_form_single_ue_no_caps():
    # P = 0 and c = Q/R = 1e-8 tau: minimise a (1-alpha)^3 + b alpha^3 -> 1/(1+sqrt(b/a))
    snap = single_ue()
    beta = 0.3
    rate = np.array([1e8 * 1e6 / 0.4])
    result = compute_allocation_cvxpy(snap, beta, rate, np.array([0.0]))
    assert result["status"] in OK
    a, b = energy_coefficients(snap, beta)
    expected = 1.0 / (1.0 + np.sqrt(b[0] / a[0]))
    assert result["alpha"][0] == pytest.approx(expected, abs=1e-4)
    # frequencies at their latency bounds, eqs. (10)-(11)
    assert result["f_u"][0] == pytest.approx(1e9 * (1 - result["alpha"][0]) / 0.4, rel=1e-9)
    t_com = result["alpha"][0] * 1e6 / rate[0]
    assert result["f_ap"][0] == pytest.approx(1e9 * result["alpha"][0] / (0.4 - t_com), rel=1e-9)
    # the reported objective is the cost (17a) written out: a (1-alpha)^3 + b alpha^3 / s^2
    x, d = result["alpha"][0], 1e6 / rate[0] / 0.4
    hand = a[0] * (1 - x) ** 3 + b[0] * x**3 / (1 - d * x) ** 2
    assert result["objective"] == pytest.approx(hand, rel=1e-9)
    assert result["objective"] == pytest.approx(
        a[0] * (1 - expected) ** 3 + b[0] * expected**3, rel=1e-6
    )


def test_matches_scalar_minimisation_with_slow_link_and_power():
    # c = 0.1 s of a 0.4 s budget and P = 2 W: no closed form, compare with a 1-D search.
    snap = single_ue()
    beta, rate, power = 0.5, np.array([1e7]), np.array([2.0])
    result = compute_allocation_cvxpy(snap, beta, rate, power)
    assert result["status"] in OK

    def cost(x):
        return compute_objective(snap, [x], beta, rate, power)

    best = minimize_scalar(
        cost, bounds=(0.0, 0.4 / 0.1 * (1 - 1e-9)), method="bounded", options=dict(xatol=1e-12)
    )
    best_alpha = min(best.x, 1.0)
    assert result["alpha"][0] == pytest.approx(best_alpha, abs=1e-4)
    assert result["objective"] <= cost(best_alpha) * (1 + 1e-6)


def test_ap_capacity_binds_at_optimum():
    snap = paper_snapshot()
    rate, power = np.full(snap.K, 2.4e8), np.full(snap.K, 0.01)
    free = compute_allocation_cvxpy(snap, 0.1, rate, power)
    assert free["status"] in OK
    assert np.sum(free["f_ap"]) < snap.C_ap  # the default cap is slack
    cap = 0.9 * np.sum(free["f_ap"])  # alpha >= 0.6 from C_u keeps this feasible
    tight = compute_allocation_cvxpy(snap.replace(C_ap=cap), 0.1, rate, power)
    assert tight["status"] in OK
    assert np.sum(tight["f_ap"]) == pytest.approx(cap, rel=1e-5)  # (17e) active
    assert np.all(tight["alpha"] < free["alpha"] - 1e-3)
    assert tight["objective"] > free["objective"]


def test_ue_cpu_cap_forces_offloading():
    snap = single_ue(C_u=np.array([2e8]))  # unconstrained optimum (beta = 1) is alpha = 0.5
    result = compute_allocation_cvxpy(snap, 1.0, np.array([1e15]), np.array([0.0]))
    assert result["status"] in OK
    bound = 1.0 - 2e8 * 0.4 / (1e3 * 1e6)  # alpha >= 1 - C_u tau / (varpi Q) = 0.92
    assert result["alpha"][0] >= bound - 1e-7
    assert result["alpha"][0] == pytest.approx(bound, abs=1e-5)
    assert result["f_u"][0] <= 2e8 * (1 + 1e-6)


def test_energy_budget_is_respected():
    snap = paper_snapshot(tau=1.0)  # C_u no longer binds: alpha ~ 0.5 at beta = 1
    rate, power = np.full(snap.K, 2.4e8), np.full(snap.K, 0.01)
    free = compute_allocation_cvxpy(snap, 1.0, rate, power)
    assert free["alpha"] == pytest.approx(0.5, abs=1e-3)
    used = power * free["alpha"] * snap.Q / rate + snap.xi_u * free["f_u"] ** 2 * (
        snap.varpi * (1 - free["alpha"]) * snap.Q
    )  # E^u, (13)-(16)
    budget = 0.5 * used
    limited = compute_allocation_cvxpy(snap.replace(energy_budget=budget), 1.0, rate, power)
    assert limited["status"] in OK
    e_ue = power * limited["alpha"] * snap.Q / rate + snap.xi_u * limited["f_u"] ** 2 * (
        snap.varpi * (1 - limited["alpha"]) * snap.Q
    )
    assert np.all(e_ue <= budget * (1 + 1e-5))
    assert np.all(e_ue >= budget * (1 - 1e-4))  # the budget binds
    assert np.all(limited["alpha"] > free["alpha"])


def test_infeasible_returns_status_without_raising():
    snap = paper_snapshot().replace(tau=1e-4)  # neither the UE CPU nor the link can make it
    result = compute_allocation_cvxpy(snap, 0.1, np.full(snap.K, 2.4e8), np.full(snap.K, 0.01))
    assert result["status"] not in OK
    assert np.all(np.isnan(result["alpha"]))
    assert result["objective"] == np.inf


def _random_tiny(seed):
    rng = np.random.default_rng(seed)

    def cn(*shape):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)

    H, H_sense = cn(2, 4, 3), cn(2, 2, 3)
    f, u = cn(2, 3), cn(2, 3)
    scale = np.sqrt(4.0 / (np.sum(np.abs(f) ** 2 + np.abs(u) ** 2, axis=1)))[:, None]  # P_max
    f, u = 0.9 * f * scale, 0.9 * u * scale
    return H, H_sense, f, u


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sdr_meets_targets_and_beats_a_feasible_point(seed):
    H, H_sense, f, u = _random_tiny(seed)
    probe = tiny_snapshot(H, H_sense)
    w, w_tilde = comm_combiners(probe, f, u), sensing_combiners(probe, f, u)
    zeros = np.zeros(2)
    point = evaluate(probe, Allocation(zeros, zeros, zeros, f, u, w, w_tilde), 1.0)
    # targets the rank-one point (f, u) meets with margin: it is feasible for the SDR
    snap = tiny_snapshot(H, H_sense, gamma_s=0.8 * point.sinr_s.min())
    gamma_c = 0.8 * point.sinr_c
    result = sdr_beams_cvxpy(snap, w, w_tilde, gamma_c)
    assert result["status"] in OK
    assert result["objective"] <= point.power.sum() * (1 + 1e-6)
    assert np.trace(result["F"] + result["R"], axis1=1, axis2=2).real.sum() == pytest.approx(
        result["objective"], rel=1e-6
    )
    assert result["rank_ratio"] < 1e-6
    ev = evaluate(snap, Allocation(zeros, zeros, zeros, result["f"], result["u"], w, w_tilde), 1)
    assert np.all(ev.sinr_c >= gamma_c * (1 - 1e-3))
    assert np.all(ev.sinr_s >= snap.gamma_s * (1 - 1e-3))
    assert np.all(ev.power <= snap.P_max * (1 + 1e-6))
    assert ev.power.sum() == pytest.approx(result["objective"], rel=1e-3)
    # minimum power: the weighted power is tight against at least one SINR target per UE
    tight_c = ev.sinr_c <= gamma_c * (1 + 1e-3)
    tight_s = ev.sinr_s <= snap.gamma_s * (1 + 1e-3)
    assert np.all(tight_c | tight_s)


def test_sdr_infeasible_targets():
    H, H_sense, f, u = _random_tiny(0)
    snap = tiny_snapshot(H, H_sense)
    w, w_tilde = comm_combiners(snap, f, u), sensing_combiners(snap, f, u)
    result = sdr_beams_cvxpy(snap, w, w_tilde, [1e6, 1e6])  # far beyond P_max
    assert result["status"] not in OK
    assert np.isnan(result["rank_ratio"])


def test_sdr_paper_size_runs_and_meets_targets():
    snap = paper_snapshot(seed=1)
    f_dir, u_dir = beam_directions(snap)
    f, u = f_dir * np.sqrt(snap.P_max / 2), u_dir * np.sqrt(snap.P_max / 2)
    w, w_tilde = comm_combiners(snap, f, u), sensing_combiners(snap, f, u)
    zeros = np.zeros(snap.K)
    point = evaluate(snap, Allocation(zeros, zeros, zeros, f, u, w, w_tilde), 1.0)
    gamma_c = point.sinr_c / 4
    result = sdr_beams_cvxpy(snap, w, w_tilde, gamma_c)
    assert result["status"] in OK
    assert result["F"].shape == (snap.K, 64, 64)
    ev = evaluate(snap, Allocation(zeros, zeros, zeros, result["f"], result["u"], w, w_tilde), 1)
    assert np.all(ev.sinr_c >= gamma_c * (1 - 1e-3))
    assert np.all(ev.sinr_s >= snap.gamma_s * (1 - 1e-3))
    assert ev.power.sum() < point.power.sum()


def test_solve_reference_beats_simple_allocation_tiny():
    H, H_sense, _, _ = _random_tiny(3)
    snap = tiny_snapshot(H, H_sense)
    alloc = solve_reference(snap, 0.5, rounds=2)
    ev = evaluate(snap, alloc, 0.5)
    assert np.all(ev.feasible), ev.violations()
    baseline = evaluate(snap, simple_allocation(snap, 0.5), 0.5)
    assert ev.cost <= baseline.cost * (1 + 1e-9)


def test_solve_reference_paper_default():
    snap = paper_snapshot(seed=0)
    alloc = solve_reference(snap, 0.1)
    ev = evaluate(snap, alloc, 0.1)
    assert np.all(ev.feasible), ev.violations()
    assert ev.cost <= evaluate(snap, simple_allocation(snap, 0.76), 0.1).cost * (1 + 1e-9)
