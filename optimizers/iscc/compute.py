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
``sum_k phi_k(alpha_k(lam))`` decreases with lam; if it exceeds C^ap at lam = 0, a
safeguarded Newton iteration on lam (bisection fallback) finds the lam at which the
capacity is exactly used (complementary slackness).

**Batches.** :func:`allocate` does the same for one slot, (K,) arrays, or B slots at
once, (B, K): every data-dependent branch (Newton counts, the price search on the slots
whose AP binds, giving up UEs) is a mask over slots, and finished slots are frozen.

UEs whose interval is empty (deadline, CPU cap and battery incompatible), or an AP that
cannot carry the minimum offloading, are reported in ``feasible``; the returned point is
the best effort (alpha at the least-infeasible end, AP frequencies scaled into C^ap).
When the AP cannot carry the least offloading of every UE (a battery can force a high
least offloading), the UE with the largest least AP demand is given up, one at a time,
until the others fit; it is then treated as lost (below). With pinned offloading
(``alpha_fixed``, the FL/FO/HO baselines) every UE fails instead, as before, and alpha
stays pinned in every slot: a UE whose pinned share cannot be sent before its deadline
is reported infeasible at that alpha (with no AP frequency), never moved.

**Lost UEs do not starve the others.** A UE that no compute allocation can make
feasible (empty interval, or flagged by the caller with ``exclude``: e.g. it misses the
sensing constraint (17b) whatever alpha is) is left out of the capacity coupling: the
multiplier ``lam`` is set by the other ("live") UEs alone, and a lost UE gets its
best-effort alpha at that price and only the AP capacity the live UEs leave over
(its AP frequency scaled down into it, at its least offloading, when that is short).
Before this, a lost UE next to the latency pole (a UE left with almost no link) asked
for nearly unbounded AP cycles, and the common scaling into C^ap failed every UE.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from isac_gym.iscc.model import as_beta
from isac_gym.iscc.scenario import Snapshot

_NEWTON_ITERATIONS = 40
_EDGE = 1.0 - 1e-9  # keep s = tau - c alpha strictly positive
_TINY = 1e-300


@dataclass(frozen=True, eq=False)
class ComputeAllocation:
    """Optimal offloading and CPU frequencies for fixed rates and powers."""

    alpha: np.ndarray
    f_u: np.ndarray
    f_ap: np.ndarray
    feasible: np.ndarray  #: (K,) bool: UE's interval non-empty and AP capacity met
    ap_price: float  #: KKT multiplier lam of sum_k f^ap_k <= C^ap
    coefficients: _Coefficients = field(repr=False)  #: the constants of g_k

    @property
    def objective(self) -> float:
        """sum_k g_k(alpha_k): the weighted cost (17a) of this allocation."""
        return float(self.coefficients.cost(self.alpha).sum())


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

    def ue_energy_slope(self, alpha):
        return self.P * self.c - 3.0 * self.a * (1 - alpha) ** 2

    def rows(self, index) -> _Coefficients:
        """The coefficients of the slots ``index`` (first axis) of a batch."""
        return dataclasses.replace(
            self,
            **{
                f.name: getattr(self, f.name)[index]
                for f in dataclasses.fields(self)
                if np.ndim(getattr(self, f.name)) > 1
            },
        )

    def derivatives(self, alpha, lam):
        """First and second derivative of g + lam * phi with respect to alpha."""
        return _Derivatives(self, lam)(alpha)


class _Derivatives:
    """g_k' and g_k'' (+ lam phi_k', phi_k'') with the constant factors hoisted.

    With ``s = tau - c alpha``, ``r = alpha / s`` and ``tau / s = 1 + c r``:

        g'  = w (P c - 3 a (1-alpha)^2) + beta b r^2 (3 + 2 c r) + lam d tau / s^2,
        g'' = 6 w a (1-alpha) + (6 beta b r tau^2 + 2 lam d tau c) / s^3,

    the derivatives of g_k (module docstring) and of phi_k = d alpha / s (17e).
    """

    def __init__(self, co: _Coefficients, lam):
        self.c = co.c
        self.tau = co.tau
        self.wpc = co.w * co.P * co.c
        self.w3a = 3.0 * co.w * co.a
        self.bb = co.beta * co.b
        self.b6t2 = 6.0 * self.bb * co.tau**2
        self.lam = bool(np.any(lam))  # lam: a scalar or one price per slot, (B, 1)
        if self.lam:
            self.ld = lam * co.d * co.tau
            self.ld2c = 2.0 * self.ld * co.c

    def __call__(self, alpha):
        s = self.tau - self.c * alpha
        r = alpha / s
        m = 1.0 - alpha
        d1 = self.wpc - self.w3a * m * m + self.bb * r * r * (3.0 + 2.0 * self.c * r)
        if self.lam:
            d1 = d1 + self.ld / (s * s)
            d2 = 2.0 * self.w3a * m + (self.b6t2 * r + self.ld2c) / (s * s * s)
        else:
            d2 = 2.0 * self.w3a * m + self.b6t2 * r / (s * s * s)
        return d1, d2


def _initial_alpha(co: _Coefficients, lo, hi):
    """Start of the Newton iteration: the stationary point of a quadratic model of g'.

    With ``s`` frozen at ``s_0 = tau - c alpha_0``, g' of the module docstring is
    ``w P c - 3 w a (1-alpha)^2 + 3 T alpha^2``, ``T = beta b (1 + 2 c alpha_0 / (3 s_0))
    / s_0^2``; with ``A = w a``, ``C = w P c / 3`` its root in [0, 1] solves ``(A - T)
    alpha^2 - 2 A alpha + A - C = 0``: ``alpha = (A - C) / (A + sqrt(A T + C (A - T)))``.
    First ``alpha_0 = 0`` (``s_0 = tau``), then once more at that root.
    """
    A = co.w * co.a
    C = co.w * co.P * co.c / 3.0
    bb = co.beta * co.b
    T = bb / co.tau**2
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        alpha = (A - C) / (A + np.sqrt(np.maximum(A * T + C * (A - T), 0.0)))
        alpha = np.minimum(np.maximum(alpha, lo), hi)
        s0 = co.tau - co.c * alpha
        T = bb * (1.0 + 2.0 * co.c * alpha / (3.0 * s0)) / (s0 * s0)
        alpha = (A - C) / (A + np.sqrt(np.maximum(A * T + C * (A - T), 0.0)))
    alpha = np.where(np.isfinite(alpha), alpha, 0.5 * (lo + hi))
    return np.minimum(np.maximum(alpha, lo), hi)


def _coefficients(snapshot: Snapshot, beta, rate, power, weight_ue) -> _Coefficients:
    """The validated constants of g_k for one slot (see :func:`coefficients_of`)."""
    K = snapshot.K
    rate = _per_ue_array("rate", rate, K, allow_zero=True)
    power = _per_ue_array("power", power, K, allow_zero=True)
    weight = np.ones(K) if weight_ue is None else _per_ue_array("weight_ue", weight_ue, K)
    return coefficients_of(snapshot, as_beta(beta, K), rate, power, weight)


def coefficients_of(slots, beta, rate, power, weight) -> _Coefficients:
    """The constants of g_k (module docstring) of a slot or a batch (valid arrays)."""
    # A UE without a link (R = 0) gets a dummy c; alpha_bounds pins its alpha to 0.
    c = slots.Q / np.where(rate > 0, rate, slots.Q)
    cycles = slots.varpi * slots.Q
    return _Coefficients(
        w=weight,
        beta=beta,
        P=power,
        c=c,
        a=slots.xi_u * cycles**3 / slots.tau**2,
        b=slots.xi_ap * cycles**3,
        d=cycles,
        tau=slots.tau,
        no_link=rate <= 0,
    )


def _per_ue_array(name: str, value, K: int, allow_zero: bool = False) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.shape != (K,):
        array = np.broadcast_to(array, (K,))
    low = array.min()
    if not (np.isfinite(array.max()) and (low > 0 or (allow_zero and low == 0))):
        raise ValueError(
            f"{name} must be finite and {'>=' if allow_zero else '>'} 0, got {value!r}"
        )
    return array


def _budget_interval(co: _Coefficients, budget: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    """The interval of alpha within [lo, hi] where E^u(alpha) <= budget (convex E^u).

    E^u = P c alpha + a (1-alpha)^3 falls, then rises, around its minimiser ``turn``.
    Each crossing of the budget is found by Newton's method from the outer end of
    [lo, hi]: E^u is convex, so from a point above the budget the zero of the tangent
    never passes the crossing, and the iterates approach it monotonically from outside
    (to a relative excess of 1e-12).
    """
    if budget.min() == np.inf:  # no battery limit (the default): nothing to do
        return lo, hi
    finite = np.isfinite(budget)
    # Minimiser of E^u: 3 a (1 - alpha)^2 = P c.
    with np.errstate(invalid="ignore", divide="ignore"):
        turn = np.minimum(np.maximum(1 - np.sqrt(co.P * co.c / (3 * co.a)), lo), hi)
    turn = np.where(np.isfinite(turn), turn, lo)
    tolerance = 1e-12 * budget
    empty = finite & (co.ue_energy(turn) - budget > tolerance)
    outside = finite & ~empty
    left, right = lo.copy(), hi.copy()
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for _ in range(60):
            excess_left = co.ue_energy(left) - budget
            excess_right = co.ue_energy(right) - budget
            move_left = outside & (excess_left > tolerance)
            move_right = outside & (excess_right > tolerance)
            if not (move_left.any() or move_right.any()):
                break
            step = left - excess_left / co.ue_energy_slope(left)
            left = np.where(move_left, np.minimum(np.maximum(step, lo), turn), left)
            step = right - excess_right / co.ue_energy_slope(right)
            right = np.where(move_right, np.maximum(np.minimum(step, hi), turn), right)
    return np.where(empty, np.inf, left), np.where(empty, -np.inf, right)


def _minimise(co: _Coefficients, lo, hi, lam: float, alpha0=None, tol=1e-7) -> np.ndarray:
    """argmin of g + lam phi over [lo, hi] (convex): safeguarded Newton on the derivative.

    Starts at ``alpha0`` (clipped into [lo, hi]) or at :func:`_initial_alpha`; a Newton
    step leaving the current bracket is replaced by bisection. Stops once every Newton
    correction is below ``tol``: convergence is quadratic there, so after a correction
    of 1e-7 the remaining error is of the order of 1e-14 (round-off).
    """
    der = _Derivatives(co, lam)
    if alpha0 is None:
        alpha = _initial_alpha(co, lo, hi)
    else:
        alpha = np.minimum(np.maximum(alpha0, lo), hi)
    points = (lo, hi, alpha)
    if not lo.shape == hi.shape == alpha.shape:
        points = np.broadcast_arrays(*points)
    d1, d2 = der(np.stack(points))  # one call, three points
    at_lo = d1[0] >= 0
    at_hi = d1[1] <= 0
    edge = at_lo | at_hi  # the answer is an end point: no need to wait for these
    d1, d2 = d1[2], d2[2]
    left, right = lo, hi
    finished = np.zeros(alpha.shape[:-1] + (1,), dtype=bool)  # per slot (row) of a batch
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(_NEWTON_ITERATIONS):
            newton = d1 / d2
            # Next to the pole s = tau - c alpha = 0 (a warm start at the latency edge) g'
            # grows like s^-3 and Newton creeps towards the root in steps of ~ s / 3c:
            # bisect there, and do not take a tiny step for convergence.
            pole = co.tau - co.c * alpha < 1e-3 * co.tau
            small = (np.abs(newton) <= tol) & ~pole
            # a last (tiny) Newton step for the rows that converged now; then frozen
            now = (small | edge).all(axis=-1, keepdims=True) & ~finished
            alpha = np.where(now, np.minimum(np.maximum(alpha - newton, lo), hi), alpha)
            finished = finished | now
            if finished.all():
                break
            positive = d1 > 0
            right = np.where(positive, alpha, right)
            left = np.where(positive, left, alpha)
            step = alpha - newton
            inside = (step > left) & (step < right) & ~(pole & positive)  # NaN/inf: False
            moved = np.where(inside, step, np.where(small, alpha, 0.5 * (left + right)))
            alpha = np.where(finished, alpha, moved)
            d1, d2 = der(alpha)
    return np.where(at_lo, lo, np.where(at_hi, hi, alpha))


def approximate_alpha(co: _Coefficients, lo, hi, steps: int = 2) -> np.ndarray:
    """Near-argmin of g over [lo, hi] (lam = 0) for any broadcast shape, cheaply.

    :func:`_initial_alpha` followed by ``steps`` projected Newton steps, without the
    safeguards and the convergence test of :func:`_minimise`: enough to rank candidates
    (``optimizers.iscc.fast`` picks a power from a grid with it), whose cost is stationary in
    alpha, so an error delta in alpha changes it by O(delta^2). Not the exact optimum.
    """
    alpha = _initial_alpha(co, lo, hi)
    der = _Derivatives(co, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(steps):
            d1, d2 = der(alpha)
            alpha = np.minimum(np.maximum(alpha - d1 / np.maximum(d2, _TINY), lo), hi)
    return alpha


def alpha_lower_bound(snapshot: Snapshot) -> np.ndarray:
    """(17d) as a bound on offloading: f^u = varpi (1-alpha) Q / tau <= C^u."""
    bound = 1.0 - snapshot.C_u * snapshot.tau / (snapshot.varpi * snapshot.Q)
    return np.minimum(np.maximum(bound, 0.0), 1.0)


def alpha_bounds(snapshot: Snapshot, co: _Coefficients):
    """Interval of alpha allowed by (17d), (17f), t_com < tau and the energy budget."""
    lo = alpha_lower_bound(snapshot)
    hi = np.minimum(1.0, _EDGE * co.tau / co.c)
    hi[co.no_link] = 0.0
    if snapshot.energy_budget.min() == np.inf:  # no battery limit (the default)
        return lo, hi, lo, hi
    budget_lo, budget_hi = _budget_interval(co, snapshot.energy_budget, lo, np.maximum(hi, lo))
    return np.maximum(lo, budget_lo), np.minimum(hi, budget_hi), lo, hi


def exact_compute_allocation(
    snapshot: Snapshot,
    beta,
    rate,
    power,
    *,
    weight_ue=None,
    alpha_fixed=None,
    alpha_start=None,
    exclude=None,
) -> ComputeAllocation:
    """Exact optimum of (P1) over (alpha, f^u, f^ap) for fixed rates (9) and powers (2).

    ``weight_ue`` (K,) multiplies each UE's energy (default 1, the paper's objective).
    ``alpha_fixed`` (scalar or (K,)) pins the offloading (FL/FO/HO baselines); only the
    CPU frequencies are then optimised, and UEs whose pinned alpha violates a
    constraint are reported infeasible, not moved. ``alpha_start`` (K,): optional start
    of the Newton iteration (a nearby solution); it changes nothing but the run time.
    ``exclude`` (K,) bool: UEs infeasible for reasons the compute variables cannot fix
    (sensing, power); with the UEs whose interval is empty they are kept out of the AP
    capacity coupling and served from the capacity the others leave (module docstring).
    Their ``feasible`` entry still says whether their compute constraints hold.
    """
    K = snapshot.K
    co = _coefficients(snapshot, beta, rate, power, weight_ue)
    if alpha_fixed is not None:
        alpha_fixed = np.broadcast_to(np.asarray(alpha_fixed, dtype=float), (K,))
        if np.any(~np.isfinite(alpha_fixed) | (alpha_fixed < 0) | (alpha_fixed > 1)):
            raise ValueError(f"alpha_fixed must be in [0, 1], got {alpha_fixed!r}")
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=bool)
        if exclude.shape != (K,):
            raise ValueError(f"exclude must have shape ({K},), got {exclude.shape}")
    result = allocate(snapshot, co, alpha_fixed, alpha_start, exclude)
    return dataclasses.replace(result, ap_price=float(result.ap_price[0]))


def allocate(
    slots, co: _Coefficients, alpha_fixed=None, alpha_start=None, exclude=None, present=None
):
    """:func:`exact_compute_allocation` of one slot (arrays (K,)) or a batch ((B, K)).

    ``slots``: a ``Snapshot`` or an ``optimizers.iscc.fast.SlotBatch`` (per-UE fields
    (B, K), ``C_ap`` (B, 1)); ``co`` and the optional arrays have the per-UE shape and
    are valid. Every data-dependent branch is a mask over the slots: the price search
    runs on the slots whose AP binds. ``ap_price`` has the shape of ``C_ap``'s row, (1,)
    or (B, 1). ``present`` (B, K) or None: padded UEs (False) are in no sum over UEs,
    neither live nor lost (``optimizers.iscc.fast.SlotBatch``).
    """
    lo, hi, cap_lo, lat_hi = alpha_bounds(slots, co)
    if alpha_fixed is not None:
        lo, ok, sendable = _pinned_interval(co, alpha_fixed, lo, hi)
        hi = lo
        least = np.where(sendable, co.ap_frequency(np.where(sendable, lo, 0.0)), 0.0)
    else:
        ok = lo <= hi
        # Best effort for an empty interval: the least offloading the UE's CPU allows,
        # capped by what the link can carry before the deadline.
        lo = np.where(ok, lo, np.minimum(cap_lo, lat_hi))
        hi = np.where(ok, hi, lo)
        least = co.ap_frequency(lo)  # each UE's least AP demand
    live = ok if exclude is None else ok & ~exclude
    live = live if present is None else live & present
    capacity = np.reshape(np.asarray(slots.C_ap, dtype=float), lo.shape[:-1] + (1,))
    if alpha_fixed is None:
        live = _give_up(least, live, capacity)
        alpha, lam = _priced_alpha(co, lo, hi, live, capacity, alpha_start)
        ap_ok = np.ones_like(lam, dtype=bool)
    else:  # pinned: nothing to price; the AP carries the pinned demands or fails
        alpha, lam = lo, np.zeros_like(capacity)
        ap_ok = _live_sum(least, live) <= capacity
    f_ap = np.where(alpha > 0, least, 0.0) if alpha_fixed is not None else co.ap_frequency(alpha)
    lost = ~live if present is None else ~live & present  # after giving up: those too
    alpha, f_ap, served = _share_capacity(alpha, f_ap, lo, least, live, lost, ap_ok, capacity)
    f_u = np.minimum(co.d * (1 - alpha) / slots.tau, slots.C_u)  # best effort at the cap
    feasible = ok & (served | (alpha == 0))
    return ComputeAllocation(
        alpha=alpha, f_u=f_u, f_ap=f_ap, feasible=feasible, ap_price=lam, coefficients=co
    )


def _pinned_interval(co: _Coefficients, alpha_fixed, lo, hi):
    """Pinned offloading: ``(alpha, ok, sendable)``; alpha stays pinned in every slot.

    ``sendable``: the pinned share can be sent before the deadline (``c alpha < tau``,
    and a link where alpha > 0). ``ok``: sendable and inside the UE's interval. A UE that
    is not ok is reported infeasible at its pinned alpha, never moved.
    """
    alpha = np.broadcast_to(alpha_fixed, lo.shape)
    sendable = (alpha * co.c < co.tau) & ~(co.no_link & (alpha > 0))
    ok = (alpha >= lo - 1e-12) & (alpha <= hi + 1e-12) & sendable
    return alpha, ok, sendable


def _live_sum(values, live):
    return np.where(live, values, 0.0).sum(axis=-1, keepdims=True)


def _give_up(least, live, capacity):
    """Live UEs after giving up, largest least AP demand first, until the rest fit.

    The most UEs are served (the least demands are what a subset must fit). Vectorised
    over slots: the UEs given up are the shortest prefix of the live UEs sorted by
    least demand (descending, ties by index) whose removal brings the sum within C^ap.
    """
    demand = np.where(live, least, 0.0)
    total = demand.sum(axis=-1, keepdims=True)
    if not (total > capacity).any():
        return live
    order = np.argsort(np.where(live, -least, np.inf), axis=-1, kind="stable")
    ranked = np.take_along_axis(demand, order, axis=-1)
    before = total - np.cumsum(ranked, axis=-1) + ranked  # sum left before removing each
    give_up = np.zeros_like(live)
    np.put_along_axis(give_up, order, before > capacity, axis=-1)
    return live & ~give_up


def _priced_alpha(co: _Coefficients, lo, hi, live, capacity, alpha_start):
    """Offloading at the AP price lam of (17e): 0 unless the AP binds, else the root.

    ``alpha(lam)`` minimises ``g + lam phi`` per UE; the live load ``sum phi(alpha(lam))``
    decreases in lam, and where it exceeds C^ap at lam = 0, lam solves load = C^ap
    (complementary slackness), found on those slots only (:func:`_ap_price`).
    """
    alpha = _minimise(co, lo, hi, 0.0, alpha_start)
    lam = np.zeros_like(capacity)
    binding = (_live_sum(co.ap_frequency(alpha), live) > capacity)[..., 0]
    if binding.any():
        rows = np.flatnonzero(binding) if binding.ndim else None
        if rows is None:  # one slot
            lam, alpha = _ap_price(co, lo, hi, live, capacity, alpha)
        else:
            sub = (co.rows(rows), lo[rows], hi[rows], live[rows], capacity[rows], alpha[rows])
            lam[rows], alpha[rows] = _ap_price(*sub)
    return alpha, lam


_PRICE_ITERATIONS = 100


def _ap_price(co: _Coefficients, lo, hi, live, capacity, alpha):
    """lam with ``load(lam) = C^ap`` per slot: safeguarded Newton (vectorised bisection).

    ``load'(lam) = -sum_k phi_k'(alpha_k)^2 / (g_k + lam phi_k)''`` over the live UEs
    strictly inside their interval (implicit function theorem on the stationarity
    condition; ``phi' = d tau / s^2``); a Newton step leaving the bracket is replaced
    by bisection (by a tenth of the upper end while no load above C^ap has been seen:
    where Newton fails there, every UE sits at an end and the root is often decades
    below). The bracket's upper end starts at the scale of the cost terms and grows
    tenfold until the load fits. Stops per slot when the load is within 1e-12
    of C^ap or the bracket within 1e-14 of its end; finished slots are frozen.

    Each price iterate re-minimises from the first-order prediction ``alpha +
    alpha'(lam) d lam`` (``alpha' = -phi' / (g + lam phi)''`` inside the interval, the
    same implicit derivative): near the root it is within round-off of the minimiser,
    so the inner Newton iteration stops after one step instead of three or four.
    """
    scale = (co.w * co.a + co.beta * co.b).max(axis=-1, keepdims=True) / co.d.max(
        axis=-1, keepdims=True
    )
    upper = np.maximum(scale, 1e-30)
    alpha = _minimise(co, lo, hi, upper, alpha)
    for _ in range(_PRICE_ITERATIONS):
        over = _live_sum(co.ap_frequency(alpha), live) > capacity
        if not over.any():
            break
        upper = np.where(over, 10.0 * upper, upper)
        alpha = _minimise(co, lo, hi, upper, alpha)
    low, high, lam = np.zeros_like(upper), upper.copy(), upper.copy()
    excess = _live_sum(co.ap_frequency(alpha), live) - capacity
    done = np.zeros_like(upper, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(_PRICE_ITERATIONS):
            done = done | (np.abs(excess) <= 1e-12 * capacity) | (high - low <= 1e-14 * high)
            if done.all():
                break
            slope, moves = _load_slope(co, lo, hi, live, lam, alpha)
            step = lam - excess / slope
            inside = (step > low) & (step < high)  # NaN: False
            # no load above C^ap seen yet (low = 0): a tenth of the bracket, as it grew
            fallback = np.where(low > 0, 0.5 * (low + high), 0.1 * high)
            new = np.where(done, lam, np.where(inside, step, fallback))
            predicted = alpha + np.where(np.isfinite(moves), moves, 0.0) * (new - lam)
            lam = new
            alpha = _minimise(co, lo, hi, lam, predicted)
            excess = np.where(done, excess, _live_sum(co.ap_frequency(alpha), live) - capacity)
            low = np.where(done | (excess <= 0), low, lam)
            high = np.where(done | (excess > 0), high, lam)
    return lam, alpha


def _load_slope(co: _Coefficients, lo, hi, live, lam, alpha):
    """d load / d lam at the minimisers ``alpha`` and each UE's d alpha / d lam (0 at
    an end of its interval; see :func:`_ap_price`)."""
    _, second = _Derivatives(co, lam)(alpha)
    s = co.tau - co.c * alpha
    phi_slope = co.d * co.tau / (s * s)
    moves = np.where((alpha > lo) & (alpha < hi), -phi_slope / second, 0.0)
    slope = np.where(live, phi_slope * moves, 0.0).sum(axis=-1, keepdims=True)
    return slope, moves


def _share_capacity(alpha, f_ap, lo, least, live, lost, ap_ok, capacity):
    """AP frequencies within C^ap: ``(alpha, f_ap, served)``.

    An AP that cannot carry the live UEs' (pinned) demands is scaled into C^ap and the
    live UEs fail their deadlines. The lost UEs share what the live ones leave; short
    of it, they offload the least they can, their demands scaled into the remainder.
    """
    served = np.ones_like(live)  # ``lost``: the UEs out of the coupling (not padding)
    if not ap_ok.all():  # a physical AP cannot exceed its capacity
        live_load = _live_sum(f_ap, live)
        with np.errstate(divide="ignore", invalid="ignore"):
            f_ap = np.where(~ap_ok & live, f_ap * capacity / live_load, f_ap)
        served = np.where(ap_ok, served, ~live)
    if lost.any():
        left = np.maximum(capacity - _live_sum(f_ap, live), 0.0)
        short = _live_sum(f_ap, lost) > left * (1 + 1e-12)
        demand = _live_sum(least, lost)
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(demand > 0, np.minimum(1.0, left / demand), 1.0)
        cut = short & lost
        alpha = np.where(cut, lo, alpha)
        f_ap = np.where(cut, least * scale, f_ap)
        served = served & ~(cut & (scale < 1.0))
    return alpha, f_ap, served
