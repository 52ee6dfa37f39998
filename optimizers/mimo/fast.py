"""Phase I of the fast method: SCA feasibility restoration by a barrier Newton method.

The fast method (:mod:`optimizers.mimo.direct`) needs a strictly feasible start. When
the start is not, :func:`phase1` restores feasibility as in spec 5.4
(``docs/mimo_model.md``), on the surrogates of the CVXPY reference
(:mod:`optimizers.mimo.dinkelbach`, spec 5.2): the Nasir et al. SE minorant, the exact
transmit power (11) and the affine FIM minorant ``F~ <= F`` with the two 4x4 LMIs
``F~ - t_i e_i e_i^T >= 0`` (``1/CRB_i >= t_i``). Each round maximises the least
relative margin tau at one linearisation by a primal log-barrier method with exact
gradients and Hessians:

* each SE minorant ``R_k^lb`` is a concave quadratic whose Hessian is 2x2
  block-diagonal per stream, so the barrier ``-log(R_k^lb - R_th)`` adds that block
  diagonal and a rank-one term;
* the LMIs enter through ``-log det S_i`` with ``S_i = F~(x) - t_i e_i e_i^T`` affine,
  whose gradient is ``-B^T vec(S_i^-1)`` and Hessian ``B^T (S_i^-1 kron S_i^-1) B``;
* the power budget ``-log(P_max - P_T)`` and the amplitudes ``-log(x)``.

With about 2NK + 3 variables a Newton step is one Cholesky solve after eliminating the
2x2 block diagonal. :class:`BarrierProgram` also holds the Dinkelbach program of spec
5.3 (``phase1=False``), kept for its tests. The earlier fast Dinkelbach-SCA loop built
on it needed hundreds of SCA iterations and was replaced by the direct method.
"""

from __future__ import annotations

import numpy as np

from isac_gym.mimo import (
    MIMOAllocation,
    MIMOSnapshot,
    StreamConstants,
    fisher_information,
    sinr_terms,
    transmit_power_closed_form,
)

_LN2 = np.log(2.0)
_MAX_NEWTON = 60  #: Newton steps per barrier stage


class FastSurrogate:
    """The surrogates of spec 5.2 at a point, as numpy values, gradients and Hessians.

    Variables: ``z`` (the scheme's free amplitudes) mapped to the full ``x = (vec a, vec
    b)`` (2NK, row-major (n, k)) by ``x = E z``; ``E`` is the identity for ``proposed``,
    repeats one pair per subcarrier for ``equal_com`` and sets ``a = b`` for ``equal_cs``.
    """

    def __init__(self, snapshot: MIMOSnapshot, constants: StreamConstants, scheme: str):
        self.snapshot, self.constants, self.scheme = snapshot, constants, scheme
        N, K = snapshot.N, snapshot.K
        self.shape = (N, K)
        sigma = np.sqrt(snapshot.noise)
        self.zeta = constants.zeta / sigma  # noise-normalised (sigma^2 -> 1)
        self.g = constants.g / sigma
        self.g2 = (self.g * self.g.conj()).real
        self.eps = constants.eps
        self.E = _scheme_map(scheme, N, K)
        self.off_diagonal = 1.0 - np.eye(K)

    # -- variable maps ------------------------------------------------------------------
    def full(self, z: np.ndarray) -> np.ndarray:
        return z if self.E is None else self.E @ z

    def reduce(self, grad: np.ndarray, hess: np.ndarray | None = None):
        """Gradient and Hessian in x mapped to z: E^T g, E^T H E."""
        if self.E is None:
            return grad, hess
        return self.E.T @ grad, (None if hess is None else self.E.T @ hess @ self.E)

    def to_z(self, point: MIMOAllocation) -> np.ndarray:
        if self.scheme == "equal_com":
            return np.concatenate((point.a.mean(axis=1), point.b.mean(axis=1)))
        if self.scheme == "equal_cs":
            return (0.5 * (point.a + point.b)).ravel()
        return np.concatenate((point.a.ravel(), point.b.ravel()))

    def allocation(self, z: np.ndarray) -> MIMOAllocation:
        x = np.maximum(self.full(z), 0.0)
        half = x.size // 2
        return MIMOAllocation(a=x[:half].reshape(self.shape), b=x[half:].reshape(self.shape))

    # -- linearisation at a point ---------------------------------------------------------
    def linearise(self, point: MIMOAllocation) -> None:
        """Coefficients of the SE minorant (centred form) and of the scaled FIM minorant."""
        s = self.snapshot
        chi, psi = sinr_terms(self.constants, point, s.noise)
        chi, psi = chi / np.sqrt(s.noise), psi / s.noise
        chi2 = (chi * chi.conj()).real
        z = psi + chi2
        self.c = chi2 / (psi * z)  # weight of |chi - chi_|^2 + (psi - psi_)
        self.chi_bar, self.psi_bar, self.z_bar = chi, psi, z
        self.r_bar = np.log1p(chi2 / psi)
        F = fisher_information(self.constants, point)
        d = 1.0 / np.sqrt(np.diag(F))
        u = np.stack((point.a, point.b), axis=-1)
        slope = 2.0 * np.einsum("nkijpq,nkq->ijpnk", self.constants.fim_forms, u)
        scale = (d[:, None] * d[None, :]).reshape(16, 1)
        self.fim_slope = slope.reshape(16, 2 * u[..., 0].size) * scale  # d vec(DFD) / dx
        self.fim_point = (F * d[:, None] * d[None, :]).reshape(16)
        self.x_bar = np.concatenate((point.a.ravel(), point.b.ravel()))
        self.fim_diag = np.diag(F)[:2]
        # The own-stream Hessian block of one minorant, per unit weight, (N, K) each:
        # -2 c [zeta^2, zeta Re g; zeta Re g, |g|^2] / (N ln 2).
        unit = -2.0 * self.c / (s.N * _LN2)
        self.h_aa, self.h_ab = unit * self.zeta**2, unit * self.zeta * self.g.real
        self.h_bb_own = unit * self.g2
        self.h_leak = unit * self.g2  # on b_{n,j}, j != k, for the minorant of user k

    # -- SE minorants ---------------------------------------------------------------------
    def _split(self, x):
        half = x.size // 2
        return x[:half].reshape(self.shape), x[half:].reshape(self.shape)

    def se(self, x: np.ndarray) -> np.ndarray:
        """R_k^lb(x) for every user [bps/Hz] (spec 5.2 item 1, centred form)."""
        a, b = self._split(x)
        chi = self.zeta * a + self.g * b
        d = chi - self.chi_bar
        b2 = b * b
        psi = 1.0 + self.g2 * (b2.sum(axis=1, keepdims=True) - b2)
        r = (
            self.r_bar
            + 2.0 * (self.chi_bar.conj() * d).real / self.z_bar
            - self.c * ((d * d.conj()).real + psi - self.psi_bar)
        )
        return r.sum(axis=0) / (self.snapshot.N * _LN2)

    def se_gradient(self, x: np.ndarray) -> np.ndarray:
        """(K, 2NK): dR_k^lb / dx."""
        a, b = self._split(x)
        N, K = self.shape
        d = self.zeta * a + self.g * b - self.chi_bar
        coef = 2.0 * (self.chi_bar / self.z_bar - self.c * d)  # d r / d chi (as Re(coef* .))
        own_a = coef.real * self.zeta
        own_b = (coef.conj() * self.g).real
        eye = np.eye(K)
        grad_a = own_a.T[:, :, None] * eye[:, None, :]  # [k, n, j]
        leak = -2.0 * (self.c * self.g2).T[:, :, None] * b[None, :, :] * self.off_diagonal[:, None]
        grad_b = leak + own_b.T[:, :, None] * eye[:, None, :]
        return np.concatenate((grad_a.reshape(K, -1), grad_b.reshape(K, -1)), axis=1) / (N * _LN2)

    def se_hessian_blocks(self, weights: np.ndarray):
        """sum_k weights_k Hess R_k^lb as 2x2 blocks per stream: (h_aa, h_ab, h_bb), (N, K)."""
        h_aa = self.h_aa * weights
        h_ab = self.h_ab * weights
        leak = self.h_leak * weights  # [n, k]: weight on every b_{n,j}, j != k
        h_bb = self.h_bb_own * weights + leak.sum(axis=1, keepdims=True) - leak
        return h_aa, h_ab, h_bb

    # -- power ------------------------------------------------------------------------------
    def power(self, x: np.ndarray) -> float:
        a, b = self._split(x)
        return float(np.sum(a * a + b * b + 2.0 * self.eps * a * b))  # (11)

    def power_gradient(self, x: np.ndarray) -> np.ndarray:
        a, b = self._split(x)
        return np.concatenate(
            ((2.0 * (a + self.eps * b)).ravel(), (2.0 * (b + self.eps * a)).ravel())
        )

    def power_blocks(self):
        ones = np.ones(self.shape)
        return 2.0 * ones, 2.0 * self.eps, 2.0 * ones

    # -- FIM minorant ---------------------------------------------------------------------
    def fim(self, x: np.ndarray) -> np.ndarray:
        """The Jacobi-scaled affine minorant D F~(x) D, 4x4."""
        return (self.fim_point + self.fim_slope @ (x - self.x_bar)).reshape(4, 4)


def blocks_to_dense(h_aa, h_ab, h_bb) -> np.ndarray:
    """The (2NK, 2NK) matrix of 2x2 per-stream blocks on (a_{n,k}, b_{n,k})."""
    m = h_aa.size
    dense = np.zeros((2 * m, 2 * m))
    idx = np.arange(m)
    dense[idx, idx] = h_aa.ravel()
    dense[idx + m, idx + m] = h_bb.ravel()
    dense[idx, idx + m] = dense[idx + m, idx] = h_ab.ravel()
    return dense


def _scheme_map(scheme: str, N: int, K: int):
    if scheme == "proposed":
        return None
    if scheme == "equal_com":  # x[(n, k)] = z[n], x[NK + (n, k)] = z[N + n]
        rep = np.kron(np.eye(N), np.ones((K, 1)))
        zero = np.zeros_like(rep)
        return np.block([[rep, zero], [zero, rep]])
    eye = np.eye(N * K)  # equal_cs: a = b = z
    return np.vstack((eye, eye))


def equal_split_allocation(snapshot, constants, power: float) -> MIMOAllocation:
    """a = b on every stream, scaled to transmit power ``power`` (spec 5.4, step 1)."""
    unit = np.ones((snapshot.N, snapshot.K))
    scale = np.sqrt(power / transmit_power_closed_form(constants, MIMOAllocation(unit, unit)))
    return MIMOAllocation(a=scale * unit, b=scale * unit)


class BarrierProgram:
    """One convex program of spec 5.3 (``phase1=False``) or 5.4 (``phase1=True``) at the
    surrogate's linearisation point, in ``y = (z, t_theta, t_phi[, tau])``.

    ``t_i`` are Jacobi-scaled: ``t_i F_ii`` bounds ``1/CRB_i``. Dinkelbach objective
    (minimised): ``-(c_R sum_k R_k^lb + omega sum_i F_ii t_i - lam P_T / eta) / norm``;
    phase I: ``-tau`` with ``R_k^lb / R_th - 1 >= tau``, ``eps_i F_ii t_i - 1 >= tau``,
    ``tau <= 1``. Both keep the LMIs, ``P_T <= P_max`` and ``x > 0``.
    """

    def __init__(
        self, surrogate: FastSurrogate, *, phase1: bool, margin: float, lam=0.0, omega=0.0
    ):
        s = surrogate.snapshot
        self.sur, self.phase1 = surrogate, phase1
        self.nz = surrogate.E.shape[1] if surrogate.E is not None else 2 * s.N * s.K
        self.n_extra = 3 if phase1 else 2
        self.fim_diag = surrogate.fim_diag
        self.crb_scale = s.crb_max * self.fim_diag  # eps_i F_ii
        self.R_low = s.R_th * (1.0 + margin)
        self.t_floor = (1.0 + margin) / self.crb_scale
        norm = max(1.0, lam)
        self.c_rate = ((1.0 - omega) - lam * s.xi) / norm
        self.t_weight = omega * self.fim_diag / norm
        self.price = lam / (s.eta * norm)
        self.n_constraints = s.K + 2 * 4 + 2 + 1 + self.nz + (1 if phase1 else 0)
        # LMI maps: vec S_i = fim_point + slope (x - x_bar) - t_i vec(e_i e_i^T)
        self.lmi_t = [np.zeros(16), np.zeros(16)]
        self.lmi_t[0][0], self.lmi_t[1][5] = -1.0, -1.0

    def _parts(self, y):
        sur = self.sur
        z, extra = y[: self.nz], y[self.nz :]
        return z, sur.full(z), extra[:2], (extra[2] if self.phase1 else 0.0)

    def _slacks(self, y):
        """Every barrier argument, or None outside the domain."""
        z, x, t, tau = self._parts(y)
        if np.any(z <= 0):
            return None
        se = self.sur.se(x)
        if self.phase1:
            se_slack = se / self.snapshot_R_th() - 1.0 - tau
            t_slack = np.append(self.crb_scale * t - 1.0 - tau, 1.0 - tau)
        else:
            se_slack, t_slack = se - self.R_low, t - self.t_floor
        power_slack = self.sur.snapshot.P_max - self.sur.power(x)
        if np.any(se_slack <= 0) or np.any(t_slack <= 0) or power_slack <= 0:
            return None
        F = self.sur.fim(x)
        chol = []
        for i in range(2):
            S = F.copy()
            S[i, i] -= t[i]
            try:
                chol.append(np.linalg.cholesky(S))
            except np.linalg.LinAlgError:
                return None
        return z, x, t, tau, se, se_slack, t_slack, power_slack, chol

    def snapshot_R_th(self):
        return self.sur.snapshot.R_th

    def objective(self, x, t, tau, se):
        if self.phase1:
            return -tau
        return -(self.c_rate * se.sum() + self.t_weight @ t - self.price * self.sur.power(x))

    def value(self, y, weight: float) -> float:
        """weight * f0(y) + barrier(y), +inf outside the domain."""
        parts = self._slacks(y)
        if parts is None:
            return np.inf
        z, x, t, tau, se, se_slack, t_slack, power_slack, chol = parts
        log_det = sum(2.0 * np.log(np.diag(c)).sum() for c in chol)
        barrier = -(
            np.log(z).sum()
            + np.log(se_slack).sum()
            + np.log(t_slack).sum()
            + np.log(power_slack)
            + log_det
        )
        return weight * self.objective(x, t, tau, se) + barrier

    def start(self, z: np.ndarray) -> np.ndarray:
        """A strictly feasible y at z (z must be strictly feasible for the true model)."""
        x = self.sur.full(z)
        F = self.sur.fim(x)
        t_max = 1.0 / np.diag(np.linalg.inv(F))[:2]
        if not self.phase1:
            t = self.t_floor + 0.5 * np.maximum(t_max - self.t_floor, 0.0)
            return np.concatenate((z, t))
        t = 0.5 * t_max
        margins = np.concatenate(
            (self.sur.se(x) / self.snapshot_R_th() - 1.0, self.crb_scale * t - 1.0)
        )
        low = margins.min()
        tau = min(low - 0.1 * (1.0 + abs(low)), 0.5)
        return np.concatenate((z, t, [tau]))

    def newton(self, y, weight: float):
        """(value, gradient, Newton direction) of weight * f0 + barrier at a strictly
        feasible y.

        The Hessian in x is ``D + U C U^T``: D 2x2-block-diagonal per stream (the SE and
        power Hessians, the amplitude bounds), U the SE gradients, the power gradient
        and the LMI maps, C = diag(1/s_k^2, 1/v^2, S_1^-1 kron S_1^-1, S_2^-1 kron S_2^-1).
        """
        z, x, t, tau, se, se_slack, t_slack, power_slack, chol = self._slacks(y)
        sur, nx, ne = self.sur, x.size, self.n_extra
        gx, Hxe = np.zeros(nx), np.zeros((nx, ne))
        ge, Hee = np.zeros(ne), np.zeros((ne, ne))
        scale = 1.0 / self.snapshot_R_th() if self.phase1 else 1.0
        G = np.reshape(scale, (-1, 1)) * sur.se_gradient(x)  # (K, nx): SE slack gradients
        inv_s = 1.0 / se_slack
        gx -= G.T @ inv_s
        rate_weight = -scale * inv_s
        if self.phase1:
            ge[2] += inv_s.sum() - weight
            Hxe[:, 2] -= G.T @ inv_s**2
            Hee[2, 2] += np.sum(inv_s**2)
        else:
            gx -= weight * self.c_rate * G.sum(axis=0)
            rate_weight = rate_weight - weight * self.c_rate
            ge[:2] -= weight * self.t_weight
        grad_p = sur.power_gradient(x)
        power_weight = 1.0 / power_slack + (0.0 if self.phase1 else weight * self.price)
        gx += power_weight * grad_p
        se_blocks, p_blocks = sur.se_hessian_blocks(rate_weight), sur.power_blocks()
        blocks = [s + power_weight * p for s, p in zip(se_blocks, p_blocks, strict=True)]
        t_grad = np.zeros((t_slack.size, ne))
        if self.phase1:
            t_grad[0, 0], t_grad[1, 1] = self.crb_scale
            t_grad[:, 2] = -1.0
        else:
            t_grad[0, 0] = t_grad[1, 1] = 1.0
        ge -= t_grad.T @ (1.0 / t_slack)
        Hee += (t_grad.T / t_slack**2) @ t_grad
        B = sur.fim_slope
        low_rank, weights, inverses = [G.T, grad_p[:, None]], [inv_s**2, [power_slack**-2]], []
        for i, factor in enumerate(chol):
            inv_factor = np.linalg.inv(factor)
            M = inv_factor.T @ inv_factor
            kron = np.kron(M, M)
            S = factor @ factor.T
            KB = kron @ B
            gx -= B.T @ M.reshape(16)
            Hxe[:, i] += KB.T @ self.lmi_t[i]
            ge[i] -= self.lmi_t[i] @ M.reshape(16)
            Hee[i, i] += M[i, i] ** 2
            low_rank.append(B.T)
            inverses.append(np.kron(S, S))
        U = np.hstack(low_rank)
        C_inv = _block_diagonal(
            [np.diag(1.0 / np.asarray(w, dtype=float)) for w in weights] + inverses
        )
        value = self.value(y, weight)
        if sur.E is None:
            blocks[0] = blocks[0] + 1.0 / z[: nx // 2].reshape(sur.shape) ** 2
            blocks[2] = blocks[2] + 1.0 / z[nx // 2 :].reshape(sur.shape) ** 2
            grad = np.concatenate((gx - 1.0 / z, ge))
            step = _structured_solve(blocks, U, C_inv, Hxe, Hee, -grad)
            return value, grad, step
        E = sur.E
        C = np.linalg.inv(C_inv)
        Hz = E.T @ (blocks_to_dense(*blocks) + U @ C @ U.T) @ E
        Hz[np.diag_indices_from(Hz)] += 1.0 / z**2
        Hze = E.T @ Hxe
        grad = np.concatenate((E.T @ gx - 1.0 / z, ge))
        hess = np.block([[Hz, Hze], [Hze.T, Hee]])
        return value, grad, _solve(hess, -grad)


def _block_diagonal(mats):
    size = sum(m.shape[0] for m in mats)
    out = np.zeros((size, size))
    at = 0
    for m in mats:
        out[at : at + m.shape[0], at : at + m.shape[0]] = m
        at += m.shape[0]
    return out


def _solve(matrix, rhs):
    try:
        return np.linalg.solve(matrix, rhs)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(matrix, rhs, rcond=None)[0]


def _structured_solve(blocks, U, C_inv, Hxe, Hee, rhs):
    """Solve [[D + U C U^T, Hxe], [Hxe^T, Hee]] d = rhs with D 2x2-block-diagonal.

    With ``w = C U^T d_x``: ``d_x = D^-1 (r_x - U w - Hxe d_e)``, leaving a small system
    in (w, d_e) of size rank(U) + extras (about 40 at the paper size).
    """
    h_aa, h_ab, h_bb = (b.ravel() for b in blocks)
    det = h_aa * h_bb - h_ab**2
    m = h_aa.size

    def apply_inverse(v):
        top, bottom = v[:m], v[m:]
        return np.concatenate(
            ((h_bb * top - h_ab * bottom) / det, (h_aa * bottom - h_ab * top) / det)
        )

    nx = 2 * m
    rx, re = rhs[:nx], rhs[nx:]
    DU = np.column_stack([apply_inverse(col) for col in U.T]) if U.size else U
    DH = np.column_stack([apply_inverse(col) for col in Hxe.T])
    Dr = apply_inverse(rx)
    r = U.shape[1]
    small = np.empty((r + Hee.shape[0],) * 2)
    small[:r, :r] = U.T @ DU + C_inv
    small[:r, r:] = U.T @ DH
    small[r:, :r] = DH.T @ U
    small[r:, r:] = Hxe.T @ DH - Hee
    small_rhs = np.concatenate((U.T @ Dr, Hxe.T @ Dr - re))
    solution = _solve(small, small_rhs)
    w, de = solution[:r], solution[r:]
    dx = Dr - DU @ w - DH @ de
    return np.concatenate((dx, de))


def barrier_solve(
    program: BarrierProgram, y, weight: float, gap: float, *, factor=20.0, newton_tol=1e-9
):
    """Path-following barrier method from the strictly feasible ``y`` at ``weight``
    (= 1/mu) until ``m / weight <= gap``: (y, weight, Newton steps)."""
    steps = 0
    while True:
        y, used = centre(program, y, weight, newton_tol)
        steps += used
        if program.n_constraints / weight <= gap:
            return y, weight, steps
        weight *= factor


def centre(program: BarrierProgram, y, weight: float, tol: float, max_steps=_MAX_NEWTON):
    """Damped Newton on weight * f0 + barrier (Boyd and Vandenberghe, Alg. 9.5)."""
    for step in range(1, max_steps + 1):
        value, grad, direction = program.newton(y, weight)
        slope = grad @ direction
        if -slope / 2.0 <= tol:
            return y, step
        size = _step_to_bounds(y[: program.nz], direction[: program.nz])
        while size > 1e-12:
            trial = y + size * direction
            if program.value(trial, weight) <= value + 0.25 * size * slope:
                break
            size *= 0.5
        else:
            return y, step
        y = trial
    return y, max_steps


def _step_to_bounds(z, dz) -> float:
    """The largest step <= 1 that keeps 1 % of every amplitude (x > 0 stays interior)."""
    shrinking = dz < 0
    if not np.any(shrinking):
        return 1.0
    return float(min(1.0, 0.99 * np.min(-z[shrinking] / dz[shrinking])))


def strictly_feasible(snapshot: MIMOSnapshot, judged, z: np.ndarray, margin: float) -> bool:
    """The true constraints hold with the margin and every free amplitude is > 0: a
    strictly feasible start for the surrogates (which are tight there)."""
    return bool(
        np.all(z > 0)
        and np.all(judged.se > snapshot.R_th * (1.0 + margin))
        and np.all(judged.crb * (1.0 + margin) < snapshot.crb_max)
        and judged.transmit_power < snapshot.P_max
    )


def _warm(program: BarrierProgram, z, extra):
    """(z, extra) if strictly feasible for ``program``, else its own start at z."""
    if extra is not None:
        y = np.concatenate((z, extra))
        if np.isfinite(program.value(y, 1.0)):
            return y
    return program.start(z)


def phase1(snapshot, constants, surrogate, point, omega, *, rounds, margin, evaluate):
    """Feasibility restoration (spec 5.4) by barrier solves of the phase-I program, one
    per linearisation, from barrier weight m (gap about 1) with centring to 1e-5; a
    round ends early once its tau is > 0 (then the point is strictly feasible on the
    true model). Returns (point, judged, rounds, status)."""
    z, best_tau = surrogate.to_z(point), -np.inf
    judged = evaluate(snapshot, point, omega, constants)
    for round_ in range(1, rounds + 1):
        surrogate.linearise(point)
        program = BarrierProgram(surrogate, phase1=True, margin=margin)
        y, weight = program.start(z), float(program.n_constraints)  # barrier gap ~1
        while True:
            y, _ = centre(program, y, weight, 1e-5)
            if y[-1] > 0 or program.n_constraints / weight <= 1e-7:
                break
            weight *= 20.0
        z, tau = y[: program.nz], y[-1]
        point = surrogate.allocation(z)
        judged = evaluate(snapshot, point, omega, constants)
        if strictly_feasible(snapshot, judged, z, margin):
            return point, judged, round_, "feasible"
        if tau < 0 and tau <= best_tau + 1e-4 * max(1.0, abs(best_tau)):
            return point, judged, round_, "infeasible"  # tau stopped rising below 0
        best_tau = max(best_tau, tau)
    return point, judged, rounds, "infeasible"
