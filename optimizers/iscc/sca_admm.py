"""Double-loop SCA-ADMM of Dong et al. (2026), Algorithms 1-2, eqs. (19)-(63), for (P1).

Outer SCA loop (Algorithm 2): at the expansion point ``l`` the sensing function (19) and
the rate (9) are linearised, (20)-(30), giving problem (P3). Inner ADMM (Algorithm 1) on
the scaled augmented Lagrangian (35): closed-form alpha (43)-(44), CPU frequencies from
the quartics (45)-(46) (unique positive root, projected on (17d)-(17e)), projected
gradient steps (47), (59)-(63) for the transmit beams, auxiliary power variables
(48)-(49), dual (50)-(54) and slack (55)-(57) updates; the ADMM stops when the primal
residual and either the dual residual or the relative change of the (P3) objective are
below ``tol_inner``.

Representation: **rank-one factors.** ``F_k = f_k f_k^H`` and ``R_k^0 = u_k u_k^H`` are
kept as the vectors ``f_k, u_k`` (the paper's Proposition 1: the relaxed optimum is rank
one, and its recovery ``f = sqrt(lambda_max) v_max`` is then the identity). The gradient
step (47)/(59) is taken on the vectors with the same augmented Lagrangian: by the chain
rule ``dL/df_k^* = (dL/dF_k) f_k`` where ``dL/dF_k`` is the matrix gradient (59) (a sum
of rank-one terms, applied without forming 64x64 matrices); the projection (63) onto
``{F >= 0, Tr(F + R^0) <= P_max}`` becomes the projection of the pair ``(f_k, u_k)`` onto
the ball ``||f||^2 + ||u||^2 <= P_max`` (PSD is automatic).

Scaling (the paper gives no values of rho or eta): the objective is divided by the
energy ``E_ref = mean_k xi^u_k (varpi_k Q_k)^3 / tau_k^2`` (local execution of the whole
task in exactly tau), latencies by tau_k, powers by P_max, CPU frequencies by
``varpi_k Q_k / tau_k`` and the sensing function (19) by ``gamma_th sigma_2^2`` (unit-norm
combiners). ``rho = (rho_1, ..., rho_5)`` acts on these dimensionless quantities.

Deviations from the printed equations (every one, with the reason):

1. (43): the UE term is ``xi^u (f^u)^2 varpi Q`` (the printed ``f^u`` lacks the square;
   d/dalpha of (14) is ``-xi^u (f^u)^2 varpi Q``). The weight ``weight_ue`` multiplies
   every UE energy term (1 in the paper). With the per-UE scaling above (43) reads
   ``alpha = (-G - rho_4 A c_1 + rho_5 D^2 + rho_5 D c_2) / (rho_4 A^2 + rho_5 D^2)``,
   ``G = d(objective)/d alpha``; (36) uses ``t^p = t^proc`` (11) and ``t^com`` = (31).
2. (46) alone ignores the coupling ``sum_k f_k^ap <= C^ap`` of (17e). When the
   unconstrained roots violate it, the f^ap block is minimised exactly with a multiplier
   ``mu >= 0`` (KKT): each UE solves ``2 beta xi c_4 f^4 + mu' f^3 - rho_4 c_4 c_5 f -
   rho_4 c_4^2 = 0`` (still one positive root) and ``mu`` is found by bisection so that
   the capacity is met. The root of (45)/(46) is computed by a monotone per-UE
   Newton iteration from an upper bound (the quartic ``a f^4 + mu f^3 - b f - c`` with
   ``a, c > 0`` has exactly one positive root by Descartes' rule, and is convex there);
   it equals numpy's real positive root (checked in the tests). (45) with alpha = 1 and
   (46) with alpha = 0 are degenerate (c_3 = 0 / c_4 = 0): the frequency is 0.
3. (39)-(40), combiners: the linearised rate (24) and sensing function (20) are linear in
   ``w_k`` / ``w~_k`` while the true SINRs are scale-invariant in them, so (39)-(40) have no
   bounded minimiser. We use the exact block minimiser of the true SINR parts, the
   max-SINR (MMSE) combiners of ``isac_gym.iscc.beams`` (unit norm), computed at every
   expansion point. At a max-SINR combiner the gradient (27)/(23) of the SINR w.r.t. the
   combiner is zero, so the combiner terms of (20) and (24) vanish and the combiners stay
   fixed inside the ADMM (an inner w-update would not change (P3)).
4. (20)-(30): the first-order expansions include the beams of *all* UEs (the printed
   gradients (21)-(22), (26)-(28) only list UE k's own F_k, R_k^0; UE j's beams enter
   gamma_k through the interference terms of (7)-(8)). In the beams the expansion of the
   sensing function is exact (it is linear in F, R^0 for a fixed combiner); the rate is
   linearised with the coefficients (25)-(28), ``dR/dF_j = -B/(ln 2 (1+gamma)) chi/g^2
   H_j^H w w^H H_j`` for the interference terms. The linearised rate is floored at
   ``1e-3 R^(l)`` to keep (31) finite.
5. Appendix A (59): the energy term is ``weight_ue Tr(V_F + V_R) grad t_com`` (the printed
   ``beta_k`` belongs to the AP energy, not to E^isac); (61) uses the sensing combiner
   ``w~_k`` (printed ``w_k``).
6. (33d)-(33e), (48)-(49): V_F, V_R enter (P3) only through ``Tr(V_F + V_R)``, so the
   consensus is kept on the traces: scalars ``v_f = ||f||^2 / P_max``, ``v_u`` with scalar
   duals. (48)-(49) are then minimised exactly (``v = ||f||^2/P + z - theta/rho``,
   projected on v >= 0) instead of by gradient steps.
7. Step sizes eta of (47) are not given: one Armijo backtracking step on the beam part of
   the augmented Lagrangian per inner iteration (step carried over, doubled each time).
8. Order of the updates: slacks (55)-(57) are minimised with the current duals and the
   duals (50)-(54) are then updated with the new slacks (scaled-form ADMM, Boyd et al.
   2010, Sec. 3.1.1). The printed (53) uses ``varsigma^(iota)`` but (54)
   ``varsigma^(iota+1)``; (52)-(57) are written here for the constraint forms of (35):
   ``-F + s = 0``, ``t_off/tau - 1 + s = 0``, ``t_local/tau - 1 + s = 0``, s >= 0.
9. SCA safeguard: ADMM returns an approximate solution of (P3), which need not be a
   feasible point of (P1) (the SCA expansion points must be). After each inner loop the
   CPU frequencies are set to their latency bounds at the true rates (and alpha clipped
   to ``>= 1 - tau C^u/(varpi Q)``); the candidate replaces the expansion point only if
   it has no more infeasible UEs and, with as many, a cost not higher (lexicographic
   acceptance). Hence ``objective_trace`` (true cost of the accepted point after each
   outer iteration) is non-increasing whenever the number of feasible UEs does not
   change; ``info['admm_objective_trace']`` holds the raw ADMM candidates' true costs.
   Candidates are ranked by ``_judge``: the formulas and checks of ``evaluate`` with the
   SINRs of the max-SINR combiners from their Gram identity (equal up to round-off); the
   returned point is judged by ``evaluate`` itself.
10. The per-UE energy budget of ``Snapshot.energy_budget`` is not part of (P1); the ADMM
   ignores it and only ``polish=True`` (``optimizers.iscc.compute``) enforces it.
11. Start and safeguard (``start="fast"``, ``safeguard=True``, the defaults): SCA is a
   descent method from a feasible start, and the paper's start (below, ``start="paper"``)
   is poor in transmit power: the beam update lowers ``||f||^2 + ||u||^2`` only through
   the consensus penalty of (33d)-(33e) and one Armijo step per inner iteration on the
   whole (stiff) beam Lagrangian, about 0.02 % per outer iteration, so from ``P_max``
   the returned power stayed near ``P_max`` (at Q = 1e4 bit the cost was 5.7x that of
   ``optimizers.iscc.fast``; at P_max = 30 dBm 5 % above it, with 40x its ISAC energy), and
   from that start the ADMM could also end below gamma_th on a UE that ``fast`` serves.
   So the default expansion point is the ``fast`` solution (its least sensing powers and
   grid-optimised communication powers), and with ``safeguard`` the ``fast`` solution is
   a candidate of the result: the SCA point is returned only if its true-model feasible
   set contains that of ``fast`` and it has more feasible UEs or a cost not higher on
   the UEs ``fast`` serves (the cost of an unserved UE is a best effort and does not
   count); otherwise ``fast``'s (``info['candidate']`` says which). Hence the result is
   never worse than ``fast`` on the true weighted cost of the UEs ``fast`` serves, and
   meets (17b) wherever ``fast`` does. ``warm_start`` replaces the start, not the
   safeguard.

Paper start (``start="paper"``, no warm start): the directions of
:func:`isac_gym.iscc.beam_directions`, the power split evenly between f and u except
that a UE whose sensing SINR (8) would stay below gamma_th gets the least sensing power
meeting it (at most 0.99 P_max; along a_t(psi_k) itself if its projected direction
cannot reach gamma_th), and alpha of the compute-only model. A first expansion point
that meets (17b) keeps ``objective_trace`` monotone.

``polish=True`` finally replaces (alpha, f^u, f^ap) by the exact optimum for the returned
beams' rates and powers (``optimizers.iscc.compute.exact_compute_allocation``, with UEs that
miss (17b) kept out of the AP capacity coupling as in ``optimizers.iscc.fast``) when that is
not worse (fewer-or-equal infeasible UEs and lower-or-equal cost).
"""

from __future__ import annotations

import math

import numpy as np

from isac_gym.iscc.beams import (
    beam_directions,
    comm_combiners_and_sinr,
    normalize_rows,
    sensing_combiners_and_sinr,
)
from isac_gym.iscc.model import (
    ENERGY_ATOL,
    FEASIBILITY_RTOL,
    Allocation,
    _ratio,
    as_beta,
    evaluate,
    sensing_met,
)
from isac_gym.iscc.scenario import Snapshot

_LN2 = math.log(2.0)
_NEWTON_STEPS = 30
_EPS = 1e-12


def _quartic_root(a, b, c, mu=None, x0=None):
    """Unique positive root of ``a x^4 + mu x^3 - b x - c`` (a > 0, c >= 0, mu >= 0).

    Newton iteration on the convex (for x > 0) quartic, per entry, started at
    ``max(x0, (b/4a)^(1/3))`` (where its slope is positive) or at an upper bound; from
    the left the first step lands right of the root, then it decreases monotonically.
    Returns 0 where c == 0 and b <= 0.

    ``a, b, c`` (and ``mu``, ``x0`` if given) are (K,) arrays; ``mu`` may be a scalar.
    The arithmetic runs on Python floats: for K <= ~10 entries that is several times
    cheaper than numpy's per-call overhead (this runs ~25 times per solve), with the same
    IEEE operations per entry; all entries step together until the largest relative step
    is <= 1e-12.
    """
    a, b, c = a.tolist(), b.tolist(), c.tolist()
    n = len(a)
    if mu is None:
        mu = [0.0] * n
    elif np.ndim(mu) == 0:
        mu = [float(mu)] * n
    else:
        mu = np.asarray(mu, float).tolist()
    x0 = None if x0 is None else np.asarray(x0, float).tolist()
    x, upper, trivial = [], [], []
    for k in range(n):
        bp = max(b[k], 0.0)
        c_a = c[k] / a[k]
        # Upper bound of the root: there a x^4 / 2 >= c and a x^4 / 2 >= b x, so g >= 0.
        upper_k = max((2.0 * c_a) ** 0.25, (2.0 * bp / a[k]) ** (1.0 / 3.0))
        trivial_k = c[k] <= 0 and b[k] <= 0
        if trivial_k:  # root 0: a dummy (1) keeps 0/0 out of the iteration
            upper_k = x_k = 1.0
        elif x0 is None:
            x_k = upper_k
        else:
            tiny = 1e-9 * c_a**0.25 + 1e-300
            slope_positive = (bp / (4.0 * a[k])) ** (1.0 / 3.0) * (1.0 + 1e-9)
            x_k = min(max(x0[k], slope_positive, tiny), upper_k)
        x.append(x_k)
        upper.append(upper_k)
        trivial.append(trivial_k)
    for _ in range(_NEWTON_STEPS):
        largest = 0.0
        for k in range(n):
            x_k = x[k]
            x2 = x_k * x_k
            g = ((a[k] * x_k + mu[k]) * x2 - b[k]) * x_k - c[k]
            dg = (4.0 * a[k] * x_k + 3.0 * mu[k]) * x2 - b[k]
            step = g / dg
            x_k = min(max(x_k - step, 0.5 * x_k), upper[k])  # a flat start overshoots
            x[k] = x_k
            largest = max(largest, abs(step) / x_k)
        if largest <= 1e-12:
            break
    return np.array([0.0 if trivial_k else x_k for x_k, trivial_k in zip(x, trivial, strict=True)])


class _Problem:
    """Snapshot constants in the dimensionless units of the module docstring."""

    def __init__(self, snapshot: Snapshot, beta, weight_ue):
        s = snapshot
        self.s = s
        self.K = s.K
        self.beta = as_beta(beta, s.K)
        if weight_ue is None:
            self.w_ue = np.ones(s.K)
        else:
            w = np.asarray(weight_ue, float)
            if w.ndim > 1 or (w.ndim == 1 and w.shape != (s.K,)):
                raise ValueError(f"weight_ue must be a scalar or have shape ({s.K},)")
            if not np.all(np.isfinite(w)) or np.any(w <= 0):
                raise ValueError(f"weight_ue must be finite and > 0, got {weight_ue!r}")
            self.w_ue = np.broadcast_to(w, (s.K,)).copy()
        self.work = s.varpi * s.Q  # cycles of the whole task
        self.f_scale = self.work / s.tau  # CPU frequency unit [cycle/s]
        e_k = s.xi_u * self.work**3 / s.tau**2
        self.E_ref = float(e_k.mean())
        self.e = e_k / self.E_ref  # per-UE energy weight in units of E_ref
        self.kappa_ap = self.beta * s.xi_ap / s.xi_u  # AP energy relative to UE energy
        self.cu = s.C_u / self.f_scale  # UE CPU cap (normalised)
        self.alpha_lo = np.clip(1.0 - s.tau * s.C_u / self.work, 0.0, 1.0)
        self.gn = s.gamma_s * s.noise  # sensing normalisation (unit-norm combiners)


def _restore(pb: _Problem, alpha, f, u, w, wt, sinr_c):
    """Feasible point of (P1) for given alpha and beams: CPUs at their latency bounds.

    ``sinr_c``: gamma^c (7) of the beams with the (max-SINR) combiners ``w``.
    alpha is clipped to ``>= 1 - tau C^u/(varpi Q)`` (17d); if the AP capacity (17e) is
    exceeded, alpha is moved towards that lower bound (common fraction, bisection) until
    it is met.
    """
    s = pb.s
    alpha = np.minimum(np.maximum(alpha, pb.alpha_lo), 1.0)
    rate = s.B * np.log2(1.0 + sinr_c)  # (9)
    per_alpha = s.Q / np.maximum(rate, 1e-300)  # t_com per unit alpha

    def ap_freq(a):
        return np.where(a > 0, a * pb.work / np.maximum(s.tau - a * per_alpha, 1e-9 * s.tau), 0.0)

    f_ap = ap_freq(alpha)
    if f_ap.sum() > s.C_ap:
        lo_a = pb.alpha_lo
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if ap_freq(lo_a + mid * (alpha - lo_a)).sum() > s.C_ap:
                hi = mid
            else:
                lo = mid
        alpha = lo_a + lo * (alpha - lo_a)
        f_ap = ap_freq(alpha)
    f_u = (1.0 - alpha) * pb.work / s.tau
    return Allocation(alpha, f_u, f_ap, f, u, w, wt)


def _judge(pb: _Problem, a: Allocation, sinr_c, sinr_s) -> tuple[int, float]:
    """``(number of infeasible UEs, cost (17a))`` as ``evaluate`` computes them.

    The same formulas (9)-(17) and checks (17b)-(17g) as
    :func:`isac_gym.iscc.model.evaluate`, with the SINRs (7)-(8) that the Gram identity
    of :func:`isac_gym.iscc.beams.gram_sinr` gives for the max-SINR combiners (equal up
    to round-off), so ranking the SCA candidates needs no 64 x 64 products. The
    returned solution itself is judged by ``evaluate``.
    """
    s = pb.s
    alpha, f_u, f_ap = a.alpha, a.f_u, a.f_ap
    rate = s.B * np.log2(1.0 + sinr_c)  # (9)
    offloaded = np.maximum(alpha, 0.0) * s.Q
    local = np.maximum(1.0 - alpha, 0.0) * s.Q
    t_local = _ratio(s.varpi * local, f_u)  # (10)
    t_com = _ratio(offloaded, rate)  # (11)
    latency = np.maximum(t_local, t_com + _ratio(s.varpi * offloaded, f_ap))  # (11)-(12)
    power = a.power  # (2)
    sendable = np.isfinite(t_com)
    energy_isac = np.where(sendable, power * np.where(sendable, t_com, 0.0), np.inf)  # (13)
    energy_ue = energy_isac + s.xi_u * f_u**2 * s.varpi * local  # (14), (16)
    energy_ap = s.xi_ap * f_ap**2 * s.varpi * offloaded  # (15)
    cost = float((energy_ue + pb.beta * energy_ap).sum())  # (17a)
    tol = 1.0 + FEASIBILITY_RTOL
    feasible = (
        sensing_met(s, sinr_s)  # (17b)
        & (latency <= s.tau * tol)  # (17c)
        & (f_u >= 0)
        & (f_u <= s.C_u * tol)  # (17d)
        & (f_ap >= 0)
        & ((f_ap.sum() <= s.C_ap * tol) | ~(f_ap > 0))  # (17e)
        & (alpha >= 0)
        & (alpha <= 1)  # (17f)
        & (power <= s.P_max * tol)  # (17g)
        & (energy_ue <= s.energy_budget * tol + ENERGY_ATOL)
    )
    return int((~feasible).sum()), cost


def _point(pb: _Problem, alpha, f, u):
    """Max-SINR combiners for (f, u), the restored point, its rank and its SINRs."""
    w, sinr_c = comm_combiners_and_sinr(pb.s, f, u)
    wt, sinr_s = sensing_combiners_and_sinr(pb.s, f, u)
    point = _restore(pb, alpha, f, u, w, wt, sinr_c)
    return point, _judge(pb, point, sinr_c, sinr_s), (sinr_c, sinr_s)


def _initial_point(pb: _Problem, warm_start: Allocation | None):
    s = pb.s
    if warm_start is not None:
        if not isinstance(warm_start, Allocation):
            raise ValueError("warm_start must be an Allocation")
        warm_start.check_shapes(s)  # raises ValueError on wrong shapes / NaN
        if warm_start.bandwidth_share is not None:
            raise ValueError("warm_start must use full-band sharing (bandwidth_share=None)")
        f, u = warm_start.f.copy(), warm_start.u.copy()
        p = np.sum(np.abs(f) ** 2 + np.abs(u) ** 2, axis=1)
        scale = np.sqrt(np.minimum(1.0, s.P_max / np.maximum(p, 1e-300)))[:, None]
        return np.clip(warm_start.alpha, 0.0, 1.0), f * scale, u * scale
    f_dir, u_dir = beam_directions(s)
    # Even power split, except that a UE whose sensing SINR (8) would stay below
    # gamma_th moves power from f to u: the least sensing powers >= P_max / 2 meeting
    # (17b) (``optimizers.iscc.fast``), at most 0.99 P_max (f stays non-zero).
    from optimizers.iscc.fast import sensing_powers

    zero = np.zeros_like(f_dir)
    p_u = sensing_powers(s, zero, u_dir, floor=s.P_max / 2)
    capped = p_u >= s.P_max
    if np.any(capped):  # as in ``optimizers.iscc.fast``: sense along a_t(psi_k) itself
        u_try = np.where(capped[:, None], normalize_rows(s.sense_tx), u_dir)
        p_try = sensing_powers(s, zero, u_try, floor=s.P_max / 2)
        if np.sum(p_try >= s.P_max) < np.sum(capped):
            u_dir, p_u = u_try, p_try
    p_u = np.minimum(p_u, 0.99 * s.P_max)[:, None]
    f = f_dir * np.sqrt(s.P_max - p_u)
    u = u_dir * np.sqrt(p_u)
    # alpha of the compute-only model with CPUs at the latency bounds (t_com neglected):
    # minimise w e (1-a)^3 + kappa a^3 -> a = 1 / (1 + sqrt(kappa / (w e)))
    alpha = 1.0 / (1.0 + np.sqrt(pb.kappa_ap / (pb.w_ue * pb.e)))
    return np.maximum(alpha, pb.alpha_lo), f, u


class _Expansion:
    """Linearisations (20)-(30) of sensing function and rate at the point (f, u, w, wt).

    All received amplitudes are one batched product: ``amp[j, c*K + k, p] = a[c, k, j]^H
    x_p,j`` with ``a[0, k, j] = H_j^H w_k`` (communication), ``a[1, k, j] = H~_j^H w~_k``
    (sensing) and ``x_0 = f``, ``x_1 = u``. Both linearised functions are sums of
    ``coef * |amp|^2`` (exact in the beams for a fixed combiner) plus constants.
    """

    def __init__(self, pb: _Problem, f, u, w, wt):
        s = pb.s
        K = pb.K
        a_c = (w.conj() @ s.H).conj()  # (j, k, M): H_j^H w_k
        a_s = (wt.conj() @ s.H_sense).conj()
        self.A = np.concatenate([a_c, a_s], axis=1)  # (j, 2K, M): rows c*K + k
        self.Ah = self.A.conj()
        self._beams = np.empty((*f.shape, 2), complex)  # (j, M, 2) buffer: x_0 = f, x_1 = u
        eye = np.eye(K, dtype=bool)
        amp = self.amplitudes(f, u)  # (j, 2K, 2)
        p2 = np.abs(amp) ** 2
        pf = p2[:, :K, 0].T  # [k, j] = |w_k^H H_j f_j|^2
        pu = p2[:, :K, 1].T
        sig = np.diagonal(pf).copy()
        g = pf.sum(1) - sig + pu.sum(1) + s.noise * np.sum(np.abs(w) ** 2, 1)
        gamma = sig / g
        self.R0 = s.B * np.log2(1.0 + gamma)
        kap = s.B / (_LN2 * (1.0 + gamma))
        interf = -(kap * sig / g**2)[:, None]
        Gf = np.where(eye, (kap / g)[:, None], interf)  # dR_k / d|amp_f[k, j]|^2
        Gu = np.broadcast_to(interf, (K, K))
        Sf = np.full((K, K), -1.0 / s.noise)  # sensing (19) / (gamma sigma^2)
        Su = np.where(eye, 1.0 / pb.gn, -1.0 / s.noise)
        # coef[j, c*K + k, p]
        coef = np.empty((K, 2 * K, 2))
        coef[:, :K, 0], coef[:, :K, 1] = Gf.T, Gu.T
        coef[:, K:, 0], coef[:, K:, 1] = Sf.T, Su.T
        self.coef = coef
        lin = np.einsum("jrp,jrp->r", coef, p2)
        self.const = np.concatenate([self.R0 - lin[:K], -np.sum(np.abs(wt) ** 2, 1)])
        self.K = K
        self.R_floor = 1e-3 * self.R0

    def amplitudes(self, f, u):
        beams = self._beams  # refilled in place: cheaper than np.stack
        beams[:, :, 0] = f
        beams[:, :, 1] = u
        return self.Ah @ beams  # (j, 2K, M) @ (j, M, 2)

    def values(self, f, u):
        """(Rbar floored, unfloored mask, Fbar, amplitudes)."""
        amp = self.amplitudes(f, u)
        lin = self.const + np.einsum("jrp,jrp->r", self.coef, (amp * amp.conj()).real)
        Rbar = lin[: self.K]
        return np.maximum(Rbar, self.R_floor), Rbar > self.R_floor, lin[self.K :], amp

    def gradient(self, amp, dR, dF):
        """sum_r dL/d(lin_r) * coef * a (a^H x): Wirtinger gradients w.r.t. f and u."""
        weight = self.coef * np.concatenate([dR, dF])[None, :, None] * amp  # (j, 2K, 2)
        grad = np.swapaxes(weight, 1, 2) @ self.A  # (j, 2, M)
        return grad[:, 0, :], grad[:, 1, :]


def solve_sca_admm(
    snapshot: Snapshot,
    beta,
    *,
    weight_ue=None,
    warm_start: Allocation | None = None,
    max_outer: int = 6,
    max_inner: int = 15,
    tol_outer: float = 1e-4,
    tol_inner: float = 1e-4,
    rho=(1.0, 1.0, 1.0, 2.0, 2.0),
    polish: bool = True,
    start: str = "fast",
    safeguard: bool = True,
) -> tuple[Allocation, dict]:
    """SCA-ADMM for (P1); returns ``(allocation, info)`` (see the module docstring).

    ``beta``: scalar or (K,), finite, > 0 (AP energy weight); ``weight_ue``: (K,) weight
    of the UE energy (default 1); ``warm_start``: an Allocation to start from;
    ``rho``: scalar or the five penalties (rho_1, ..., rho_5) of (35) (dimensionless).
    ``start``: ``"fast"`` (the ``optimizers.iscc.fast`` solution) or ``"paper"`` (the start
    of the module docstring), used without ``warm_start``; ``safeguard``: return the
    ``fast`` solution where it is better (deviation 11).
    ``info``: outer_iterations, inner_iterations (total), converged, objective_trace
    (true cost of the accepted point after each outer iteration), admm_objective_trace,
    primal_residual, dual_residual (last inner iteration), polished (bool), candidate
    (``"sca_admm"`` or ``"fast"``: which point was returned).
    """
    pb = _Problem(snapshot, beta, weight_ue)
    rho = np.broadcast_to(np.asarray(rho, float), (5,))
    if not np.all(np.isfinite(rho)) or np.any(rho <= 0):
        raise ValueError(f"rho must be finite and > 0, got {rho!r}")
    if int(max_outer) < 1 or int(max_inner) < 1:
        raise ValueError("max_outer and max_inner must be >= 1")
    if start not in ("fast", "paper"):
        raise ValueError(f"start must be 'fast' or 'paper', got {start!r}")
    r1, r2, r3, r4, r5 = (float(x) for x in rho)
    s = pb.s
    K, P = pb.K, s.P_max
    tau, Q = s.tau, s.Q

    fast = None
    if safeguard or (start == "fast" and warm_start is None):
        from optimizers.iscc.fast import solve_fast

        fast, _ = solve_fast(s, pb.beta, weight_ue=pb.w_ue)
    if warm_start is None and start == "fast":
        warm_start = fast
    alpha, f, u = _initial_point(pb, warm_start)
    best, best_rank, best_sinr = _point(pb, alpha, f, u)

    # ADMM state kept across outer iterations (warm duals), the scaled duals (50)-(54)
    # stacked in the order of the residual ``res`` below: consensus f, consensus u,
    # sensing, offloading latency, local latency
    z = np.zeros(5 * K)
    z_f, z_u, z_s, z_off, z_loc = z.reshape(5, K)
    step = 0.1
    trace, admm_trace = [], []
    inner_total = 0
    converged = False
    prim = dual = float("nan")
    outer = 0

    # Loop invariants (the inner loop runs on K-vectors: numpy calls, not flops, cost time)
    w_p = pb.w_ue * P  # UE energy weight times the power unit
    two_we = 2.0 * pb.w_ue * pb.e  # leading coefficient of (45) per unit (1 - alpha)
    two_ke = 2.0 * pb.kappa_ap * pb.e  # leading coefficient of (46) per unit alpha
    rho_slack = np.repeat([r3, r4, r5], K)  # weights of the slack changes (dual residual)
    rho_beam = np.repeat([r1, r2, r3, r4], K)  # penalties of the residuals in the beams

    def row_power(v):
        return (v * v.conj()).real.sum(1)  # ||v_k||^2 per UE

    def beam_terms(ex, f_, u_, pf_, pu_):
        """(Rbar floored, unfloored mask, Fbar, amplitudes, ||f||^2/P, ||u||^2/P)."""
        return (*ex.values(f_, u_), pf_, pu_)

    def beam_lagrangian(terms, fixed):
        """Beam part of (35) and its scaled residuals ``(r_cf, r_cu, r_s, r_off)``, stacked.

        ``fixed``: the parts that the beam step leaves unchanged (alpha, x, v, s, z), see
        ``beam_fixed`` below.
        """
        Rb, _, Fb, _, pf_, pu_ = terms
        alpha_q, energy_weight, resid_const = fixed
        tcom = alpha_q / Rb
        energy = (energy_weight * tcom).sum() / pb.E_ref
        # r_cf = pf - v_f + z_f, r_cu = pu - v_u + z_u, r_s = -Fbar + s_s + z_s,
        # r_off = t_com / tau + alpha / x - 1 + s_off + z_off
        resid = np.concatenate([pf_, pu_, -Fb, tcom / tau]) + resid_const
        val = energy + 0.5 * float(resid @ (rho_beam * resid))
        return val, resid

    for outer in range(1, int(max_outer) + 1):
        # --- expansion point l: exact combiner blocks (deviation 3), linearisations
        alpha, f, u = best.alpha.copy(), best.f.copy(), best.u.copy()
        ex = _Expansion(pb, f, u, best.w, best.w_tilde)  # best holds max-SINR combiners
        x = np.maximum(best.f_ap / pb.f_scale, 1e-6)  # normalised f^ap
        y = np.maximum(best.f_u / pb.f_scale, 1e-6)  # normalised f^u
        # the (P3) terms of the current beams; carried along (and reused) until they move
        beams = beam_terms(ex, f, u, row_power(f) / P, row_power(u) / P)
        Rbar, _, Fbar, _, v_f, v_u = beams
        tc = alpha * Q / Rbar / tau
        s_s = np.maximum(0.0, Fbar - z_s)
        s_off = np.maximum(0.0, 1.0 - tc - alpha / x - z_off)
        s_loc = np.maximum(0.0, 1.0 - (1.0 - alpha) / y - z_loc)
        slacks = np.concatenate([s_s, s_off, s_loc])

        J_prev = np.inf  # (P3) objective (normalised), for the relative-change stop
        for _it in range(int(max_inner)):
            inner_total += 1
            # --- alpha, closed form (43) + projection (44)
            A = Q / (Rbar * tau) + 1.0 / x
            D = 1.0 / y
            c1 = -1.0 + s_off + z_off
            c2 = -1.0 + s_loc + z_loc
            energy_weight = w_p * (v_f + v_u)  # ISAC energy (13) per t_com, times E_ref
            G = energy_weight * Q / (Rbar * pb.E_ref) + pb.e * (pb.kappa_ap * x**2 - pb.w_ue * y**2)
            r5_d2 = r5 * D**2
            alpha = (-G - r4 * A * c1 + r5_d2 + r5 * D * c2) / (r4 * A**2 + r5_d2)
            alpha = np.minimum(np.maximum(alpha, 0.0), 1.0)
            tc = alpha * Q / Rbar / tau  # t_com / tau, (31)
            # --- f^u from (45), projected on (17d); alpha = 1 (c_3 = 0) gives the root 0
            la = 1.0 - alpha
            qa = np.maximum(two_we * la, _EPS)
            y = _quartic_root(qa, r5 * c2 * la, r5 * la**2, x0=y)
            y = np.minimum(np.maximum(y, 1e-9), pb.cu)
            # --- f^ap from (46) with the AP capacity multiplier (deviation 2); alpha = 0
            # (c_4 = 0) gives the root 0
            c5 = tc + c1
            qa, qb, qc = np.maximum(two_ke * alpha, _EPS), r4 * c5 * alpha, r4 * alpha**2
            x_new = _quartic_root(qa, qb, qc, x0=x)
            if (x_new * pb.f_scale).sum() > s.C_ap * (1 + 1e-12):
                lo, hi = 0.0, 1.0
                while (_quartic_root(qa, qb, qc, hi) * pb.f_scale).sum() > s.C_ap:
                    hi *= 4.0
                for _b in range(60):
                    mid = 0.5 * (lo + hi)
                    used = (_quartic_root(qa, qb, qc, mid, x0=x_new) * pb.f_scale).sum()
                    lo, hi = (mid, hi) if used > s.C_ap else (lo, mid)
                x_new = _quartic_root(qa, qb, qc, hi)
            x = np.maximum(x_new, 1e-9)
            # --- beams: one projected gradient step (47), (59)-(63), Armijo step size
            alpha_q = alpha * Q
            resid_const = np.concatenate(
                [z_f - v_f, z_u - v_u, s_s + z_s, alpha / x - 1.0 + s_off + z_off]
            )
            beam_fixed = (alpha_q, energy_weight, resid_const)
            val0, resid = beam_lagrangian(beams, beam_fixed)
            r_cf, r_cu, r_s, r_off = resid.reshape(4, K)
            Rb, ok, _, amp, _, _ = beams
            dR = -(alpha_q / Rb**2) * (energy_weight / pb.E_ref + r4 * r_off / tau)
            dR = np.where(ok, dR, 0.0)
            gf, gu = ex.gradient(amp, dR, -r3 * r_s)
            gf = gf + (r1 * r_cf / P)[:, None] * f
            gu = gu + (r2 * r_cu / P)[:, None] * u
            gnorm2 = (np.vdot(gf, gf).real + np.vdot(gu, gu).real) * P
            step = min(step * 2.0, 1e6)
            for _ls in range(20):
                f_try = f - step * P * gf
                u_try = u - step * P * gu
                pf_try, pu_try = row_power(f_try), row_power(u_try)
                # projection (63): a common per-UE scale onto ||f||^2 + ||u||^2 <= P_max
                shrink = np.minimum(1.0, P / np.maximum(pf_try + pu_try, 1e-300))
                sc = np.sqrt(shrink)[:, None]
                f_try, u_try = f_try * sc, u_try * sc
                shrink_p = shrink / P
                terms = beam_terms(ex, f_try, u_try, pf_try * shrink_p, pu_try * shrink_p)
                val1, _ = beam_lagrangian(terms, beam_fixed)
                if val1 <= val0 - 1e-4 * step * gnorm2:
                    f, u, beams = f_try, u_try, terms
                    break
                step *= 0.25
            Rbar, _, Fbar, _, pf, pu = beams
            # --- auxiliary powers (48)-(49), exact (deviation 6)
            tcom = alpha_q / Rbar
            theta = w_p * tcom / pb.E_ref
            v_f_old, v_u_old = v_f, v_u
            v_f = np.maximum(pf + z_f - theta / r1, 0.0)
            v_u = np.maximum(pu + z_u - theta / r2, 0.0)
            # --- slacks (55)-(57) then scaled duals (50)-(54) (deviation 8)
            g_off = tcom / tau + alpha / x - 1.0
            g_loc = (1.0 - alpha) / y - 1.0
            slacks_old = slacks
            s_s = np.maximum(0.0, Fbar - z_s)
            s_off = np.maximum(0.0, -g_off - z_off)
            s_loc = np.maximum(0.0, -g_loc - z_loc)
            slacks = np.concatenate([s_s, s_off, s_loc])
            res = np.concatenate([pf - v_f, pu - v_u, -Fbar + s_s, g_off + s_off, g_loc + s_loc])
            z = z + res
            z_f, z_u, z_s, z_off, z_loc = z.reshape(5, K)
            prim = math.sqrt(res @ res)
            # The dual residual only matters for the stop (once prim is small) and for
            # ``info`` (last inner iteration): not computed otherwise.
            if prim <= tol_inner or _it == int(max_inner) - 1:
                ds = slacks - slacks_old
                dual = math.sqrt(
                    ((r1 * (v_f - v_f_old)) ** 2 + (r2 * (v_u - v_u_old)) ** 2).sum()
                    + ((rho_slack * ds) ** 2).sum()
                )
            J = float(
                (
                    theta * (v_f + v_u) + pb.e * (pb.w_ue * la * y**2 + pb.kappa_ap * alpha * x**2)
                ).sum()
            )
            small_change = abs(J - J_prev) <= tol_inner * abs(J)
            J_prev = J
            if prim <= tol_inner and (dual <= tol_inner or small_change):
                break

        # --- candidate for the next expansion point (deviation 9)
        cand, cand_rank, cand_sinr = _point(pb, alpha, f, u)
        admm_trace.append(cand_rank[1])
        prev_cost = best_rank[1]
        if cand_rank <= best_rank:  # lexicographic: (infeasible UEs, cost)
            best, best_rank, best_sinr = cand, cand_rank, cand_sinr
        trace.append(best_rank[1])
        # From a solution (``fast`` or a warm start) the first outer iteration may stop.
        first = outer > 1 or warm_start is not None
        if first and abs(prev_cost - best_rank[1]) <= tol_outer * max(abs(prev_cost), 1e-300):
            converged = True
            break

    polished = False
    if polish:
        from optimizers.iscc.compute import exact_compute_allocation

        rate = s.B * np.log2(1.0 + best_sinr[0])  # (9)
        power = best.power
        # as in ``optimizers.iscc.fast``: a UE missing (17b) cannot take the AP from the others
        blind = ~sensing_met(s, best_sinr[1])
        res_c = exact_compute_allocation(
            s, pb.beta, rate, power, weight_ue=pb.w_ue, exclude=blind if blind.any() else None
        )
        alpha_p = np.nan_to_num(np.asarray(res_c.alpha, float), nan=0.0)
        fu_p = np.nan_to_num(np.asarray(res_c.f_u, float), nan=0.0)
        fap_p = np.nan_to_num(np.asarray(res_c.f_ap, float), nan=0.0)
        cand = best.replace(alpha=alpha_p, f_u=fu_p, f_ap=fap_p)
        cand_rank = _judge(pb, cand, *best_sinr)
        if cand_rank <= best_rank:
            best, best_rank, polished = cand, cand_rank, True

    best_ev = evaluate(s, best, pb.beta)  # the true model judges the returned point
    candidate = "sca_admm"
    if safeguard:  # deviation 11: never worse than ``fast`` (true model)
        fast_ev = evaluate(s, fast, pb.beta)
        covers = not np.any(fast_ev.feasible & ~best_ev.feasible)
        more = best_ev.feasible.sum() > fast_ev.feasible.sum()
        # the same UEs served: compare their cost (17a); an unserved UE's is best effort
        served = fast_ev.feasible
        cheaper = best_ev.cost_of(served) <= fast_ev.cost_of(served)
        if not (covers and (more or cheaper)):
            best, best_ev, candidate = fast, fast_ev, "fast"
    info = dict(
        outer_iterations=outer,
        inner_iterations=inner_total,
        converged=converged,
        objective_trace=trace,
        admm_objective_trace=admm_trace,
        primal_residual=prim,
        dual_residual=dual,
        polished=polished,
        candidate=candidate,
        feasible=best_ev.feasible.copy(),
        cost=best_ev.cost,
    )
    return best, info
