"""True model of the mMIMO-OFDM ISAC base station: powers, SE, CRB, energy efficiency.

Equation numbers are the paper's, written out in ``docs/mimo_model.md``
(the spec): precoders (1), (8)-(10); transmit power (11); total power (12); SINR and SE
(15)-(16); CRB (18)-(25), Theorem 1; energy efficiencies (14), (17); problem (26).

The allocation is held in the spec's amplitude variables ``a = sqrt(p rho^c)``, ``b =
sqrt(p rho^s)`` (N, K): the stream of user k on subcarrier n is ``s_{n,k} = a_{n,k}
w_{n,k} + b_{n,k} f_n`` (the shared-stream precoder (1)-(2)).

:func:`evaluate` is the one judge of every solver. It computes the SINRs from the
effective channels ``h_{n,k}^H s_{n,j}``, the power from ``||s_{n,k}||^2`` and the CRB from
Theorem 1's six functions of ``R_n = sum_k s_{n,k} s_{n,k}^H``, so it shares no algebra
with the closed forms the optimizer uses (:func:`sinr_terms` for (28)-(29), the
per-stream 4x4 forms of :class:`StreamConstants` for the FIM); the tests compare them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isac_gym.mimo.scenario import MIMOSnapshot

FEASIBILITY_RTOL = 1e-6  #: relative tolerance of every constraint check

CONSTRAINTS = ("se", "crb_theta", "crb_phi", "power")  #: (26b), (26c), (26d), (26e)


@dataclass(frozen=True, eq=False)
class MIMOAllocation:
    """Per-stream amplitudes: ``a`` on the ZF beam w_{n,k}, ``b`` on the sensing beam f_n.

    Both (N, K), >= 0. ``p = a^2 + b^2`` and ``rho^c = a^2 / p``, ``rho^s = b^2 / p``
    are the paper's variables (26f)-(26g).
    """

    a: np.ndarray
    b: np.ndarray

    @classmethod
    def from_power(cls, p, rho_c) -> MIMOAllocation:
        """From the paper's variables: stream powers p and communication fractions rho^c."""
        p = np.asarray(p, dtype=float)
        rho_c = np.asarray(rho_c, dtype=float)
        return cls(a=np.sqrt(p * rho_c), b=np.sqrt(p * (1.0 - rho_c)))

    @property
    def power(self) -> np.ndarray:
        """p_{n,k} = a^2 + b^2 (the diagonal of P_n in (2))."""
        return self.a**2 + self.b**2

    @property
    def rho_c(self) -> np.ndarray:
        """rho^c_{n,k} = a^2 / p (1/2 for a silent stream)."""
        p = self.power
        return np.divide(self.a**2, p, out=np.full_like(p, 0.5), where=p > 0)

    def check(self, snapshot: MIMOSnapshot) -> None:
        """Raise ``ValueError`` naming the field whose shape or values are wrong."""
        shape = (snapshot.N, snapshot.K)
        for name in ("a", "b"):
            value = np.asarray(getattr(self, name))
            if value.shape != shape:
                raise ValueError(
                    f"MIMOAllocation.{name} must have shape {shape}, got {value.shape}"
                )
            if not np.all(np.isfinite(value)) or np.any(value < 0):
                raise ValueError(f"MIMOAllocation.{name} must be finite and >= 0")


@dataclass(frozen=True, eq=False)
class StreamConstants:
    """Constants of every stream with respect to the allocation (Theorem 1).

    ``W`` (N, N_t, K): unit-norm ZF precoders (8); ``zeta`` (N, K): their gains
    ``h_{n,k}^H w_{n,k}``; ``f`` (N, N_t): sensing precoder (9); ``g = h^H f`` and
    ``eps = Re(w^H f)`` (N, K), eq. (10); ``fim_forms`` (N, K, 4, 4, 2, 2): the per-stream
    forms ``(2L / sigma_s^2) Q^{ij}_{n,k}`` of the FIM, so that ``F_ij = sum_{n,k} u^T
    fim_forms[n, k, i, j] u`` with ``u = (a_{n,k}, b_{n,k})`` (spec 3.4).
    """

    W: np.ndarray
    zeta: np.ndarray
    f: np.ndarray
    g: np.ndarray
    eps: np.ndarray
    fim_forms: np.ndarray


def stream_constants(snapshot: MIMOSnapshot) -> StreamConstants:
    """ZF and sensing precoders (Lemma 1, eqs. (8)-(10)) and the per-stream FIM forms."""
    H = snapshot.H
    gram_inverse = np.linalg.inv(np.swapaxes(H, 1, 2).conj() @ H)  # (H^H H)^{-1}, (N, K, K)
    unnormalised = H @ gram_inverse  # H (H^H H)^{-1}
    zeta = 1.0 / np.sqrt(np.diagonal(gram_inverse, axis1=1, axis2=2).real)  # (8)
    W = unnormalised * zeta[:, None, :]
    a = snapshot.steering
    if snapshot.sensing_precoder == "matched":
        f = a / np.sqrt(snapshot.N_t)  # (9)
    else:  # a_n with the users' channel space projected out: g = eps = 0
        residual = a - (unnormalised @ (np.swapaxes(H, 1, 2).conj() @ a[:, :, None]))[:, :, 0]
        f = residual / np.linalg.norm(residual, axis=1, keepdims=True)
    g = np.einsum("nmk,nm->nk", H.conj(), f)  # h^H f, (10)
    eps = np.einsum("nmk,nm->nk", W.conj(), f).real  # Re(w^H f), (10)
    return StreamConstants(W=W, zeta=zeta, f=f, g=g, eps=eps, fim_forms=_fim_forms(snapshot, W, f))


def _fim_forms(snapshot: MIMOSnapshot, W: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``(2L / sigma_s^2) sym Re{S^H D_i^H D_j S}`` per stream, S = [w_{n,k}, f_n] (spec 3.4).

    ``D = (alpha G_theta', alpha G_phi', G, j G)`` with ``G = b a^H`` (b = a: co-located
    arrays) and ``G' x = b' (a^H x) + b (a'^H x)``; every ``D_i x`` is a combination of
    ``a``, ``a_theta'`` and ``a_phi'``.
    """
    a, alpha = snapshot.steering, snapshot.alpha
    da = 1j * np.stack((snapshot.d_theta, snapshot.d_phi), axis=1) * a[:, None, :]  # (N, 2, N_t)
    S = np.concatenate((W, np.broadcast_to(f[:, :, None], W.shape)), axis=2)  # (N, N_t, 2K)
    s0 = a.conj()[:, None, :] @ S  # a^H x, (N, 1, 2K)
    sd = da.conj() @ S  # a'^H x, (N, 2, 2K)
    # D_i x for i = theta, phi (alpha G' x), G x, j G x: (N, 4, N_t, 2K)
    Gx = a[:, :, None] * s0  # (N, N_t, 2K)
    dGx = da[:, :, :, None] * s0[:, None] + a[:, None, :, None] * sd[:, :, None, :]
    Dx = np.concatenate((alpha * dGx, Gx[:, None], 1j * Gx[:, None]), axis=1)
    K = W.shape[2]
    Dx = Dx.reshape(*Dx.shape[:3], 2, K).transpose(0, 4, 1, 3, 2)  # (N, K, 4, 2, N_t)
    M = np.einsum("nkipm,nkjqm->nkijpq", Dx.conj(), Dx).real
    return (snapshot.L / snapshot.echo_noise) * (M + np.swapaxes(M, 4, 5))  # 2L/s2 * sym


def streams(constants: StreamConstants, allocation: MIMOAllocation) -> np.ndarray:
    """s_{n,k} = a_{n,k} w_{n,k} + b_{n,k} f_n, the columns of W_n P_n^{1/2}: (N, N_t, K)."""
    return (
        allocation.a[:, None, :] * constants.W + allocation.b[:, None, :] * constants.f[:, :, None]
    )


def transmit_power_closed_form(constants: StreamConstants, allocation: MIMOAllocation) -> float:
    """Lemma 2, eq. (11): ``P_T = sum_{n,k} a^2 + b^2 + 2 eps a b`` [W]."""
    a, b = allocation.a, allocation.b
    return float(np.sum(a * a + b * b + 2.0 * constants.eps * a * b))


def equal_split(snapshot, constants: StreamConstants, power: float) -> MIMOAllocation:
    """a = b on every stream, scaled to transmit power ``power`` (spec 5.4, step 1)."""
    unit = np.ones((snapshot.N, snapshot.K))
    scale = np.sqrt(power / transmit_power_closed_form(constants, MIMOAllocation(unit, unit)))
    return MIMOAllocation(a=scale * unit, b=scale * unit)


def sinr_terms(constants: StreamConstants, allocation: MIMOAllocation, noise: float):
    """(chi, psi) of (28)-(29), each (N, K): gamma = |chi|^2 / psi, eq. (15).

    ``chi = a zeta + b g`` (own stream through the ZF and the sensing beam), ``psi =
    sigma^2 + |g|^2 sum_{j != k} b_j^2`` (the others' symbols leaking through f_n).
    """
    a, b, g = allocation.a, allocation.b, constants.g
    chi = a * constants.zeta + b * g
    b2 = b * b
    psi = noise + (g * g.conj()).real * (b2.sum(axis=1, keepdims=True) - b2)
    return chi, psi


def fisher_information(constants: StreamConstants, allocation: MIMOAllocation) -> np.ndarray:
    """The 4x4 FIM of (theta, phi, Re alpha, Im alpha) from the per-stream forms (spec 3.4)."""
    u = np.stack((allocation.a, allocation.b), axis=-1)  # (N, K, 2)
    return np.einsum("nkijpq,nkp,nkq->ij", constants.fim_forms, u, u)


def crb_from_fim(F: np.ndarray) -> np.ndarray:
    """(CRB_theta, CRB_phi) = ([F^-1]_11, [F^-1]_22), eq. (19), inf where F is singular.

    The angle and amplitude blocks differ by many orders of magnitude, so F is inverted
    after Jacobi scaling (``D F D``, ``D = diag(F)^{-1/2}``), which leaves the CRB exact.
    """
    d = np.sqrt(np.diagonal(F, axis1=-2, axis2=-1))
    if not np.all(d > 0):
        return np.full(2, np.inf)
    scaled = F / d[..., :, None] / d[..., None, :]
    try:
        inverse = np.linalg.inv(scaled)
    except np.linalg.LinAlgError:
        return np.full(2, np.inf)
    crb = np.diagonal(inverse)[:2] / d[:2] ** 2
    return np.where(crb > 0, crb, np.inf)


def crb_theorem1(snapshot: MIMOSnapshot, stream_vectors: np.ndarray) -> np.ndarray:
    """(CRB_theta, CRB_phi) by Theorem 1: the six functions (20)-(25) and the Schur
    complement of the alpha block (C.1), with ``R_n = sum_k s_{n,k} s_{n,k}^H``.

    With ``q_uv = u^H R_n v`` for u, v in {a, a_theta', a_phi'} and the receive constants
    ``B_0 = N_r``, ``B_x = ||b_x'||^2``, ``B_thetaphi = b_phi'^H b_theta'``, ``c_x = b^H b_x'``
    (spec 3.4, eqs. (18)-(19)).
    """
    a, d = snapshot.steering, np.stack((snapshot.d_theta, snapshot.d_phi), axis=1)  # (N, 2, N_t)
    basis = np.concatenate((a[:, None, :], 1j * d * a[:, None, :]), axis=1)  # a, a_th', a_ph'
    Z = basis.conj() @ stream_vectors  # (N, 3, K): u^H s_k
    q = Z @ np.swapaxes(Z, 1, 2).conj()  # (N, 3, 3): q_uv = u^H R_n v
    B0 = snapshot.N_t
    Bt, Bp = (d[:, 0] ** 2).sum(axis=1), (d[:, 1] ** 2).sum(axis=1)
    Btp = (d[:, 0] * d[:, 1]).sum(axis=1)
    ct, cp = 1j * d[:, 0].sum(axis=1), 1j * d[:, 1].sum(axis=1)
    qaa, qat, qap = q[:, 0, 0].real, q[:, 0, 1], q[:, 0, 2]
    qtt, qpp, qtp, qta = q[:, 1, 1].real, q[:, 2, 2].real, q[:, 1, 2], q[:, 1, 0]
    T_tt = np.sum(Bt * qaa + B0 * qtt + 2.0 * (ct * qat).real)  # (20)
    T_pp = np.sum(Bp * qaa + B0 * qpp + 2.0 * (cp * qap).real)  # (21)
    T_tp = np.sum((Btp * qaa + ct * qap + cp.conj() * qta + B0 * qtp).real)  # (22)
    z_t = np.sum(B0 * qat + ct.conj() * qaa)  # (23)
    z_p = np.sum(B0 * qap + cp.conj() * qaa)  # (24)
    T_aa = np.sum(B0 * qaa)  # (25)
    if not T_aa > 0:
        return np.full(2, np.inf)
    c0 = 2.0 * snapshot.L * abs(snapshot.alpha) ** 2 / snapshot.echo_noise
    J_tt = c0 * (T_tt - abs(z_t) ** 2 / T_aa)
    J_pp = c0 * (T_pp - abs(z_p) ** 2 / T_aa)
    J_tp = c0 * (T_tp - (z_t * z_p.conj()).real / T_aa)
    det = J_tt * J_pp - J_tp**2
    if not det > 0:
        return np.full(2, np.inf)
    return np.array([J_pp / det, J_tt / det])  # (19)


@dataclass(frozen=True, eq=False)
class MIMOEvaluation:
    """Every quantity of the true model for one allocation."""

    sinr: np.ndarray  #: (N, K) gamma_{n,k}, eq. (15)
    se: np.ndarray  #: (K,) R_k [bps/Hz], eq. (16)
    sum_se: float  #: R = sum_k R_k [bps/Hz]
    transmit_power: float  #: P_T [W], eq. (11)
    total_power: float  #: P = P_T / eta + P_c + xi R [W], eq. (12)
    crb: np.ndarray  #: (2,) (CRB_theta, CRB_phi) [rad^2], eq. (19)
    ee_comm: float  #: EE_c = R / P [bps/Hz/W], eq. (14)
    ee_sense: float  #: EE_s = (1/CRB_theta + 1/CRB_phi) / P [1/(rad^2 W)], eq. (17)
    ee: float  #: (1 - omega) EE_c + omega EE_s, the objective (26a)
    omega: float  #: the weight the objective was computed with
    checks: dict  #: constraint name -> bool array ((K,) for "se", () otherwise)
    feasible: bool  #: every constraint of (26) holds

    def violations(self) -> list[str]:
        """Names of the violated constraints (CONSTRAINTS order)."""
        return [name for name in CONSTRAINTS if not np.all(self.checks[name])]


def check_omega(omega) -> float:
    """Validate the trade-off weight omega of (26a): a number in [0, 1]."""
    try:
        value = float(omega)
    except (TypeError, ValueError):
        value = np.nan
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"omega must be a number in [0, 1], got {omega!r}")
    return value


def evaluate(
    snapshot: MIMOSnapshot,
    allocation: MIMOAllocation,
    omega: float,
    constants: StreamConstants | None = None,
) -> MIMOEvaluation:
    """Evaluate an allocation on the true model: (11)-(19), (26). ``constants`` (the
    precoders of :func:`stream_constants`) are recomputed when not given."""
    allocation.check(snapshot)
    omega = check_omega(omega)
    if constants is None:
        constants = stream_constants(snapshot)
    s = streams(constants, allocation)
    effective = np.swapaxes(snapshot.H, 1, 2).conj() @ s  # (N, K, K): h_{n,k}^H s_{n,j}
    power = (effective * effective.conj()).real
    signal = np.diagonal(power, axis1=1, axis2=2)
    interference = power.sum(axis=2) - signal
    sinr = signal / (snapshot.noise + interference)  # (15)
    se = np.log2(1.0 + sinr).mean(axis=0)  # (16), 1/N average
    sum_se = float(se.sum())
    transmit_power = float(np.sum((s * s.conj()).real))  # sum_n tr(W_n P_n W_n^H), (11)
    total_power = transmit_power / snapshot.eta + snapshot.P_c + snapshot.xi * sum_se  # (12)
    crb = crb_theorem1(snapshot, s)
    inverse_crb = float(np.sum(1.0 / crb))
    ee_comm = sum_se / total_power  # (14)
    ee_sense = inverse_crb / total_power  # (17)
    tol = 1.0 + FEASIBILITY_RTOL
    checks = {
        "se": se * tol >= snapshot.R_th,  # (26b)
        "crb_theta": np.bool_(crb[0] <= snapshot.crb_max[0] * tol),  # (26c)
        "crb_phi": np.bool_(crb[1] <= snapshot.crb_max[1] * tol),  # (26d)
        "power": np.bool_(transmit_power <= snapshot.P_max * tol),  # (26e)
    }
    return MIMOEvaluation(
        sinr=sinr,
        se=se,
        sum_se=sum_se,
        transmit_power=transmit_power,
        total_power=total_power,
        crb=crb,
        ee_comm=ee_comm,
        ee_sense=ee_sense,
        ee=(1.0 - omega) * ee_comm + omega * ee_sense,
        omega=omega,
        checks=checks,
        feasible=bool(all(np.all(v) for v in checks.values())),
    )
