"""The true model of eqs. (2), (7)-(17): hand-computed cases, a loop reference, limits."""

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import tiny_snapshot
from hypothesis import given, settings
from hypothesis import strategies as st

from isac_gym.demo import simple_allocation
from isac_gym.iscc import CONSTRAINTS, Allocation, ISCCConfig, evaluate, sample_snapshot, sinr_terms
from isac_gym.iscc.model import FEASIBILITY_RTOL, constraint_checks


def tiny_k1():
    snap = tiny_snapshot(H=[np.eye(2)], H_sense=[[[1.0, 2.0]]])
    alloc = Allocation(
        alpha=[0.25], f_u=[1.5], f_ap=[3.0], f=[[1, 0]], u=[[0, 1]], w=[[1, 1]], w_tilde=[[1]]
    )
    return snap, alloc


def test_hand_computed_single_ue():
    # alpha = 0.25 (not 0.5), so a swap of alpha and 1 - alpha shows; Q = 2:
    # offloaded alpha Q = 0.5 bit, local (1 - alpha) Q = 1.5 bit
    snap, alloc = tiny_k1()
    ev = evaluate(snap, alloc, beta=0.5)
    # (7): |w^H H f|^2 = 1, sensing leakage |w^H H u|^2 = 1, noise 0.5 * ||w||^2 = 1
    assert ev.sinr_c[0] == pytest.approx(0.5)
    # (8): |H~ u|^2 = 4, own comm echo |H~ f|^2 = 1, noise 0.5
    assert ev.sinr_s[0] == pytest.approx(4 / 1.5)
    rate = 1e6 * np.log2(1.5)
    assert ev.rate[0] == pytest.approx(rate)  # (9)
    assert ev.t_local[0] == pytest.approx(3 * 1.5 / 1.5)  # (10): varpi (1-a) Q / f_u
    assert ev.t_com[0] == pytest.approx(0.5 / rate)  # (11): a Q / R
    assert ev.t_proc[0] == pytest.approx(3 * 0.5 / 3.0)  # (11): varpi a Q / f_ap
    assert ev.latency[0] == pytest.approx(3.0)  # (12)
    assert ev.power[0] == pytest.approx(2.0)  # (2)
    assert ev.energy_isac[0] == pytest.approx(2.0 * 0.5 / rate)  # (13)
    assert ev.energy_local[0] == pytest.approx(0.2 * 1.5**2 * 3 * 1.5)  # (14): 2.025
    assert ev.energy_ap[0] == pytest.approx(0.1 * 3.0**2 * 3 * 0.5)  # (15): 1.35
    assert ev.energy_ue[0] == pytest.approx(1.0 / rate + 2.025)  # (16)
    assert ev.cost == pytest.approx(1.0 / rate + 2.025 + 0.5 * 1.35)  # (17a)
    assert ev.cost_of([0]) == ev.cost and ev.cost_of(np.zeros(1, bool)) == 0.0
    assert ev.feasible[0]


def loop_reference_sinrs(snap, a):
    """Eqs. (7) and (8) written literally, one UE and one term at a time."""
    K = snap.K
    sinr_c, sinr_s = np.zeros(K), np.zeros(K)
    for k in range(K):
        w, wt = a.w[k], a.w_tilde[k]
        interference = sum(abs(w.conj() @ snap.H[j] @ a.u[j]) ** 2 for j in range(K))
        interference += sum(abs(w.conj() @ snap.H[j] @ a.f[j]) ** 2 for j in range(K) if j != k)
        sinr_c[k] = abs(w.conj() @ snap.H[k] @ a.f[k]) ** 2 / (
            interference + snap.noise * np.linalg.norm(w) ** 2
        )
        interference = sum(abs(wt.conj() @ snap.H_sense[j] @ a.f[j]) ** 2 for j in range(K))
        interference += sum(
            abs(wt.conj() @ snap.H_sense[j] @ a.u[j]) ** 2 for j in range(K) if j != k
        )
        sinr_s[k] = abs(wt.conj() @ snap.H_sense[k] @ a.u[k]) ** 2 / (
            interference + snap.noise * np.linalg.norm(wt) ** 2
        )
    return sinr_c, sinr_s


def random_case(seed, K=3, M_a=4, M_ut=3, M_ur=2):
    rng = np.random.default_rng(seed)

    def cn(*shape):
        return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)

    snap = tiny_snapshot(H=cn(K, M_a, M_ut), H_sense=cn(K, M_ur, M_ut))
    alloc = Allocation(
        alpha=rng.uniform(0, 1, K),
        f_u=rng.uniform(1, 5, K),
        f_ap=rng.uniform(1, 3, K),
        f=cn(K, M_ut),
        u=cn(K, M_ut),
        w=cn(K, M_a),
        w_tilde=cn(K, M_ur),
    )
    return snap, alloc


@pytest.mark.parametrize("seed", range(5))
def test_sinrs_match_literal_loops(seed):
    snap, alloc = random_case(seed)
    ev = evaluate(snap, alloc, 1.0)
    ref_c, ref_s = loop_reference_sinrs(snap, alloc)
    np.testing.assert_allclose(ev.sinr_c, ref_c, rtol=1e-12)
    np.testing.assert_allclose(ev.sinr_s, ref_s, rtol=1e-12)


def test_alpha_zero_means_no_offloading_energy_or_latency():
    snap, alloc = random_case(1)
    ev = evaluate(snap, alloc.replace(alpha=np.zeros(3), f_ap=np.zeros(3)), 1.0)
    np.testing.assert_array_equal(ev.t_com, 0.0)
    np.testing.assert_array_equal(ev.t_off, 0.0)
    np.testing.assert_array_equal(ev.energy_isac, 0.0)
    np.testing.assert_array_equal(ev.energy_ap, 0.0)
    np.testing.assert_allclose(ev.latency, ev.t_local)
    assert np.all(ev.checks["cpu_ap"])  # f_ap = 0 is allowed when nothing is offloaded


def test_alpha_one_means_no_local_work():
    snap, alloc = random_case(2)
    ev = evaluate(snap, alloc.replace(alpha=np.ones(3), f_u=np.zeros(3)), 1.0)
    np.testing.assert_array_equal(ev.t_local, 0.0)
    np.testing.assert_array_equal(ev.energy_local, 0.0)
    assert np.all(np.isfinite(ev.latency))


def test_orthogonal_beams_give_zero_interference():
    # Each UE's signals live on their own antennas at the AP and at the UE.
    K, M = 2, 4
    H = np.zeros((K, M, M), complex)
    H[0, 0, 0] = H[1, 1, 1] = 1.0
    H[0, 2, 2] = H[1, 3, 3] = 1.0
    Hs = np.zeros((K, M, M), complex)
    Hs[0, 2, 2] = 2.0
    Hs[1, 3, 3] = 3.0
    snap = tiny_snapshot(H=H, H_sense=Hs)
    f = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], complex)
    u = np.array([[0, 0, 1, 0], [0, 0, 0, 1]], complex)
    w = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], complex)
    wt = np.array([[0, 0, 1, 0], [0, 0, 0, 1]], complex)
    alloc = Allocation(np.full(K, 0.5), np.ones(K), np.ones(K), f, u, w, wt)
    sig_c, den_c, sig_s, den_s = sinr_terms(snap, alloc)
    np.testing.assert_allclose(den_c, snap.noise)  # noise only
    np.testing.assert_allclose(den_s, snap.noise)
    np.testing.assert_allclose(evaluate(snap, alloc, 1).sinr_s, [4 / 0.5, 9 / 0.5])


def test_doubling_power_raises_sinr_as_predicted():
    snap, alloc = random_case(3)
    s_c, d_c, s_s, d_s = sinr_terms(snap, alloc)
    root2 = np.sqrt(2.0)
    ev2 = evaluate(snap, alloc.replace(f=alloc.f * root2, u=alloc.u * root2), 1.0)
    noise_c = snap.noise * np.sum(abs(alloc.w) ** 2, axis=1)
    noise_s = snap.noise * np.sum(abs(alloc.w_tilde) ** 2, axis=1)
    # gamma' = 2 S / (2 (D - N) + N): higher than gamma, below 2 gamma
    np.testing.assert_allclose(ev2.sinr_c, 2 * s_c / (2 * (d_c - noise_c) + noise_c))
    np.testing.assert_allclose(ev2.sinr_s, 2 * s_s / (2 * (d_s - noise_s) + noise_s))
    ev1 = evaluate(snap, alloc, 1.0)
    assert np.all(ev2.sinr_c > ev1.sinr_c) and np.all(ev2.sinr_c < 2 * ev1.sinr_c)
    assert np.all(ev2.power == pytest.approx(2 * ev1.power))


def test_noise_limited_sinr_doubles_with_power():
    snap, alloc = tiny_k1()
    alloc = alloc.replace(w=[[1, 0]])  # the AP combiner no longer sees u
    ev1 = evaluate(snap, alloc.replace(u=[[0, 0]], f=[[1, 0]]), 1.0)
    ev2 = evaluate(snap, alloc.replace(u=[[0, 0]], f=[[np.sqrt(2), 0]]), 1.0)
    assert ev2.sinr_c[0] == pytest.approx(2 * ev1.sinr_c[0])


def test_orthogonal_access_drops_cross_terms_and_scales_noise():
    snap, alloc = random_case(4)
    share = np.array([0.2, 0.3, 0.5])
    ev = evaluate(snap, alloc.replace(bandwidth_share=share), 1.0)
    for k in range(3):
        w, wt = alloc.w[k], alloc.w_tilde[k]
        ref_c = abs(w.conj() @ snap.H[k] @ alloc.f[k]) ** 2 / (
            abs(w.conj() @ snap.H[k] @ alloc.u[k]) ** 2
            + share[k] * snap.noise * np.linalg.norm(w) ** 2
        )
        ref_s = abs(wt.conj() @ snap.H_sense[k] @ alloc.u[k]) ** 2 / (
            abs(wt.conj() @ snap.H_sense[k] @ alloc.f[k]) ** 2
            + share[k] * snap.noise * np.linalg.norm(wt) ** 2
        )
        assert ev.sinr_c[k] == pytest.approx(ref_c)
        assert ev.sinr_s[k] == pytest.approx(ref_s)
        assert ev.rate[k] == pytest.approx(share[k] * snap.B * np.log2(1 + ref_c))


def test_constraint_checks_name_the_violations():
    snap, alloc = tiny_k1()
    assert evaluate(snap, alloc, 1.0).violations() == {}
    cases = {
        "latency": dict(f_u=[0.1]),  # t_local = 30 s > tau = 10 s
        "cpu_ue": dict(f_u=[6.0]),  # C_u = 5
        "cpu_ap": dict(f_ap=[11.0]),  # C_ap = 10
        "power": dict(f=[[2, 0]]),  # P = 5 > 4
        "alpha": dict(alpha=[1.2]),
        "sensing": dict(u=[[0, 0.1]]),
    }
    for name, change in cases.items():
        ev = evaluate(snap, alloc.replace(**change), 1.0)
        assert name in ev.violations()[0], name
        assert not ev.feasible[0]
    budget = evaluate(snap.replace(energy_budget=[1.0]), alloc, 1.0)
    assert budget.violations() == {0: ["energy_budget"]}


def test_tolerance_accepts_an_allocation_on_its_bound_and_no_more():
    snap, alloc = tiny_k1()
    on_bound = alloc.replace(f_u=[0.45])  # t_local = 3 * 1.5 / 0.45 = 10 = tau
    assert evaluate(snap, on_bound, 1.0).feasible[0]
    assert not evaluate(snap, alloc.replace(f_u=[0.45 * (1 - 1e-4)]), 1.0).feasible[0]


def test_zero_rate_with_offloading_is_infinite_not_nan():
    snap, alloc = tiny_k1()
    ev = evaluate(snap, alloc.replace(f=[[0, 0]], u=[[0, 0]]), 1.0)
    assert ev.rate[0] == 0 and np.isinf(ev.t_com[0]) and np.isinf(ev.energy_isac[0])
    assert not ev.feasible[0]
    assert not np.isnan(ev.cost)
    ev = evaluate(snap, alloc.replace(w=[[0, 0]], w_tilde=[[0]]), 1.0)
    assert ev.sinr_c[0] == 0 and ev.sinr_s[0] == 0


@pytest.mark.parametrize(
    "field, value",
    [
        ("alpha", [0.5, 0.5]),
        ("f", [[1, 0, 0]]),
        ("w", [[1]]),
        ("w_tilde", [[1, 1]]),
        ("f_u", [np.nan]),
        ("bandwidth_share", [0.0]),
    ],
)
def test_bad_allocation_raises_naming_the_field(field, value):
    snap, alloc = tiny_k1()
    with pytest.raises(ValueError, match=field):
        evaluate(snap, alloc.replace(**{field: value}), 1.0)


@pytest.mark.parametrize("beta", [0.0, -1.0, np.nan, [1.0, 2.0], np.inf])
def test_bad_beta_raises(beta):
    snap, alloc = tiny_k1()
    with pytest.raises(ValueError, match="beta"):
        evaluate(snap, alloc, beta)


positive = st.floats(0.05, 20.0)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    alpha=st.floats(0, 1),
    beta1=positive,
    beta2=positive,
    q_scale=st.floats(1.0, 10.0),
)
def test_properties(seed, alpha, beta1, beta2, q_scale):
    snap, alloc = random_case(seed)
    alloc = alloc.replace(alpha=np.full(3, alpha))
    lo, hi = sorted((beta1, beta2))
    ev_lo, ev_hi = evaluate(snap, alloc, lo), evaluate(snap, alloc, hi)
    for energy in (ev_lo.energy_isac, ev_lo.energy_local, ev_lo.energy_ap, ev_lo.energy_ue):
        assert np.all(energy >= 0)
    assert ev_hi.cost >= ev_lo.cost  # (17a) is non-decreasing in beta
    bigger = evaluate(snap.replace(Q=snap.Q * q_scale), alloc, lo)
    assert np.all(bigger.latency >= ev_lo.latency)  # latency grows with Q
    assert bigger.cost >= ev_lo.cost


def test_constraint_kernel_on_a_batch_gives_evaluates_verdicts():
    """``constraint_checks`` over stacked (B, K) slots equals ``evaluate`` slot by slot.

    The slots have their own bounds (C_ap, tau, budgets) and each breaks other checks,
    so a bound taken from the wrong slot or a sum over the whole batch shows.
    """
    cfg = ISCCConfig.paper(K=3)
    slots = []
    for seed in range(6):
        snap = sample_snapshot(cfg, np.random.default_rng(seed))
        alloc = simple_allocation(snap, 0.76)
        ue = seed % 3
        changes = [
            dict(alpha=np.r_[alloc.alpha[:ue], 1.0 + 1e-3, alloc.alpha[ue + 1 :]]),
            dict(f_ap=alloc.f_ap * (1.2 * snap.C_ap / alloc.f_ap.sum())),  # AP over capacity
            dict(f_u=np.r_[alloc.f_u[:ue], snap.C_u[ue] * 1.01, alloc.f_u[ue + 1 :]]),
            dict(u=alloc.u * 1e-3),  # sensing lost
            dict(f=alloc.f * 2.0),  # power over P_max
            {},
        ][seed]
        budget = evaluate(snap, alloc, 1.0).energy_ue * (0.5 if seed == 5 else 2.0)
        snap = snap.replace(
            energy_budget=budget, tau=snap.tau * (1 + seed / 10), C_ap=snap.C_ap * (1 + seed / 20)
        )
        slots.append((snap, alloc.replace(**changes)))
    evaluations = [evaluate(snap, alloc, 1.0) for snap, alloc in slots]
    snaps = [snap for snap, _ in slots]

    def stacked(name):
        return np.stack([np.broadcast_to(getattr(s, name), (3,)) for s in snaps])

    limits = SimpleNamespace(
        **{name: stacked(name) for name in ("tau", "C_u", "energy_budget")},
        **{name: stacked(name)[:, :1] for name in ("gamma_s", "C_ap", "P_max")},
    )
    checks = constraint_checks(
        limits,
        **{
            name: np.stack([getattr(ev, name) for ev in evaluations])
            for name in ("sinr_s", "latency", "power", "energy_ue")
        },
        **{
            name: np.stack([getattr(alloc, name) for _, alloc in slots])
            for name in ("alpha", "f_u", "f_ap")
        },
    )
    assert list(checks) == list(CONSTRAINTS)
    for name in CONSTRAINTS:
        expected = np.stack([ev.checks[name] for ev in evaluations])
        assert np.array_equal(checks[name], expected), name
        assert not expected.all(), name  # every check fails somewhere in the batch


@pytest.mark.parametrize(
    "name, field, bound",
    [
        ("latency", "latency", "tau"),
        ("cpu_ue", "f_u", "C_u"),
        ("power", "power", "P_max"),
        ("energy_budget", "energy_ue", "energy_budget"),
    ],
)
def test_constraint_kernel_bounds_on_both_sides(name, field, bound):
    """A quantity at its bound times (1 + FEASIBILITY_RTOL) passes; 1e-6 further fails."""
    limits = SimpleNamespace(gamma_s=1.0, tau=2.0, C_u=3.0, C_ap=10.0, P_max=4.0, energy_budget=5.0)
    limit = getattr(limits, bound)
    quantities = dict(
        sinr_s=np.ones(2),
        latency=np.ones(2),
        alpha=np.full(2, 0.5),
        f_u=np.ones(2),
        f_ap=np.ones(2),
        power=np.ones(2),
        energy_ue=np.ones(2),
    )
    quantities[field] = np.array([limit * (1 + FEASIBILITY_RTOL), limit * (1 + 2e-6)])
    checks = constraint_checks(limits, **quantities)
    assert checks[name].tolist() == [True, False]
    assert all(checks[other].all() for other in checks if other != name)


def test_constraint_kernel_ap_capacity_is_one_constraint_per_slot():
    """(17e): over capacity fails every UE using the AP in that slot, none elsewhere."""
    limits = SimpleNamespace(
        gamma_s=1.0,
        tau=2.0,
        C_u=3.0,
        C_ap=np.array([[4.0], [4.0]]),
        P_max=4.0,
        energy_budget=5.0,
    )
    ones = np.ones((2, 3))
    f_ap = np.array([[2.0, 2.0 * (1 + FEASIBILITY_RTOL), 0.0], [2.0, 2.0 + 1e-5, 0.0]])
    checks = constraint_checks(
        limits,
        sinr_s=ones,
        latency=ones,
        alpha=ones / 2,
        f_u=ones,
        f_ap=f_ap,
        power=ones,
        energy_ue=ones,
    )
    assert checks["cpu_ap"].tolist() == [[True, True, True], [False, False, True]]
