"""Phase I of the fast method: a barrier method on the true constraints of (26).

The Dinkelbach loop and the direct method of :mod:`optimizers.mimo.direct` need a strictly
feasible start. Where the equal split is not one, this module finds one by maximising the
least relative margin of (26b)-(26d) (``docs/mimo_model.md`` section 5.4) over the free
amplitudes z and a margin variable tau, with the exact functions and derivatives of
:class:`~optimizers.mimo.direct.ExactModel`:

    max tau  s.t.  R_k(x) / (R_th,k (1+m)) - 1 >= tau,   eps_i / (CRB_i(x) (1+m)) - 1 >= tau,
                   P_T(x) < P_max,   z > 0,                                   x = E z,

by the same primal-dual barrier Newton steps (:func:`~optimizers.mimo.direct.centre`) on
``-t tau - sum log(c_j - tau) - log((P_max - P_T) / P_max) - sum log z``. The start is
any interior amplitude vector with ``P_T < P_max`` (the equal split at P_max / 2) and
``tau_0 = min_j c_j - 1``. It stops at the first iterate with ``tau > 0``: every margin is
then positive, a strictly feasible start for the main path. It reports ``infeasible``
when a centred iterate has ``tau + m_c / t < 0``: for a convex problem ``m_c / t`` bounds
the gap to the best tau, so no better margin is within reach of the path (for the
nonconvex (26) a local statement, as the SCA phase I's was), when a whole stage at the
full power budget closed less than 5 % of tau's gap to 0 (:func:`_stalled`), or after
``max_steps`` Newton steps. This replaces the SCA phase I (one barrier solve per linearisation,
hundreds of rounds at R_th = 8 bps/Hz) by a single barrier path.
"""

from __future__ import annotations

import numpy as np

from optimizers.mimo.direct import BarrierProblem, ExactModel, centre, curvature

_STAGE_STEPS = 40  #: Newton steps per barrier stage at most
_STALL_FRACTION = 0.05  #: a stage at the full budget closing less of tau's gap to 0
_FULL_BUDGET = 1e-6  #: relative power slack below which the budget is spent


def _stalled(state, tau_before: float) -> bool:
    """A whole stage spent at the full budget (power slack below ``_FULL_BUDGET``) closed
    less than ``_STALL_FRACTION`` of the least margin's gap to 0: the margins are out of
    the budget's reach. Measured on default-preset MIMOISAC-v0 frames (random actions,
    and budgets 1.1-1.8x the CRB power bound, both schemes): every one of 230 runs that
    ended infeasible had such a stage below 2 %, and the 25 runs that reached a feasible
    point after a full-budget stage closed at least 25 % of the gap in each."""
    gain = state["tau"] - tau_before
    return state["p"] < _FULL_BUDGET and gain < _STALL_FRACTION * -tau_before


class PhaseOneProblem(BarrierProblem):
    """The phase-I barrier function in y = (z, tau) (module docstring)."""

    def __init__(self, model: ExactModel, margin: float):
        super().__init__(model, margin, 1.0)
        self.R_low = np.broadcast_to(self.R_low, (model.K,))  # one floor or one per user
        self.crb_scale = model.crb_max / self.crb_low  # c_i = crb_scale_i / CRB_i - 1

    def margins(self, z):
        """(values, relative margins c of (26b)-(26d), power slack, CRB info) at z, or
        None where z is not interior, P_T >= P_max or the FIM is not positive definite."""
        if z.min() <= 0:
            return None
        model = self.model
        x = model.full(z)
        power = model.power(x)
        power_slack = (self.P_max - power) / self.P_max
        if power_slack <= 0:
            return None
        v = model.values(x, power)
        crb_info = model.inverse_crb(v["F"])
        if crb_info is None:
            return None
        c = np.concatenate((v["rate"] / self.R_low - 1.0, self.crb_scale * crb_info[0] - 1.0))
        return v, c, power_slack, crb_info

    def start(self, z):
        """The state at z with tau one below the least margin (every slack >= 1)."""
        found = self.margins(z)
        return None if found is None else self.state(np.append(z, found[1].min() - 1.0))

    def state(self, y):
        z, tau = y[:-1], y[-1]
        found = self.margins(z)
        if found is None:
            return None
        v, c, power_slack, crb_info = found
        if (c - tau).min() <= 0:
            return None
        return dict(y=y, z=z, tau=tau, v=v, crb=crb_info, margins=c, p=power_slack)

    def merit(self, state, t) -> float:
        if state is None:
            return np.inf
        barrier = (
            np.log(state["margins"] - state["tau"]).sum()
            + np.log(state["p"])
            + np.log(state["z"]).sum()
        )
        return -t * state["tau"] - barrier

    @staticmethod
    def slacks(state):
        return np.append(state["margins"] - state["tau"], state["p"])

    def slack_change(self, jacobian, direction):
        change = jacobian @ self.model.full(direction[:-1])
        change[:-1] -= direction[-1]  # the K + 2 margins move with -tau
        return change

    def newton(self, state, t, dual):
        """(gradient in (x, tau), Hessian parts, Jacobian of the margins and power slack
        in x); primal-dual curvature as in :meth:`BarrierProblem.newton`."""
        model, v = self.model, state["v"]
        lam, slack = dual[0], self.slacks(state)
        K = model.K
        d_T, d_psi, G = model.rate_derivatives(v)
        grad_crb, crb_blocks, factors = model.crb_derivatives(v, state["crb"])
        grad_power = model.power_gradient(v)
        jacobian = np.vstack(
            (G / self.R_low[:, None], self.crb_scale[:, None] * grad_crb, -grad_power / self.P_max)
        )
        gradient = (-jacobian.T @ (1.0 / slack), -t + (1.0 / slack[:-1]).sum())
        derivatives = (d_T, d_psi, grad_crb, crb_blocks, factors)
        blocks, columns, weights = curvature(
            model, v, state["crb"][0], derivatives,
            -lam[:K] / self.R_low, -self.crb_scale * lam[K : K + 2], lam[-1] / self.P_max,
        )  # fmt: skip
        columns = np.column_stack((jacobian.T, columns))
        weights = np.concatenate((lam / slack, weights))
        border = (jacobian[:-1], (lam / slack)[:-1])  # the margins' outer products with tau
        return gradient, (blocks, columns, weights, border, dual[1]), jacobian

    def reduce_gradient(self, z, gradient):
        return np.append(self.model.reduce_columns(gradient[0]) - 1.0 / z, gradient[1])

    def hessian(self, z, parts):
        """The z-block as in the main problem, bordered by tau: each margin's slack
        ``c_j - tau`` has gradient (E^T dc_j, -1)."""
        blocks, columns, weights, border, dual_z = parts
        inner = super().hessian(z, (blocks, columns, weights, None, dual_z))
        rows, row_weights = border
        cross = -self.model.reduce_columns(rows.T) @ row_weights
        return np.block([[inner, cross[:, None]], [cross[None, :], row_weights.sum()]])


def restore_feasibility(model: ExactModel, z, *, margin: float, max_steps: int):
    """Phase I from the amplitudes z (or the equal split at P_max / 2 where z is not
    interior): (z, status, Newton steps) with status "feasible" (strictly, with the
    margin) or "infeasible" (module docstring)."""
    problem = PhaseOneProblem(model, margin)
    state = problem.start(z)
    if state is None:  # not interior: the equal split at P_max / 2 (spec 5.4, step 1)
        unit = np.ones(model.nz)
        state = problem.start(
            unit * np.sqrt(0.5 * problem.P_max / model.values(model.full(unit))["power"])
        )
    if state is None:
        return z, "infeasible", 0  # no positive definite FIM even at the equal split
    t, steps, dual = float(problem.n_constraints), 0, None

    def feasible(state) -> bool:
        return state["tau"] > 0

    while steps < max_steps and not feasible(state):
        budget, tau = min(_STAGE_STEPS, max_steps - steps), state["tau"]
        state, dual, used = centre(problem, state, t, dual, max_steps=budget, stop=feasible)
        steps += used
        if feasible(state):
            break
        centred = used < budget  # converged (or no further descent) within the stage
        if centred and state["tau"] + problem.n_constraints / t < 0:
            break  # centred below 0 by more than the barrier gap
        if not centred and _stalled(state, tau):
            break
        t *= 10.0
    return state["z"], ("feasible" if feasible(state) else "infeasible"), steps
