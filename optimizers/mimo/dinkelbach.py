"""Dinkelbach + SCA (Algorithm 1) for the EE maximisation (26) of Nguyen et al. (2025).

Problem (26): maximise ``Phi = [(1-omega) R + omega (1/CRB_theta + 1/CRB_phi)] / P`` over
the stream amplitudes (a, b) of :class:`isac_gym.mimo.MIMOAllocation`, subject to the SE
floors (26b), the two CRB ceilings (26c)-(26d) and the power budget (26e). The spec
(``docs/mimo_model.md``, section 5) reconstructs the lost algorithm:

* **Dinkelbach, single loop (5.1).** At a feasible point x with ``lam = Phi(x)``, solve
  the convex inner approximation (75) of (27), ``max (1-omega) R + omega (..) - lam P``,
  take its maximiser as the next point and set ``lam = Phi(next)`` on the true model,
  eq. (76). The surrogate equals 0 at x and bounds the true (27) objective from below,
  so lam never decreases; its constraints are inner approximations, so every iterate is
  feasible. Stop when ``|lam' - lam| <= tol lam`` (tol = 1e-3) or after 200 iterations.
* **Surrogates at (a_, b_) (5.2).** SE: the Nasir et al. minorant
  ``ln(1 + |chi|^2/psi) >= ln(1+g_) - g_ + 2 Re(chi_* chi)/psi_ - g_/(psi_ + |chi_|^2)
  (|chi|^2 + psi)`` (g_ = |chi_|^2/psi_; chi affine, |chi|^2 + psi convex quadratic in
  (a, b)). Power: P_T of (11) is a convex quadratic, used exactly. CRB: ``u^T F u`` is
  convex in (a, b) for every u, so the first-order expansion ``F~`` of F is affine with
  ``F~ <= F`` (PSD order), tight at the point; ``F~ - t e_i e_i^T >= 0`` (a 4x4 LMI)
  implies ``1/CRB_i >= t``. With ``c_R = (1-omega) - lam xi < 0`` (only for omega near 1)
  the R term of the objective takes the majorant ``ln(1+|chi|^2/psi) <= ln z_ +
  (|chi|^2+psi)/z_ - 1 - ln psi_lin`` (z_ = |chi_|^2 + psi_, psi_lin: psi with b_j^2
  linearised from below) instead.
* **Inner program (5.3)** in CVXPY with Clarabel: ``max c_R sum_k R_k^lb + omega (t_theta
  + t_phi) - lam P_T / eta`` s.t. ``R_k^lb >= R_th (1+m)``, the two LMIs, ``t_i >=
  (1+m)/eps_i``, ``P_T <= P_max``, ``a, b >= 0`` (m = 1e-4, a margin so that round-off
  cannot fail the true check). Numerical hygiene of the spec: noise-normalised channels,
  LMIs scaled by ``diag(F_)^{-1/2}`` on both sides (t by ``F_ii``), objective divided by
  ``max(1, lam)``. The program is built once per solve with CVXPY parameters (DPP), so
  each iteration only updates numbers.
* **Initialisation (5.4).** Equal split a = b with P_T = P_max / 2; if it violates (26),
  phase I maximises the least relative margin ``tau`` of (26b)-(26d) (with ``tau <= 1``)
  on the same surrogates until the true constraints hold. tau never decreases; if it
  stops improving below 0 the instance is reported infeasible (``info["status"]``).
* **Baselines (5.5).** ``equal_com``: ``a_{n,k} = a_n``, ``b_{n,k} = b_n`` (equal per-user
  communication and sensing power on each subcarrier); ``equal_cs``: ``a = b`` (rho^c =
  rho^s = 1/2), powers still optimised by the same loop.

Every accepted point is judged by :func:`isac_gym.mimo.evaluate` (the true model). A
step whose true evaluation is infeasible or lowers Phi (solver round-off) is rejected
and the loop stops at the previous point.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np

from isac_gym.mimo import (
    MIMOAllocation,
    MIMOEvaluation,
    MIMOSnapshot,
    StreamConstants,
    equal_split,
    evaluate,
    fisher_information,
    sinr_terms,
    stream_constants,
    transmit_power_closed_form,
)
from isac_gym.mimo.model import check_omega
from optimizers.mimo import certificate, direct

SCHEMES = ("proposed", "equal_com", "equal_cs")
METHODS = ("fast", "cvxpy")
_DEFAULTS = {"fast": (1e-3, 200), "cvxpy": (1e-3, 200)}  # (tol, max_iterations): cvxpy's
_OK = ("optimal", "optimal_inaccurate")
_LN2 = np.log(2.0)
#: phase-I budget from an infeasible warm start: on MIMOISAC-v0 frames a restorable one
#: takes 1-4 Newton steps (rarely ~100); the cold starts take over beyond it
_RESTORE_ROUNDS = 50


@dataclass(frozen=True, eq=False)
class MIMOSolution:
    """An allocation, its true-model evaluation and the solver's diagnostics.

    ``info``: ``status`` ("converged", "max_iterations", "infeasible", "stalled", or
    "solver_failed: ..."), ``iterations`` (Dinkelbach steps), ``phase1_iterations``,
    ``ee_trace`` (lam after every accepted step, the true Phi), ``wall_time_s``.
    """

    allocation: MIMOAllocation
    evaluation: MIMOEvaluation
    info: dict = field(default_factory=dict)

    @property
    def ee(self) -> float:
        """The objective (26a) of a feasible solution; nan when the solve found no
        feasible point (the true-model value of that point is in ``evaluation.ee``)."""
        return self.evaluation.ee if self.evaluation.feasible else float("nan")

    @property
    def feasible(self) -> bool:
        return self.evaluation.feasible


def solve_mimo(
    snapshot: MIMOSnapshot,
    omega: float,
    scheme: str = "proposed",
    *,
    method: str = "fast",
    tol: float | None = None,
    max_iterations: int | None = None,
    phase1_rounds: int = 300,
    margin: float = 1e-4,
    start: MIMOAllocation | None = None,
    warm_start: MIMOAllocation | None = None,
    constants: StreamConstants | None = None,
) -> MIMOSolution:
    """Maximise the weighted EE (26a) of one frame by Dinkelbach + SCA (module docstring).

    ``scheme``: "proposed", "equal_com" or "equal_cs". ``method``: "fast" (default:
    the direct primal-dual barrier Newton method on (26) of :mod:`optimizers.mimo.direct`,
    with the phase I of :mod:`optimizers.mimo.phase_one`; at the paper's size a median of
    about 0.1 s a solve and at least 0.999x a tight cvxpy run on every hidden drop
    measured, BENCHMARKS.md) or "cvxpy" (the CVXPY/Clarabel Dinkelbach-SCA loop of Algorithm 1,
    the reference). ``tol``: relative Phi gain that ends
    the cvxpy loop (default 1e-3); ``max_iterations`` (200); both are accepted but
    unused by fast, whose barrier path ends at a gap of 1e-6 of Phi.
    ``phase1_rounds``: the phase-I budget, SCA rounds (cvxpy) or Newton steps (fast).
    ``start``: the one start point (it is projected on the scheme's equalities; phase I
    runs if it is not feasible). ``warm_start``: a previous solution (e.g. of the last
    frame, or of a lower P_max), the only start: when it is feasible for this frame the
    result is never below it; when not, phase I starts from it and (fast) the path then
    stays in its basin, several times cheaper than the cold starts on a frame sequence
    (BENCHMARKS.md, MIMOISAC-v0); the cold starts follow only if that finds no feasible
    point within 50 phase-I steps (``info["starts"]`` lists every start tried). Without
    either, ``proposed`` starts from the EqualCom solution (which makes proposed >=
    EqualCom) and, with cvxpy, also from the equal split at ``P_max / 2``, keeping the
    better. An infeasible instance is reported in ``info["status"]`` with ``ee = nan``,
    never raised; a budget below the least power the CRB ceilings need
    (:mod:`optimizers.mimo.certificate`) is reported at once, without a solve
    (``info["certificate"]``), with the start as the allocation. A failed Clarabel
    solve falls back to ``fast`` from the last point (``info["fallback"]``).
    ``constants``: the frame's ``stream_constants(snapshot)`` where the caller has
    computed them (an environment step uses them more than once); computed when None.
    """
    clock = time.perf_counter()
    omega = check_omega(omega)
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    tol = _DEFAULTS[method][0] if tol is None else tol
    max_iterations = _DEFAULTS[method][1] if max_iterations is None else max_iterations
    if not (tol > 0 and max_iterations >= 1 and phase1_rounds >= 0 and 0 <= margin < 1):
        raise ValueError(
            "tol must be > 0, max_iterations >= 1, phase1_rounds >= 0, margin in [0, 1)"
        )
    if constants is None:
        constants = stream_constants(snapshot)
    settings = dict(
        tol=tol, max_iterations=max_iterations, phase1_rounds=phase1_rounds, margin=margin
    )
    bound = certificate.crb_power_bound(snapshot, constants)
    if certificate.certified_infeasible(snapshot, bound):
        point = infeasible_point(snapshot, constants, start if start is not None else warm_start)
        return _certified(snapshot, constants, omega, point, bound, scheme, method, clock)
    problem = (snapshot, constants, omega, scheme, method)
    starts = _starts(*problem, start, warm_start, settings)
    best = _best_start(problem, starts, settings)
    return _finish(problem, starts, best, settings, clock)


def infeasible_point(snapshot, constants, start=None):
    """The point solve_mimo returns for a frame it certifies infeasible (and the env
    transmits for any infeasible frame): ``start`` (a given or warm start), else the
    equal split at P_max / 2 (spec 5.4's first point)."""
    if start is not None:
        return start
    return equal_split(snapshot, constants, snapshot.P_max / 2)


def _finish(problem, starts, best, settings, clock, cold=None) -> MIMOSolution:
    """solve_mimo's end, from the best (point, judged, info) of its ``starts``: the cold
    starts follow where phase I from a warm start failed (``cold``: those starts, if
    already made)."""
    if goes_cold(starts[0][0], best):
        cold = _starts(*problem, None, None, settings) if cold is None else cold
        best = _best_start(problem, cold, settings, best)
        starts = starts + cold
    return solution_of(problem, starts, best, clock)


def goes_cold(name: str, best) -> bool:
    """Whether solve_mimo goes on to its cold starts after the start ``name`` gave
    ``best``: phase I from a warm start failed."""
    return name == "warm_restored" and not best[1].feasible


def solution_of(problem, starts, best, clock) -> MIMOSolution:
    """The MIMOSolution of the best (point, judged, info) over the named ``starts``."""
    point, judged, info = best
    info.update(scheme=problem[3], method=problem[4], starts=[name for name, _ in starts])
    info["wall_time_s"] = time.perf_counter() - clock
    return MIMOSolution(point, judged, info)


def fast_settings(margin: float, phase1_rounds: int) -> dict:
    """solve_mimo's settings for ``method="fast"`` with the given margin and phase-I budget."""
    tol, max_iterations = _DEFAULTS["fast"]
    return dict(tol=tol, max_iterations=max_iterations, phase1_rounds=phase1_rounds, margin=margin)


def cold_starts(snapshot, constants, omega, settings) -> list:
    """The cold starts of a proposed fast solve (:func:`solve_mimo`): the EqualCom solve
    runs here; ``[("equal_com", its point)]`` where it is feasible."""
    return _starts(snapshot, constants, omega, "proposed", "fast", None, None, settings)


def finish_failed_warm_start(
    snapshot, constants, omega, name, warm_start, failed, *, margin, phase1_rounds, clock,
    cold=None,
) -> MIMOSolution:  # fmt: skip
    """``solve_mimo(snapshot, omega, "proposed", method="fast", warm_start=warm_start,
    margin=margin, phase1_rounds=phase1_rounds)`` for a frame whose warm start (``name``:
    "warm" or "warm_restored") already went through phase I without a feasible point
    (``failed``: that start's (point, judged, info) as the fast method returns it), e.g.
    in :func:`optimizers.mimo.batched.solve_warm_batch`: the rest of the solve, without
    running that phase I again (nor the EqualCom solve, where ``cold`` holds the
    :func:`cold_starts` already made). ``clock``: ``time.perf_counter()`` at the solve's
    start."""
    problem = (snapshot, constants, omega, "proposed", "fast")
    settings = fast_settings(margin, phase1_rounds)
    return _finish(problem, [(name, warm_start)], failed, settings, clock, cold)


def _certified(snapshot, constants, omega, point, bound, scheme, method, clock) -> MIMOSolution:
    """The result of a frame whose budget is below the CRB ceilings' least power
    (:mod:`optimizers.mimo.certificate`): infeasible without a solve; the allocation is
    the start the solve would have begun from, judged by the true model."""
    info = dict(
        status="infeasible", certificate=dict(power_bound=bound), phase1_iterations=0,
        iterations=0, newton_steps=0, ee_trace=[], start="certificate", scheme=scheme,
        method=method, starts=["certificate"],
    )  # fmt: skip
    judged = evaluate(snapshot, point, omega, constants)
    info["wall_time_s"] = time.perf_counter() - clock
    return MIMOSolution(point, judged, info)


def solve_mimo_sweep(
    snapshot: MIMOSnapshot, omega: float, P_max_values, scheme: str = "proposed", **options
) -> list[MIMOSolution]:
    """Solve one frame at increasing power budgets; EE non-decreasing by construction.

    The feasible set only grows with P_max (26e) and Phi does not depend on it, so the
    solution at one budget is a feasible start at the next. Each budget runs the
    default starts of :func:`solve_mimo` and, from the second on, a warm start from the
    previous budget's solution (never below it), keeping the better true-model EE
    (``info["sweep_start"]``: "default" or "previous_pmax"). ``options`` go to
    :func:`solve_mimo` (e.g. ``method="fast"``).
    """
    values = [float(value) for value in P_max_values]
    if not values or any(not np.isfinite(v) or v <= 0 for v in values) or values != sorted(values):
        raise ValueError(f"P_max_values must be positive and non-decreasing, got {values}")
    solutions: list[MIMOSolution] = []
    for value in values:
        frame = dataclasses.replace(snapshot, P_max=value)
        best = solve_mimo(frame, omega, scheme, **options)
        best.info["sweep_start"] = "default"
        if solutions and solutions[-1].feasible:
            warm = solve_mimo(frame, omega, scheme, warm_start=solutions[-1].allocation, **options)
            if _better(warm.evaluation, best.evaluation):
                best = warm
                best.info["sweep_start"] = "previous_pmax"
        solutions.append(best)
    return solutions


def _best_start(problem, starts, settings, best=None):
    """Solve from each named start; the best (point, judged, info) by :func:`_better`."""
    snapshot, constants, omega, scheme, method = problem
    for name, point in starts:
        warm = name != "equal_split"  # a good point: the fast method stays in its basin
        restored = name == "warm_restored"
        rounds = min(settings["phase1_rounds"], _RESTORE_ROUNDS) if restored else None
        point, judged, info = _SOLVERS[method](
            snapshot, constants, omega, scheme, point,
            settings if rounds is None else dict(settings, phase1_rounds=rounds),
            warm=warm, restored_warm=restored,
        )  # fmt: skip
        info["start"] = name
        best = keep_better(best, (point, judged, info))
    return best


def keep_better(best, candidate):
    """The better of two (point, judged, info) by :func:`_better` (``best`` on a tie or
    when ``candidate`` is worse; ``candidate`` where ``best`` is None)."""
    return candidate if best is None or _better(candidate[1], best[1]) else best


def _better(judged: MIMOEvaluation, incumbent: MIMOEvaluation) -> bool:
    if judged.feasible != incumbent.feasible:
        return judged.feasible
    return judged.ee > incumbent.ee


def _starts(snapshot, constants, omega, scheme, method, start, warm_start, settings):
    """The named start points of one solve (see solve_mimo)."""
    if start is not None:
        return [("given", start)]
    if warm_start is not None:
        warm_start.check(snapshot)
        if evaluate(snapshot, warm_start, omega, constants).feasible:
            return [("warm", warm_start)]
        return [("warm_restored", warm_start)]  # phase I from it: it stays in its basin
    split = equal_split(snapshot, constants, snapshot.P_max / 2)
    if scheme != "proposed":
        return [("equal_split", split)]
    point, judged, _ = _SOLVERS[method](
        snapshot, constants, omega, "equal_com", split, settings, warm=False
    )
    if method == "fast" and judged.feasible:
        # The direct method from the equal split ends in a worse basin than the
        # EqualCom solution on every paper drop tried (BENCHMARKS.md): one start.
        return [("equal_com", point)]
    starts = [("equal_split", split)]
    if judged.feasible:
        starts.append(("equal_com", point))
    return starts


def _solve_fast(
    snapshot, constants, omega, scheme, point, settings, *, warm=False, restored_warm=False
):
    """The direct barrier method of :mod:`optimizers.mimo.direct`: (point, judged, info)."""
    return direct.solve_direct(
        snapshot, constants, omega, scheme, point, warm=warm, restored_warm=restored_warm,
        phase1_rounds=settings["phase1_rounds"], margin=settings["margin"], evaluate=evaluate,
    )  # fmt: skip


def _solve_cvxpy(
    snapshot, constants, omega, scheme, point, settings, *, warm=False, restored_warm=False
):
    """Phase I and the Dinkelbach loop with CVXPY/Clarabel: (point, judged, info)."""
    tol, max_iterations = settings["tol"], settings["max_iterations"]
    program = _SurrogateProgram(snapshot, constants, scheme, settings["margin"])
    judged = evaluate(snapshot, point, omega, constants)
    info = dict(phase1_iterations=0, iterations=0, ee_trace=[])
    if not judged.feasible:
        point, judged, rounds, status = _phase1(
            snapshot, constants, program, point, judged, omega, settings["phase1_rounds"]
        )
        info["phase1_iterations"] = rounds
        if not judged.feasible:
            info["status"] = status
            if status.startswith("solver_failed"):
                return _fast_fallback(snapshot, constants, omega, scheme, point, settings, info)
            return point, judged, info

    lam = judged.ee
    trace = [lam]
    status = "max_iterations"
    for iteration in range(1, max_iterations + 1):
        step, solver_status = program.dinkelbach_step(point, lam, omega)
        if step is None:
            status = f"solver_failed: {solver_status}"
            break
        candidate = evaluate(snapshot, step, omega, constants)
        if not candidate.feasible or candidate.ee < lam * (1.0 - 1e-9):
            status = "stalled"  # solver round-off: keep the last feasible, better point
            break
        point, judged = step, candidate
        info["iterations"] = iteration
        trace.append(candidate.ee)
        converged = abs(candidate.ee - lam) <= tol * lam
        lam = candidate.ee
        if converged:
            status = "converged"
            break
    info.update(status=status, ee_trace=trace)
    if status.startswith("solver_failed"):
        return _fast_fallback(snapshot, constants, omega, scheme, point, settings, info)
    return point, judged, info


def _fast_fallback(snapshot, constants, omega, scheme, point, settings, info):
    """Clarabel failed: continue with the fast method from the last point, or from the
    equal split at P_max / 2 where that point is no interior start for the barrier (an
    amplitude at 0, or the whole power budget spent)."""
    interior = (
        np.all(point.a > 0)
        and np.all(point.b > 0)
        and transmit_power_closed_form(constants, point) < snapshot.P_max
    )
    if not interior:
        point = equal_split(snapshot, constants, snapshot.P_max / 2)
    new_point, judged, new_info = _solve_fast(snapshot, constants, omega, scheme, point, settings)
    new_info.update(fallback="fast", reference_status=info["status"])
    return new_point, judged, new_info


_SOLVERS = {"fast": _solve_fast, "cvxpy": _solve_cvxpy}


def _phase1(snapshot, constants, program, point, judged, omega, rounds):
    """Feasibility restoration (spec 5.4): raise the least relative margin tau."""
    best_tau = -np.inf
    for round_ in range(1, rounds + 1):
        step, tau = program.phase1_step(point)
        if step is None:
            return point, judged, round_, f"solver_failed: {tau}"
        point = step
        judged = evaluate(snapshot, point, omega, constants)
        if judged.feasible:
            return point, judged, round_, "feasible"
        if tau < 0 and tau <= best_tau + 1e-6 * max(1.0, abs(best_tau)):
            return point, judged, round_, "infeasible"  # tau converged below 0
        best_tau = max(best_tau, tau)
    return point, judged, rounds, "infeasible"


class _SurrogateProgram:
    """The convex programs of spec 5.3 (Dinkelbach step) and 5.4 (phase I) in CVXPY.

    Built once per snapshot and scheme; :meth:`_linearise` writes the surrogate
    coefficients of a point into the parameters.
    """

    def __init__(self, snapshot: MIMOSnapshot, constants: StreamConstants, scheme: str, margin):
        N, K = snapshot.N, snapshot.K
        self.snapshot, self.constants, self.scheme, self.margin = (
            snapshot,
            constants,
            scheme,
            margin,
        )
        sigma = np.sqrt(snapshot.noise)
        self.zeta = constants.zeta / sigma  # noise-normalised (sigma^2 -> 1)
        self.g = constants.g / sigma
        self.g2 = (self.g * self.g.conj()).real

        if scheme == "equal_com":  # one amplitude pair per subcarrier, shared by the users
            a_col, b_col = cp.Variable((N, 1), nonneg=True), cp.Variable((N, 1), nonneg=True)
            self.variables = (a_col, b_col)
            A, B = a_col @ np.ones((1, K)), b_col @ np.ones((1, K))
        elif scheme == "equal_cs":  # rho^c = rho^s: a = b
            A = B = cp.Variable((N, K), nonneg=True)
            self.variables = (A,)
        else:
            A, B = cp.Variable((N, K), nonneg=True), cp.Variable((N, K), nonneg=True)
            self.variables = (A, B)
        self.A, self.B = A, B
        vec_a, vec_b = cp.vec(A, order="F"), cp.vec(B, order="F")
        self.square_b = cp.vec(cp.square(B), order="F")

        # Transmit power (11), exact: (a + eps b)^2 + (1 - eps^2) b^2 per stream.
        eps = constants.eps
        self.P_T = cp.sum_squares(A + cp.multiply(eps, B)) + cp.sum_squares(
            cp.multiply(np.sqrt(np.maximum(1.0 - eps**2, 0.0)), B)
        )

        # SE minorant per user [bps/Hz]: (sum_n r_lb) / (N ln 2), spec 5.2 item 1, in the
        # centred form of _linearise: sqrt(c) (chi - chi_) = own[0] a + own[1] b - own[3]
        # (real part), own[2] b - own[4] (imaginary part).
        self.own = [cp.Parameter((N, K)) for _ in range(5)]
        self.lin_a, self.lin_b = cp.Parameter((N, K)), cp.Parameter((N, K))
        self.se_const = cp.Parameter(K)
        self.leak = cp.Parameter((K, N * K), nonneg=True)
        own = self._own_power(*self.own)
        linear = cp.multiply(self.lin_a, A) + cp.multiply(self.lin_b, B)
        self.se_lb = (cp.sum(linear - own, axis=0) + self.se_const - self.leak @ self.square_b) / (
            N * _LN2
        )

        # CRB: affine minorant F~ of the FIM, Jacobi-scaled, equal to a symmetric 4x4 F.
        self.fim_a, self.fim_b = cp.Parameter((16, N * K)), cp.Parameter((16, N * K))
        self.fim_c = cp.Parameter(16)
        self.F = cp.Variable((4, 4), symmetric=True)
        self.t = cp.Variable(2)  # scaled: t_i F_ii is the bound on 1 / CRB_i
        unit = [np.diag([1.0, 0, 0, 0]), np.diag([0, 1.0, 0, 0])]
        self.crb_constraints = [
            cp.vec(self.F, order="F") == self.fim_a @ vec_a + self.fim_b @ vec_b + self.fim_c,
            self.F - self.t[0] * unit[0] >> 0,
            self.F - self.t[1] * unit[1] >> 0,
        ]
        self.fim_scale = self.fim_diag = None  # diag(F_)^{-1/2} and F_ii, set by _linearise
        self._problems: dict = {}

    # -- surrogate coefficients at a point ------------------------------------------------
    def _linearise(self, point: MIMOAllocation) -> None:
        snapshot, constants = self.snapshot, self.constants
        N, K = snapshot.N, snapshot.K
        chi, psi = sinr_terms(constants, point, snapshot.noise)
        chi, psi = chi / np.sqrt(snapshot.noise), psi / snapshot.noise  # noise-normalised
        chi2 = (chi * chi.conj()).real
        z = psi + chi2
        c = chi2 / (psi * z)  # weight of |chi|^2 + psi
        # Centred form of the minorant (d = chi - chi_, c (|chi_|^2 + psi_) = gamma_):
        #   r_lb = ln(1 + gamma_) + 2 Re(chi_* d) / z_ - c |d|^2 - c (psi - psi_),
        # whose terms are all O(1) at high SINR (the printed form cancels O(gamma_) terms).
        root = np.sqrt(c)
        self.own[0].value = root * self.zeta
        self.own[1].value = root * self.g.real
        self.own[2].value = root * self.g.imag
        self.own[3].value = root * chi.real
        self.own[4].value = root * chi.imag
        self.lin_a.value = 2.0 * chi.real * self.zeta / z  # 2 Re(chi_* chi) / z_
        self.lin_b.value = 2.0 * (chi.real * self.g.real + chi.imag * self.g.imag) / z
        # constant: ln(1 + gamma_) - 2 |chi_|^2 / z_ + c psi_ - c (the noise part of psi)
        constant = np.log1p(chi2 / psi) - 2.0 * chi2 / z + c * (psi - 1.0)
        self.se_const.value = constant.sum(axis=0)
        # leak[k, n + N j] = c_{n,k} |g_{n,k}|^2 for j != k: c times psi's leakage term
        weight = (c * self.g2).T[:, None, :] * (1.0 - np.eye(K))[:, :, None]  # (k, j, n)
        self.leak.value = weight.reshape(K, K * N)

        F = fisher_information(constants, point)
        d = 1.0 / np.sqrt(np.diag(F))
        u = np.stack((point.a, point.b), axis=-1)
        slope = 2.0 * np.einsum("nkijpq,nkq->ijpkn", constants.fim_forms, u)  # dF_ij / du_p
        scale = (d[:, None] * d[None, :]).reshape(16, 1)
        self.fim_a.value = slope[:, :, 0].reshape(16, K * N) * scale
        self.fim_b.value = slope[:, :, 1].reshape(16, K * N) * scale
        self.fim_c.value = -F.reshape(16) * scale[:, 0]  # F~ = F_ + slope (u - u_)
        self.fim_scale = d
        self.fim_diag = np.diag(F)[:2]

    # -- the two programs -------------------------------------------------------------------
    def _problem(self, kind: str) -> tuple[cp.Problem, dict]:
        if kind not in self._problems:
            self._problems[kind] = getattr(self, f"_build_{kind}")()
        return self._problems[kind]

    def _build_dinkelbach(self):
        rate = cp.Variable(self.snapshot.K)  # hypograph of R^lb: keeps c_R * rate DPP
        return self._dinkelbach_problem(
            cp.sum(rate), [rate <= self.se_lb, rate >= self.snapshot.R_th * (1.0 + self.margin)]
        )

    def _build_dinkelbach_majorant(self):
        """The variant for c_R < 0: the rate term takes the SE majorant (spec 5.2 item 2)."""
        N, K = self.snapshot.N, self.snapshot.K
        p = dict(
            own=[cp.Parameter((N, K)) for _ in range(3)],  # (zeta, Re g, Im g) / sqrt(z_)
            leak=cp.Parameter(N * K, nonneg=True),  # sum_k |g_k|^2 / z_k per b_j^2
            psi_slope=cp.Parameter((N * K, N * K)),
            psi_const=cp.Parameter(N * K),
            const=cp.Parameter(),
        )
        psi_lin = p["psi_const"] + p["psi_slope"] @ cp.vec(self.B, order="F")
        majorant = (
            cp.sum(self._own_power(*p["own"]))
            + p["leak"] @ self.square_b
            - cp.sum(cp.log(psi_lin))
            + p["const"]
        ) / (N * _LN2)
        rate_upper = cp.Variable()  # epigraph of the majorant of R: keeps |c_R| * R DPP
        floor = self.se_lb >= self.snapshot.R_th * (1.0 + self.margin)
        return self._dinkelbach_problem(-rate_upper, [rate_upper >= majorant, floor], p)

    def _dinkelbach_problem(self, rate_term, rate_constraints, params=None):
        """max |c_R| rate_term + omega (t_theta + t_phi) - lam P_T / eta s.t. (26b)-(26e)."""
        s = self.snapshot
        p = dict(
            c_rate=cp.Parameter(nonneg=True),  # |c_R|
            t_weight=cp.Parameter(2, nonneg=True),
            t_min=cp.Parameter(2),
            price=cp.Parameter(nonneg=True),
            **(params or {}),
        )
        objective = p["c_rate"] * rate_term + p["t_weight"] @ self.t - p["price"] * self.P_T / s.eta
        constraints = [
            *rate_constraints,
            self.t >= p["t_min"],
            self.P_T <= s.P_max,
            *self.crb_constraints,
        ]
        return cp.Problem(cp.Maximize(objective), constraints), p

    def _own_power(self, zeta, g_re, g_im, centre_re=0.0, centre_im=0.0):
        """|zeta a + g b - centre|^2 per stream, with (scaled) coefficients as parameters."""
        real = cp.multiply(zeta, self.A) + cp.multiply(g_re, self.B) - centre_re
        return cp.square(real) + cp.square(cp.multiply(g_im, self.B) - centre_im)

    def _build_phase1(self):
        s = self.snapshot
        p = dict(crb_scale=cp.Parameter(2, nonneg=True))  # eps_i F_ii: t_i eps_i F_ii - 1
        tau = cp.Variable()
        constraints = [
            self.se_lb / s.R_th - 1.0 >= tau,
            cp.multiply(p["crb_scale"], self.t) - 1.0 >= tau,
            tau <= 1.0,
            self.P_T <= s.P_max,
            *self.crb_constraints,
        ]
        p["tau"] = tau
        return cp.Problem(cp.Maximize(tau), constraints), p

    def _solve(self, problem: cp.Problem):
        try:
            with warnings.catch_warnings():  # "may be inaccurate": the true model judges
                warnings.simplefilter("ignore", UserWarning)
                problem.solve(solver=cp.CLARABEL)
        except cp.SolverError as error:
            return None, f"solver error: {error}"
        if problem.status not in _OK:
            return None, problem.status
        if self.scheme == "equal_com":
            a_col, b_col = self.variables
            K = self.snapshot.K
            a, b = np.repeat(a_col.value, K, axis=1), np.repeat(b_col.value, K, axis=1)
        elif self.scheme == "equal_cs":
            a = b = self.variables[0].value
        else:
            a, b = self.variables[0].value, self.variables[1].value
        # Clarabel may return -1e-12 for a zero amplitude.
        return MIMOAllocation(a=np.maximum(a, 0.0), b=np.maximum(b, 0.0)), problem.status

    def phase1_step(self, point: MIMOAllocation):
        """Maximise the least relative margin tau at ``point``: (next point, tau*)."""
        self._linearise(point)
        problem, p = self._problem("phase1")
        p["crb_scale"].value = self.snapshot.crb_max * self.fim_diag
        step, status = self._solve(problem)
        return (step, float(p["tau"].value)) if step is not None else (None, status)

    def dinkelbach_step(self, point: MIMOAllocation, lam: float, omega: float):
        """argmax of the surrogate of (27) at ``point`` with price ``lam`` (spec 5.3)."""
        s = self.snapshot
        self._linearise(point)
        c_rate = (1.0 - omega) - lam * s.xi
        kind = "dinkelbach" if c_rate >= 0 else "dinkelbach_majorant"
        problem, p = self._problem(kind)
        norm = max(1.0, lam)
        p["c_rate"].value = abs(c_rate) / norm
        p["t_weight"].value = omega * self.fim_diag / norm
        p["t_min"].value = (1.0 + self.margin) / (s.crb_max * self.fim_diag)
        p["price"].value = lam / norm
        if kind == "dinkelbach_majorant":
            self._majorant_coefficients(point, p)
        return self._solve(problem)

    def _majorant_coefficients(self, point: MIMOAllocation, p: dict) -> None:
        """ln(1+|chi|^2/psi) <= ln z_ + (|chi|^2 + psi)/z_ - 1 - ln psi_lin (spec 5.2 item 2)."""
        s = self.snapshot
        N, K = s.N, s.K
        chi, psi = sinr_terms(self.constants, point, s.noise)
        chi2, psi = (chi * chi.conj()).real / s.noise, psi / s.noise
        z = chi2 + psi
        root = 1.0 / np.sqrt(z)
        p["own"][0].value = root * self.zeta
        p["own"][1].value = root * self.g.real
        p["own"][2].value = root * self.g.imag
        # b_j^2 of psi_k enters as |g_k|^2 / z_k for every k != j: sum over those k.
        weight = self.g2 / z  # (n, k)
        p["leak"].value = (weight.sum(axis=1, keepdims=True) - weight).T.reshape(-1)
        # psi_lin_{n,k} = 1 + |g_{n,k}|^2 sum_{j != k} (2 b_j_ b_j - b_j_^2), vec index n + N k
        b = point.b
        core = 2.0 * self.g2[:, :, None] * b[:, None, :] * (1.0 - np.eye(K))  # [n, k, j]
        slope = np.einsum("nm,nkj->knjm", np.eye(N), core)  # d psi_lin[n, k] / d b[m, j]
        p["psi_slope"].value = slope.reshape(N * K, N * K)
        b2 = b * b
        psi_const = 1.0 - self.g2 * (b2.sum(axis=1, keepdims=True) - b2)
        p["psi_const"].value = psi_const.T.reshape(-1)
        p["const"].value = float(np.sum(np.log(z) - 1.0 + 1.0 / z))  # the noise term 1 / z
