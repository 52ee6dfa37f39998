"""A cheap proof that a frame is infeasible: the least transmit power the CRB ceilings need.

Phase I (:mod:`optimizers.mimo.phase_one`) is a local method: on a frame whose budget
cannot meet the sensing ceilings it runs its whole step budget before it gives up
(tens to hundreds of Newton steps, from every start). On MIMOISAC-v0 under exploring
actions most infeasible frames are simply too poor in power for the CRB ceilings, and
that has a closed-form certificate (``docs/mimo_model.md`` section 5.8).

For angle i (theta or phi), ``1 / CRB_i = 1 / [F^-1]_ii`` (19) is the Schur complement of
the FIM F (spec 3.4), so for every weight vector w with ``w_i = 1``

    1 / CRB_i = min_{v: v_i = 1} v^T F v  <=  w^T F w = sum_{n,k} u_nk^T Q_nk(w) u_nk,

with ``Q_nk(w) = sum_{j,l} w_j w_l Q^{jl}_nk`` the stream's 2x2 form (positive
semidefinite: ``w^T F_nk w >= 0`` for every stream's own FIM) and ``u_nk = (a, b)``. The
power (11) is ``P_T = sum u_nk^T P_nk u_nk`` with ``P_nk = [[1, eps], [eps, 1]]``. So
``w^T F w <= Lambda_i(w) P_T`` with ``Lambda_i(w)`` the largest generalised eigenvalue of
``(Q_nk(w), P_nk)`` over all streams, and a frame meets its ceiling ``CRB_i <= c_i``
(``crb_max``, (26c)-(26d)) only if

    P_T >= 1 / (c_i Lambda_i(w)).

Any w gives a valid bound; the one that is exact at a reference allocation u_ref,
``w = F_ref^-1 e_i / [F_ref^-1]_ii`` (the minimiser of the Schur complement there), gives
a tight one: on MIMOISAC-v0 frames under random actions it certifies 52 of the 58
infeasible frames of 300 (BENCHMARKS.md), and the bound never exceeded the budget of a
frame the solver found feasible.
"""

from __future__ import annotations

import numpy as np

from isac_gym.mimo import MIMOAllocation, MIMOSnapshot, StreamConstants
from optimizers.mimo.direct import ExactModel

#: the certificate fires only below this fraction of the bound (round-off in Lambda)
SAFETY = 1.0 - 1e-6


def crb_power_bound(snapshot: MIMOSnapshot, constants: StreamConstants, references=()) -> float:
    """The least P_T [W] with which both CRB ceilings (26c)-(26d) can be met: the largest
    of the module docstring's bounds over the angles and over the weight vectors exact
    at the equal split and at each allocation in ``references``. 0 where no reference
    has a nonsingular FIM."""
    unit = np.ones((snapshot.N, snapshot.K))
    bound = 0.0
    for reference in (MIMOAllocation(a=unit, b=unit), *references):
        weights = _schur_weights(constants.fim_forms, reference)
        if weights is None:
            continue
        for angle, w in enumerate(weights):
            form = np.einsum("j,l,nkjlpq->nkpq", w, w, constants.fim_forms)
            largest = float(np.max(_pencil_eigenvalue(form, constants.eps)))
            if largest > 0:
                bound = max(bound, 1.0 / (snapshot.crb_max[angle] * largest))
    return bound


def certified_infeasible(snapshot: MIMOSnapshot, bound: float) -> bool:
    """True when the frame's budget P_max is provably below what the ceilings need."""
    return snapshot.P_max < SAFETY * bound


def _schur_weights(fim_forms, reference: MIMOAllocation):
    """(2, 4): for theta and phi, ``F^-1 e_i / [F^-1]_ii`` at ``reference`` (from the
    Jacobi-scaled inverse of ``ExactModel.inverse_crb``), or None if F is singular there."""
    u = np.stack((reference.a, reference.b), axis=-1)
    found = ExactModel.inverse_crb(np.einsum("nkijpq,nkp,nkq->ij", fim_forms, u, u))
    if found is None:
        return None
    _, inverse, d = found
    columns = (d[:, None] * inverse[:, :2]).T  # (F^-1 e_i) / d_i for i = theta, phi
    pivots = np.diagonal(inverse)[:2] * d[:2]  # [F^-1]_ii / d_i, positive there
    return columns / pivots[:, None]


def _pencil_eigenvalue(form, eps):
    """The largest eigenvalue of the 2x2 pencils ``(A, [[1, e], [e, 1]])``, elementwise:
    the root of ``(1 - e^2) x^2 - (a11 + a22 - 2 e a12) x + det A = 0``. With |e| -> 1 the
    pencil turns singular and the root grows without bound (the bound then certifies
    nothing), so ``1 - e^2`` is kept above 1e-12."""
    a11, a12, a22 = form[..., 0, 0], 0.5 * (form[..., 0, 1] + form[..., 1, 0]), form[..., 1, 1]
    quadratic = np.maximum(1.0 - eps * eps, 1e-12)
    linear = a11 + a22 - 2.0 * eps * a12
    constant = a11 * a22 - a12 * a12
    root = np.sqrt(np.maximum(linear * linear - 4.0 * quadratic * constant, 0.0))
    return (linear + root) / (2.0 * quadratic)
