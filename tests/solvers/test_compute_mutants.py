"""The compute allocation's inner pieces against independent oracles (mutation review).

Written for the survivors of ``scripts/mutate.py compute`` (docs/testing.md): the
Newton start point and ``approximate_alpha`` against a bisection of the documented
quadratic model and Newton steps on hand derivatives of g_k; batches against one slot
at a time; the pinned-offloading AP overload against hand numbers; argument checks;
silence (no RuntimeWarning) on degenerate inputs.
"""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from isac_gym.iscc import ISCCConfig, sample_snapshot
from optimizers.iscc.compute import (
    _Coefficients,
    _coefficients,
    _initial_alpha,
    allocate,
    alpha_bounds,
    approximate_alpha,
    coefficients_of,
    exact_compute_allocation,
)

# --------------------------------------------------------------------------- oracles


def random_coefficients(n, seed=0):
    """n UEs with costs of comparable size, so that every term of g_k matters."""
    rng = np.random.default_rng(seed)
    return _Coefficients(
        w=rng.uniform(0.5, 2.0, n), beta=rng.uniform(0.2, 3.0, n), P=rng.uniform(0.01, 1.0, n),
        c=rng.uniform(0.05, 0.9, n), a=rng.uniform(0.01, 1.0, n), b=rng.uniform(0.01, 1.0, n),
        d=rng.uniform(0.5, 2.0, n), tau=rng.uniform(0.5, 1.5, n), no_link=np.zeros(n, bool),
    )  # fmt: skip


def model_root(A, C, T):
    """Root in [0, 1] of the increasing m(x) = C - A (1-x)^2 + T x^2, or 0 if m(0) >= 0.

    The quadratic model of g'/3 of ``_initial_alpha``'s docstring, solved by bisection
    (no closed form): m' = 2 A (1-x) + 2 T x > 0 on [0, 1] and m(1) = C + T > 0.
    """
    low, high = np.zeros_like(A), np.ones_like(A)
    for _ in range(200):
        mid = 0.5 * (low + high)
        below = C - A * (1 - mid) ** 2 + T * mid**2 < 0
        low, high = np.where(below, mid, low), np.where(below, high, mid)
    return np.where(C - A >= 0, 0.0, 0.5 * (low + high))


def initial_alpha_oracle(co, lo, hi):
    """The two stages of ``_initial_alpha``'s docstring: s frozen at tau, then at the root."""
    A, C, bb = co.w * co.a, co.w * co.P * co.c / 3, co.beta * co.b
    alpha = np.clip(model_root(A, C, bb / co.tau**2), lo, hi)
    s0 = co.tau - co.c * alpha
    T = bb * (1 + 2 * co.c * alpha / (3 * s0)) / s0**2
    return np.clip(model_root(A, C, T), lo, hi)


def hand_derivatives(co, alpha):
    """g' and g'' of g = w [P c x + a (1-x)^3] + beta b x^3 / s^2, s = tau - c x, by hand."""
    s = co.tau - co.c * alpha
    bb = co.beta * co.b
    first = co.w * (co.P * co.c - 3 * co.a * (1 - alpha) ** 2) + bb * (
        3 * alpha**2 / s**2 + 2 * co.c * alpha**3 / s**3
    )
    second = 6 * co.w * co.a * (1 - alpha) + bb * (
        6 * alpha / s**2 + 12 * co.c * alpha**2 / s**3 + 6 * co.c**2 * alpha**3 / s**4
    )
    return first, second


def bounds_for(co, seed=1):
    """A mix of intervals: the full one, a lower bound that binds, a narrow one."""
    n = co.w.size
    rng = np.random.default_rng(seed)
    top = np.minimum(1.0, 0.999 * co.tau / co.c)
    lo = np.where(np.arange(n) % 3 == 1, rng.uniform(0.3, 0.6, n) * top, 0.0)
    hi = np.where(np.arange(n) % 3 == 2, lo + 0.05 * top, top)
    return lo, hi


# ------------------------------------------------------ the Newton start, approximate_alpha


def test_initial_alpha_is_the_root_of_the_documented_quadratic_model():
    co = random_coefficients(300)
    lo, hi = bounds_for(co)
    expected = initial_alpha_oracle(co, lo, hi)
    np.testing.assert_allclose(_initial_alpha(co, lo, hi), expected, rtol=0, atol=1e-12)
    inside = (expected > lo + 1e-6) & (expected < hi - 1e-6)
    assert inside.sum() > 100 and (expected == lo).sum() > 30 and (expected == hi).sum() > 30


def test_initial_alpha_falls_back_to_the_midpoint_when_the_model_has_no_root():
    # a = 0 (no local energy) makes A = 0: the formula gives -C/0 = -inf, or 0/0 with P = 0;
    # both fall back to the middle of [lo, hi] (0.35 here, not 0.5 (lo + hi) of another
    # interval).
    co = random_coefficients(2)
    co = _Coefficients(**{**vars(co), "a": np.zeros(2), "P": np.array([0.5, 0.0])})
    lo, hi = np.array([0.2, 0.2]), np.array([0.5, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(_initial_alpha(co, lo, hi), [0.35, 0.35])


@pytest.mark.parametrize("steps", [0, 1, 2, 3])
def test_approximate_alpha_is_projected_newton_steps_from_the_start(steps):
    co = random_coefficients(300, seed=2)
    lo, hi = bounds_for(co, seed=3)
    expected = initial_alpha_oracle(co, lo, hi)
    for _ in range(steps):
        first, second = hand_derivatives(co, expected)
        expected = np.clip(expected - first / second, lo, hi)
    got = approximate_alpha(co, lo, hi, steps=steps)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    if steps == 2:  # the default
        np.testing.assert_array_equal(approximate_alpha(co, lo, hi), got)


def test_approximate_alpha_broadcasts_a_grid_of_candidates():
    # fast ranks a (B, K, G) grid of powers with per-UE bounds broadcast along G.
    co = random_coefficients(12, seed=6)
    grid = _Coefficients(**{k: np.reshape(v, (3, 4, 1)) for k, v in vars(co).items()})
    grid = _Coefficients(**{**vars(grid), "P": grid.P * np.array([0.5, 1.0, 2.0])})
    lo, hi = bounds_for(co, seed=7)
    lo3, hi3 = (np.broadcast_to(x.reshape(3, 4, 1), (3, 4, 3)) for x in (lo, hi))
    got = approximate_alpha(grid, lo3, hi3)
    for g, factor in enumerate((0.5, 1.0, 2.0)):
        one = _Coefficients(**{**vars(co), "P": co.P * factor})
        np.testing.assert_array_equal(got[..., g].ravel(), approximate_alpha(one, lo, hi))


# ------------------------------------------------------------------- batches of slots

PER_UE = ("Q", "tau", "C_u", "xi_u", "varpi", "energy_budget")


def links(snapshot):
    """Rates and powers of a plausible beam setting: ~1e8 bit/s and 10-50 mW per UE."""
    rng = np.random.default_rng(int(snapshot.Q.sum()) % 1000)
    return rng.uniform(0.5e8, 2e8, snapshot.K), rng.uniform(0.01, 0.05, snapshot.K)


def stacked(snapshots):
    """The fields ``allocate`` reads, per-UE (B, K) and ``C_ap`` (B, 1), as fast's batch."""
    slots = SimpleNamespace(**{n: np.stack([getattr(s, n) for s in snapshots]) for n in PER_UE})
    slots.C_ap = np.array([[s.C_ap] for s in snapshots])
    slots.xi_ap = np.array([[s.xi_ap] for s in snapshots])
    return slots


def batch_cases():
    """Four slots of K = 4: AP free, AP binding, AP overloaded by batteries, a UE excluded."""
    config = ISCCConfig.paper(K=4, tau=0.5)
    base = [sample_snapshot(config, np.random.default_rng(seed)) for seed in range(4)]
    cases = [(base[0].replace(C_ap=1e12), None), (base[1].replace(C_ap=5e9), None)]
    rate, power = links(base[2])
    free = exact_compute_allocation(base[2].replace(C_ap=1e12), 1.0, rate, power)
    tight = base[2].replace(energy_budget=0.3 * free.coefficients.ue_energy(free.alpha))
    co = _coefficients(tight, 1.0, rate, power, None)
    least = co.ap_frequency(alpha_bounds(tight, co)[0])  # the least AP demands
    cases.append((tight.replace(C_ap=0.6 * least.sum()), None))
    cases.append((base[3].replace(C_ap=4e9), np.array([False, True, False, False])))
    return cases


def test_a_batch_gives_every_slot_its_own_allocation():
    cases = batch_cases()
    snapshots = [snapshot for snapshot, _ in cases]
    rates, powers = zip(*(links(s) for s in snapshots), strict=True)
    exclude = np.stack([np.zeros(4, bool) if e is None else e for _, e in cases])
    beta = np.array([[0.1], [0.3], [1.0], [0.1]]) * np.ones(4)
    alone = [
        exact_compute_allocation(s, beta[i], rates[i], powers[i], exclude=exclude[i])
        for i, s in enumerate(snapshots)
    ]
    assert alone[0].ap_price == 0 and alone[1].ap_price > 0 and alone[3].ap_price > 0
    assert not alone[2].feasible.all() and alone[2].feasible.any()  # a UE given up
    slots = stacked(snapshots)
    co = coefficients_of(slots, beta, np.stack(rates), np.stack(powers), np.ones((4, 4)))
    batch = allocate(slots, co, exclude=exclude)
    assert batch.ap_price.shape == (4, 1)
    for i, one in enumerate(alone):
        for name in ("alpha", "f_u", "f_ap", "feasible"):
            np.testing.assert_allclose(getattr(batch, name)[i], getattr(one, name), rtol=1e-12)
        assert batch.ap_price[i, 0] == one.ap_price  # the same price search, 0 when free


# --------------------------------------------------- the AP shared with lost UEs, pinned


@pytest.fixture(scope="module")
def four():
    snapshot = sample_snapshot(ISCCConfig.paper(K=4, tau=0.5), np.random.default_rng(3))
    return (snapshot, *links(snapshot))


def test_a_lost_ue_keeps_its_offloading_when_it_just_fits(four):
    snapshot, rate, power = four
    exclude = np.array([True, False, False, False])
    roomy = exact_compute_allocation(snapshot.replace(C_ap=1e12), 0.1, rate, power, exclude=exclude)
    assert roomy.ap_price == 0 and roomy.feasible.all()
    fits = exact_compute_allocation(
        snapshot.replace(C_ap=roomy.f_ap.sum()), 0.1, rate, power, exclude=exclude
    )  # the AP is exactly full with the lost UE's best-effort demand
    np.testing.assert_array_equal(fits.alpha, roomy.alpha)
    np.testing.assert_array_equal(fits.f_ap, roomy.f_ap)
    assert fits.feasible.all()


def test_a_lost_ue_short_of_capacity_offloads_the_least_it_can(four):
    # The live UEs leave `left` of C^ap. Above the lost UE's least demand (at alpha = lo)
    # it offloads that least and is served; below it gets exactly `left` and fails.
    snapshot, rate, power = four
    exclude = np.array([True, False, False, False])
    roomy = exact_compute_allocation(snapshot.replace(C_ap=1e12), 0.1, rate, power, exclude=exclude)
    lo = 1 - snapshot.C_u[0] * snapshot.tau[0] / (snapshot.varpi[0] * snapshot.Q[0])  # (17d)
    t_com = lo * snapshot.Q[0] / rate[0]
    least = snapshot.varpi[0] * lo * snapshot.Q[0] / (snapshot.tau[0] - t_com)  # (18c)
    assert 0 < lo < roomy.alpha[0] and least < 0.9 * roomy.f_ap[0]
    for left, served in ((0.9 * roomy.f_ap[0], True), (0.5 * least, False)):
        capacity = roomy.f_ap[1:].sum() + left
        res = exact_compute_allocation(
            snapshot.replace(C_ap=capacity), 0.1, rate, power, exclude=exclude
        )
        np.testing.assert_array_equal(res.alpha[1:], roomy.alpha[1:])  # live: untouched
        assert res.alpha[0] == pytest.approx(lo, rel=1e-12)
        assert res.f_ap[0] == pytest.approx(least if served else left, rel=1e-9)
        assert res.feasible.tolist() == [served, True, True, True]


def fo_demand(snapshot, rate):
    """f^ap of full offloading by hand: varpi Q / (tau - Q / R) (18c at alpha = 1)."""
    return snapshot.varpi * snapshot.Q / (snapshot.tau - snapshot.Q / rate)


def test_pinned_offloading_on_an_overloaded_ap_is_scaled_into_its_capacity():
    snapshot = sample_snapshot(ISCCConfig.paper(K=4, tau=1.0), np.random.default_rng(1))
    rate, power = links(snapshot)
    demand = fo_demand(snapshot, rate)
    assert np.all(demand > 0)
    capacity = 0.5 * demand.sum()
    res = exact_compute_allocation(
        snapshot.replace(C_ap=capacity), 0.1, rate, power, alpha_fixed=1.0
    )
    np.testing.assert_array_equal(res.alpha, 1.0)
    np.testing.assert_allclose(res.f_ap, 0.5 * demand, rtol=1e-12)
    assert not res.feasible.any() and np.all(res.f_u == 0) and res.ap_price == 0
    fits = exact_compute_allocation(
        snapshot.replace(C_ap=demand.sum() * (1 + 1e-12)), 0.1, rate, power, alpha_fixed=1.0
    )
    np.testing.assert_allclose(fits.f_ap, demand, rtol=1e-12)
    assert fits.feasible.all()


def test_pinned_offloading_serves_a_lost_ue_from_what_the_others_leave():
    snapshot = sample_snapshot(ISCCConfig.paper(K=4, tau=1.0), np.random.default_rng(1))
    rate, power = links(snapshot)
    demand = fo_demand(snapshot, rate)
    exclude = np.array([False, False, True, False])
    live = demand[[0, 1, 3]].sum()
    for left, served in ((1.5 * demand[2], True), (0.25 * demand[2], False)):
        res = exact_compute_allocation(
            snapshot.replace(C_ap=live + left), 0.1, rate, power, alpha_fixed=1.0, exclude=exclude
        )
        np.testing.assert_allclose(res.f_ap[[0, 1, 3]], demand[[0, 1, 3]], rtol=1e-12)
        assert res.f_ap[2] == pytest.approx(demand[2] if served else left, rel=1e-12)
        assert res.feasible.tolist() == [True, True, served, True]
    # an overloaded AP: the live UEs take all of it, the lost one gets nothing
    res = exact_compute_allocation(
        snapshot.replace(C_ap=0.5 * live), 0.1, rate, power, alpha_fixed=1.0, exclude=exclude
    )
    np.testing.assert_allclose(res.f_ap, np.r_[0.5 * demand[:2], 0, 0.5 * demand[3]], rtol=1e-12)
    assert not res.feasible.any()


# ---------------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(rate=[np.inf, 1e8]), "rate must be finite and >= 0, got"),
        (dict(rate=-1.0), "rate must be finite and >= 0"),
        (dict(power=[0.01, -1e-9]), "power must be finite and >= 0"),
        (dict(weight_ue=[1.0, 0.0]), "weight_ue must be finite and > 0"),
        (dict(weight_ue=np.inf), "weight_ue must be finite and > 0"),
        (dict(alpha_fixed=[0.5, 1.0 + 1e-12]), "alpha_fixed must be in"),
        (dict(alpha_fixed=-1e-12), "alpha_fixed must be in"),
        (dict(alpha_fixed=np.nan), "alpha_fixed must be in"),
        (dict(exclude=[True]), r"exclude must have shape \(2,\), got \(1,\)"),
    ],
)
def test_bad_arguments_name_the_field_and_range(kwargs, message):
    snapshot = sample_snapshot(ISCCConfig.paper(K=2), np.random.default_rng(0))
    args = dict(beta=0.1, rate=[1e8, 1e8], power=[0.01, 0.01]) | kwargs
    with pytest.raises(ValueError, match="^" + message):
        exact_compute_allocation(snapshot, **args)


def test_scalars_broadcast_and_zero_rate_or_power_is_allowed():
    snapshot = sample_snapshot(ISCCConfig.paper(K=2, tau=1.0), np.random.default_rng(0))
    ref = exact_compute_allocation(snapshot, 0.1, [1e8, 1e8], [0.02, 0.02])
    scalar = exact_compute_allocation(snapshot, 0.1, 1e8, 0.02, weight_ue=1.0)
    for name in ("alpha", "f_u", "f_ap", "feasible"):
        np.testing.assert_array_equal(getattr(scalar, name), getattr(ref, name))
    zero = exact_compute_allocation(snapshot, 0.1, [0.0, 1e8], [0.0, 0.02])
    assert zero.alpha[0] == 0 and zero.alpha[1] == ref.alpha[1] and zero.feasible.all()
    for bound in (0.0, 1.0):  # the ends of alpha_fixed's range are allowed
        exact_compute_allocation(snapshot, 0.1, 1e8, 0.02, alpha_fixed=bound)


def test_weight_scales_the_ue_energy():
    # w E^u + beta E^ap = w (E^u + (beta / w) E^ap): weight 2 with beta 0.2 has the
    # argmin of weight 1 with beta 0.1, at twice the cost; weight [2, 1] mixes the two.
    snapshot = sample_snapshot(ISCCConfig.paper(K=2, tau=1.0), np.random.default_rng(0))
    rate, power = links(snapshot)
    one = exact_compute_allocation(snapshot, 0.1, rate, power)
    two = exact_compute_allocation(snapshot, 0.2, rate, power, weight_ue=2.0)
    np.testing.assert_allclose(two.alpha, one.alpha, rtol=1e-9)
    assert two.objective == pytest.approx(2 * one.objective, rel=1e-9)
    other = exact_compute_allocation(snapshot, 0.2, rate, power)
    mixed = exact_compute_allocation(snapshot, 0.2, rate, power, weight_ue=[2.0, 1.0])
    np.testing.assert_allclose(mixed.alpha, [one.alpha[0], other.alpha[1]], rtol=1e-9)
    assert abs(one.alpha[1] - other.alpha[1]) > 1e-3


# ------------------------------------------- derivatives and the exact per-UE minimiser


def phi_derivatives(co, alpha):
    """phi = d alpha / s (the AP frequency at its latency bound): phi' and phi''."""
    s = co.tau - co.c * alpha
    return co.d * co.tau / s**2, 2 * co.d * co.tau * co.c / s**3


@pytest.mark.parametrize("lam", [0.0, 0.7])
def test_derivatives_match_the_hand_derivatives(lam):
    co = random_coefficients(300, seed=8)
    alpha = np.random.default_rng(9).uniform(0.0, 0.99, 300) * np.minimum(1, co.tau / co.c)
    first, second = hand_derivatives(co, alpha)
    phi1, phi2 = phi_derivatives(co, alpha)
    d1, d2 = co.derivatives(alpha, lam)
    terms = co.w * (co.P * co.c + 3 * co.a) + np.abs(first) + lam * phi1  # sizes of the sums
    assert np.all(np.abs(d1 - (first + lam * phi1)) <= 1e-12 * terms)  # g' may cancel to ~0
    np.testing.assert_allclose(d2, second + lam * phi2, rtol=1e-11)


def bisect_minimiser(co, lo, hi, lam, rounds=100):
    """argmin of g + lam phi over [lo, hi] by bisection of its hand derivative."""
    low, high = lo.copy(), hi.copy()
    for _ in range(rounds):
        mid = 0.5 * (low + high)
        rising = hand_derivatives(co, mid)[0] + lam * phi_derivatives(co, mid)[0] > 0
        low, high = np.where(rising, low, mid), np.where(rising, mid, high)
    return 0.5 * (low + high)


@pytest.mark.parametrize("lam", [0.0, 0.05, 0.7])
def test_minimise_is_exact_from_any_start(lam):
    from optimizers.iscc.compute import _minimise

    co = random_coefficients(300, seed=10)
    lo, hi = bounds_for(co, seed=11)
    expected = bisect_minimiser(co, lo, hi, lam)
    assert (expected == lo).sum() > 20 and (expected == hi).sum() > 20  # both ends bind
    for start in (None, lo, hi, 0.5 * (lo + hi), expected):
        got = _minimise(co, lo, hi, lam, start)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


def test_the_ap_price_solves_complementary_slackness_per_slot(counted):
    # Three slots of 4 UEs (one excluded in the last): the AP free, binding, and nearly
    # at the least load of the live UEs (a price far above the cost scale).
    from optimizers.iscc.compute import _priced_alpha

    co = random_coefficients(12, seed=12)
    co = _Coefficients(**{k: np.reshape(v, (3, 4)) for k, v in vars(co).items()})
    co.d[2, 0], co.a[2, 0] = 0.005, 1.0  # cheap AP cycles and a costly CPU: lam ~ 3 a tau / d
    lo, hi = (x.reshape(3, 4) for x in bounds_for(random_coefficients(12, seed=12), seed=13))
    live = np.ones((3, 4), bool)
    live[2, 1] = False
    free = np.where(live, co.ap_frequency(bisect_minimiser(co, lo, hi, 0.0)), 0).sum(-1)
    least = np.where(live, co.ap_frequency(lo), 0).sum(-1)
    assert np.all(least > 0) and np.all(least < free)
    capacity = np.array([[1.01 * free[0]], [0.7 * free[1]], [least[2] * (1 + 1e-8)]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Newton slopes of 0 (every UE at an end) are silent
        alpha, lam = _priced_alpha(co, lo, hi, live, capacity, None)
    assert lam[0, 0] == 0 and 0 < lam[1, 0] < 10 and lam[2, 0] > 100  # the bracket starts at ~1
    # Newton on lam with the slope of _load_slope, inner solves warm-started: 13 solves
    # and 45 evaluations of g' here (a slope without the lam phi'' term, or one counting
    # UEs at an end, needs 27-38 solves; Newton steps refused near the bracket 79 evaluations).
    assert counted["minimise"] <= 15 and counted["derivatives"] <= 55
    # KKT: every UE minimises g + lam phi at the returned price (stationarity, by
    # bisection), and a positive price uses C^ap exactly (complementary slackness).
    np.testing.assert_allclose(alpha, bisect_minimiser(co, lo, hi, lam), rtol=0, atol=1e-10)
    load = np.where(live, co.ap_frequency(alpha), 0).sum(-1, keepdims=True)
    assert load[0, 0] <= capacity[0, 0]
    np.testing.assert_allclose(load[1:], capacity[1:], rtol=1e-12)


@pytest.mark.parametrize("seed", [3, 5])
def test_a_small_price_is_found_in_few_solves(counted, seed):
    # An AP that barely binds (C^ap 0.1 % under the free load): the price is 1e-4 of the
    # bracket's start, where every UE sits at lo = 0 and Newton has no slope. The search
    # steps down a decade at a time there (halving: 15-16 solves) and re-minimises from
    # the first-order predicted alpha (from the last alpha: 30 % more evaluations).
    from optimizers.iscc.compute import _priced_alpha

    co = random_coefficients(4, seed=seed)
    co = _Coefficients(**{k: np.reshape(v, (1, 4)) for k, v in vars(co).items()})
    lo, hi = np.zeros((1, 4)), np.minimum(1.0, 0.999 * co.tau / co.c)
    live = np.ones((1, 4), bool)
    capacity = 0.999 * co.ap_frequency(bisect_minimiser(co, lo, hi, 0.0)).sum(-1, keepdims=True)
    alpha, lam = _priced_alpha(co, lo, hi, live, capacity, None)
    scale = (co.w * co.a + co.beta * co.b).max() / co.d.max()
    assert 0 < lam[0, 0] < 1e-4 * scale
    assert counted["minimise"] <= 9 and counted["derivatives"] <= 36
    np.testing.assert_allclose(alpha, bisect_minimiser(co, lo, hi, lam), rtol=0, atol=1e-10)
    np.testing.assert_allclose(co.ap_frequency(alpha).sum(-1), capacity[:, 0], rtol=1e-12)


# ------------------------------------------------------------ silence on degenerate input


def test_approximate_alpha_is_silent_on_candidates_without_a_link():
    # fast's power grid has c = Q / R = inf where a power gives no rate, and c ~ 1e300 for
    # a vanishing one; the candidate at the pole (c alpha = tau) is reachable when lo = hi.
    co = random_coefficients(4, seed=14)
    co = _Coefficients(**{**vars(co), "c": np.array([np.inf, np.inf, 1e300, 2.0])})
    co = _Coefficients(**{**vars(co), "tau": np.array([1.0, 1.0, 1.0, 1.0])})
    lo, hi = np.array([0.0, 0.3, 0.2, 0.5]), np.array([0.0, 0.3, 0.2, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(divide="warn", over="warn", invalid="warn", under="ignore"):
            alpha = approximate_alpha(co, lo, hi)
    assert alpha[2] == 0.2  # lo = hi pins the candidate


# ------------------------------------------------------------------ the cost of a solve


@pytest.fixture
def counted(monkeypatch):
    """Counts of ``_minimise`` calls and of derivative evaluations during a test."""
    import optimizers.iscc.compute as compute

    counts = {"minimise": 0, "derivatives": 0}
    minimise, evaluate = compute._minimise, compute._Derivatives.__call__

    def counting_minimise(*args, **kwargs):
        counts["minimise"] += 1
        return minimise(*args, **kwargs)

    def counting_evaluate(self, alpha):
        counts["derivatives"] += 1
        return evaluate(self, alpha)

    monkeypatch.setattr(compute, "_minimise", counting_minimise)
    monkeypatch.setattr(compute._Derivatives, "__call__", counting_evaluate)
    return counts


def test_a_warm_start_at_the_optimum_costs_one_evaluation(counted):
    # alpha_start "changes nothing but the run time": at the optimum, the first (stacked)
    # evaluation of g' at lo, hi and the start already meets the stopping test.
    snapshot = sample_snapshot(ISCCConfig.paper(K=4, tau=1.0), np.random.default_rng(3))
    rate, power = links(snapshot)
    cold = exact_compute_allocation(snapshot, 0.1, rate, power)
    assert cold.ap_price == 0 and np.all((cold.alpha > 0.01) & (cold.alpha < 0.99))
    assert counted["derivatives"] >= 2  # the cold start takes a Newton step
    counted.update(minimise=0, derivatives=0)
    warm = exact_compute_allocation(snapshot, 0.1, rate, power, alpha_start=cold.alpha)
    assert counted == {"minimise": 1, "derivatives": 1}
    np.testing.assert_allclose(warm.alpha, cold.alpha, rtol=0, atol=1e-12)


def test_the_price_search_takes_a_few_newton_steps(counted):
    # Newton on lam with the implicit-function slope, each inner solve warm-started at the
    # last alpha: 8 solves and 24 evaluations of g' here (bisection alone needs ~40 solves;
    # cold inner starts 35 evaluations).
    snapshot = sample_snapshot(ISCCConfig.paper(K=4, C_ap=5e9, tau=0.5), np.random.default_rng(3))
    rng = np.random.default_rng(1)
    res = exact_compute_allocation(
        snapshot, 0.1, rng.uniform(0.5e8, 2e8, 4), rng.uniform(0.01, 0.05, 4)
    )
    assert res.ap_price > 0 and res.f_ap.sum() == pytest.approx(snapshot.C_ap, rel=1e-12)
    assert counted["minimise"] <= 10 and counted["derivatives"] <= 30


# ----------------------------------------------------- giving up UEs, pinned boundaries


def test_give_up_removes_the_largest_least_demands_ties_by_index():
    from optimizers.iscc.compute import _give_up

    least = np.array([[1e9, 1e9, 2e9, 2e9], [1e9, 1e9, 2e9, 5e9], [1e9, 1e9, 2e9, 5e9]])
    live = np.array([[True] * 4, [True, True, True, False], [True, True, True, False]])
    capacity = np.array([[4.5e9], [4e9], [4e9 - 1]])
    kept = _give_up(least, live, capacity)
    # row 0: one of the tied 2e9 must go, the first (UE 2); row 1: the live demands sum
    # to C^ap exactly, and the lost UE 3 does not count; row 2: 1 cycle/s short.
    assert kept.tolist() == [[True, True, False, True], [True, True, True, False],
                             [True, True, False, False]]  # fmt: skip


def test_the_ap_exactly_full_at_zero_price_is_not_priced():
    snapshot = sample_snapshot(ISCCConfig.paper(K=4, tau=0.5), np.random.default_rng(3))
    rate, power = links(snapshot)
    free = exact_compute_allocation(snapshot.replace(C_ap=1e12), 0.1, rate, power)
    full = exact_compute_allocation(snapshot.replace(C_ap=free.f_ap.sum()), 0.1, rate, power)
    assert full.ap_price == 0 and isinstance(full.ap_price, float)
    np.testing.assert_array_equal(full.alpha, free.alpha)


def test_pinned_offloading_at_the_boundaries_of_sendable_and_of_the_battery():
    # UE 0 sends Q in exactly tau (c alpha = tau: not sendable, 18c needs f^ap = inf), UE 1
    # has no link, UE 2 a battery below its full-offloading energy P Q / R, UE 3 is free.
    config = ISCCConfig.paper(K=4, tau=0.5, Q=1e6)
    snapshot = sample_snapshot(config, np.random.default_rng(0))
    rate = np.array([2e6, 0.0, 1e8, 1e8])  # Q / R = 0.5 s = tau for UE 0
    power = np.full(4, 0.02)
    ue_energy = power * snapshot.Q / np.where(rate > 0, rate, 1)  # E^u at alpha = 1
    # UE 2's battery lies between the least E^u = P c alpha + a (1-alpha)^3 (at `turn`)
    # and E^u(1) = P c: its interval is not empty, but alpha = 1 lies outside it.
    a = snapshot.xi_u[2] * (snapshot.varpi[2] * snapshot.Q[2]) ** 3 / snapshot.tau[2] ** 2
    turn = 1 - np.sqrt(ue_energy[2] / (3 * a))
    least = ue_energy[2] * turn + a * (1 - turn) ** 3
    assert 0 < turn < 1 and least < 0.995 * ue_energy[2]
    budget = np.array([np.inf, np.inf, 0.5 * (least + ue_energy[2]), 1.01 * ue_energy[3]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fo = exact_compute_allocation(
            snapshot.replace(energy_budget=budget), 0.1, rate, power, alpha_fixed=1.0
        )
    np.testing.assert_array_equal(fo.alpha, 1.0)
    assert fo.feasible.tolist() == [False, False, False, True]
    assert fo.f_ap[0] == 0 and fo.f_ap[1] == 0 and np.all(np.isfinite(fo.f_ap))
    inside = exact_compute_allocation(
        snapshot.replace(energy_budget=budget), 0.1, rate, power, alpha_fixed=[1, 1, turn, 1]
    )
    assert inside.feasible.tolist() == [False, False, True, True]
    # full local computing needs no link: every UE is feasible when tau allows it
    loose = snapshot.replace(tau=np.full(4, 2.0))
    fl = exact_compute_allocation(loose, 0.1, rate, power, alpha_fixed=0.0)
    assert fl.feasible.all()
    np.testing.assert_array_equal(fl.f_ap, 0.0)
    half = exact_compute_allocation(loose, 0.1, rate, power, alpha_fixed=0.5)
    assert half.feasible.tolist() == [True, False, True, True] and half.f_ap[1] == 0


def test_pinned_demands_exactly_at_capacity_are_served():
    snapshot = sample_snapshot(ISCCConfig.paper(K=4, tau=1.0), np.random.default_rng(1))
    rate, power = links(snapshot)
    demand = exact_compute_allocation(snapshot, 0.1, rate, power, alpha_fixed=1.0).f_ap
    res = exact_compute_allocation(
        snapshot.replace(C_ap=demand.sum()), 0.1, rate, power, alpha_fixed=1.0
    )
    assert res.feasible.all()
    np.testing.assert_array_equal(res.f_ap, demand)


def test_a_batch_of_pinned_slots_scales_only_the_overloaded_one():
    snapshots = [
        sample_snapshot(ISCCConfig.paper(K=4, tau=1.0), np.random.default_rng(seed))
        for seed in (1, 2)
    ]
    rates, powers = zip(*(links(s) for s in snapshots), strict=True)
    demand = [fo_demand(s, r) for s, r in zip(snapshots, rates, strict=True)]
    snapshots[0] = snapshots[0].replace(C_ap=0.5 * demand[0].sum())
    snapshots[1] = snapshots[1].replace(C_ap=2.0 * demand[1].sum())
    slots = stacked(snapshots)
    co = coefficients_of(slots, np.full((2, 4), 0.1), np.stack(rates), np.stack(powers), 1.0)
    res = allocate(slots, co, alpha_fixed=np.ones((2, 4)))
    np.testing.assert_allclose(res.f_ap, [0.5 * demand[0], demand[1]], rtol=1e-12)
    assert res.feasible.tolist() == [[False] * 4, [True] * 4]


def test_argument_types_are_normalised():
    snapshot = sample_snapshot(ISCCConfig.paper(K=4, tau=0.5), np.random.default_rng(3))
    rate, power = links(snapshot)
    pinned = exact_compute_allocation(snapshot, 0.1, rate, power, alpha_fixed=1)
    assert pinned.alpha.dtype == np.float64
    free = exact_compute_allocation(snapshot.replace(C_ap=1e12), 0.1, rate, power)
    snapshot = snapshot.replace(C_ap=1.01 * free.f_ap.sum())  # the lost UEs just fit
    flags = exact_compute_allocation(snapshot, 0.1, rate, power, exclude=[True, False] * 2)
    ints = exact_compute_allocation(snapshot, 0.1, rate, power, exclude=[1, 0, 1, 0])
    assert flags.feasible.all()
    np.testing.assert_array_equal(flags.alpha, free.alpha)
    for name in ("alpha", "f_ap", "feasible"):
        np.testing.assert_array_equal(getattr(ints, name), getattr(flags, name))


def test_a_one_bit_per_second_link_is_a_link():
    # rate > 0 is a link: c = Q / R, so alpha <= tau R / Q (here ~1e-6), not 0 and not
    # the alpha of a usable link. With no transmit power (P = 0) sending is free, so UE 0
    # sends all the link carries.
    snapshot = sample_snapshot(ISCCConfig.paper(K=2, tau=1.0), np.random.default_rng(0))
    res = exact_compute_allocation(snapshot, 1e-6, [1.0, 1e8], [0.0, 0.02])
    assert 0 < res.alpha[0] <= snapshot.tau[0] * 1.0 / snapshot.Q[0] and res.alpha[1] > 0.01


def test_a_lost_ue_without_a_least_offloading_is_cut_to_zero_silently():
    # A lost UE with lo = 0 (its CPU alone meets the deadline) on an AP the live UEs fill:
    # its least demand is 0, so it is cut to alpha = 0 and f^ap = 0, not 0 * (0 / 0).
    snapshot = sample_snapshot(ISCCConfig.paper(K=4, tau=1.0), np.random.default_rng(3))
    rate, power = links(snapshot)
    exclude = np.array([False, True, False, False])
    free = exact_compute_allocation(snapshot.replace(C_ap=1e12), 0.1, rate, power)
    assert free.alpha[1] > 0.01
    live_load = free.f_ap.sum() - free.f_ap[1]
    for share in (0.5, 0.7, 0.9, 0.95, 0.99):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            res = exact_compute_allocation(
                snapshot.replace(C_ap=share * live_load), 0.1, rate, power, exclude=exclude
            )
        assert res.alpha[1] == 0 and res.f_ap[1] == 0 and res.feasible[1]
        assert res.ap_price > 0 and res.f_ap.sum() <= share * live_load * (1 + 1e-12)


def test_a_battery_with_a_silent_transmitter_is_handled_silently():
    # P = 0 (a UE that sends for free) makes E^u = a (1-alpha)^3 flat at alpha = 1: the
    # Newton steps of the budget interval meet a zero slope there (x / 0, and 0 / 0 with
    # a zero budget, which alpha = 1 meets exactly).
    snapshot = sample_snapshot(ISCCConfig.paper(K=4, tau=1.0), np.random.default_rng(0))
    rate, power = np.array([1e8, 1e8, 0.0, 1e8]), np.array([0.0, 0.0, 0.0, 0.02])
    budget = np.array([0.01, 0.0, 0.01, 1e-12])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = exact_compute_allocation(snapshot.replace(energy_budget=budget), 0.1, rate, power)
    a = snapshot.xi_u * (snapshot.varpi * snapshot.Q) ** 3 / snapshot.tau**2
    assert a[2] > 0.01 and a[3] * 1e-3 > 1e-12  # UEs 2 (no link) and 3 cannot meet theirs
    assert res.feasible.tolist() == [True, True, False, False] and res.alpha[1] > 1 - 1e-9
    assert res.alpha[0] >= 1 - (0.01 / a[0]) ** (1 / 3) - 1e-12  # a (1-alpha)^3 <= 0.01


def test_pinned_alpha_tolerance_band_on_both_sides():
    # A pinned alpha is inside [lo, hi] up to 1e-12: exactly lo - 1e-12 and hi + 1e-12
    # pass, 2e-12 past either end fails. UE 0: lo from (17d) (tau = 0.5); UE 1: hi from
    # its battery, E^u = P c alpha + a (1-alpha)^3 <= E^u(0.8) on the rising side
    # (P c = 0.75 a puts the minimum at alpha = 0.5).
    snapshot = sample_snapshot(ISCCConfig.paper(K=2, tau=0.5, C_ap=1e12), np.random.default_rng(0))
    snapshot = snapshot.replace(C_u=np.array([1e9, 1e12]))  # UE 1: no CPU bound (lo = 0)
    rate = np.array([1e8, 1e8])
    a = snapshot.xi_u * (snapshot.varpi * snapshot.Q) ** 3 / snapshot.tau**2
    c = snapshot.Q / rate
    power = 0.75 * a / c
    budget = np.array([np.inf, power[1] * c[1] * 0.8 + a[1] * 0.2**3])
    snapshot = snapshot.replace(energy_budget=budget)
    lo = 1.0 - snapshot.C_u[0] * snapshot.tau[0] / (snapshot.varpi[0] * snapshot.Q[0])
    hi = alpha_bounds(snapshot, _coefficients(snapshot, 0.1, rate, power, None))[1][1]
    assert 0.1 < lo < 0.9 and hi == pytest.approx(0.8, rel=1e-9)
    for step, ok in ((1e-12, True), (2e-12, False)):
        pinned = [lo - step, hi + step]
        res = exact_compute_allocation(snapshot, 0.1, rate, power, alpha_fixed=pinned)
        assert res.feasible.tolist() == [ok, ok]
