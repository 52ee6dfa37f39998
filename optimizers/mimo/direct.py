"""A direct interior-point method for problem (26): barrier Newton on the true model.

The Dinkelbach-SCA loop (:mod:`optimizers.mimo.dinkelbach`) needs hundreds of convex
solves because its surrogates are first-order. This module instead applies a
log-barrier method to (26) itself (``docs/mimo_model.md`` section 5.7):

    minimise  -t Phi(x) / Phi_0 - sum_k log(R_k - R_th (1+m)) - sum_i log(eps_i / CRB_i - (1+m))
              - log((P_max - P_T) / P_max) - sum log z,           x = E z,

with ``Phi`` the weighted EE (26a), ``R_k`` the SE (16) in the SINR form (15) with
(28)-(29), ``1/CRB_i`` from the FIM of spec 3.4 (eqs. (18)-(19)), ``P_T`` of (11) and
``E`` the scheme's map from its free amplitudes z to the stream amplitudes x. Every
function and its exact gradient and Hessian are closed forms:

* ``ln(1 + gamma_{n,k}) = ln T_{n,k} - ln psi_{n,k}``, ``T = psi + |chi|^2 = 1 + |g_k|^2
  sum_j b_j^2 + zeta^2 a_k^2 + 2 zeta Re(g) a_k b_k`` and ``psi = 1 + |g_k|^2 sum_{j != k}
  b_j^2`` (noise-normalised) are quadratics in the 2K amplitudes of subcarrier n, so the
  SE Hessians are block-diagonal with one 2K x 2K block per subcarrier;
* ``1/CRB_i = 1/[F^-1]_ii``: with ``g = F^-1 e_i``, ``d(1/CRB_i) = CRB_i^-2 g^T dF g`` and
  ``d^2 = 2 CRB_i^-3 (g^T dF g)^2 - 2 CRB_i^-2 g^T dF F^-1 dF g + CRB_i^-2 g^T d^2F g``;
  F is a sum of per-stream quadratic forms, so this is a 2x2 block per stream plus a
  term of rank 4;
* ``P_T`` is a convex quadratic with a 2x2 block per stream.

The Hessian of the barrier function is therefore block-diagonal plus a low-rank part;
it is assembled densely (about 200 unknowns at the paper size) and solved by Cholesky
after Jacobi scaling, with a Levenberg shift where the nonconvex Hessian is not positive
definite. The Hessian is the primal-dual one (Forsgren, Gill and Wright, SIAM Review
2002, sec. 5): the constraints' curvature is weighted by multipliers updated by Newton
steps on ``lam_j c_j = 1`` rather than by ``1/c_j``, which keeps the steps long where an
iterate is close to a nonconvex constraint (the CRB ceilings). A backtracking line search
on the barrier function (+inf outside the feasible set) keeps every iterate strictly
inside the true feasible set with the margin m, so every iterate is a feasible
allocation; in the barrier path a trial past P_max is scaled back onto the power ball
along its ray (:meth:`BarrierProblem.onto_budget`) instead of rejected. The barrier
weight t grows by 10 per stage (20 Newton steps each, more while Phi still rises) until
the barrier gap m_c / t is 1e-6 of Phi.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.linalg.lapack

from isac_gym.mimo import MIMOAllocation, MIMOSnapshot, StreamConstants

_LN2 = np.log(2.0)
_MIN_SHIFT = 1e-4  #: the first Levenberg shift (Jacobi-scaled units)


def scheme_map(scheme: str, N: int, K: int):
    """E with x = E z in the ordering x[n, side, k] (side 0: a, 1: b); None = identity."""
    if scheme == "proposed":
        return None
    if scheme == "equal_com":  # z[n, side]: one amplitude pair per subcarrier
        return np.kron(np.eye(2 * N), np.ones((K, 1)))
    return np.kron(np.eye(N), np.vstack((np.eye(K), np.eye(K))))  # equal_cs: a = b = z[n, k]


class ExactModel:
    """Values, gradients and Hessians of the functions of (26) for one frame and scheme."""

    def __init__(self, snapshot: MIMOSnapshot, constants: StreamConstants, scheme: str, omega):
        N, K = snapshot.N, snapshot.K
        self.snapshot, self.omega, self.N, self.K = snapshot, float(omega), N, K
        sigma = np.sqrt(snapshot.noise)
        self.zeta = constants.zeta / sigma  # noise-normalised (sigma^2 -> 1)
        g = constants.g / sigma
        self.g_re, self.g2 = g.real, (g * g.conj()).real
        self.zeta2, self.cross = self.zeta**2, 2.0 * self.zeta * self.g_re  # T's a^2, ab terms
        self.eps = constants.eps
        self.Q = constants.fim_forms  # (N, K, 4, 4, 2, 2)
        self.Q_flat = np.moveaxis(self.Q, (2, 3), (0, 1)).reshape(16, -1)  # F = Q_flat (u u^T)
        # Q u g per stream as one (8, 8) product: rows (i, p), columns (j, q) of Q[n, k, i, j, p, q]
        self.Q_rows = np.ascontiguousarray(self.Q.transpose(0, 1, 2, 4, 3, 5)).reshape(N, K, 8, 8)
        self.scheme, self.E = scheme, scheme_map(scheme, N, K)
        self.nz = 2 * N * K if self.E is None else self.E.shape[1]
        # E is block-diagonal over subcarriers: its (2K, m) block maps one subcarrier
        self.E_block = None if self.E is None else self.E[: 2 * K, : self.nz // N]
        self.eye = np.eye(K, dtype=bool)
        self.crb_max = snapshot.crb_max

    # -- maps ------------------------------------------------------------------------------
    def to_z(self, point: MIMOAllocation) -> np.ndarray:
        x = np.stack((point.a, point.b), axis=1)  # (N, 2, K)
        if self.E is None:
            return x.ravel()
        if self.scheme == "equal_com":  # tie over the users, exact where already tied
            tied, axis = x, 2
        else:  # equal_cs: tie a and b
            tied, axis = np.swapaxes(x, 1, 2), 2
        same = np.ptp(tied, axis=axis) == 0
        return np.where(same, tied[..., 0], tied.mean(axis=axis)).ravel()

    def full(self, z):
        return z if self.E is None else self.E @ z

    def reduce_blocks(self, blocks):
        """Per-subcarrier (N, 2K, 2K) blocks of a matrix in x -> those of E^T (.) E."""
        return blocks if self.E is None else self.E_block.T @ blocks @ self.E_block

    def reduce_columns(self, columns):
        """E^T columns for an (2NK, ...) array (one subcarrier block at a time)."""
        if self.E is None:
            return columns
        per_subcarrier = columns.reshape(self.N, 2 * self.K, -1)
        return (self.E_block.T @ per_subcarrier).reshape(self.nz, *columns.shape[1:])

    def allocation(self, z) -> MIMOAllocation:
        x = np.maximum(self.full(z), 0.0).reshape(self.N, 2, self.K)
        return MIMOAllocation(a=x[:, 0].copy(), b=x[:, 1].copy())

    # -- values ----------------------------------------------------------------------------
    def power(self, x) -> float:
        """P_T (11) at x: a few microseconds, so a trial step beyond P_max is rejected
        before the rates and the FIM are computed."""
        x3 = x.reshape(self.N, 2, self.K)
        a, b = x3[:, 0], x3[:, 1]
        return float((a * a + b * b + 2.0 * self.eps * a * b).sum())  # method: no dispatch

    def values(self, x, power=None):
        """(R (K,), F (4, 4), P_T) at x, with the SINR terms T, psi kept for derivatives
        (``power``: P_T at x if already known)."""
        x3 = x.reshape(self.N, 2, self.K)
        a, b = x3[:, 0], x3[:, 1]
        b2 = b * b
        spread = self.g2 * b2.sum(axis=1, keepdims=True)
        psi = 1.0 + spread - self.g2 * b2  # (29)
        T = 1.0 + spread + self.zeta2 * a * a + self.cross * a * b  # psi + |chi|^2
        rate = (np.log(T) - np.log(psi)).sum(axis=0) / (self.N * _LN2)  # (15)-(16)
        u = x3.transpose(0, 2, 1)  # (N, K, 2): (a, b) per stream
        F = (self.Q_flat @ (u[..., :, None] * u[..., None, :]).ravel()).reshape(4, 4)  # 3.4
        power = self.power(x) if power is None else power
        return dict(a=a, b=b, T=T, psi=psi, rate=rate, F=F, u=u, power=power)

    @staticmethod
    def inverse_crb(F):
        """(1/CRB_theta, 1/CRB_phi), the scaled F^-1 and the scale, or None if F is not PD."""
        d = np.diagonal(F)
        if not d.min() > 0:
            return None
        d = 1.0 / np.sqrt(d)
        try:
            inverse = np.linalg.inv(F * d[:, None] * d[None, :])
        except np.linalg.LinAlgError:
            return None
        diag = np.diagonal(inverse)[:2] * d[:2] ** 2  # [F^-1]_ii, eq. (19)
        if not diag.min() > 0:
            return None
        return 1.0 / diag, inverse, d

    def objective(self, v, inv_crb):
        """Phi (26a) and its numerator and denominator (12)."""
        s = self.snapshot
        total_rate = v["rate"].sum()
        numerator = (1.0 - self.omega) * total_rate + self.omega * inv_crb.sum()
        denominator = v["power"] / s.eta + s.P_c + s.xi * total_rate  # (12)
        return numerator / denominator, numerator, denominator

    # -- derivatives -----------------------------------------------------------------------
    def rate_derivatives(self, v):
        """Per-subcarrier gradients of ln T and ln psi, (N, 2K, 2K) stacked, and the
        rate gradients dR_k/dx (K, 2NK)."""
        N, K, eye = self.N, self.K, self.eye
        a, b = v["a"], v["b"]
        own = 2.0 * self.zeta * (self.zeta * a + self.g_re * b)  # dT/da_k
        cross = 2.0 * self.zeta * self.g_re * a  # extra dT/db_k
        leak = 2.0 * self.g2[:, :, None] * b[:, None, :]  # [n, k, j]: 2 |g_k|^2 b_j
        d_T = np.zeros((N, K, 2 * K))
        d_T[:, :, :K] = own[:, :, None] * eye
        d_T[:, :, K:] = leak + cross[:, :, None] * eye
        d_psi = np.zeros((N, K, 2 * K))
        d_psi[:, :, K:] = leak * ~eye
        grad_r = d_T / v["T"][:, :, None] - d_psi / v["psi"][:, :, None]
        gradient = grad_r.transpose(1, 0, 2).reshape(K, -1) / (N * _LN2)
        return d_T, d_psi, gradient

    def rate_hessian_blocks(self, v, d_T, d_psi, weights):
        """sum_k weights_k Hess R_k as (N, 2K, 2K) blocks (exact, from T and psi)."""
        K = self.K
        w = np.broadcast_to(weights / (self.N * _LN2), v["T"].shape)
        stacked = np.concatenate((d_T, d_psi), axis=1)  # (N, 2K, 2K)
        coef = np.concatenate((-w / v["T"] ** 2, w / v["psi"] ** 2), axis=1)
        blocks = np.swapaxes(stacked * coef[..., None], 1, 2) @ stacked  # sum_m c_m s_m s_m^T
        on_T, on_psi = w / v["T"], w / v["psi"]
        stream = stream_entries(blocks, K)
        stream[:, 0, 0] += 2.0 * self.zeta2 * on_T
        cross = self.cross * on_T
        stream[:, 0, 1] += cross
        stream[:, 1, 0] += cross
        shared = (2.0 * self.g2 * (on_T - on_psi)).sum(axis=1, keepdims=True)
        stream[:, 1, 1] += shared + 2.0 * self.g2 * on_psi
        return blocks

    def crb_derivatives(self, v, crb_info):
        """For i = theta, phi: grad (1/CRB_i) (2, 2NK); the per-stream 2x2 Hessian part per
        unit 1/CRB_i^2 (2, N, K, 2, 2); the rank-4 factors V_i with the Hessian term
        -2 CRB_i^-2 V_i V_i^T (2, 2NK, 4)."""
        inv_crb, scaled_inverse, d = crb_info
        gvec = d[None, :] * scaled_inverse[:, :2].T * d[:2, None]  # F^-1 e_i, (2, 4)
        u, N, K = v["u"], self.N, self.K
        outer = (gvec[:, :, None] * gvec[:, None, :]).reshape(2, 16)
        Qg = (outer @ self.Q_flat).reshape(2, N, K, 2, 2)  # g_i^T Q_{n,k} g_i per stream
        grad = np.swapaxes((Qg @ u[..., None])[..., 0], 2, 3)  # (2, N, 2, K): g^T Q_nk g u
        grad = 2.0 * grad * (inv_crb**2)[:, None, None, None]
        gu = (gvec[:, None, None, :, None] * u[..., None, :]).reshape(2, N, K, 8, 1)
        Y = (self.Q_rows @ gu).reshape(2, N, K, 4, 2) * (2.0 * d)[:, None]  # scaled F' g
        root = np.linalg.cholesky(scaled_inverse)
        factors = (Y.transpose(0, 1, 4, 2, 3) @ root).reshape(2, -1, 4)
        return grad.reshape(2, -1), 2.0 * Qg, factors

    def power_gradient(self, v):
        a, b = v["a"], v["b"]
        return 2.0 * np.stack((a + self.eps * b, b + self.eps * a), axis=1).ravel()


def stream_entries(blocks, K):
    """The (N, 2, 2, K) writable view of the entries (p K + k, q K + k) of (N, 2K, 2K)
    subcarrier blocks: stream k's 2x2 block in the ordering x[n, side, k]."""
    s0, s1, s2 = blocks.strides
    return np.lib.stride_tricks.as_strided(
        blocks, shape=(blocks.shape[0], 2, 2, K), strides=(s0, K * s1, K * s2, s1 + s2)
    )


def add_stream_blocks(blocks, stream, K):
    """Add per-stream 2x2 blocks (N, K, 2, 2) into (N, 2K, 2K) subcarrier blocks."""
    stream_entries(blocks, K)[...] += np.moveaxis(stream, 1, 3)


def curvature(model: ExactModel, v, inv_crb, derivatives, rate_coef, crb_coef, power_coef):
    """Hessian of ``sum_k rate_coef_k R_k + sum_i crb_coef_i / CRB_i + power_coef P_T``
    as (N, 2K, 2K) per-subcarrier blocks plus a low-rank part ``columns diag(weights)
    columns^T`` (module docstring: the 1/CRB Hessian is per-stream 2x2 blocks, a rank-2
    term along its gradient and a rank-4 term)."""
    d_T, d_psi, grad_crb, crb_blocks, factors = derivatives
    blocks = model.rate_hessian_blocks(v, d_T, d_psi, rate_coef)
    stream = np.einsum("i,inkpq->nkpq", crb_coef * inv_crb**2, crb_blocks)
    stream = stream + power_coef * np.array([[2.0, 0.0], [0.0, 2.0]])  # P_T of (11)
    stream[..., 0, 1] += power_coef * 2.0 * model.eps
    stream[..., 1, 0] += power_coef * 2.0 * model.eps
    add_stream_blocks(blocks, stream, model.K)
    columns = np.column_stack((grad_crb.T, *factors))
    weights = np.concatenate((2.0 * crb_coef / inv_crb, np.repeat(-2.0 * crb_coef * inv_crb**2, 4)))
    return blocks, columns, weights


class BarrierProblem:
    """The barrier function of (26) at weight t (module docstring), in the free amplitudes."""

    def __init__(self, model: ExactModel, margin: float, phi_scale: float):
        s = model.snapshot
        self.model, self.phi_scale = model, phi_scale
        self.R_low = s.R_th * (1.0 + margin)
        self.crb_low = 1.0 + margin
        self.P_max = s.P_max
        self.n_constraints = model.nz + model.K + 3

    def state(self, z, budget_slack=None):
        """Everything at z, or None outside the (margined) feasible set. With
        ``budget_slack``, a z past the power budget is first scaled back onto it
        (:meth:`onto_budget`; the state's ``z`` is then the scaled point)."""
        if z.min() <= 0:
            return None
        model = self.model
        x = model.full(z)
        power = model.power(x)
        if budget_slack is not None and power >= self.P_max:
            z = self.onto_budget(z, budget_slack, power)
            x = model.full(z)
            power = model.power(x)
        power_slack = (self.P_max - power) / self.P_max
        if power_slack <= 0:  # checked first: the line search's usual rejection
            return None
        v = model.values(x, power)
        se_slack = v["rate"] - self.R_low
        if se_slack.min() <= 0:
            return None
        crb_info = model.inverse_crb(v["F"])
        if crb_info is None:
            return None
        crb_slack = model.crb_max * crb_info[0] - self.crb_low
        if crb_slack.min() <= 0:
            return None
        phi, _, denominator = model.objective(v, crb_info[0])
        return dict(
            y=z, z=z, x=x, v=v, crb=crb_info, phi=phi, P=denominator,
            se=se_slack, c=crb_slack, p=power_slack,
        )  # fmt: skip

    def onto_budget(self, z, slack, power=None):
        """``z``, or where a step took it past the power budget, ``z`` scaled back along
        its ray to ``P_T = P_max (1 - slack / 2)`` (``slack``: the relative power slack of
        the point the step left; P_T (11) is quadratic in the amplitudes, so the scale is
        ``sqrt(target / P_T)``). The shrink lowers the rates and raises the CRBs a little,
        so the scaled point is still judged by the model. ``power``: P_T at z if known."""
        if power is None:
            power = self.model.power(self.model.full(z))
        if power < self.P_max:
            return z
        return z * np.sqrt(self.P_max * (1.0 - 0.5 * slack) / power)

    def merit(self, state, t) -> float:
        if state is None:
            return np.inf
        barrier = (
            np.log(state["se"]).sum()
            + np.log(state["c"]).sum()
            + np.log(state["p"])
            + np.log(state["z"]).sum()
        )
        return -t * state["phi"] / self.phi_scale - barrier

    @staticmethod
    def slacks(state):
        """The nonlinear constraints' slacks c_j > 0: K SE, 2 CRB, 1 power."""
        return np.concatenate((state["se"], state["c"], [state["p"]]))

    def slack_change(self, jacobian, direction):
        """The slacks' first-order change along a step ``direction`` of the variables."""
        return jacobian @ self.model.full(direction)

    def newton(self, state, t, dual):
        """(gradient, Hessian parts, constraint Jacobian) of the barrier function at weight
        t. The gradient is the primal barrier's; the Hessian is the primal-dual one: the
        constraint curvature weighted by the multipliers ``dual`` = (lam_c (K+3,), lam_z)
        instead of 1/c (Forsgren, Gill and Wright 2002, section 5), which stays well
        conditioned when an iterate is off the central path."""
        model, s = self.model, self.model.snapshot
        v, tau, omega = state["v"], t / self.phi_scale, model.omega
        inv_crb, phi, P = state["crb"][0], state["phi"], state["P"]
        lam, slack = dual[0], self.slacks(state)
        K = model.K
        d_T, d_psi, G = model.rate_derivatives(v)
        grad_crb, crb_blocks, factors = model.crb_derivatives(v, state["crb"])
        grad_power = model.power_gradient(v)
        grad_num = (1.0 - omega) * G.sum(axis=0) + omega * grad_crb.sum(axis=0)
        grad_den = grad_power / s.eta + s.xi * G.sum(axis=0)
        grad_phi = (grad_num - phi * grad_den) / P
        jacobian = np.vstack((G, model.crb_max[:, None] * grad_crb, -grad_power / self.P_max))
        gradient = -tau * grad_phi - jacobian.T @ (1.0 / slack)
        rate_coef = -tau * ((1.0 - omega) - phi * s.xi) / P - lam[:K]
        crb_coef = -tau * omega / P - model.crb_max * lam[K : K + 2]  # on Hess(1/CRB_i)
        power_coef = tau * phi / (s.eta * P) + lam[-1] / self.P_max
        derivatives = (d_T, d_psi, grad_crb, crb_blocks, factors)
        blocks, columns, weights = curvature(
            model, v, inv_crb, derivatives, rate_coef, crb_coef, power_coef
        )
        columns = np.column_stack((jacobian.T, columns))
        weights = np.concatenate((lam / slack, weights))
        cross = (grad_den * (tau / P), grad_phi)  # the ratio's rank-2 term
        return gradient, (blocks, columns, weights, cross, dual[1]), jacobian

    def hessian(self, z, parts):
        """The (primal-dual) Hessian in z from :meth:`newton`'s parts, assembled in z
        (E^T H E block by block, never the full matrix in x)."""
        blocks, columns, weights, cross, dual_z = parts
        model = self.model
        left = columns * weights
        if cross is not None:  # the ratio's rank-2 term c0 c1^T + c1 c0^T (none in phase I)
            left = np.column_stack((left, cross[1], cross[0]))
            columns = np.column_stack((columns, *cross))
        hessian = model.reduce_columns(left) @ model.reduce_columns(columns).T
        blocks = model.reduce_blocks(blocks)
        diagonal_blocks(hessian, blocks.shape[1])[...] += blocks
        hessian.reshape(-1)[:: len(z) + 1] += dual_z / z
        return hessian

    def reduce_gradient(self, z, gradient):
        """To the free amplitudes z (x = E z), with the -sum log z term."""
        return self.model.reduce_columns(gradient) - 1.0 / z


def diagonal_blocks(matrix, m):
    """The (n / m, m, m) writable view of the diagonal m x m blocks of an (n, n) matrix."""
    s0, s1 = matrix.strides
    count = matrix.shape[0] // m
    return np.lib.stride_tricks.as_strided(
        matrix, shape=(count, m, m), strides=(m * (s0 + s1), s0, s1)
    )


def newton_direction(problem: BarrierProblem, state, t, dual, rung=0):
    """(gradient, direction, jacobian, rung): the primal-dual Newton direction, with the
    least Levenberg shift that makes the Hessian positive definite (Jacobi-scaled, since
    the amplitude bounds spread its diagonal over many decades; :func:`shifted_solve`,
    ``rung`` its first guess)."""
    gradient, parts, jacobian = problem.newton(state, t, dual)
    z = state["z"]
    gradient = problem.reduce_gradient(z, gradient)
    hessian = problem.hessian(z, parts)
    scale = 1.0 / np.sqrt(np.maximum(np.abs(np.diagonal(hessian)), 1e-300))
    scaled = hessian * scale[:, None]
    scaled *= scale[None, :]
    direction, rung = shifted_solve(scaled, scale, gradient, rung)
    return gradient, direction, jacobian, rung


def _shift_ladder(rungs=20):
    """The Levenberg shifts tried, in order: 0, then _MIN_SHIFT growing by 10."""
    shifts = [0.0]
    for _ in range(rungs - 1):
        shifts.append(max(_MIN_SHIFT, 10.0 * shifts[-1]))
    return tuple(shifts)


_SHIFTS = _shift_ladder()


def shifted_solve(scaled, scale, gradient, guess=0):
    """(direction, rung): the direction ``-H^-1 gradient`` from the Jacobi-scaled Hessian
    ``scaled`` (written in place) by Cholesky with the least Levenberg shift of
    :data:`_SHIFTS` that makes it positive definite (``rung``: its index; steepest
    descent in the scaled metric, rung ``len(_SHIFTS)``, if none does).

    ``guess``: the rung to try first (the last step's: along a path the needed shift
    changes slowly). A success there is confirmed by a failure one rung below, so the
    result is the least rung whatever the guess (positive definiteness is monotone in
    the shift); a run of steps at one large shift then costs two factorisations a step
    instead of one per rung."""
    diagonal, on_diagonal = np.diagonal(scaled).copy(), scaled.reshape(-1)[:: len(scale) + 1]

    def factor(rung):
        on_diagonal[...] = diagonal + _SHIFTS[rung]
        found, failed = scipy.linalg.lapack.dpotrf(scaled, lower=True, clean=False)
        return None if failed else found

    rung = min(guess, len(_SHIFTS) - 1)
    found = factor(rung)
    while found is None and rung + 1 < len(_SHIFTS):  # climb to the first success
        rung += 1
        found = factor(rung)
    if found is None:
        return -(scale**2) * gradient, len(_SHIFTS)
    while rung > 0:  # descend while the rung below still succeeds
        lower = factor(rung - 1)
        if lower is None:
            break
        rung, found = rung - 1, lower
    solution = scipy.linalg.lapack.dpotrs(found, -scale * gradient, lower=True)[0]
    return scale * solution, rung


def centre(
    problem: BarrierProblem, state, t, dual=None, *, tol=1e-2, max_steps=30, stop=None,
    onto_budget=False,
):  # fmt: skip
    """Damped primal-dual Newton on the barrier function at weight t, with a backtracking
    line search on the barrier function (+inf outside the feasible set):
    (state, dual, steps). ``stop(state)`` ends it early after an accepted step.

    ``onto_budget``: a trial past P_max is scaled back onto the power ball
    (:meth:`BarrierProblem.onto_budget`) instead of rejected. Where the optimum spends
    the whole budget (HoR with the paper's 25.6 dBm circuit power), the multiplier of
    (26e) lags the collapsing power slack, the Newton direction points out of the ball,
    and without it the search cut steps to sizes near 1e-3: stages crept 40 steps
    (BENCHMARKS.md, MIMO Dinkelbach). Phase I keeps plain rejection."""
    if dual is None:
        dual = (1.0 / problem.slacks(state), 1.0 / state["z"])
    rung = 0  # the Levenberg shift's rung, the next step's first guess
    for step in range(1, max_steps + 1):
        gradient, direction, jacobian, rung = newton_direction(problem, state, t, dual, rung)
        slope = gradient @ direction
        if -slope / 2.0 <= tol:
            return state, dual, step
        y, z = state["y"], state["z"]
        bounded = direction[: z.size]  # the amplitudes; a phase-I margin is free
        size = min(1.0, _to_boundary(z, bounded))
        value = problem.merit(state, t)
        scaled = dict(budget_slack=state["p"]) if onto_budget else {}  # phase I: plain
        over_budget = _never  # without onto_budget: trials past P_max are skipped
        while size > 1e-14:
            if not over_budget(size):  # a trial past P_max would be rejected anyway
                trial = problem.state(y + size * direction, **scaled)
                if problem.merit(trial, t) <= value + 1e-4 * size * slope:
                    break
                if trial is None and over_budget is _never and not onto_budget:
                    over_budget = power_ray(problem.model, z, bounded, state["p"], problem.P_max)
            size *= 0.5
        else:
            return state, dual, step
        slack_change = problem.slack_change(jacobian, direction)
        dual = (
            _dual_step(dual[0], problem.slacks(state), slack_change, size, problem.slacks(trial)),
            _dual_step(dual[1], z, bounded, size, trial["z"]),
        )
        state = trial
        if stop is not None and stop(state):
            return state, dual, step
    return state, dual, max_steps


def _never(size: float) -> bool:
    return False


def power_ray(model: ExactModel, z, step, power_slack, P_max):
    """``over_budget(s)``: whether P_T (11) at ``z + s step`` surely exceeds P_max, for a
    line search to skip trials its feasibility check would reject (most trials of a
    phase I at the full budget). Along the ray P_T is the quadratic ``P_0 + s g + s^2 h``,
    so ``P_T(s) - P_max = s (g + s h) - P_max slack``; "surely" means by more than 1e-10
    of the terms' size, far above the round-off of this and of the check's own P_T, so
    the search accepts the same step as without the test."""
    x, dx = (
        model.full(z).reshape(model.N, 2, model.K),
        model.full(step).reshape(model.N, 2, model.K),
    )
    a, b, da, db, eps = x[:, 0], x[:, 1], dx[:, 0], dx[:, 1], model.eps
    g = 2.0 * float((a * da + b * db + eps * (a * db + b * da)).sum())
    h = float((da * da + db * db + 2.0 * eps * da * db).sum())
    gap = power_slack * P_max

    def over_budget(s: float) -> bool:
        return s * (g + s * h) - gap > 1e-10 * (P_max + s * abs(g) + s * s * h)

    return over_budget


def _to_boundary(value, direction, fraction=0.99):
    """The largest step keeping ``value + step direction`` above 1 - fraction of value."""
    shrinking = direction < 0
    if not shrinking.any():
        return np.inf
    return fraction * float((-value[shrinking] / direction[shrinking]).min())


def _dual_step(lam, slack, slack_change, size, new_slack, spread=1e4):
    """Newton step on lam_j c_j = 1, then kept within [1 / (spread c_j), spread / c_j]."""
    d_lam = 1.0 / slack - lam - lam / slack * slack_change
    lam = lam + min(size, _to_boundary(lam, d_lam)) * d_lam
    return np.minimum(np.maximum(lam, 1.0 / (spread * new_slack)), spread / new_slack)


def barrier_path(
    problem: BarrierProblem, state, *, t0, gap=1e-6, growth=10.0, tol=1e-2, max_steps=20,
    rising=(10, 1e-5), cap=200,
):  # fmt: skip
    """Path following from the strictly feasible ``state``: centre at t, multiply t by
    ``growth`` until the barrier gap m / t is ``gap`` relative to Phi. A stage ends when
    centred, or after ``max_steps`` Newton steps unless Phi still rises (by more than
    ``rising[1]`` relative over the last ``rising[0]`` steps; at most ``cap`` steps): on
    the nonconvex (26) the Hessian is indefinite along long climbs, and a fixed cap
    stopped some paths mid-climb (up to 12 % below the CVXPY reference on small cells).
    Returns (state, stage-end states, Newton steps)."""
    t, steps, stages, dual = t0, 0, [], None
    t_final = problem.n_constraints / gap
    while True:
        stalled = _stalled_after(max_steps, *rising)
        state, dual, used = centre(
            problem, state, t, dual, tol=tol, max_steps=cap, stop=stalled, onto_budget=True
        )
        steps += used
        stages.append(state)
        if t >= t_final:
            return state, stages, steps
        t = min(t_final, t * growth)


def _stalled_after(steps: int, window: int, gain: float):
    """A ``centre`` stop rule: true from ``steps`` accepted steps on, once Phi has risen
    by less than ``gain`` (relative) over the last ``window`` of them."""
    phis = []

    def stalled(state) -> bool:
        phis.append(state["phi"])
        n = len(phis)
        return n >= steps and phis[-1] < phis[max(0, n - 1 - window)] * (1.0 + gain)

    return stalled


def restore_start(problem: BarrierProblem, z, constants, *, margin, max_steps, evaluate):
    """Phase I of :func:`solve_direct` from the amplitudes z: ``(z, state, steps, None)``
    with a strictly feasible state, else ``(z, None, steps, failed)`` with ``failed`` the
    solve's result, (point, judged, info) at phase I's last point."""
    from optimizers.mimo.phase_one import restore_feasibility  # builds on this module

    model = problem.model
    z, status, steps = restore_feasibility(model, z, margin=margin, max_steps=max_steps)
    state = problem.state(z) if status == "feasible" else None
    if state is not None:
        return z, state, steps, None
    point = model.allocation(z)
    info = dict(
        phase1_iterations=steps, iterations=0, newton_steps=0, ee_trace=[],
        status="infeasible" if status != "feasible" else "phase1_not_interior",
    )  # fmt: skip
    judged = evaluate(model.snapshot, point, model.omega, constants)
    return z, None, steps, (point, judged, info)


def solve_direct(
    snapshot, constants, omega, scheme, start, *, warm, phase1_rounds, margin, evaluate,
    restored_warm=False,
):  # fmt: skip
    """Phase I if needed, then the barrier path from ``start``: (point, judged, info).

    ``warm``: the start is a good point (a previous or a restricted solution); the path
    then begins at a small barrier gap (1e-3 of Phi) so that it stays in its basin. The
    start itself is returned if it is feasible and the path ends below it, so a solve
    never returns less than a feasible start. After phase I the path starts cold,
    unless ``restored_warm``: the start was a previous frame's solution, and phase I's
    point, a few steps from it, keeps its basin.
    """
    model = ExactModel(snapshot, constants, scheme, omega)
    z = model.to_z(start)
    point = model.allocation(z)
    judged = evaluate(snapshot, point, omega, constants)
    info = dict(phase1_iterations=0, iterations=0, newton_steps=0, ee_trace=[])
    problem = BarrierProblem(model, margin, 1.0)
    state = problem.state(z)
    if state is None:
        z, state, steps, failed = restore_start(
            problem, z, constants, margin=margin, max_steps=phase1_rounds, evaluate=evaluate
        )
        if failed is not None:
            return failed
        point = model.allocation(z)
        judged = evaluate(snapshot, point, omega, constants)
        info["phase1_iterations"] = steps
        warm = restored_warm
    problem.phi_scale = state["phi"]
    t0 = problem.n_constraints * (1e3 if warm else 1.0)
    final, stages, steps = barrier_path(problem, state, t0=t0)
    candidate = model.allocation(final["z"])
    result = evaluate(snapshot, candidate, omega, constants)
    info.update(
        status="converged", iterations=len(stages), newton_steps=steps,
        ee_trace=[judged.ee] + [stage["phi"] for stage in stages],
    )  # fmt: skip
    if result.feasible and not (judged.feasible and result.ee < judged.ee):
        return candidate, result, info
    info["status"] = "kept_start"  # the path ended below its (feasible) start
    return point, judged, info
