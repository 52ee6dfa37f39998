"""Each constraint check of ``evaluate`` (17b)-(17g) and the energy budget, on both sides
of its bound, with hand-made cases whose numbers are computed by hand in the comments.

The solvers keep margins (1e-4 on (17b)), so a check that is wrong *at* its bound survives
every solver test; these cases sit on the bound and just past the tolerance.
"""

import numpy as np
import pytest
from conftest import tiny_snapshot

from isac_gym.iscc import Allocation, evaluate
from isac_gym.iscc.model import FEASIBILITY_RTOL


def single_ue(**snapshot_fields):
    """K = 1: sinr_s = |H~ u|^2 / (|H~ f|^2 + noise) = 4 / (1 + 0.5) = 8/3 exactly."""
    snap = tiny_snapshot(H=[np.eye(2)], H_sense=[[[1.0, 2.0]]], **snapshot_fields)
    alloc = Allocation(
        alpha=[0.5], f_u=[1.5], f_ap=[3.0], f=[[1, 0]], u=[[0, 1]], w=[[1, 1]], w_tilde=[[1]]
    )
    return snap, alloc


SINR_S = 8.0 / 3.0


@pytest.mark.parametrize(
    ("gamma_s", "met"),
    [
        (SINR_S, True),  # exactly on the bound
        (SINR_S * (1 + 0.5 * FEASIBILITY_RTOL), True),  # inside the tolerance
        (SINR_S * (1 + 10 * FEASIBILITY_RTOL), False),  # just past it
        (SINR_S / 0.95, False),  # sinr_s = 0.95 gamma_s
        (SINR_S * 0.95, True),
    ],
)
def test_sensing_17b_at_its_threshold(gamma_s, met):
    snap, alloc = single_ue(gamma_s=gamma_s)
    ev = evaluate(snap, alloc, 1.0)
    assert ev.sinr_s[0] == pytest.approx(SINR_S, rel=1e-15)
    assert ev.checks["sensing"][0] == met
    assert ev.feasible[0] == met  # every other constraint holds with a wide margin


def two_ues(f_ap, C_ap=10.0):
    """K = 2 on orthogonal antennas, each far inside its own limits."""
    H = np.zeros((2, 2, 2), complex)
    H[0, 0, 0] = H[1, 1, 1] = 1.0
    Hs = np.zeros((2, 2, 2), complex)
    Hs[0, 0, 1] = Hs[1, 1, 0] = 2.0
    snap = tiny_snapshot(H=H, H_sense=Hs, C_ap=C_ap)
    f = np.array([[1, 0], [0, 1]], complex)
    u = np.array([[0, 1], [1, 0]], complex)
    alloc = Allocation(np.full(2, 0.5), np.full(2, 1.5), np.asarray(f_ap, float), f, u, f, f)
    return snap, alloc


@pytest.mark.parametrize(
    ("f_ap", "ok"),
    [
        ([6.0, 6.0], False),  # each <= C_ap = 10, the sum 12 is not: (17e) is a sum
        ([5.0, 5.0], True),  # the sum exactly at C_ap
        ([5.0, 5.0 + 1e-4], False),  # the sum 1e-5 relative above it (tolerance 1e-6)
        ([9.0, 0.5], True),
    ],
)
def test_ap_capacity_17e_is_on_the_sum(f_ap, ok):
    snap, alloc = two_ues(f_ap)
    ev = evaluate(snap, alloc, 1.0)
    np.testing.assert_array_equal(ev.checks["cpu_ap"], [ok, ok])
    np.testing.assert_array_equal(ev.feasible, [ok, ok])


def test_ap_capacity_marks_only_the_ues_that_use_the_ap():
    snap, alloc = two_ues([12.0, 0.0])  # UE 1 computes locally (alpha = 0)
    ev = evaluate(snap, alloc.replace(alpha=np.array([0.5, 0.0])), 1.0)
    np.testing.assert_array_equal(ev.checks["cpu_ap"], [False, True])


def test_cpu_limits_at_their_bounds():
    snap, alloc = single_ue()  # C_u = 5
    assert evaluate(snap, alloc.replace(f_u=[5.0]), 1.0).checks["cpu_ue"][0]
    assert not evaluate(snap, alloc.replace(f_u=[5.0 * (1 + 1e-5)]), 1.0).checks["cpu_ue"][0]
    assert not evaluate(snap, alloc.replace(f_u=[-1e-9]), 1.0).checks["cpu_ue"][0]
    assert not evaluate(snap, alloc.replace(f_ap=[-1e-9]), 1.0).checks["cpu_ap"][0]
    for alpha, ok in ((0.0, True), (1.0, True), (-1e-9, False), (1 + 1e-9, False)):
        assert evaluate(snap, alloc.replace(alpha=[alpha]), 1.0).checks["alpha"][0] == ok


def test_power_17g_at_its_bound():
    snap, alloc = single_ue()  # P = ||f||^2 + ||u||^2 = 2; P_max = 4
    on_bound = alloc.replace(f=[[np.sqrt(3.0), 0]])  # P = 3 + 1 = 4
    assert evaluate(snap, on_bound, 1.0).checks["power"][0]
    over = alloc.replace(f=[[np.sqrt(3.0 * (1 + 1e-5) + 4e-5), 0]])
    assert not evaluate(snap, over, 1.0).checks["power"][0]


def test_energy_budget_is_on_the_ue_energy_not_the_local_energy():
    # B = 1 Hz makes the offloading energy visible: sinr_c = 1 / (1 + 0.5 * 2) = 0.5,
    # R = log2(1.5) bit/s, t_com = alpha Q / R = 1 / log2(1.5) s, E_isac = P t_com,
    # P = 2 W; E_local = xi_u f_u^2 varpi (1 - alpha) Q = 0.2 * 2.25 * 3 * 1 = 1.35 J.
    snap, alloc = single_ue(B=1.0)
    e_isac = 2.0 / np.log2(1.5)
    e_local = 1.35
    ev = evaluate(snap, alloc, 1.0)
    assert ev.energy_isac[0] == pytest.approx(e_isac, rel=1e-12)
    assert ev.energy_local[0] == pytest.approx(e_local, rel=1e-12)
    for budget, ok in (
        (e_local + e_isac, True),  # exactly E^u
        (e_local + 0.5 * e_isac, False),  # between E_local and E^u
        ((e_local + e_isac) * (1 - 1e-5), False),
    ):
        ev = evaluate(snap.replace(energy_budget=np.array([budget])), alloc, 1.0)
        assert ev.checks["energy_budget"][0] == ok, budget
        assert ev.feasible[0] == ok


def test_latency_17c_at_its_bound_on_the_offloading_side():
    # B = 1 Hz: t_off = t_com + t_proc = 1 / log2(1.5) + 3 * 1 / 3 = 2.7095 s > t_local = 2 s
    snap, alloc = single_ue(B=1.0)
    t_off = 1.0 / np.log2(1.5) + 1.0
    assert evaluate(snap, alloc, 1.0).latency[0] == pytest.approx(t_off, rel=1e-12)
    assert evaluate(snap.replace(tau=np.array([t_off])), alloc, 1.0).checks["latency"][0]
    late = snap.replace(tau=np.array([t_off * (1 - 1e-5)]))
    assert not evaluate(late, alloc, 1.0).checks["latency"][0]
