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
   Candidates are ranked by ``_judge``: the formulas of ``evaluate`` and its constraint
   kernel ``isac_gym.iscc.model.constraint_checks``, with the SINRs of the max-SINR
   combiners from their Gram identity (equal up to round-off); the returned point is
   judged by ``evaluate`` itself.
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

Structure and batches. The algorithm runs on B slots at once (arrays with a leading slot
axis; :func:`solve_sca_admm` is the batch of one, :func:`solve_sca_admm_batch` the
public batch). ``_Admm`` holds the inner ADMM's state and steps (``_compute_step``:
(43)-(46); ``_beam_step``: (47), (59)-(63) with the Armijo search; ``_power_and_dual_step``:
(48)-(57) and the stopping rule); ``_sca`` is Algorithm 2 (expansion point, inner ADMM,
``_accept``); then ``_polish`` and ``_safeguard``. Every data-dependent branch is a mask
over the slots: a slot whose inner ADMM has stopped is frozen until the next outer
iteration, a slot whose SCA has converged is dropped from the arrays, the Armijo search
recomputes only the slots still backtracking, the quartic roots' Newton iterations and
the AP-multiplier bisection run per slot. Each slot therefore performs the same floating
point operations as when solved alone: results equal the per-slot ones (bit for bit on
the regression set used for this restructuring). The ``fast`` start and the polish's
exact compute allocation are still one call per slot (``_fast_starts``, ``_polish``).

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

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from isac_gym.iscc.beams import beam_directions, normalize_rows
from isac_gym.iscc.model import (
    Allocation,
    as_beta,
    evaluate,
    sensing_met,
    slot_terms,
)
from isac_gym.iscc.scenario import Snapshot

if TYPE_CHECKING:
    from optimizers.iscc.solve import Solution

_LN2 = math.log(2.0)
_NEWTON_STEPS = 30
_EPS = 1e-12
_TINY = 1e-300


def _quartic_root(a, b, c, mu=None, x0=None):
    """Unique positive root of ``a x^4 + mu x^3 - b x - c`` (a > 0, c >= 0, mu >= 0).

    Newton iteration on the convex (for x > 0) quartic, per entry, started at
    ``max(x0, (b/4a)^(1/3))`` (where its slope is positive) or at an upper bound; from
    the left the first step lands right of the root, then it decreases monotonically.
    Returns 0 where c == 0 and b <= 0.

    ``a, b, c`` (and ``x0``) are arrays ``(..., K)``: the entries of one row (one slot's
    UEs) step together until the row's largest relative step is <= 1e-12; a row that has
    converged is frozen while the others go on. ``mu``: scalar or broadcastable.
    """
    if a.size == a.shape[-1]:  # one row: Python floats beat numpy's per-call overhead
        return _quartic_root_row(a, b, c, mu, x0).reshape(a.shape)
    mu = 0.0 if mu is None else mu
    b_pos = np.maximum(b, 0.0)
    c_a = c / a
    # Upper bound of the root: there a x^4 / 2 >= c and a x^4 / 2 >= b x, so g >= 0.
    upper = np.maximum((2.0 * c_a) ** 0.25, (2.0 * b_pos / a) ** (1.0 / 3.0))
    if x0 is None:
        x = upper
    else:
        tiny = 1e-9 * c_a**0.25 + 1e-300
        slope_positive = (b_pos / (4.0 * a)) ** (1.0 / 3.0) * (1.0 + 1e-9)
        x = np.minimum(np.maximum(np.maximum(x0, slope_positive), tiny), upper)
    trivial = (c <= 0) & (b <= 0)  # root 0: a dummy (1) keeps 0/0 out of the iteration
    upper = np.where(trivial, 1.0, upper)
    x = np.where(trivial, 1.0, x)
    running = np.ones(x.shape[:-1], dtype=bool)
    for _ in range(_NEWTON_STEPS):
        x2 = x * x
        value = ((a * x + mu) * x2 - b) * x - c
        slope = (4.0 * a * x + 3.0 * mu) * x2 - b
        step = value / slope
        new = np.minimum(np.maximum(x - step, 0.5 * x), upper)  # a flat start overshoots
        x = np.where(running[..., None], new, x)
        running = running & ((np.abs(step) / new).max(axis=-1) > 1e-12)
        if not running.any():
            break
    return np.where(trivial, 0.0, x)


def _quartic_root_row(a, b, c, mu=None, x0=None):
    """:func:`_quartic_root` of one row, on Python floats (the same IEEE operations).

    For K <= ~10 entries this is several times cheaper than numpy's per-call overhead
    (it runs ~25 times per single-slot solve).
    """
    a, b, c = a.ravel().tolist(), b.ravel().tolist(), c.ravel().tolist()
    count = len(a)
    mu = [0.0] * count if mu is None else np.broadcast_to(np.ravel(mu), (count,)).tolist()
    x0 = None if x0 is None else np.asarray(x0).ravel().tolist()
    x, upper, trivial = [], [], []
    for k in range(count):
        b_pos = max(b[k], 0.0)
        c_a = c[k] / a[k]
        upper_k = max((2.0 * c_a) ** 0.25, (2.0 * b_pos / a[k]) ** (1.0 / 3.0))
        trivial_k = c[k] <= 0 and b[k] <= 0
        if trivial_k:
            upper_k = x_k = 1.0
        elif x0 is None:
            x_k = upper_k
        else:
            tiny = 1e-9 * c_a**0.25 + 1e-300
            slope_positive = (b_pos / (4.0 * a[k])) ** (1.0 / 3.0) * (1.0 + 1e-9)
            x_k = min(max(x0[k], slope_positive, tiny), upper_k)
        x.append(x_k)
        upper.append(upper_k)
        trivial.append(trivial_k)
    for _ in range(_NEWTON_STEPS):
        largest = 0.0
        for k in range(count):
            x_k = x[k]
            x2 = x_k * x_k
            value = ((a[k] * x_k + mu[k]) * x2 - b[k]) * x_k - c[k]
            slope = (4.0 * a[k] * x_k + 3.0 * mu[k]) * x2 - b[k]
            step = value / slope
            x_k = min(max(x_k - step, 0.5 * x_k), upper[k])
            x[k] = x_k
            largest = max(largest, abs(step) / x_k)
        if largest <= 1e-12:
            break
    return np.array([0.0 if trivial_k else x_k for x_k, trivial_k in zip(x, trivial, strict=True)])


def _per_slot(values: np.ndarray) -> np.ndarray:
    """A per-slot scalar as a (B, 1) column, broadcasting against (B, K) arrays."""
    return np.asarray(values, dtype=float)[:, None]


@dataclass(frozen=True, eq=False)
class _Problem:
    """B slots' constants in the dimensionless units of the module docstring.

    Per-UE arrays are (B, K), per-slot scalars (B, 1), channels (B, K, M, M_ut). The
    bounds carry the names of ``Snapshot`` (``constraint_checks`` reads them).
    """

    beta: np.ndarray
    w_ue: np.ndarray
    Q: np.ndarray
    tau: np.ndarray
    C_u: np.ndarray
    xi_u: np.ndarray
    varpi: np.ndarray
    energy_budget: np.ndarray
    bandwidth: np.ndarray
    noise: np.ndarray
    P_max: np.ndarray
    C_ap: np.ndarray
    xi_ap: np.ndarray
    gamma_s: np.ndarray
    H: np.ndarray
    H_sense: np.ndarray
    work: np.ndarray  #: cycles of the whole task
    f_scale: np.ndarray  #: CPU frequency unit [cycle/s]
    E_ref: np.ndarray  #: energy unit (B, 1)
    e: np.ndarray  #: per-UE energy weight in units of E_ref
    kappa_ap: np.ndarray  #: AP energy relative to UE energy
    cu: np.ndarray  #: UE CPU cap (normalised)
    alpha_lo: np.ndarray  #: least alpha allowed by (17d)
    gn: np.ndarray  #: sensing normalisation gamma_th sigma^2 (unit-norm combiners)

    @property
    def K(self) -> int:
        return self.Q.shape[1]

    def take(self, index: np.ndarray) -> _Problem:
        """The slots ``index`` only."""
        fields = {f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)}
        return _Problem(**fields)


def _stack(arrays: list) -> np.ndarray:
    """``np.stack(arrays)``; one array is not copied (a read-only view)."""
    return arrays[0][None] if len(arrays) == 1 else np.stack(arrays)


def _problem(snapshots: Sequence[Snapshot], betas: np.ndarray, weight_ue: np.ndarray):
    """The :class:`_Problem` of ``snapshots`` with (B, K) weights ``betas``, ``weight_ue``."""
    per_ue = {
        name: _stack([getattr(snapshot, name) for snapshot in snapshots])
        for name in ("Q", "tau", "C_u", "xi_u", "varpi", "energy_budget")
    }
    scalars = {
        name: _per_slot([getattr(snapshot, source) for snapshot in snapshots])
        for name, source in (("bandwidth", "B"), ("noise", "noise"), ("P_max", "P_max"))
        + (("C_ap", "C_ap"), ("xi_ap", "xi_ap"), ("gamma_s", "gamma_s"))
    }
    work = per_ue["varpi"] * per_ue["Q"]
    tau = per_ue["tau"]
    energy = per_ue["xi_u"] * work**3 / tau**2  # local execution of the whole task in tau
    E_ref = energy.mean(axis=-1, keepdims=True)
    f_scale = work / tau
    return _Problem(
        beta=betas,
        w_ue=weight_ue,
        **per_ue,
        **scalars,
        H=_stack([snapshot.H for snapshot in snapshots]),
        H_sense=_stack([snapshot.H_sense for snapshot in snapshots]),
        work=work,
        f_scale=f_scale,
        E_ref=E_ref,
        e=energy / E_ref,
        kappa_ap=betas * scalars["xi_ap"] / per_ue["xi_u"],
        cu=per_ue["C_u"] / f_scale,
        alpha_lo=np.clip(1.0 - tau * per_ue["C_u"] / work, 0.0, 1.0),
        gn=scalars["gamma_s"] * scalars["noise"],
    )


def _row_power(vectors: np.ndarray) -> np.ndarray:
    """||v_k||^2 per UE of (..., K, M) complex rows."""
    return (vectors * vectors.conj()).real.sum(axis=-1)


def _max_sinr(channel: np.ndarray, f, u, desired: np.ndarray, noise: np.ndarray):
    """Max-SINR combiners and SINRs (7) / (8) of B slots at once.

    The received set of a slot is ``[channel_j f_j, channel_j u_j]`` (2K rows); UE k's
    desired row is ``desired[k]``. As :func:`isac_gym.iscc.beams.gram_max_sinr`:
    ``gamma_k = 1 / (noise Z_kk) - 1`` and ``w_k ∝ X Z e_k`` with ``Z = (noise I + X^H
    X)^{-1}`` (Sherman-Morrison, push-through identity). Returns unit-norm combiners
    (B, K, M) and SINRs (B, K).
    """
    x_f = (channel @ f[..., None])[..., 0]
    x_u = (channel @ u[..., None])[..., 0]
    received = np.concatenate([x_f, x_u], axis=1)  # (B, 2K, M)
    gram = received.conj() @ np.swapaxes(received, 1, 2)
    rows = received.shape[1]
    inverse = np.linalg.inv(gram + noise[:, :, None] * _identity(rows))
    diagonal = inverse[:, desired, desired].real
    sinr = np.maximum(1.0 / np.maximum(noise * diagonal, _TINY) - 1.0, 0.0)
    combiners = np.swapaxes(inverse[:, :, desired], 1, 2) @ received
    return normalize_rows(combiners), sinr


def _ap_frequency(alpha, work, tau, com_per_alpha):
    """f^ap at the latency bound (17c): ``alpha work / (tau - alpha t_com(1))``."""
    denominator = np.maximum(tau - alpha * com_per_alpha, 1e-9 * tau)
    return np.where(alpha > 0, alpha * work / denominator, 0.0)


def _restore(problem: _Problem, alpha, sinr_c):
    """Feasible (alpha, f^u, f^ap) of (P1) for given alpha and beams: CPUs at their bounds.

    ``sinr_c``: gamma^c (7) of the beams with their max-SINR combiners. alpha is clipped
    to ``>= 1 - tau C^u/(varpi Q)`` (17d); where the AP capacity (17e) is exceeded, alpha
    is moved towards that lower bound (common fraction, bisection) until it is met.
    """
    alpha = np.minimum(np.maximum(alpha, problem.alpha_lo), 1.0)
    rate = problem.bandwidth * np.log2(1.0 + sinr_c)  # (9)
    com_per_alpha = problem.Q / np.maximum(rate, _TINY)  # t_com per unit alpha
    f_ap = _ap_frequency(alpha, problem.work, problem.tau, com_per_alpha)
    over = np.flatnonzero(f_ap.sum(axis=-1) > problem.C_ap[:, 0])
    if over.size:
        lowest, target = problem.alpha_lo[over], alpha[over]
        work, tau, per_alpha, C_ap = (
            problem.work[over],
            problem.tau[over],
            com_per_alpha[over],
            problem.C_ap[over],
        )
        lo, hi = np.zeros((over.size, 1)), np.ones((over.size, 1))
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            trial = lowest + mid * (target - lowest)
            exceeded = _ap_frequency(trial, work, tau, per_alpha).sum(-1, keepdims=True) > C_ap
            hi, lo = np.where(exceeded, mid, hi), np.where(exceeded, lo, mid)
        alpha[over] = lowest + lo * (target - lowest)
        f_ap[over] = _ap_frequency(alpha[over], work, tau, per_alpha)
    f_u = (1.0 - alpha) * problem.work / problem.tau
    return alpha, f_u, f_ap


def _judge(problem: _Problem, alpha, f_u, f_ap, power, sinr_c, sinr_s):
    """``(number of infeasible UEs, cost (17a))`` per slot, as ``evaluate`` computes them.

    The true model's (10)-(17a) and verdicts (:func:`isac_gym.iscc.model.slot_terms`),
    with the SINRs (7)-(8) of the max-SINR combiners from their Gram identity (equal up
    to round-off), so ranking the SCA candidates needs no 64 x 64 products. The returned
    solution is judged by ``evaluate`` itself.
    """
    rate = problem.bandwidth * np.log2(1.0 + sinr_c)  # (9)
    terms = slot_terms(
        problem, rate=rate, sinr_s=sinr_s, alpha=alpha, f_u=f_u, f_ap=f_ap,
        power=power, beta=problem.beta,
    )  # fmt: skip
    return (~terms["feasible"]).sum(axis=-1), terms["cost"]


@dataclass(frozen=True, eq=False)
class _Points:
    """One candidate point of (P1) per slot, with its SINRs and its rank by ``_judge``."""

    alpha: np.ndarray
    f_u: np.ndarray
    f_ap: np.ndarray
    f: np.ndarray
    u: np.ndarray
    w: np.ndarray
    w_tilde: np.ndarray
    sinr_c: np.ndarray
    sinr_s: np.ndarray
    infeasible: np.ndarray  #: (B,) number of UEs that miss a constraint
    cost: np.ndarray  #: (B,) cost (17a)

    def better_or_equal(self, other: _Points) -> np.ndarray:
        """Lexicographic ``(infeasible, cost) <= other's`` per slot."""
        fewer = self.infeasible < other.infeasible
        return fewer | ((self.infeasible == other.infeasible) & (self.cost <= other.cost))

    def where(self, mask: np.ndarray, other: _Points) -> _Points:
        """Per slot: this point where ``mask``, else ``other``'s."""
        if mask.all():
            return self
        fields = {}
        for field in dataclasses.fields(self):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            fields[field.name] = np.where(mask.reshape(-1, *[1] * (mine.ndim - 1)), mine, theirs)
        return _Points(**fields)

    def take(self, index: np.ndarray) -> _Points:
        return _Points(**{f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self)})

    def put(self, index: np.ndarray, part: _Points) -> None:
        """Overwrite the slots ``index`` with ``part`` (in place)."""
        for field in dataclasses.fields(self):
            getattr(self, field.name)[index] = getattr(part, field.name)

    def allocation(self, slot: int) -> Allocation:
        return Allocation(
            *(getattr(self, name)[slot].copy() for name in ("alpha", "f_u", "f_ap", "f", "u")),
            w=self.w[slot].copy(),
            w_tilde=self.w_tilde[slot].copy(),
        )


def _points(problem: _Problem, alpha, f, u) -> _Points:
    """Max-SINR combiners for (f, u), the restored compute variables and the rank."""
    K = problem.K
    w, sinr_c = _max_sinr(problem.H, f, u, np.arange(K), problem.noise)
    w_tilde, sinr_s = _max_sinr(problem.H_sense, f, u, K + np.arange(K), problem.noise)
    alpha, f_u, f_ap = _restore(problem, alpha, sinr_c)
    power = _row_power(f) + _row_power(u)  # (2)
    infeasible, cost = _judge(problem, alpha, f_u, f_ap, power, sinr_c, sinr_s)
    return _Points(alpha, f_u, f_ap, f, u, w, w_tilde, sinr_c, sinr_s, infeasible, cost)


def _warm_point(snapshot: Snapshot, warm_start: Allocation):
    """(alpha, f, u) of a warm start, its beams scaled onto (17g)."""
    if not isinstance(warm_start, Allocation):
        raise ValueError("warm_start must be an Allocation")
    warm_start.check_shapes(snapshot)  # raises ValueError on wrong shapes / NaN
    if warm_start.bandwidth_share is not None:
        raise ValueError("warm_start must use full-band sharing (bandwidth_share=None)")
    f, u = warm_start.f.copy(), warm_start.u.copy()
    power = np.sum(np.abs(f) ** 2 + np.abs(u) ** 2, axis=1)
    scale = np.sqrt(np.minimum(1.0, snapshot.P_max / np.maximum(power, _TINY)))[:, None]
    return np.clip(warm_start.alpha, 0.0, 1.0), f * scale, u * scale


def _paper_point(snapshot: Snapshot, problem: _Problem, slot: int):
    """(alpha, f, u) of the paper start (module docstring)."""
    from optimizers.iscc.fast import sensing_powers

    f_dir, u_dir = beam_directions(snapshot)
    # Even power split, except that a UE whose sensing SINR (8) would stay below
    # gamma_th moves power from f to u: the least sensing powers >= P_max / 2 meeting
    # (17b) (``optimizers.iscc.fast``), at most 0.99 P_max (f stays non-zero).
    zero = np.zeros_like(f_dir)
    p_u = sensing_powers(snapshot, zero, u_dir, floor=snapshot.P_max / 2)
    capped = p_u >= snapshot.P_max
    if np.any(capped):  # as in ``optimizers.iscc.fast``: sense along a_t(psi_k) itself
        u_try = np.where(capped[:, None], normalize_rows(snapshot.sense_tx), u_dir)
        p_try = sensing_powers(snapshot, zero, u_try, floor=snapshot.P_max / 2)
        if np.sum(p_try >= snapshot.P_max) < np.sum(capped):
            u_dir, p_u = u_try, p_try
    p_u = np.minimum(p_u, 0.99 * snapshot.P_max)[:, None]
    f = f_dir * np.sqrt(snapshot.P_max - p_u)
    u = u_dir * np.sqrt(p_u)
    # alpha of the compute-only model with CPUs at the latency bounds (t_com neglected):
    # minimise w e (1-a)^3 + kappa a^3 -> a = 1 / (1 + sqrt(kappa / (w e)))
    alpha = 1.0 / (1.0 + np.sqrt(problem.kappa_ap[slot] / (problem.w_ue[slot] * problem.e[slot])))
    return np.maximum(alpha, problem.alpha_lo[slot]), f, u


class _Expansion:
    """Linearisations (20)-(30) of sensing function and rate at the points (f, u, w, wt).

    All received amplitudes are one batched product: ``amp[b, j, c*K + k, p] = a[c, k,
    j]^H x_p,j`` of slot b with ``a[0, k, j] = H_j^H w_k`` (communication), ``a[1, k, j]
    = H~_j^H w~_k`` (sensing) and ``x_0 = f``, ``x_1 = u``. Both linearised functions are
    sums of ``coef * |amp|^2`` (exact in the beams for a fixed combiner) plus constants.
    """

    def __init__(self, problem: _Problem, f, u, w, w_tilde):
        K = problem.K
        comm = w.conj()[:, None] @ problem.H  # (b, j, k, M): (H_j^H w_k)^*
        sense = w_tilde.conj()[:, None] @ problem.H_sense
        self.Ah = np.concatenate([comm, sense], axis=2)  # (b, j, 2K, M): rows c*K + k
        self._beams = np.empty((*f.shape, 2), complex)  # (b, j, M, 2): x_0 = f, x_1 = u
        power = np.abs(self.amplitudes(f, u)) ** 2  # (b, j, 2K, 2)
        self.coef = self._coefficients(problem, power, w)
        lin = (self.coef * power).sum(axis=(1, 3))
        sensing_noise = -np.sum(np.abs(w_tilde) ** 2, -1)
        self.const = np.concatenate([self.R0 - lin[:, :K], sensing_noise], axis=-1)
        self.K = K
        self.R_floor = 1e-3 * self.R0

    def _coefficients(self, problem: _Problem, power, w):
        """coef[b, j, c*K + k, p]: d(R_k or sensing_k) / d|amp|^2, (25)-(28) and (20)."""
        K = problem.K
        noise = problem.noise[:, :, None]
        eye = _identity(K, bool)
        power_f = np.swapaxes(power[:, :, :K, 0], 1, 2)  # [b, k, j] = |w_k^H H_j f_j|^2
        power_u = np.swapaxes(power[:, :, :K, 1], 1, 2)
        signal = np.diagonal(power_f, axis1=1, axis2=2).copy()
        others = power_f.sum(-1) - signal + power_u.sum(-1)
        denominator = others + problem.noise * np.sum(np.abs(w) ** 2, -1)
        gamma = signal / denominator
        self.R0 = problem.bandwidth * np.log2(1.0 + gamma)
        slope = problem.bandwidth / (_LN2 * (1.0 + gamma))
        interference = -(slope * signal / denominator**2)[:, :, None]
        rate_f = np.where(eye, (slope / denominator)[:, :, None], interference)
        rate_u = np.broadcast_to(interference, rate_f.shape)
        sense_f = np.broadcast_to(-1.0 / noise, rate_f.shape)  # sensing (19) / (gamma sigma^2)
        sense_u = np.where(eye, 1.0 / problem.gn[:, :, None], -1.0 / noise)
        coef = np.empty(power.shape)
        coef[:, :, :K, 0], coef[:, :, :K, 1] = np.swapaxes(rate_f, 1, 2), np.swapaxes(rate_u, 1, 2)
        coef[:, :, K:, 0], coef[:, :, K:, 1] = (
            np.swapaxes(sense_f, 1, 2),
            np.swapaxes(sense_u, 1, 2),
        )
        return coef

    def amplitudes(self, f, u, slots=None):
        """Received amplitudes of the beams (f, u) of every slot, or of the ``slots``."""
        if slots is None:
            beams, Ah = self._beams, self.Ah  # refilled in place: cheaper than np.stack
        else:
            beams, Ah = np.empty((*f.shape, 2), complex), self.Ah[slots]
        beams[..., 0] = f
        beams[..., 1] = u
        return Ah @ beams  # (b, j, 2K, M) @ (b, j, M, 2)

    def values(self, f, u, slots=None):
        """(Rbar floored, unfloored mask, Fbar, amplitudes) of every slot or the ``slots``."""
        amp = self.amplitudes(f, u, slots)
        const, coef, floor = self.const, self.coef, self.R_floor
        if slots is not None:
            const, coef, floor = const[slots], coef[slots], floor[slots]
        lin = const + (coef * (amp * amp.conj()).real).sum(axis=(1, 3))
        rate = lin[:, : self.K]
        return np.maximum(rate, floor), rate > floor, lin[:, self.K :], amp

    def gradient(self, amp, d_rate, d_sensing):
        """sum_r dL/d(lin_r) * coef * a (a^H x): Wirtinger gradients w.r.t. f and u."""
        scale = np.concatenate([d_rate, d_sensing], axis=-1)[:, None, :, None]
        weight = self.coef * scale * amp  # (b, j, 2K, 2)
        # weight^T A, as the conjugate of conj(weight)^T A^* (exact: only signs differ)
        grad = (np.swapaxes(weight, 2, 3).conj() @ self.Ah).conj()  # (b, j, 2, M)
        return grad[:, :, 0, :], grad[:, :, 1, :]


def _blocks(stacked: np.ndarray, parts: int):
    """The ``parts`` (B, K) blocks of a (B, parts K) array (views)."""
    return stacked.reshape(len(stacked), parts, -1).transpose(1, 0, 2)


@lru_cache(maxsize=16)
def _identity(size: int, dtype=float) -> np.ndarray:
    identity = np.eye(size, dtype=dtype)
    identity.setflags(write=False)
    return identity


def _merge(running, new, old):
    """``new`` in the running slots, ``old`` in the frozen ones (``running`` None: all)."""
    if running is None:
        return new
    return np.where(running.reshape(-1, *[1] * (np.ndim(new) - 1)), new, old)


class _Admm:
    """State of the inner ADMM (Algorithm 1) of B slots, with its steps.

    Kept across outer iterations: the scaled duals ``z`` (50)-(54), stacked in the order
    of the residual (consensus f, consensus u, sensing, offloading latency, local
    latency), the Armijo step, and the last residuals. Set at each expansion point:
    the primal variables alpha, ``x = f^ap`` and ``y = f^u`` (normalised), the beams, the
    auxiliary powers ``v_f, v_u`` (48)-(49) and the slacks (55)-(57). Every step updates
    only the ``running`` slots (a (B,) mask, or None for all).
    """

    def __init__(self, problem: _Problem, rho, tol_inner: float):
        self.problem = problem
        self.rho = rho
        self.tol_inner = tol_inner
        count, K = problem.Q.shape
        self.count = count
        self.z = np.zeros((count, 5 * K))
        self.z_blocks = _blocks(self.z, 5)
        self.step = np.full(count, 0.1)
        self.primal = np.full(count, np.nan)
        self.dual = np.full(count, np.nan)
        # Loop invariants (the inner loop runs on (B, K) arrays: calls, not flops, cost time)
        self.w_p = problem.w_ue * problem.P_max  # UE energy weight times the power unit
        self.two_we = (
            2.0 * problem.w_ue * problem.e
        )  # leading coefficient of (45) per unit (1 - alpha)
        self.two_ke = (
            2.0 * problem.kappa_ap * problem.e
        )  # leading coefficient of (46) per unit alpha
        rho_1, rho_2, rho_3, rho_4, rho_5 = rho
        self.rho_slack = np.repeat([rho_3, rho_4, rho_5], K)  # dual residual weights
        self.rho_beam = np.repeat([rho_1, rho_2, rho_3, rho_4], K)  # beam residual weights

    def take(self, index: np.ndarray) -> _Admm:
        """The state of the slots ``index`` (those still iterating), as a new object."""
        part = _Admm(self.problem.take(index), self.rho, self.tol_inner)
        for name in ("z", "step", "primal", "dual"):
            setattr(part, name, getattr(self, name)[index])
        part.z_blocks = _blocks(part.z, 5)
        return part

    def put(self, index: np.ndarray, part: _Admm) -> None:
        for name in ("z", "step", "primal", "dual"):
            getattr(self, name)[index] = getattr(part, name)

    def expand(self, best: _Points) -> None:
        """Start an outer iteration at ``best``: combiner blocks (deviation 3), (20)-(30)."""
        problem = self.problem
        self.alpha, self.f, self.u = best.alpha.copy(), best.f.copy(), best.u.copy()
        self.expansion = _Expansion(problem, self.f, self.u, best.w, best.w_tilde)
        self.ap_cpu = np.maximum(best.f_ap / problem.f_scale, 1e-6)  # normalised f^ap
        self.ue_cpu = np.maximum(best.f_u / problem.f_scale, 1e-6)  # normalised f^u
        # the (P3) terms of the current beams; carried along (and reused) until they move
        powers = _row_power(self.f) / problem.P_max, _row_power(self.u) / problem.P_max
        self.terms = (*self.expansion.values(self.f, self.u), *powers)
        rate, _, sensing, _, self.v_f, self.v_u = self.terms
        _, _, z_s, z_off, z_loc = self.z_blocks
        com = self.alpha * problem.Q / rate / problem.tau
        self._set_slacks(
            np.concatenate(
                [
                    np.maximum(0.0, sensing - z_s),
                    np.maximum(0.0, 1.0 - com - self.alpha / self.ap_cpu - z_off),
                    np.maximum(0.0, 1.0 - (1.0 - self.alpha) / self.ue_cpu - z_loc),
                ],
                axis=-1,
            )
        )
        self.objective = np.full(self.count, np.inf)  # (P3) objective, relative-change stop

    def _set_slacks(self, slacks) -> None:
        self.slacks, self.slack_blocks = slacks, _blocks(slacks, 3)

    def _commit(self, running, **values) -> None:
        """Set the state ``values`` in the running slots (``running`` None: all)."""
        for name, new in values.items():
            setattr(
                self, name, new if running is None else _merge(running, new, getattr(self, name))
            )

    def iterate(self, running, last: bool) -> np.ndarray:
        """One inner ADMM iteration; returns the slots whose stopping rule holds."""
        alpha, ap_cpu, ue_cpu = self._compute_step()
        self._commit(running, alpha=alpha, ap_cpu=ap_cpu, ue_cpu=ue_cpu)
        self._beam_step(running)
        return self._power_and_dual_step(running, last)

    def _compute_step(self):
        """alpha by (43)-(44), f^u by (45) on (17d), f^ap by (46) with the AP multiplier.

        ``A, D, G, c_1, c_2, c_5`` are the quantities of (43)-(46) (module docstring,
        deviations 1-2). alpha = 1 (c_3 = 0) gives the root f^u = 0, alpha = 0 (c_4 = 0)
        the root f^ap = 0.
        """
        problem = self.problem
        _, _, _, rho_4, rho_5 = self.rho
        _, _, _, z_off, z_loc = self.z_blocks
        _, s_off, s_loc = self.slack_blocks
        rate, ap_cpu, ue_cpu = self.terms[0], self.ap_cpu, self.ue_cpu
        A = problem.Q / (rate * problem.tau) + 1.0 / ap_cpu
        D = 1.0 / ue_cpu
        c_1 = -1.0 + s_off + z_off
        c_2 = -1.0 + s_loc + z_loc
        energy_weight = self.w_p * (self.v_f + self.v_u)  # ISAC energy (13) per t_com, x E_ref
        G = energy_weight * problem.Q / (rate * problem.E_ref) + problem.e * (
            problem.kappa_ap * ap_cpu**2 - problem.w_ue * ue_cpu**2
        )
        rho5_d2 = rho_5 * D**2
        alpha = (-G - rho_4 * A * c_1 + rho5_d2 + rho_5 * D * c_2) / (rho_4 * A**2 + rho5_d2)
        alpha = np.minimum(np.maximum(alpha, 0.0), 1.0)
        com = alpha * problem.Q / rate / problem.tau  # t_com / tau, (31)
        local = 1.0 - alpha
        leading = np.maximum(self.two_we * local, _EPS)
        ue_cpu = _quartic_root(leading, rho_5 * c_2 * local, rho_5 * local**2, x0=ue_cpu)
        ue_cpu = np.minimum(np.maximum(ue_cpu, 1e-9), problem.cu)
        c_5 = com + c_1
        leading = np.maximum(self.two_ke * alpha, _EPS)
        ap_cpu = self._ap_frequencies(leading, rho_4 * c_5 * alpha, rho_4 * alpha**2)
        return alpha, np.maximum(ap_cpu, 1e-9), ue_cpu

    def _ap_frequencies(self, leading, linear, constant):
        """Roots of (46); where they exceed C^ap (17e), the KKT multiplier (deviation 2).

        The multiplier mu of the capacity is found per slot by bisection (after growing
        its bracket by factors of 4), only in the slots whose capacity binds.
        """
        problem = self.problem
        x = _quartic_root(leading, linear, constant, x0=self.ap_cpu)
        over = np.flatnonzero((x * problem.f_scale).sum(-1) > problem.C_ap[:, 0] * (1 + 1e-12))
        if not over.size:
            return x
        leading, linear, constant = leading[over], linear[over], constant[over]
        f_scale, capacity, start = problem.f_scale[over], problem.C_ap[over], x[over]

        def exceeds(mu, x0=None):
            root = _quartic_root(leading, linear, constant, mu, x0=x0)
            return (root * f_scale).sum(-1, keepdims=True) > capacity

        lo, hi = np.zeros((over.size, 1)), np.ones((over.size, 1))
        grow = exceeds(hi)
        while grow.any():
            hi = np.where(grow, 4.0 * hi, hi)
            grow = exceeds(hi)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            above = exceeds(mid, x0=start)
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        x[over] = _quartic_root(leading, linear, constant, hi)
        return x

    def _lagrangian(self, terms, fixed, slots=None):
        """Beam part of (35) and its scaled residuals ``(r_cf, r_cu, r_s, r_off)``, stacked.

        ``fixed``: the parts that the beam step leaves unchanged, ``(alpha Q, energy
        weight, residual constants)`` (alpha, x, v, s, z); ``terms`` and ``fixed`` of
        every slot, or of the ``slots`` only.
        """
        E_ref, tau = self.problem.E_ref, self.problem.tau
        if slots is not None:
            E_ref, tau = E_ref[slots], tau[slots]
        rate, _, sensing, _, p_f, p_u = terms
        alpha_q, energy_weight, resid_const = fixed
        com = alpha_q / rate
        energy = (energy_weight * com).sum(-1) / E_ref[:, 0]
        # r_cf = pf - v_f + z_f, r_cu = pu - v_u + z_u, r_s = -Fbar + s_s + z_s,
        # r_off = t_com / tau + alpha / x - 1 + s_off + z_off
        resid = np.concatenate([p_f, p_u, -sensing, com / tau], axis=-1) + resid_const
        return energy + 0.5 * (resid * (self.rho_beam * resid)).sum(-1), resid

    def _beam_step(self, running) -> None:
        """One projected gradient step (47), (59)-(63) on the beams, Armijo step size."""
        problem, p_max = self.problem, self.problem.P_max
        rho_1, rho_2, rho_3, rho_4, _ = self.rho
        z_f, z_u, z_s, z_off, _ = self.z_blocks
        s_s, s_off, _ = self.slack_blocks
        alpha_q = self.alpha * problem.Q
        energy_weight = self.w_p * (self.v_f + self.v_u)
        resid_const = np.concatenate(
            [
                z_f - self.v_f,
                z_u - self.v_u,
                s_s + z_s,
                self.alpha / self.ap_cpu - 1.0 + s_off + z_off,
            ],
            axis=-1,
        )
        fixed = (alpha_q, energy_weight, resid_const)
        value, resid = self._lagrangian(self.terms, fixed)
        r_cf, r_cu, r_s, r_off = _blocks(resid, 4)
        rate, unfloored, _, amp, _, _ = self.terms
        d_rate = -(alpha_q / rate**2) * (
            energy_weight / problem.E_ref + rho_4 * r_off / problem.tau
        )
        d_rate = np.where(unfloored, d_rate, 0.0)
        grad_f, grad_u = self.expansion.gradient(amp, d_rate, -rho_3 * r_s)
        grad_f = grad_f + (rho_1 * r_cf / p_max)[..., None] * self.f
        grad_u = grad_u + (rho_2 * r_cu / p_max)[..., None] * self.u
        decrease = (_row_power(grad_f).sum(-1) + _row_power(grad_u).sum(-1)) * p_max[:, 0]
        self.step = _merge(running, np.minimum(self.step * 2.0, 1e6), self.step)
        self._line_search(running, fixed, value, (grad_f, grad_u), decrease)

    def _line_search(self, running, fixed, value, gradients, decrease) -> None:
        """Armijo backtracking (deviation 7), per slot, with the projection (63).

        After the first trial only the slots still backtracking are computed.
        """
        slots = None if running is None else np.flatnonzero(running)
        for _ in range(20):
            f_try, u_try, terms, trial = self._trial(slots, fixed, gradients)
            bound = value - 1e-4 * self.step * decrease
            accept = trial <= (bound if slots is None else bound[slots])
            self._accept_beams(slots, accept, f_try, u_try, terms)
            failed = (~accept).nonzero()[0]
            if not failed.size:
                break
            slots = failed if slots is None else slots[failed]
            step = self.step.copy()
            step[slots] *= 0.25
            self.step = step
            if slots.size == self.count:
                slots = None

    def _trial(self, slots, fixed, gradients):
        """Beams after a gradient step of the current sizes, projected (63), and their
        (P3) terms and Lagrangian, in every slot or in the ``slots``."""
        p_max, step, f, u = self.problem.P_max, self.step, self.f, self.u
        grad_f, grad_u = gradients
        if slots is not None:
            p_max, step, f, u = p_max[slots], step[slots], f[slots], u[slots]
            grad_f, grad_u = grad_f[slots], grad_u[slots]
            fixed = tuple(part[slots] for part in fixed)
        scaled = (step[:, None] * p_max)[..., None]
        f_try, u_try = f - scaled * grad_f, u - scaled * grad_u
        p_f, p_u = _row_power(f_try), _row_power(u_try)
        # projection (63): a common per-UE scale onto ||f||^2 + ||u||^2 <= P_max
        shrink = np.minimum(1.0, p_max / np.maximum(p_f + p_u, _TINY))
        root = np.sqrt(shrink)[..., None]
        f_try, u_try = f_try * root, u_try * root
        shrink_p = shrink / p_max
        terms = (*self.expansion.values(f_try, u_try, slots), p_f * shrink_p, p_u * shrink_p)
        return f_try, u_try, terms, self._lagrangian(terms, fixed, slots)[0]

    def _accept_beams(self, slots, accept, f, u, terms) -> None:
        """Take the trial beams and their (P3) terms where ``accept`` holds.

        ``accept`` is over every slot, or over the ``slots`` of the trial.
        """
        if slots is None and accept.all():
            self.f, self.u, self.terms = f, u, terms
            return
        index = accept.nonzero()[0] if slots is None else slots[accept]
        if not index.size:
            return

        def put(old, new):
            merged = old.copy()
            merged[index] = new[accept]
            return merged

        self.f, self.u = put(self.f, f), put(self.u, u)
        self.terms = tuple(put(old, new) for old, new in zip(self.terms, terms, strict=True))

    def _power_and_dual_step(self, running, last: bool) -> np.ndarray:
        """Powers (48)-(49) (deviation 6), slacks (55)-(57), duals (50)-(54) (deviation 8).

        Returns the slots whose stopping rule holds: primal residual and either the dual
        residual or the relative change of the (P3) objective below ``tol_inner``.
        """
        problem, tol = self.problem, self.tol_inner
        rho_1, rho_2, _, _, _ = self.rho
        z_f, z_u, z_s, z_off, z_loc = self.z_blocks
        rate, _, sensing, _, p_f, p_u = self.terms
        alpha, ap_cpu, ue_cpu = self.alpha, self.ap_cpu, self.ue_cpu
        com = alpha * problem.Q / rate
        theta = self.w_p * com / problem.E_ref
        v_f = np.maximum(p_f + z_f - theta / rho_1, 0.0)
        v_u = np.maximum(p_u + z_u - theta / rho_2, 0.0)
        g_off = com / problem.tau + alpha / ap_cpu - 1.0
        g_loc = (1.0 - alpha) / ue_cpu - 1.0
        s_s = np.maximum(0.0, sensing - z_s)
        s_off = np.maximum(0.0, -g_off - z_off)
        s_loc = np.maximum(0.0, -g_loc - z_loc)
        slacks = np.concatenate([s_s, s_off, s_loc], axis=-1)
        res = np.concatenate(
            [p_f - v_f, p_u - v_u, -sensing + s_s, g_off + s_off, g_loc + s_loc], axis=-1
        )
        primal = np.sqrt((res * res).sum(-1))
        # The dual residual only matters for the stop (once the primal one is small) and
        # for ``info`` (last inner iteration).
        needed = (primal <= tol) | last
        dual = self.dual
        if needed.any():
            change = self.rho_slack * (slacks - self.slacks)
            dual_sq = ((rho_1 * (v_f - self.v_f)) ** 2 + (rho_2 * (v_u - self.v_u)) ** 2).sum(-1)
            dual = np.where(needed, np.sqrt(dual_sq + (change**2).sum(-1)), dual)
        energy = problem.e * (
            problem.w_ue * (1.0 - alpha) * ue_cpu**2 + problem.kappa_ap * alpha * ap_cpu**2
        )
        objective = (theta * (v_f + v_u) + energy).sum(-1)
        small_change = np.abs(objective - self.objective) <= tol * np.abs(objective)
        self._commit(running, v_f=v_f, v_u=v_u, slacks=slacks, z=self.z + res)
        self._commit(running, primal=primal, dual=dual, objective=objective)
        self.z_blocks, self.slack_blocks = _blocks(self.z, 5), _blocks(self.slacks, 3)
        return (primal <= tol) & ((dual <= tol) | small_change)


@dataclass(frozen=True)
class _Options:
    """The iteration settings of :func:`solve_sca_admm` (validated)."""

    max_outer: int = 6
    max_inner: int = 15
    tol_outer: float = 1e-4
    tol_inner: float = 1e-4
    rho: tuple = (1.0, 1.0, 1.0, 2.0, 2.0)
    polish: bool = True
    start: str = "fast"
    safeguard: bool = True

    def __post_init__(self) -> None:
        rho = np.broadcast_to(np.asarray(self.rho, float), (5,))
        if not np.all(np.isfinite(rho)) or np.any(rho <= 0):
            raise ValueError(f"rho must be finite and > 0, got {rho!r}")
        object.__setattr__(self, "rho", tuple(float(value) for value in rho))
        if int(self.max_outer) < 1 or int(self.max_inner) < 1:
            raise ValueError("max_outer and max_inner must be >= 1")
        object.__setattr__(self, "max_outer", int(self.max_outer))
        object.__setattr__(self, "max_inner", int(self.max_inner))
        if self.start not in ("fast", "paper"):
            raise ValueError(f"start must be 'fast' or 'paper', got {self.start!r}")


def _inner_admm(admm: _Admm, best: _Points, max_inner: int) -> np.ndarray:
    """Algorithm 1 at the expansion points ``best``; returns the iterations per slot.

    A slot whose stopping rule holds is frozen while the others go on.
    """
    admm.expand(best)
    iterations = np.zeros(len(best.cost), dtype=int)
    running = None  # every slot
    for iteration in range(max_inner):
        iterations += 1 if running is None else running
        stop = admm.iterate(running, last=iteration == max_inner - 1)
        going = ~stop if running is None else running & ~stop
        still = np.count_nonzero(going)
        if not still:
            break
        running = None if still == len(going) else going
    return iterations


def _accept(problem: _Problem, admm: _Admm, best: _Points):
    """The ADMM's point as a candidate (deviation 9): ``(candidate, new best)``.

    The candidate replaces the expansion point where it has no more infeasible UEs and,
    with as many, a cost not higher (lexicographic).
    """
    candidate = _points(problem, admm.alpha, admm.f, admm.u)
    return candidate, candidate.where(candidate.better_or_equal(best), best)


def _sca(problem: _Problem, best: _Points, options: _Options, from_solution: np.ndarray):
    """Algorithm 2 from the points ``best``: the final points and per-slot records.

    A slot that has converged is frozen (and dropped from the arrays the next outer
    iteration works on). ``from_solution``: slots that start from a solution (``fast``
    or a warm start), whose first outer iteration may stop.
    """
    count, rounds = len(best.cost), options.max_outer
    admm = _Admm(problem, options.rho, options.tol_inner)
    records = dict(
        outer=np.zeros(count, dtype=int),
        inner=np.zeros(count, dtype=int),
        converged=np.zeros(count, dtype=bool),
        trace=np.full((count, rounds), np.nan),
        admm_trace=np.full((count, rounds), np.nan),
    )
    active = np.arange(count)
    for outer in range(1, rounds + 1):
        whole = active.size == count
        part = admm if whole else admm.take(active)
        current = best if whole else best.take(active)
        records["inner"][active] += _inner_admm(part, current, options.max_inner)
        candidate, accepted = _accept(part.problem, part, current)
        records["admm_trace"][active, outer - 1] = candidate.cost
        records["trace"][active, outer - 1] = accepted.cost
        records["outer"][active] = outer
        previous = current.cost
        small = np.abs(previous - accepted.cost) <= options.tol_outer * np.maximum(
            np.abs(previous), _TINY
        )
        done = small & (from_solution[active] | (outer > 1))
        best.put(active, accepted)
        if not whole:
            admm.put(active, part)
        records["converged"][active[done]] = True
        active = active[~done]
        if not active.size:
            break
    records["primal"], records["dual"] = admm.primal, admm.dual
    return best, records


def _polish(snapshots: Sequence[Snapshot], problem: _Problem, best: _Points):
    """The exact compute allocation for the points' rates and powers, where not worse.

    (``optimizers.iscc.compute.exact_compute_allocation``; as in ``optimizers.iscc.fast``,
    a UE missing (17b) cannot take the AP from the others.) Returns ``(points, polished)``.
    """
    from optimizers.iscc.compute import exact_compute_allocation

    rate = problem.bandwidth * np.log2(1.0 + best.sinr_c)  # (9)
    power = _row_power(best.f) + _row_power(best.u)  # (2)
    blind = ~sensing_met(problem, best.sinr_s)
    compute = np.empty((3, *rate.shape))
    for slot, snapshot in enumerate(snapshots):
        result = exact_compute_allocation(
            snapshot,
            problem.beta[slot],
            rate[slot],
            power[slot],
            weight_ue=problem.w_ue[slot],
            exclude=blind[slot] if blind[slot].any() else None,
        )
        for row, values in enumerate((result.alpha, result.f_u, result.f_ap)):
            compute[row, slot] = np.nan_to_num(np.asarray(values, float), nan=0.0)
    alpha, f_u, f_ap = compute
    infeasible, cost = _judge(problem, alpha, f_u, f_ap, power, best.sinr_c, best.sinr_s)
    candidate = dataclasses.replace(
        best, alpha=alpha, f_u=f_u, f_ap=f_ap, infeasible=infeasible, cost=cost
    )
    polished = candidate.better_or_equal(best)
    return candidate.where(polished, best), polished


def _safeguard(snapshot: Snapshot, beta, allocation: Allocation, fast):
    """Deviation 11: the ``fast`` solution where SCA-ADMM's is not at least as good.

    ``fast``: its ``Solution``, or None (no safeguard). Returns ``(allocation,
    evaluation, candidate)``, judged by the true model.
    """
    evaluation = evaluate(snapshot, allocation, beta)
    if fast is None:
        return allocation, evaluation, "sca_admm"
    fast_evaluation = fast.evaluation
    covers = not np.any(fast_evaluation.feasible & ~evaluation.feasible)
    more = evaluation.feasible.sum() > fast_evaluation.feasible.sum()
    # the same UEs served: compare their cost (17a); an unserved UE's is best effort
    served = fast_evaluation.feasible
    cheaper = evaluation.cost_of(served) <= fast_evaluation.cost_of(served)
    if covers and (more or cheaper):
        return allocation, evaluation, "sca_admm"
    return fast.allocation, fast_evaluation, "fast"


def _fast_starts(snapshots: Sequence[Snapshot], betas: np.ndarray, weight_ue=None) -> list:
    """The ``fast`` solutions (``Solution``: allocation and evaluation) of the slots.

    They are SCA-ADMM's start and its safeguard (deviation 11), solved as one batch.
    """
    from optimizers.iscc.batch import solve_batch

    options = {} if weight_ue is None else {"weight_ue": np.asarray(weight_ue, dtype=float)}
    return solve_batch(snapshots, betas, method="fast", **options)


def _start_points(snapshots: Sequence[Snapshot], problem: _Problem, starts):
    """(alpha, f, u) of every slot: from its start solution, or the paper's start."""
    points = [
        _paper_point(snapshot, problem, slot) if start is None else _warm_point(snapshot, start)
        for slot, (snapshot, start) in enumerate(zip(snapshots, starts, strict=True))
    ]
    return (np.stack(values) for values in zip(*points, strict=True))


def _check_snapshots(snapshots) -> list[Snapshot]:
    """The snapshots as a list; ValueError unless they share K and the antenna counts."""
    snapshots = list(snapshots)
    if not snapshots or not all(isinstance(snapshot, Snapshot) for snapshot in snapshots):
        raise ValueError("snapshots must be a non-empty sequence of Snapshot")
    first = snapshots[0]
    shape = (first.K, first.M_a, first.M_ut, first.M_ur)
    for snapshot in snapshots[1:]:
        other = (snapshot.K, snapshot.M_a, snapshot.M_ut, snapshot.M_ur)
        if other != shape:
            raise ValueError(
                f"snapshots must have equal K, M_a, M_ut, M_ur; got {shape} and {other}"
            )
    return snapshots


def _per_slot_weights(name: str, values, count: int, K: int) -> np.ndarray:
    """beta or weight_ue as (B, K): a scalar, (K,) or (B, K), finite and > 0."""
    array = np.asarray(values, dtype=float)
    if array.ndim > 0 and array.shape not in ((K,), (count, K)):
        raise ValueError(f"{name} must be a scalar or have shape ({K},) or ({count}, {K})")
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ValueError(f"{name} must be finite and > 0, got {values!r}")
    return np.broadcast_to(array, (count, K)).copy()


def _solve(snapshots, betas, weight_ue, warm_starts, options: _Options):
    """SCA-ADMM for B slots; returns ``[(allocation, evaluation, info), ...]``."""
    problem = _problem(snapshots, betas, weight_ue)
    fast = [None] * len(snapshots)
    if options.safeguard or (options.start == "fast" and None in warm_starts):
        fast = _fast_starts(snapshots, betas, weight_ue)
    starts = [
        warm if warm is not None or options.start == "paper" else solution.allocation
        for warm, solution in zip(warm_starts, fast, strict=True)
    ]
    best = _points(problem, *_start_points(snapshots, problem, starts))
    from_solution = np.array([start is not None for start in starts])
    best, records = _sca(problem, best, options, from_solution)
    polished = np.zeros(len(snapshots), dtype=bool)
    if options.polish:
        best, polished = _polish(snapshots, problem, best)
    results = []
    for slot, snapshot in enumerate(snapshots):
        guard = fast[slot] if options.safeguard else None
        allocation, evaluation, candidate = _safeguard(
            snapshot, problem.beta[slot], best.allocation(slot), guard
        )
        rounds = records["outer"][slot]
        info = dict(
            outer_iterations=int(rounds),
            inner_iterations=int(records["inner"][slot]),
            converged=bool(records["converged"][slot]),
            objective_trace=records["trace"][slot, :rounds].tolist(),
            admm_objective_trace=records["admm_trace"][slot, :rounds].tolist(),
            primal_residual=float(records["primal"][slot]),
            dual_residual=float(records["dual"][slot]),
            polished=bool(polished[slot]),
            candidate=candidate,
            feasible=evaluation.feasible.copy(),
            cost=evaluation.cost,
        )
        results.append((allocation, evaluation, info))
    return results


def solve_sca_admm(
    snapshot: Snapshot,
    beta,
    *,
    weight_ue=None,
    warm_start: Allocation | None = None,
    **options,
) -> tuple[Allocation, dict]:
    """SCA-ADMM for (P1); returns ``(allocation, info)`` (see the module docstring).

    ``beta``: scalar or (K,), finite, > 0 (AP energy weight); ``weight_ue``: (K,) weight
    of the UE energy (default 1); ``warm_start``: an Allocation to start from. Options
    (defaults): ``max_outer`` (6), ``max_inner`` (15), ``tol_outer`` (1e-4), ``tol_inner``
    (1e-4); ``rho``: scalar or the five penalties (rho_1, ..., rho_5) of (35)
    (dimensionless, default (1, 1, 1, 2, 2)); ``polish`` (True): the exact compute
    allocation at the end; ``start``: ``"fast"`` (the ``optimizers.iscc.fast`` solution,
    default) or ``"paper"`` (the start of the module docstring), used without
    ``warm_start``; ``safeguard`` (True): return the ``fast`` solution where it is
    better (deviation 11).
    ``info``: outer_iterations, inner_iterations (total), converged, objective_trace
    (true cost of the accepted point after each outer iteration), admm_objective_trace,
    primal_residual, dual_residual (last inner iteration), polished (bool), candidate
    (``"sca_admm"`` or ``"fast"``: which point was returned), feasible, cost.
    """
    if not isinstance(snapshot, Snapshot):
        raise ValueError(f"snapshot must be a Snapshot, got {type(snapshot).__name__}")
    K = snapshot.K
    betas = as_beta(beta, K)[None]
    weights = (
        np.ones((1, K)) if weight_ue is None else _per_slot_weights("weight_ue", weight_ue, 1, K)
    )
    [(allocation, _, info)] = _solve([snapshot], betas, weights, [warm_start], _Options(**options))
    return allocation, info


def solve_sca_admm_batch(snapshots: Sequence[Snapshot], betas, **options) -> list[Solution]:
    """SCA-ADMM for a batch of slots at once: a list of ``Solution``, one per snapshot.

    Equal to ``solve(snapshot, beta, method="sca_admm", **options)`` for each slot (the
    same algorithm on arrays with a leading slot axis; a slot that has converged is
    frozen by masks while the others iterate). ``snapshots``: equal K and antenna
    counts; ``betas``: scalar, (K,) or (B, K); options as :func:`solve_sca_admm`, with
    ``weight_ue`` scalar, (K,) or (B, K) and ``warm_start`` a sequence of B
    ``Allocation`` / ``Solution`` / None. ``info['wall_time_s']`` is the batch's wall
    time divided by B.
    """
    import time

    from optimizers.iscc.solve import Solution

    start = time.perf_counter()
    snapshots = _check_snapshots(snapshots)
    count, K = len(snapshots), snapshots[0].K
    betas = _per_slot_weights("beta", betas, count, K)
    weight_ue = options.pop("weight_ue", None)
    weights = np.ones((count, K)) if weight_ue is None else weight_ue
    weights = _per_slot_weights("weight_ue", weights, count, K)
    warm_starts = options.pop("warm_start", None)
    warm_starts = [None] * count if warm_starts is None else list(warm_starts)
    if len(warm_starts) != count:
        raise ValueError(f"warm_start must hold one entry per snapshot ({count})")
    warm_starts = [getattr(warm, "allocation", warm) for warm in warm_starts]
    results = _solve(snapshots, betas, weights, warm_starts, _Options(**options))
    wall = (time.perf_counter() - start) / count
    return [
        Solution(allocation, evaluation, {"method": "sca_admm", "wall_time_s": wall, **info})
        for allocation, evaluation, info in results
    ]
