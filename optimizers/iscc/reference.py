"""A slow, independent CVXPY reference for the ISCC problem (P1) of Dong et al. (2026).

This module is a *reference*, not the paper's SCA-ADMM algorithm (Section V): it is
written directly from eqs. (2), (7)-(17) with generic conic solvers (Clarabel when
installed) so that tests can compare the repository's own solvers against "a solver
nobody here wrote". It is slow (an SDP per candidate beam point) and meant for tests and
spot checks, never for experiments.

Three pieces:

* :func:`compute_allocation_cvxpy` -- the compute subproblem for FIXED per-UE rates
  R_k (9) and powers P_k (2), solved exactly. With the CPU frequencies at their latency
  bounds (energies (14)-(15) grow with frequency, so this is optimal):

      f_k^u  = varpi_k (1 - alpha_k) Q_k / tau_k                (10) with t_local = tau
      f_k^ap = varpi_k alpha_k Q_k / (tau_k - alpha_k c_k)      (11) with t_off = tau,

  c_k = Q_k / R_k, the cost (17a) becomes a convex function of alpha alone:

      sum_k  w_k [P_k alpha_k c_k + a_k (1 - alpha_k)^3] + beta_k b_k alpha_k^3 / s_k^2,
      a_k = xi_u varpi^3 Q^3 / tau^2,  b_k = xi_ap varpi^3 Q^3 / tau^2,  s_k = 1 - d_k alpha_k,
      d_k = c_k / tau_k                (E^isac (13), E^local (14), E^ap (15), s = t_proc/tau)

  subject to 0 <= alpha <= 1 (17f), alpha c < tau (17c), f^u <= C_u (17d),
  sum_k f^ap_k <= C_ap (17e) and the battery E_k^u <= energy_budget_k (unweighted (16)).
  The epigraph t >= alpha^3 / s^2 is the power cone t^(1/3) s^(2/3) >= alpha, and
  f^ap is written without cancellation as
  (varpi Q / tau) [alpha + d r], r s >= alpha^2 (= (varpi Q / tau) alpha / s at r = alpha^2/s).
* :func:`sdr_beams_cvxpy` -- the semidefinite relaxation (P2, rank constraint (17i)
  dropped) of the beams for FIXED combiners: minimise weighted power subject to the
  communication SINR targets (7), the sensing threshold (8) / (17b) and the power budget
  (17g); both SINR constraints are linear in (F, R) once w, w~ are fixed.
* :func:`solve_reference` -- an alternating heuristic for the whole of (P1): max-SINR
  combiners, SDR beams for a small grid of communication SINR targets, the exact compute
  subproblem with the resulting true rates and powers; the candidate with the lowest true
  cost (judged by :func:`isac_gym.iscc.evaluate`) wins. No optimality claim.
"""

from __future__ import annotations

import warnings

import cvxpy as cp
import numpy as np

from isac_gym.iscc import (
    Allocation,
    Snapshot,
    as_beta,
    beam_directions,
    comm_combiners,
    evaluate,
    sensing_combiners,
)

_OK = ("optimal", "optimal_inaccurate")


def _solver() -> str | None:
    return cp.CLARABEL if cp.CLARABEL in cp.installed_solvers() else None


def _solve(problem: cp.Problem) -> str:
    """Solve and return the status string; solver failures become a status, not an error."""
    try:
        with warnings.catch_warnings():  # 'optimal_inaccurate' is reported in the status
            warnings.simplefilter("ignore", UserWarning)
            problem.solve(solver=_solver())
    except cp.error.SolverError:
        return "solver_error"
    return str(problem.status)


def _per_ue(value, K: int, name: str) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.ndim > 1 or (array.ndim == 1 and array.shape != (K,)):
        raise ValueError(f"{name} must be a scalar or have shape ({K},), got {array.shape}")
    return np.broadcast_to(array, (K,)).copy()


def cpu_frequencies(snapshot: Snapshot, alpha, rate) -> tuple[np.ndarray, np.ndarray]:
    """CPU frequencies at their latency bounds, eqs. (10)-(11) with t = tau_k.

    ``f_u = varpi (1 - alpha) Q / tau`` and ``f_ap = varpi alpha Q / (tau - alpha Q / R)``
    (0 where alpha = 0; inf where the transmission alone exceeds tau).
    """
    alpha = np.asarray(alpha, dtype=float)
    work = snapshot.varpi * snapshot.Q
    f_u = work * (1.0 - alpha) / snapshot.tau
    offloaded = alpha * snapshot.Q
    rate = np.asarray(rate, dtype=float)
    t_com = np.divide(offloaded, rate, out=np.where(offloaded > 0, np.inf, 0.0), where=(rate > 0))
    t_proc = snapshot.tau - t_com
    f_ap = np.divide(
        snapshot.varpi * offloaded,
        t_proc,
        out=np.where(offloaded > 0, np.inf, 0.0),
        where=(offloaded > 0) & (t_proc > 0),
    )
    return f_u, f_ap


def compute_objective(snapshot: Snapshot, alpha, beta, rate, power, weight_ue=None) -> float:
    """The cost (17a) of the compute subproblem in numpy (frequencies at their bounds)."""
    K = snapshot.K
    beta = as_beta(beta, K)
    weight = np.ones(K) if weight_ue is None else _per_ue(weight_ue, K, "weight_ue")
    alpha = np.asarray(alpha, dtype=float)
    f_u, f_ap = cpu_frequencies(snapshot, alpha, rate)
    offloaded = alpha * snapshot.Q
    rate = np.asarray(rate, dtype=float)
    t_com = np.divide(offloaded, rate, out=np.where(offloaded > 0, np.inf, 0.0), where=rate > 0)
    e_isac = np.where(offloaded > 0, np.asarray(power, dtype=float) * t_com, 0.0)  # (13)
    e_local = snapshot.xi_u * f_u**2 * snapshot.varpi * (1.0 - alpha) * snapshot.Q  # (14)
    e_ap = np.where(offloaded > 0, snapshot.xi_ap * f_ap**2 * snapshot.varpi * offloaded, 0.0)
    return float(np.sum(weight * (e_isac + e_local) + beta * e_ap))  # (17a), (15)-(16)


def compute_allocation_cvxpy(snapshot: Snapshot, beta, rate, power, weight_ue=None) -> dict:
    """Exact optimal offloading alpha for fixed rates R_k and powers P_k (CVXPY).

    See the module docstring for the convex program (eqs. (10)-(17)). ``rate`` (K,) in
    bit/s (> 0; ``inf`` means free transmission, 0 forces alpha_k = 0), ``power`` (K,) in
    W, ``weight_ue`` (K,) multiplies E_k^u in the objective only (the battery constraint
    uses the plain E_k^u). Returns ``dict(alpha, f_u, f_ap, objective, status)``; on
    failure (``status`` not 'optimal'/'optimal_inaccurate') alpha, f_u, f_ap are NaN and
    objective is inf. Never raises for infeasible data.
    """
    K = snapshot.K
    beta = as_beta(beta, K)
    weight = np.ones(K) if weight_ue is None else _per_ue(weight_ue, K, "weight_ue")
    rate = _per_ue(rate, K, "rate")
    power = _per_ue(power, K, "power")
    if np.any(np.isnan(rate)) or np.any(rate < 0):
        raise ValueError(f"rate must be >= 0, got {rate!r}")
    if not np.all(np.isfinite(power)) or np.any(power < 0):
        raise ValueError(f"power must be finite and >= 0, got {power!r}")
    Q, tau, varpi = snapshot.Q, snapshot.tau, snapshot.varpi
    silent = rate == 0  # nothing can be offloaded
    c = np.divide(Q, rate, out=np.zeros(K), where=~silent)  # t_com per unit alpha [s]
    d = c / tau  # dimensionless
    cube = varpi**3 * Q**3 / tau**2
    a = snapshot.xi_u * cube  # E^local = a (1 - alpha)^3, (14)
    b = snapshot.xi_ap * cube  # E^ap = b alpha^3 / s^2, (15)
    lin = weight * power * c  # E^isac = P c alpha, (13)
    energy_scale = max(float(np.max(np.concatenate([weight * a, beta * b, lin]))), 1e-300)
    freq_unit = varpi * Q / tau  # cycle/s to do the whole task in tau
    freq_scale = float(np.max(freq_unit))

    alpha = cp.Variable(K, nonneg=True)
    s = cp.Variable(K)  # t_proc / tau = 1 - d alpha
    t = cp.Variable(K, nonneg=True)  # >= alpha^3 / s^2
    local = cp.power(1 - alpha, 3)
    cost = (lin @ alpha + cp.multiply(weight * a, local) + cp.multiply(beta * b, t)) / energy_scale
    r = cp.Variable(K, nonneg=True)  # >= alpha^2 / s
    # f_ap / freq_scale = (varpi Q / tau) alpha / s = (varpi Q / tau) (alpha + d alpha^2 / s)
    f_ap_scaled = cp.multiply(freq_unit / freq_scale, alpha + cp.multiply(d, r))
    constraints = [
        alpha <= 1,  # (17f)
        s == 1 - cp.multiply(d, alpha),  # t_com = c alpha, t_proc = tau - c alpha, (11)
        s >= 0,
        cp.PowCone3D(t, s, alpha, 1.0 / 3.0),  # t^(1/3) s^(2/3) >= alpha
        cp.PowCone3D(r, s, alpha, 0.5),  # r s >= alpha^2
        # (17d) with f_u at its bound: varpi (1 - alpha) Q / tau <= C_u
        cp.multiply(freq_unit / freq_scale, 1 - alpha) <= snapshot.C_u / freq_scale,
        cp.sum(f_ap_scaled) <= snapshot.C_ap / freq_scale,  # (17e)
    ]
    if np.any(silent):
        constraints.append(alpha[np.flatnonzero(silent)] == 0)
    budget = snapshot.energy_budget
    limited = np.flatnonzero(np.isfinite(budget))
    if limited.size:  # battery: E^isac + E^local <= budget (unweighted (16))
        e_ue = cp.multiply(power * c, alpha) + cp.multiply(a, local)
        constraints.append(e_ue[limited] / energy_scale <= budget[limited] / energy_scale)
    problem = cp.Problem(cp.Minimize(cp.sum(cost)), constraints)
    status = _solve(problem)
    if status not in _OK or alpha.value is None:
        nan = np.full(K, np.nan)
        return dict(alpha=nan, f_u=nan.copy(), f_ap=nan.copy(), objective=np.inf, status=status)
    alpha_value = np.clip(np.asarray(alpha.value, dtype=float), 0.0, 1.0)
    f_u, f_ap = cpu_frequencies(snapshot, alpha_value, rate)
    objective = compute_objective(snapshot, alpha_value, beta, rate, power, weight)
    return dict(alpha=alpha_value, f_u=f_u, f_ap=f_ap, objective=objective, status=status)


def _rank_one(matrix: np.ndarray) -> tuple[np.ndarray, float]:
    """sqrt(lambda_max) v_max of a Hermitian PSD matrix and lambda_2 / lambda_1."""
    matrix = (matrix + matrix.conj().T) / 2
    values, vectors = np.linalg.eigh(matrix)
    top = max(values[-1], 0.0)
    ratio = float(max(values[-2], 0.0) / top) if top > 0 and values.size > 1 else 0.0
    return np.sqrt(top) * vectors[:, -1], ratio


def sdr_beams_cvxpy(snapshot: Snapshot, w, w_tilde, gamma_c, weights=None) -> dict:
    """SDR of the minimum-power beams for fixed combiners (P2 without (17i)).

    Variables F_k, R_k (= R_k^0) Hermitian PSD (17h). Minimise sum_k weights_k
    Tr(F_k + R_k) s.t., with a_kj = H_j^H w_k and b_kj = H~_j^H w~_k,

    * (7) >= gamma_c[k]:  a_kk^H F_k a_kk >= gamma_c[k] (sum_j a_kj^H R_j a_kj
      + sum_{j != k} a_kj^H F_j a_kj + sigma^2 ||w_k||^2),
    * (8) >= gamma_s (17b):  b_kk^H R_k b_kk >= gamma_s (sum_j b_kj^H F_j b_kj
      + sum_{j != k} b_kj^H R_j b_kj + sigma^2 ||w~_k||^2),
    * Tr(F_k + R_k) <= P_max (17g).

    Each constraint is divided by its noise term and the matrices by P_max for
    conditioning, and each matrix is restricted (exactly, see the code) to the span of the
    vectors that see it, so M = 64 costs no more than M = 4. Returns
    ``dict(f, u, F, R, status, rank_ratio, objective)``: f_k, u_k are sqrt(lambda_max)
    v_max of F_k, R_k; ``rank_ratio`` is the largest lambda_2 / lambda_1 over all 2K
    matrices (0 for exactly rank-one); ``objective`` is the SDR's weighted power [W]
    (inf when not solved). On failure the arrays are NaN.
    """
    K = snapshot.K
    w = np.atleast_2d(np.asarray(w, dtype=complex))
    w_tilde = np.atleast_2d(np.asarray(w_tilde, dtype=complex))
    gamma_c = _per_ue(gamma_c, K, "gamma_c")
    weights = np.ones(K) if weights is None else _per_ue(weights, K, "weights")
    basis, a, b = _reduced_gains(snapshot, w, w_tilde)
    F = [cp.Variable((U.shape[1],) * 2, hermitian=True) for U in basis]
    R = [cp.Variable((U.shape[1],) * 2, hermitian=True) for U in basis]
    constraints = []
    for k in range(K):
        constraints += _sdr_constraints(k, a, b, F, R, gamma_c[k], snapshot.gamma_s)
    objective = sum(weights[k] * cp.real(cp.trace(F[k] + R[k])) for k in range(K))
    problem = cp.Problem(cp.Minimize(objective), constraints)
    status = _solve(problem)
    return _sdr_result(snapshot, basis, F, R, problem, status)


def _reduced_gains(snapshot: Snapshot, w, w_tilde):
    """``(basis, a, b)``: the scaled gains of :func:`sdr_beams_cvxpy` in reduced spans.

    ``a[k][j] = H_j^H w_k / sqrt(noise ||w_k||^2 / P_max)`` (received gain per unit F'
    over noise), ``b`` likewise with H~ and w~. Exact reduction: every constraint sees
    F_j, R_j only through v^H F_j v with v in V_j = span{a_kj, b_kj}_k, and projecting
    onto V_j keeps PSD and does not raise the trace, so an optimum lies in V_j: F_j =
    U_j X_j U_j^H with X_j of size dim V_j <= 2K. Returns the U_j and the gains in them.
    """
    K, P = snapshot.K, snapshot.P_max
    a = np.einsum("jab,ka->kjb", snapshot.H.conj(), w)
    a = a / np.sqrt(snapshot.noise * np.sum(np.abs(w) ** 2, axis=1) / P)[:, None, None]
    b = np.einsum("jrb,kr->kjb", snapshot.H_sense.conj(), w_tilde)
    b = b / np.sqrt(snapshot.noise * np.sum(np.abs(w_tilde) ** 2, axis=1) / P)[:, None, None]
    basis = []
    for j in range(K):
        span = np.concatenate([a[:, j, :], b[:, j, :]]).T  # (M, 2K)
        left, sv, _ = np.linalg.svd(span, full_matrices=False)
        keep = sv > 1e-12 * max(sv[0], 1e-300)
        basis.append(left[:, keep] if np.any(keep) else left[:, :1])
    a_red = [[basis[j].conj().T @ a[k][j] for j in range(K)] for k in range(K)]
    b_red = [[basis[j].conj().T @ b[k][j] for j in range(K)] for k in range(K)]
    return basis, a_red, b_red


def _gain(vector, matrix):
    """``vector^H matrix vector``, real (a CVXPY expression)."""
    return cp.real(vector.conj() @ matrix @ vector)


def _sdr_constraints(k: int, a, b, F, R, gamma_c: float, gamma_s: float) -> list:
    """UE k's constraints of the SDR: (17h) PSD, (17g) power (scaled), (7) and (8)."""
    K = len(F)
    interference_c = sum(_gain(a[k][j], R[j]) for j in range(K)) + sum(
        _gain(a[k][j], F[j]) for j in range(K) if j != k
    )
    interference_s = sum(_gain(b[k][j], F[j]) for j in range(K)) + sum(
        _gain(b[k][j], R[j]) for j in range(K) if j != k
    )
    return [
        F[k] >> 0,
        R[k] >> 0,
        cp.real(cp.trace(F[k] + R[k])) <= 1.0,  # (17g), scaled by P_max
        _gain(a[k][k], F[k]) >= gamma_c * (interference_c + 1.0),  # (7)
        _gain(b[k][k], R[k]) >= gamma_s * (interference_s + 1.0),  # (8)
    ]


def _sdr_result(snapshot: Snapshot, basis, F, R, problem, status) -> dict:
    """The dict of :func:`sdr_beams_cvxpy`: lifted matrices, rank-one beams, status."""
    K, M, P = snapshot.K, snapshot.M_ut, snapshot.P_max
    if status not in _OK or any(m.value is None for m in F + R):
        nan_v = np.full((K, M), np.nan, complex)
        nan_m = np.full((K, M, M), np.nan, complex)
        return dict(
            f=nan_v, u=nan_v.copy(), F=nan_m, R=nan_m.copy(), status=status,
            rank_ratio=np.nan, objective=np.inf,
        )  # fmt: skip

    def lift(U, variable):  # back to M x M, in W
        return P * U @ np.asarray(variable.value) @ U.conj().T

    F_val = np.stack([lift(U, m) for U, m in zip(basis, F, strict=True)])
    R_val = np.stack([lift(U, m) for U, m in zip(basis, R, strict=True)])
    f, u, ratios = np.zeros((K, M), complex), np.zeros((K, M), complex), []
    for k in range(K):
        f[k], ratio_f = _rank_one(F_val[k])
        u[k], ratio_u = _rank_one(R_val[k])
        ratios += [ratio_f, ratio_u]
    return dict(
        f=f, u=u, F=F_val, R=R_val, status=status, rank_ratio=float(max(ratios)),
        objective=float(P * problem.value),
    )  # fmt: skip


def _candidate(snapshot: Snapshot, beta, f, u, w, w_tilde):
    """Compute subproblem at the true rates and powers of (f, u, w, w~), then evaluate."""
    K = snapshot.K
    probe = Allocation(np.zeros(K), np.zeros(K), np.zeros(K), f, u, w, w_tilde)
    ev = evaluate(snapshot, probe, beta)
    result = compute_allocation_cvxpy(snapshot, beta, ev.rate, ev.power)
    if result["status"] not in _OK:
        return None
    allocation = Allocation(result["alpha"], result["f_u"], result["f_ap"], f, u, w, w_tilde)
    return allocation, evaluate(snapshot, allocation, beta)


def _better(new, best) -> bool:
    """More feasible UEs first, then the lower true cost (17a)."""
    if best is None:
        return True
    key_new = (-int(np.sum(new.feasible)), new.cost)
    key_best = (-int(np.sum(best.feasible)), best.cost)
    return key_new < key_best


def solve_reference(
    snapshot: Snapshot, beta, *, rounds: int = 3, factors=(1, 2, 4, 8, 16, 32, 64)
) -> Allocation:
    """Slow reference heuristic for (P1) (not the paper's algorithm; see module docstring).

    Start: :func:`beam_directions` with an even power split at P_max. Each round:
    (a) max-SINR combiners (:func:`comm_combiners`, :func:`sensing_combiners`);
    (b) for every factor in ``factors``, SDR beams (:func:`sdr_beams_cvxpy`) reaching the
    communication SINR that the current beams reach at full power divided by the factor,
    re-optimised combiners for the recovered rank-one beams, and the exact compute
    subproblem (:func:`compute_allocation_cvxpy`) at the resulting true rates (9) and
    powers (2). Every candidate is judged by :func:`evaluate`; the best (most UEs
    feasible, then lowest cost (17a)) is kept and seeds the next round. Returns an
    ``Allocation`` with CPU frequencies at their latency bounds (10)-(11). Each round
    solves ``len(factors)`` SDPs: seconds to minutes at M = 64.
    """
    K = snapshot.K
    beta = as_beta(beta, K)
    f_dir, u_dir = beam_directions(snapshot)
    f = f_dir * np.sqrt(snapshot.P_max / 2)
    u = u_dir * np.sqrt(snapshot.P_max / 2)
    best = best_ev = None
    w = comm_combiners(snapshot, f, u)
    w_tilde = sensing_combiners(snapshot, f, u)
    start = _candidate(snapshot, beta, f, u, w, w_tilde)
    if start is not None:
        best, best_ev = start
    for _ in range(rounds):
        w = comm_combiners(snapshot, f, u)  # (a)
        w_tilde = sensing_combiners(snapshot, f, u)
        # SINR (7) of the current beams scaled to full power (same split per UE)
        power = np.sum(np.abs(f) ** 2, axis=1) + np.sum(np.abs(u) ** 2, axis=1)
        scale = np.sqrt(snapshot.P_max / np.maximum(power, 1e-300))[:, None]
        full = Allocation(np.zeros(K), np.zeros(K), np.zeros(K), f * scale, u * scale, w, w_tilde)
        gamma_full = evaluate(snapshot, full, beta).sinr_c
        improved = False
        for factor in factors:  # (b)
            sdr = sdr_beams_cvxpy(snapshot, w, w_tilde, gamma_full / factor)
            if sdr["status"] not in _OK:
                continue
            f_new, u_new = sdr["f"], sdr["u"]
            w_new = comm_combiners(snapshot, f_new, u_new)
            wt_new = sensing_combiners(snapshot, f_new, u_new)
            candidate = _candidate(snapshot, beta, f_new, u_new, w_new, wt_new)
            if candidate is not None and _better(candidate[1], best_ev):
                best, best_ev = candidate
                improved = True
        if best is None:
            break
        f, u = best.f, best.u
        if not improved:
            break
    if best is None:  # nothing solvable: the start beams with everything local
        f_u, f_ap = cpu_frequencies(snapshot, np.zeros(K), np.full(K, np.inf))
        best = Allocation(np.zeros(K), f_u, f_ap, f, u, w, w_tilde)
    return best
