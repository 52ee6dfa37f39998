"""Exact compute allocation: KKT conditions, brute force, limits and monotonicity."""

import numpy as np
import pytest

from isac_gym.demo import simple_allocation
from isac_gym.iscc import ISCCConfig, evaluate, sample_snapshot
from optimizers.iscc.compute import _coefficients, exact_compute_allocation


def links(snapshot):
    ev = evaluate(snapshot, simple_allocation(snapshot, 0.76), 0.1)
    return ev.rate, ev.power


@pytest.fixture(scope="module")
def snap():
    return sample_snapshot(ISCCConfig.paper(), np.random.default_rng(0))


def brute_force(snapshot, beta, rate, power, grid=200_001):
    """Per-UE grid search (valid when no coupling constraint is active)."""
    co = _coefficients(snapshot, beta, rate, power, None)
    alpha = np.linspace(0, 1, grid)[:, None]
    cost = co.cost(alpha)
    cost[
        (alpha * co.c >= co.tau)
        | (snapshot.varpi * (1 - alpha) * snapshot.Q / snapshot.tau > snapshot.C_u)
    ] = np.inf
    return alpha[np.argmin(cost, axis=0), 0], np.sum(np.min(cost, axis=0))


@pytest.mark.parametrize("beta", [0.05, 0.1, 1.0, 10.0])
def test_matches_brute_force_when_uncoupled(snap, beta):
    rate, power = links(snap)
    res = exact_compute_allocation(snap, beta, rate, power)
    alpha, cost = brute_force(snap, beta, rate, power)
    np.testing.assert_allclose(res.alpha, alpha, atol=2e-5)
    assert res.objective <= cost * (1 + 1e-12)
    assert res.ap_price == 0.0 and res.feasible.all()


def test_objective_is_the_true_cost(snap):
    rate, power = links(snap)
    res = exact_compute_allocation(snap, 0.1, rate, power)
    alloc = simple_allocation(snap, 0.76).replace(alpha=res.alpha, f_u=res.f_u, f_ap=res.f_ap)
    ev = evaluate(snap, alloc, 0.1)
    assert ev.cost == pytest.approx(res.objective, rel=1e-9)
    assert ev.feasible.all()
    np.testing.assert_allclose(ev.latency, snap.tau, rtol=1e-9)  # CPUs at their bounds


def test_kkt_with_active_ap_capacity():
    config = ISCCConfig.paper(K=4, C_ap=5e9, tau=0.5)
    snap = sample_snapshot(config, np.random.default_rng(3))
    rate, power = links(snap)
    res = exact_compute_allocation(snap, 0.1, rate, power)
    assert res.ap_price > 0
    assert np.sum(res.f_ap) == pytest.approx(config.C_ap, rel=1e-9)  # complementary slackness
    co = _coefficients(snap, 0.1, rate, power, None)
    d1, _ = co.derivatives(res.alpha, res.ap_price)
    interior = (res.alpha > 1e-9) & (res.alpha < 1 - 1e-9)
    scale = np.abs(co.derivatives(res.alpha, 0.0)[0]) + res.ap_price * co.d / co.tau
    assert np.all(np.abs(d1[interior]) <= 1e-6 * scale[interior])  # stationarity
    free = exact_compute_allocation(snap.replace(C_ap=1e12), 0.1, rate, power)
    assert np.all(res.alpha <= free.alpha + 1e-12) and res.objective >= free.objective


def test_alpha_falls_as_beta_rises_and_rises_as_cpu_shrinks(snap):
    rate, power = links(snap)
    loose = snap.replace(tau=1.0)  # so that (17d) does not pin alpha
    alphas = [exact_compute_allocation(loose, b, rate, power).alpha.mean() for b in (0.1, 1, 10)]
    assert alphas[0] > alphas[1] > alphas[2]
    slow = exact_compute_allocation(snap.replace(C_u=0.5e9), 1.0, rate, power).alpha
    fast = exact_compute_allocation(snap.replace(C_u=5e9), 1.0, rate, power).alpha
    assert np.all(slow > fast)
    assert np.all(slow >= 1 - 0.5e9 * 0.4 / 1e9 - 1e-12)  # (17d) as a lower bound on alpha


def test_cost_rises_with_task_size(snap):
    rate, power = links(snap)
    costs = [
        exact_compute_allocation(snap.replace(Q=q), 0.1, rate, power).objective
        for q in (1e5, 5e5, 1e6)
    ]
    assert costs[0] < costs[1] < costs[2]


def test_energy_budget_is_met_or_reported(snap):
    rate, power = links(snap)
    free = exact_compute_allocation(snap, 0.1, rate, power)
    e_free = (
        power * free.alpha * snap.Q / rate
        + snap.xi_u * free.f_u**2 * snap.varpi * (1 - free.alpha) * snap.Q
    )
    budget = 0.5 * e_free
    res = exact_compute_allocation(snap.replace(energy_budget=budget), 0.1, rate, power)
    e = (
        power * res.alpha * snap.Q / rate
        + snap.xi_u * res.f_u**2 * snap.varpi * (1 - res.alpha) * snap.Q
    )
    assert res.feasible.all() and np.all(e <= budget * (1 + 1e-9))
    assert np.all(res.alpha > free.alpha)  # a tight battery pushes work to the AP
    hopeless = exact_compute_allocation(snap.replace(energy_budget=1e-9), 0.1, rate, power)
    assert not hopeless.feasible.any() and np.all(np.isfinite(hopeless.alpha))


def test_fixed_offloading_reports_failures():
    snap = sample_snapshot(ISCCConfig.paper(tau=0.8), np.random.default_rng(1))
    rate, power = links(snap)
    fl = exact_compute_allocation(snap, 0.1, rate, power, alpha_fixed=0.0)
    assert not fl.feasible.any()  # varpi Q / C_u = 1 s > tau
    np.testing.assert_array_equal(fl.alpha, 0.0)
    fo = exact_compute_allocation(snap, 0.1, rate, power, alpha_fixed=1.0)
    assert fo.feasible.all() and np.all(fo.f_u == 0)
    ok = sample_snapshot(ISCCConfig.paper(tau=1.0), np.random.default_rng(1))
    assert exact_compute_allocation(ok, 0.1, rate, power, alpha_fixed=0.0).feasible.all()


def test_no_link_means_no_offloading(snap):
    _, power = links(snap)
    res = exact_compute_allocation(snap.replace(tau=[1.0, 1.0]), 0.1, [0.0, 1e8], power)
    assert res.alpha[0] == 0 and res.feasible[0] and np.isfinite(res.objective)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(rate=[np.nan, 1.0]), "rate"),
        (dict(power=[-1.0, 1.0]), "power"),
        (dict(beta=0.0), "beta"),
    ],
)
def test_bad_arguments_raise(snap, kwargs, name):
    args = dict(beta=0.1, rate=[1e8, 1e8], power=[0.01, 0.01]) | kwargs
    with pytest.raises(ValueError, match=name):
        exact_compute_allocation(snap, **args)


def test_warm_start_at_the_latency_edge_reaches_the_same_optimum():
    """A start next to the pole t_com = tau (where g' ~ s^-3) must not stall there."""
    snap = sample_snapshot(ISCCConfig.paper(K=4, tau=0.9), np.random.default_rng(3))
    rate = snap.Q / (1.5 * snap.tau)  # the link alone needs alpha < 2/3
    power = np.full(4, 5e-3)
    for beta in (1e-6, 0.1):
        cold = exact_compute_allocation(snap, beta, rate, power)
        warm = exact_compute_allocation(snap, beta, rate, power, alpha_start=np.ones(4))
        np.testing.assert_allclose(warm.alpha, cold.alpha, atol=1e-9)
        assert cold.alpha.max() < 2 / 3 - 1e-3  # the optimum is away from the edge


def test_budget_interval_is_the_exact_sublevel_set():
    # Against a dense grid: the interval where E^u <= budget, tight at both ends, for
    # budgets from far above the minimum of E^u down to just below it (empty).
    from optimizers.iscc.compute import _budget_interval, _Coefficients

    rng = np.random.default_rng(3)
    n = 400
    co = _Coefficients(
        w=np.ones(n), beta=np.ones(n), P=rng.uniform(0.01, 1.0, n), c=rng.uniform(0.01, 1.0, n),
        a=rng.uniform(0.01, 1.0, n), b=np.ones(n), d=np.ones(n), tau=np.ones(n),
        no_link=np.zeros(n, bool),
    )  # fmt: skip
    alpha = np.linspace(0.0, 1.0, 200_001)[:, None]
    energy = co.ue_energy(alpha)
    least = energy.min(axis=0)
    budget = least * np.concatenate(
        [rng.uniform(1.0001, 3.0, n - 40), np.full(20, 1 + 1e-9), np.full(20, 1 - 1e-6)]
    )
    lo, hi = np.zeros(n), np.ones(n)
    left, right = _budget_interval(co, budget, lo, hi)
    inside = energy <= budget
    empty = ~inside.any(axis=0)
    assert np.array_equal(empty, left > right) and empty[-20:].all() and not empty[:-40].any()
    grid_left = alpha[inside.argmax(axis=0), 0]
    grid_right = alpha[len(alpha) - 1 - inside[::-1].argmax(axis=0), 0]
    ok = ~empty
    np.testing.assert_allclose(left[ok], grid_left[ok], atol=2e-5)  # grid step 5e-6
    np.testing.assert_allclose(right[ok], grid_right[ok], atol=2e-5)
    for end in (left[ok], right[ok]):  # feasible, and on the boundary unless at 0 or 1
        e = _energy_at(co, end, ok)
        assert np.all(e <= budget[ok] * (1 + 1e-12))
        interior = (end > 0) & (end < 1)
        np.testing.assert_allclose(e[interior], budget[ok][interior], rtol=1e-9)


def _energy_at(co, alpha, mask):
    return co.P[mask] * co.c[mask] * alpha + co.a[mask] * (1 - alpha) ** 3


def test_overloaded_ap_serves_as_many_ues_as_fit():
    # Batteries force a high least offloading; the AP can carry the least demands of only
    # the two smallest: those two are served in full, the other two reported infeasible.
    from optimizers.iscc.compute import alpha_bounds

    snap = sample_snapshot(ISCCConfig.paper(K=4), np.random.default_rng(5))
    rate, power = links(snap)
    free = exact_compute_allocation(snap, 0.1, rate, power)
    e_free = (
        power * free.alpha * snap.Q / rate
        + snap.xi_u * free.f_u**2 * snap.varpi * (1 - free.alpha) * snap.Q
    )
    tight = snap.replace(energy_budget=0.3 * e_free)
    co = _coefficients(tight, 0.1, rate, power, None)
    lo, hi, _, _ = alpha_bounds(tight, co)
    assert np.all(lo <= hi) and np.all(lo > free.alpha)  # each UE alone is feasible
    least = co.ap_frequency(lo)
    order = np.argsort(least)
    capacity = 1.01 * least[order[:2]].sum()
    assert capacity < least[order[:3]].sum()
    res = exact_compute_allocation(tight.replace(C_ap=capacity), 0.1, rate, power)
    assert set(np.flatnonzero(res.feasible)) == set(order[:2])
    served = res.feasible
    assert res.f_ap.sum() <= capacity * (1 + 1e-9)
    energy = (
        power * res.alpha * snap.Q / rate
        + snap.xi_u * res.f_u**2 * snap.varpi * (1 - res.alpha) * snap.Q
    )
    assert np.all(energy[served] <= tight.energy_budget[served] * (1 + 1e-9))
    latency = np.maximum(
        snap.varpi * (1 - res.alpha) * snap.Q / res.f_u,
        res.alpha * snap.Q / rate + snap.varpi * res.alpha * snap.Q / res.f_ap,
    )
    assert np.all(latency[served] <= snap.tau[served] * (1 + 1e-9))
