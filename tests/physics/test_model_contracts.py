"""Contracts of ``isac_gym.iscc.model`` that the hand cases of test_model.py leave open
(found by mutation testing, docs/testing.md): the tolerance of every check is inclusive to
the last bit, 0/0 and x/0 are silent, per-UE beta, and the conversions of Allocation."""

import warnings

import numpy as np
import pytest
from conftest import tiny_snapshot

from isac_gym.iscc import Allocation, evaluate
from isac_gym.iscc.model import ENERGY_ATOL, FEASIBILITY_RTOL, as_beta

TOL = 1.0 + FEASIBILITY_RTOL


def single_ue(**fields):
    snap = tiny_snapshot(H=[np.eye(2)], H_sense=[[[1.0, 2.0]]], **fields)
    alloc = Allocation(
        alpha=[0.25], f_u=[1.5], f_ap=[3.0], f=[[1, 0]], u=[[0, 1]], w=[[1, 1]], w_tilde=[[1]]
    )
    return snap, alloc


def bound_hitting(target: float, scaled, guess: float):
    """A float b with ``scaled(b) == target`` exactly, or None (not every float is hit)."""
    for direction in (np.inf, -np.inf):
        b = guess
        for _ in range(200):
            if scaled(b) == target:
                return b
            b = np.nextafter(b, direction)
    return None


def budget_on_bound(snap, alloc):
    """(allocation, budget) with budget * TOL + ENERGY_ATOL == E^u exactly (f_u nudged)."""
    f_u = 1.5
    for _ in range(100):
        nudged = alloc.replace(f_u=[f_u])
        energy = evaluate(snap, nudged, 1.0).energy_ue[0]
        budget = bound_hitting(
            energy, lambda b: b * TOL + ENERGY_ATOL, (energy - ENERGY_ATOL) / TOL
        )
        if budget is not None:
            return nudged, budget
        f_u = np.nextafter(f_u, np.inf)
    raise AssertionError("no budget hits E^u exactly")


def test_every_tolerance_is_inclusive_to_the_last_bit():
    snap, alloc = single_ue()
    ev = evaluate(snap, alloc, 1.0)

    def on(value):
        return bound_hitting(value, lambda b: b * TOL, value / TOL)

    cases = {
        "latency": (alloc, dict(tau=np.array([on(ev.latency[0])]))),
        "cpu_ue": (alloc, dict(C_u=np.array([on(1.5)]))),
        "power": (alloc, dict(P_max=on(ev.power[0]))),
        "cpu_ap": (alloc, dict(C_ap=on(3.0))),
        "sensing": (alloc, dict(gamma_s=ev.sinr_s[0] * TOL)),
    }
    nudged, budget = budget_on_bound(snap, alloc)
    cases["energy_budget"] = (nudged, dict(energy_budget=np.array([budget])))
    for name, (allocation, change) in cases.items():
        ((field, value),) = change.items()
        assert value is not None, name  # a float bound was found
        assert evaluate(snap.replace(**change), allocation, 1.0).checks[name][0], name
        # one ulp tighter and the check fails: the case really sits on the bound
        tighter = np.nextafter(value, np.inf if name == "sensing" else -np.inf)
        tight = evaluate(snap.replace(**{field: tighter}), allocation, 1.0)
        assert not tight.checks[name][0], name


def test_zero_budget_with_zero_use_passes():
    snap, alloc = single_ue(energy_budget=np.array([0.0]))
    idle = alloc.replace(alpha=[0.0], f_u=[0.0], f_ap=[0.0])  # no energy at all
    ev = evaluate(snap, idle, 1.0)
    assert ev.energy_ue[0] == 0.0 and ev.checks["energy_budget"][0]


def test_zero_cpu_is_allowed_when_nothing_runs_there():
    snap, alloc = single_ue()
    ev = evaluate(snap, alloc.replace(alpha=[1.0], f_u=[0.0]), 1.0)
    assert ev.checks["cpu_ue"][0] and ev.t_local[0] == 0.0


def test_a_small_ap_share_still_counts_as_using_the_ap():
    H = np.zeros((2, 2, 2), complex)
    H[0, 0, 0] = H[1, 1, 1] = 1.0
    snap = tiny_snapshot(H=H, H_sense=H)  # C_ap = 10
    eye = np.eye(2, dtype=complex)
    alloc = Allocation(np.full(2, 0.5), np.ones(2), np.array([10.5, 0.5]), eye, eye, eye, eye)
    np.testing.assert_array_equal(evaluate(snap, alloc, 1.0).checks["cpu_ap"], [False, False])


def test_division_by_zero_is_silent():
    snap, alloc = single_ue()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would fail the test
        ev = evaluate(snap, alloc.replace(f=[[0, 0]], u=[[0, 0]], f_ap=[0.0]), 1.0)
        ev0 = evaluate(snap, alloc.replace(alpha=[0.0], f_ap=[0.0], f_u=[0.0]), 1.0)
    assert np.isinf(ev.t_com[0]) and np.isinf(ev.energy_isac[0]) and np.isinf(ev.t_proc[0])
    assert np.isinf(ev0.t_local[0]) and ev0.t_com[0] == 0.0


def test_per_ue_beta_weighs_each_ap_energy_and_is_copied():
    H = np.zeros((2, 2, 2), complex)
    H[0, 0, 0] = H[1, 1, 1] = 1.0
    snap = tiny_snapshot(H=H, H_sense=H)
    eye = np.eye(2, dtype=complex)
    alloc = Allocation(np.full(2, 0.5), np.ones(2), np.array([1.0, 2.0]), eye, eye, eye, eye)
    beta = np.array([0.5, 4.0])
    ev = evaluate(snap, alloc, beta)
    # E^ap = xi_ap f_ap^2 varpi alpha Q = 0.1 * [1, 4] * 3 * 1 = [0.3, 1.2]
    np.testing.assert_allclose(ev.energy_ap, [0.3, 1.2], rtol=1e-12)
    assert ev.cost == pytest.approx(ev.energy_ue.sum() + 0.5 * 0.3 + 4.0 * 1.2, rel=1e-12)
    beta[0] = 99.0  # the Evaluation keeps its own copy
    assert ev.beta[0] == 0.5
    assert as_beta(1, 2).dtype == np.float64 and as_beta(np.array([1, 2]), 2).dtype == float


def test_allocation_converts_to_float_and_complex_arrays():
    alloc = Allocation(
        alpha=np.array([0, 1]),  # int arrays and lists become float / complex
        f_u=[1, 2],
        f_ap=np.array(3.0),  # 0-d becomes (1,)
        f=[[1, 0]],
        u=np.array([[0, 1]]),
        w=[[1, 1]],
        w_tilde=[[1]],
    )
    for name in ("alpha", "f_u", "f_ap"):
        assert getattr(alloc, name).dtype == np.float64 and getattr(alloc, name).ndim == 1
    for name in ("f", "u", "w", "w_tilde"):
        assert getattr(alloc, name).dtype == np.complex128, name
    assert alloc.f_ap.shape == (1,)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_huge_finite_values_are_not_mistaken_for_inf():
    snap, alloc = single_ue()
    big = alloc.replace(f_u=[1e308], f=[[1e308, 1e308]])  # f's sum overflows, entries finite
    big.check_shapes(snap)  # no ValueError
    with pytest.raises(ValueError, match=r"^Allocation\.bandwidth_share must be > 0 for every UE$"):
        alloc.replace(bandwidth_share=[0.0]).check_shapes(snap)
