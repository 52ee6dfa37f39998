"""Exact compute allocation (alpha, f^u, f^ap) for fixed beams, by KKT conditions.

With the beams fixed, every UE's rate R_k and power P_k are fixed, and (P1) reduces to
offloading and CPU frequencies. Write ``c_k = Q_k / R_k`` (communication time per unit of
alpha), ``s_k = tau_k - c_k alpha_k`` (time left for AP processing).

**CPU frequencies sit at their latency bounds.** E^local (14) grows with f^u and E^ap
(15) with f^ap, and the latency constraints (18b)-(18c) only bound them from below, so
at the optimum ``f^u = varpi (1-alpha) Q / tau`` and ``f^ap = varpi alpha Q / s``. A
slower CPU is infeasible, a faster one wastes energy.

**The reduced problem is convex.** Substituting, UE k's cost is

    g_k(alpha) = w_k [P_k c_k alpha + a_k (1-alpha)^3] + beta_k b_k alpha^3 / s^2,
    a_k = xi^u varpi^3 Q^3 / tau^2,   b_k = xi^ap varpi^3 Q^3,

a linear term, a cube of an affine function, and ``alpha^3 / s^2``, the perspective-type
function x^3/y^2 (jointly convex for x >= 0, y > 0) of affine arguments: convex on
``0 <= alpha < tau/c``. The constraints are convex too: (17d) ``f^u <= C^u`` is the
lower bound ``alpha >= 1 - C^u tau / (varpi Q)``; (17e) ``sum_k varpi alpha Q / s <=
C^ap`` is a sum of convex increasing functions; the optional energy budget ``E^u =
P c alpha + a (1-alpha)^3 <= b_k`` is a convex sublevel set, an interval of alpha.

**KKT.** With the multiplier ``lam >= 0`` of the AP capacity, each UE minimises
``g_k + lam phi_k`` over its interval (phi_k = f^ap_k), whose derivative is increasing:
a safeguarded Newton iteration finds its root (vectorised over UEs). The AP load
``sum_k phi_k(alpha_k(lam))`` decreases with lam; if it exceeds C^ap at lam = 0, Brent's
method finds the lam at which the capacity is exactly used (complementary slackness).

UEs whose interval is empty (deadline, CPU cap and battery incompatible), or an AP that
cannot carry the minimum offloading, are reported in ``feasible``; the returned point is
the best effort (alpha at the least-infeasible end, AP frequencies scaled into C^ap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from isac_gym.iscc.model import as_beta
from isac_gym.iscc.scenario import Snapshot

_NEWTON_ITERATIONS = 40
_EDGE = 1.0 - 1e-9  # keep s = tau - c alpha strictly positive


@dataclass(frozen=True, eq=False)
class ComputeAllocation:
    """Optimal offloading and CPU frequencies for fixed rates and powers."""

    alpha: np.ndarray
    f_u: np.ndarray
    f_ap: np.ndarray
    objective: float  #: sum_k g_k(alpha_k): the weighted cost (17a) of this allocation
    feasible: np.ndarray  #: (K,) bool: UE's interval non-empty and AP capacity met
    ap_price: float  #: KKT multiplier lam of sum_k f^ap_k <= C^ap


@dataclass(frozen=True, eq=False)
class _Coefficients:
    """Per-UE (or per-candidate) constants of g_k; arrays broadcast together."""

    w: np.ndarray  # weight of the UE energy
    beta: np.ndarray
    P: np.ndarray
    c: np.ndarray  # Q / R
    a: np.ndarray  # xi^u varpi^3 Q^3 / tau^2
    b: np.ndarray  # xi^ap varpi^3 Q^3
    d: np.ndarray  # varpi Q (AP cycles per unit alpha)
    tau: np.ndarray
    no_link: np.ndarray  # R = 0: nothing can be offloaded

    def cost(self, alpha):
        s = self.tau - self.c * alpha
        return self.w * (self.P * self.c * alpha + self.a * (1 - alpha) ** 3) + self.beta * (
            self.b * alpha**3 / s**2
        )

    def ap_frequency(self, alpha):
        return self.d * alpha / (self.tau - self.c * alpha)

    def ue_energy(self, alpha):
        return self.P * self.c * alpha + self.a * (1 - alpha) ** 3

    def derivatives(self, alpha, lam):
        """First and second derivative of g + lam * phi with respect to alpha."""
        s = self.tau - self.c * alpha
        c = self.c
        d1 = self.w * (self.P * c - 3 * self.a * (1 - alpha) ** 2) + self.beta * self.b * (
            3 * alpha**2 / s**2 + 2 * c * alpha**3 / s**3
        )
        d2 = self.w * 6 * self.a * (1 - alpha) + self.beta * self.b * (
            6 * alpha / s**2 + 12 * c * alpha**2 / s**3 + 6 * c**2 * alpha**3 / s**4
        )
        d1 = d1 + lam * self.d * self.tau / s**2
        d2 = d2 + lam * 2 * self.d * self.tau * c / s**3
        return d1, d2


def _coefficients(snapshot: Snapshot, beta, rate, power, weight_ue) -> _Coefficients:
    K = snapshot.K
    rate = _per_ue_array("rate", rate, K, allow_zero=True)
    power = _per_ue_array("power", power, K, allow_zero=True)
    weight = np.ones(K) if weight_ue is None else _per_ue_array("weight_ue", weight_ue, K)
    # A UE without a link (R = 0) gets a dummy c; alpha_bounds pins its alpha to 0.
    c = snapshot.Q / np.where(rate > 0, rate, snapshot.Q)
    cycles = snapshot.varpi * snapshot.Q
    return _Coefficients(
        w=weight,
        beta=as_beta(beta, K),
        P=power,
        c=c,
        a=snapshot.xi_u * cycles**3 / snapshot.tau**2,
        b=snapshot.xi_ap * cycles**3,
        d=cycles,
        tau=snapshot.tau,
        no_link=rate <= 0,
    )


def _per_ue_array(name: str, value, K: int, allow_zero: bool = False) -> np.ndarray:
    array = np.broadcast_to(np.asarray(value, dtype=float), (K,))
    bad = ~np.isfinite(array) | (array < 0) | ((array == 0) & (not allow_zero))
    if np.any(bad):
        raise ValueError(
            f"{name} must be finite and {'>=' if allow_zero else '>'} 0, got {value!r}"
        )
    return array


def _budget_interval(co: _Coefficients, budget: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """The interval of alpha within [lo, hi] where E^u(alpha) <= budget (convex E^u)."""
    finite = np.isfinite(budget)
    if not np.any(finite):
        return lo, hi
    # Minimiser of E^u: 3 a (1 - alpha)^2 = P c.
    with np.errstate(invalid="ignore", divide="ignore"):
        turn = np.clip(1 - np.sqrt(co.P * co.c / (3 * co.a)), lo, hi)
    turn = np.where(np.isfinite(turn), turn, lo)
    left, right = lo.copy(), hi.copy()
    over_left = finite & (co.ue_energy(lo) > budget)
    over_right = finite & (co.ue_energy(hi) > budget)
    # Bisection for the two crossings (E^u is monotone on each side of the turn).
    a0, a1 = lo.copy(), turn.copy()  # decreasing side: find first alpha with E <= budget
    b0, b1 = turn.copy(), hi.copy()  # increasing side: last alpha with E <= budget
    for _ in range(60):
        mid = 0.5 * (a0 + a1)
        ok = co.ue_energy(mid) <= budget
        a1 = np.where(ok, mid, a1)
        a0 = np.where(ok, a0, mid)
        mid = 0.5 * (b0 + b1)
        ok = co.ue_energy(mid) <= budget
        b0 = np.where(ok, mid, b0)
        b1 = np.where(ok, b1, mid)
    left = np.where(over_left, a1, left)
    right = np.where(over_right, b0, right)
    empty = finite & (co.ue_energy(turn) > budget * (1 + 1e-12))
    return np.where(empty, np.inf, left), np.where(empty, -np.inf, right)


def _minimise(co: _Coefficients, lo, hi, lam: float) -> np.ndarray:
    """argmin of g + lam phi over [lo, hi] (convex): safeguarded Newton on the derivative."""
    d_lo, _ = co.derivatives(lo, lam)
    d_hi, _ = co.derivatives(hi, lam)
    at_lo = d_lo >= 0
    at_hi = d_hi <= 0
    left, right = lo.copy(), hi.copy()
    alpha = 0.5 * (lo + hi)
    for _ in range(_NEWTON_ITERATIONS):
        d1, d2 = co.derivatives(alpha, lam)
        right = np.where(d1 > 0, alpha, right)
        left = np.where(d1 <= 0, alpha, left)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            newton = d1 / d2
        step = alpha - newton
        inside = (step > left) & (step < right) & np.isfinite(step)
        # A Newton correction below 1e-12 is round-off: the root is found.
        settled = np.abs(newton) <= 1e-12
        new = np.where(settled, alpha, np.where(inside, step, 0.5 * (left + right)))
        done = np.all(settled | (np.abs(new - alpha) <= 1e-12))
        alpha = new
        if done:
            break
    return np.where(at_lo, lo, np.where(at_hi, hi, alpha))


def solve_alpha_batch(co: _Coefficients, lo, hi, lam: float = 0.0) -> np.ndarray:
    """Per-entry argmin of g + lam phi over [lo, hi] for any broadcast shape."""
    return _minimise(co, lo, hi, lam)


def alpha_lower_bound(snapshot: Snapshot) -> np.ndarray:
    """(17d) as a bound on offloading: f^u = varpi (1-alpha) Q / tau <= C^u."""
    return np.clip(1.0 - snapshot.C_u * snapshot.tau / (snapshot.varpi * snapshot.Q), 0.0, 1.0)


def alpha_bounds(snapshot: Snapshot, co: _Coefficients):
    """Interval of alpha allowed by (17d), (17f), t_com < tau and the energy budget."""
    lo = alpha_lower_bound(snapshot)
    hi = np.where(co.no_link, 0.0, np.minimum(1.0, _EDGE * co.tau / co.c))
    budget_lo, budget_hi = _budget_interval(co, snapshot.energy_budget, lo, np.maximum(hi, lo))
    return np.maximum(lo, budget_lo), np.minimum(hi, budget_hi), lo, hi


def exact_compute_allocation(
    snapshot: Snapshot, beta, rate, power, *, weight_ue=None, alpha_fixed=None
) -> ComputeAllocation:
    """Exact optimum of (P1) over (alpha, f^u, f^ap) for fixed rates (9) and powers (2).

    ``weight_ue`` (K,) multiplies each UE's energy (default 1, the paper's objective).
    ``alpha_fixed`` (scalar or (K,)) pins the offloading (FL/FO/HO baselines); only the
    CPU frequencies are then optimised, and UEs whose pinned alpha violates a
    constraint are reported infeasible, not moved.
    """
    co = _coefficients(snapshot, beta, rate, power, weight_ue)
    lo, hi, cap_lo, lat_hi = alpha_bounds(snapshot, co)
    if alpha_fixed is not None:
        fixed = np.broadcast_to(np.asarray(alpha_fixed, dtype=float), (snapshot.K,))
        if np.any(~np.isfinite(fixed) | (fixed < 0) | (fixed > 1)):
            raise ValueError(f"alpha_fixed must be in [0, 1], got {alpha_fixed!r}")
        sendable = (fixed * co.c < co.tau) & ~(co.no_link & (fixed > 0))
        ok = (fixed >= lo - 1e-12) & (fixed <= hi + 1e-12) & sendable
        lo = hi = np.where(sendable, fixed, np.maximum(lat_hi, 0.0))
    else:
        ok = lo <= hi
        # Best effort for an empty interval: the least offloading the UE's CPU allows,
        # capped by what the link can carry before the deadline.
        lo = np.where(ok, lo, np.minimum(cap_lo, lat_hi))
        hi = np.where(ok, hi, lo)

    def load(lam: float) -> float:
        return float(np.sum(co.ap_frequency(_minimise(co, lo, hi, lam))))

    lam = 0.0
    alpha = _minimise(co, lo, hi, 0.0)
    capacity = snapshot.C_ap
    ap_ok = True
    if np.sum(co.ap_frequency(alpha)) > capacity:
        if np.sum(co.ap_frequency(lo)) > capacity:  # even minimal offloading overloads
            ap_ok = False
            alpha = lo
        else:
            # lam is a price in J per (cycle/s); start near the scale of the cost terms
            upper = max(float(np.max(co.w * co.a + co.beta * co.b) / np.max(co.d)), 1e-30)
            while load(upper) > capacity:
                upper *= 10.0
            lam = brentq(lambda x: load(x) - capacity, 0.0, upper, xtol=1e-14 * upper, rtol=1e-13)
            alpha = _minimise(co, lo, hi, lam)

    cycles = snapshot.varpi * snapshot.Q
    f_u = cycles * (1 - alpha) / snapshot.tau
    f_ap = co.ap_frequency(alpha)
    if not ap_ok:  # a physical AP cannot exceed its capacity: scale, deadlines fail
        f_ap = f_ap * capacity / np.sum(f_ap)
    f_u = np.minimum(f_u, snapshot.C_u)  # best effort when the UE cap binds
    feasible = ok & (ap_ok | (alpha == 0))
    return ComputeAllocation(
        alpha=alpha,
        f_u=f_u,
        f_ap=f_ap,
        objective=float(np.sum(co.cost(alpha))),
        feasible=feasible,
        ap_price=float(lam),
    )
