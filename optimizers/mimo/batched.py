"""Warm barrier paths of B frames at once: :func:`optimizers.mimo.solve_mimo`'s warm
start (``method="fast"``, scheme ``proposed``) with one set of array operations over a
leading frame axis, for the native ``MIMOISAC-v0`` vector env.

Each frame is set up as ``solve_mimo`` sets up a warm start: a start that is not strictly
feasible goes through phase I (frame by frame, a few Newton steps), then the frame runs
the barrier path of :func:`~optimizers.mimo.direct.barrier_path` (from ``t0 = m 1e3``
for a warm or restored start). Every frame keeps its own barrier weight, multipliers,
stage and stall rule; a round is one Newton step of every frame still on its path, and
the backtracking line search tries several halvings of every frame still searching in
one evaluation. The arithmetic per frame is the single-frame code's, operation for
operation (the same products, reductions and LAPACK calls on each frame's slice; the
first acceptable step in the single-frame order), so a frame's path, steps and result
are bit for bit those of ``solve_mimo(frame, omega, "proposed", method="fast",
warm_start=start)`` (tests/solvers/test_mimo_batched.py).

Why it pays: at the default preset a Newton step is a few hundred small numpy calls on
arrays of 48 amplitudes, so one step of many frames costs little more than one step of
one (BENCHMARKS.md, "MIMOISAC-v0 steps/s"). Frames whose phase I fails go on to
``solve_mimo``'s cold starts: the EqualCom solve frame by frame, then the proposed path
from its point inside the batch (or, where EqualCom finds no feasible point, the rest
frame by frame); frames certified infeasible
(:mod:`optimizers.mimo.certificate`) are left to its immediate report
(:func:`solve_warm_batch` returns None for them).
"""

from __future__ import annotations

import time

import numpy as np

from isac_gym.mimo import MIMOAllocation, MIMOSnapshot, evaluate, stream_constants
from optimizers.mimo.certificate import certified_infeasible, crb_power_bound
from optimizers.mimo.direct import (
    _LN2,
    BarrierProblem,
    ExactModel,
    restore_start,
    shifted_solve,
)


class FrameBatch:
    """The barrier problems (``direct.BarrierProblem``, proposed scheme) of B frames with
    equal N and K, stacked along a leading frame axis; methods take the frames ``rows``."""

    def __init__(self, problems: list[BarrierProblem]):
        models = [problem.model for problem in problems]
        self.N, self.K = models[0].N, models[0].K
        self.n = 2 * self.N * self.K
        self.n_constraints = problems[0].n_constraints
        for name in ("zeta", "g_re", "g2", "zeta2", "cross", "eps", "Q_flat", "Q_rows"):
            setattr(self, name, np.array([getattr(model, name) for model in models]))
        self.omega = np.array([model.omega for model in models])
        self.crb_max = np.array([model.crb_max for model in models])
        for name in ("eta", "P_c", "xi"):
            setattr(self, name, np.array([getattr(model.snapshot, name) for model in models]))
        self.R_low = np.array([np.broadcast_to(p.R_low, (self.K,)) for p in problems])
        self.crb_low = problems[0].crb_low
        self.P_max = np.array([problem.P_max for problem in problems])
        self.phi_scale = np.array([problem.phi_scale for problem in problems])
        self.eye = np.eye(self.K, dtype=bool)

    # -- values (ExactModel.values, inverse_crb, objective; BarrierProblem.state, merit) ---
    def values(self, Z, rows, power=None):
        N, K = self.N, self.K
        x3 = Z.reshape(-1, N, 2, K)
        a, b = x3[:, :, 0], x3[:, :, 1]
        b2 = b * b
        g2 = self.g2[rows]
        spread = g2 * b2.sum(axis=2, keepdims=True)
        psi = 1.0 + spread - g2 * b2  # (29)
        T = 1.0 + spread + self.zeta2[rows] * a * a + self.cross[rows] * a * b
        rate = (np.log(T) - np.log(psi)).sum(axis=1) / (N * _LN2)  # (15)-(16)
        u = x3.transpose(0, 1, 3, 2)  # (b, N, K, 2)
        outer = (u[..., :, None] * u[..., None, :]).reshape(len(rows), -1, 1)
        F = (self.Q_flat[rows] @ outer).reshape(-1, 4, 4)  # spec 3.4
        power = self.power(a, b, rows) if power is None else power
        return dict(a=a, b=b, T=T, psi=psi, rate=rate, F=F, u=u, power=power)

    def power(self, a, b, rows):
        """P_T (11) of each frame from its (N, K) amplitudes a, b."""
        return np.sum(a * a + b * b + 2.0 * self.eps[rows] * a * b, axis=(1, 2))

    def onto_budget(self, Z, rows, slack):
        """``BarrierProblem.onto_budget`` of each row of Z, in place (``slack``: each row's
        relative power slack before the step), the same arithmetic: (Z, each row's P_T)."""
        x3 = Z.reshape(-1, self.N, 2, self.K)
        power = self.power(x3[:, :, 0], x3[:, :, 1], rows)
        out = power >= self.P_max[rows]
        if out.any():
            target = self.P_max[rows][out] * (1.0 - 0.5 * slack[out])
            Z[out] = Z[out] * np.sqrt(target / power[out])[:, None]
            power[out] = self.power(x3[out][:, :, 0], x3[out][:, :, 1], rows[out])
        return Z, power

    def state(self, Z, rows, budget_slack=None):
        """(state, inside): the frames' values at Z (len(rows), n) and which of them lie
        strictly inside the margined feasible set (the others' entries are meaningless).
        With ``budget_slack``, rows past the power budget are first scaled back onto it
        (:meth:`onto_budget`, in place), as ``BarrierProblem.state`` does."""
        power = None
        if budget_slack is not None:
            Z, power = self.onto_budget(Z, rows, budget_slack)
        inside = Z.min(axis=1) > 0
        v = self.values(Z, rows, power)
        se = v["rate"] - self.R_low[rows]
        p = (self.P_max[rows] - v["power"]) / self.P_max[rows]
        inside &= (se.min(axis=1) > 0) & (p > 0)
        d = np.diagonal(v["F"], axis1=1, axis2=2)
        inside &= d.min(axis=1) > 0
        d = 1.0 / np.sqrt(np.where(inside[:, None], d, 1.0))
        scaled = np.where(inside[:, None, None], v["F"] * d[:, :, None] * d[:, None, :], np.eye(4))
        try:
            inverse = np.linalg.inv(scaled)
        except np.linalg.LinAlgError:  # a singular F: judged frame by frame
            inverse = np.array([_inverse_or_eye(matrix) for matrix in scaled])
            inside &= ~np.isnan(inverse[:, 0, 0])
            inverse[~inside] = np.eye(4)
        diag = np.diagonal(inverse, axis1=1, axis2=2)[:, :2] * d[:, :2] ** 2  # (19)
        inside &= diag.min(axis=1) > 0
        inv_crb = 1.0 / np.where(inside[:, None], diag, 1.0)
        c = self.crb_max[rows] * inv_crb - self.crb_low
        inside &= c.min(axis=1) > 0
        total_rate = v["rate"].sum(axis=1)
        omega = self.omega[rows]
        numerator = (1.0 - omega) * total_rate + omega * inv_crb.sum(axis=1)
        P = v["power"] / self.eta[rows] + self.P_c[rows] + self.xi[rows] * total_rate  # (12)
        state = dict(z=Z, v=v, inv_crb=inv_crb, inverse=inverse, d=d, phi=numerator / P, P=P)
        state.update(se=se, c=c, p=p)
        return state, inside

    def merit(self, state, rows, t):
        barrier = (
            np.log(state["se"]).sum(axis=1)
            + np.log(state["c"]).sum(axis=1)
            + np.log(state["p"])
            + np.log(state["z"]).sum(axis=1)
        )
        return -t * state["phi"] / self.phi_scale[rows] - barrier

    @staticmethod
    def slacks(state):
        return np.concatenate((state["se"], state["c"], state["p"][:, None]), axis=1)


def _inverse_or_eye(matrix):
    try:
        return np.linalg.inv(matrix)
    except np.linalg.LinAlgError:
        return np.full((4, 4), np.nan)


def _rate_derivatives(batch: FrameBatch, v, rows):
    """ExactModel.rate_derivatives per frame: d_T, d_psi (b, N, K, 2K), G (b, K, n)."""
    N, K, eye = batch.N, batch.K, batch.eye
    a, b = v["a"], v["b"]
    zeta, g_re, g2 = batch.zeta[rows], batch.g_re[rows], batch.g2[rows]
    own = 2.0 * zeta * (zeta * a + g_re * b)
    cross = 2.0 * zeta * g_re * a
    leak = 2.0 * g2[..., None] * b[:, :, None, :]
    d_T = np.zeros((len(rows), N, K, 2 * K))
    d_T[..., :K] = own[..., None] * eye
    d_T[..., K:] = leak + cross[..., None] * eye
    d_psi = np.zeros((len(rows), N, K, 2 * K))
    d_psi[..., K:] = leak * ~eye
    grad_r = d_T / v["T"][..., None] - d_psi / v["psi"][..., None]
    return d_T, d_psi, grad_r.transpose(0, 2, 1, 3).reshape(len(rows), K, -1) / (N * _LN2)


def _crb_derivatives(batch: FrameBatch, state, rows):
    """ExactModel.crb_derivatives per frame: grad (b, 2, n), 2x2 parts (b, 2, N, K, 2, 2),
    rank-4 factors (b, 2, n, 4)."""
    N, K, count = batch.N, batch.K, len(rows)
    d, inverse, u = state["d"], state["inverse"], state["v"]["u"]
    gvec = d[:, None, :] * np.swapaxes(inverse[:, :, :2], 1, 2) * d[:, :2, None]  # F^-1 e_i
    outer = (gvec[:, :, :, None] * gvec[:, :, None, :]).reshape(count, 2, 16)
    Qg = (outer @ batch.Q_flat[rows]).reshape(count, 2, N, K, 2, 2)
    grad = np.swapaxes((Qg @ u[:, None, ..., None])[..., 0], 3, 4)  # (b, 2, N, 2, K)
    grad = 2.0 * grad * (state["inv_crb"] ** 2)[:, :, None, None, None]
    gu = (gvec[:, :, None, None, :, None] * u[:, None, ..., None, :]).reshape(count, 2, N, K, 8, 1)
    Y = (batch.Q_rows[rows][:, None] @ gu).reshape(count, 2, N, K, 4, 2)
    Y = Y * (2.0 * d)[:, None, None, None, :, None]
    root = np.linalg.cholesky(inverse)
    factors = Y.transpose(0, 1, 2, 5, 3, 4) @ root[:, None, None, None]
    return grad.reshape(count, 2, -1), 2.0 * Qg, factors.reshape(count, 2, -1, 4)


def _curvature_blocks(batch: FrameBatch, state, rows, d_T, d_psi, rate_coef, stream):
    """direct.curvature's (b, N, 2K, 2K) subcarrier blocks: the rate Hessians
    (ExactModel.rate_hessian_blocks) plus the per-stream 2x2 blocks ``stream``."""
    N, K, v = batch.N, batch.K, state["v"]
    w = np.broadcast_to((rate_coef / (N * _LN2))[:, None, :], v["T"].shape)
    stacked = np.concatenate((d_T, d_psi), axis=2)
    coef = np.concatenate((-w / v["T"] ** 2, w / v["psi"] ** 2), axis=2)
    blocks = np.swapaxes(stacked * coef[..., None], 2, 3) @ stacked
    on_T, on_psi = w / v["T"], w / v["psi"]
    entries = _stream_entries(blocks, K)  # (b, N, 2, 2, K)
    entries[:, :, 0, 0] += 2.0 * batch.zeta2[rows] * on_T
    cross = batch.cross[rows] * on_T
    entries[:, :, 0, 1] += cross
    entries[:, :, 1, 0] += cross
    g2 = batch.g2[rows]
    shared = (2.0 * g2 * (on_T - on_psi)).sum(axis=2, keepdims=True)
    entries[:, :, 1, 1] += shared + 2.0 * g2 * on_psi
    entries[...] += np.moveaxis(stream, 2, 4)
    return blocks


def _stream_entries(blocks, K):
    """direct.stream_entries with a leading frame axis: (b, N, 2, 2, K)."""
    s0, s1, s2, s3 = blocks.strides
    shape = (*blocks.shape[:2], 2, 2, K)
    return np.lib.stride_tricks.as_strided(blocks, shape, (s0, s1, K * s2, K * s3, s2 + s3))


def newton_directions(batch: FrameBatch, state, rows, t, lam, lam_z, rungs):
    """``direct.newton_direction`` of the frames ``rows`` (barrier weights t (b,),
    multipliers lam (b, K+3) and lam_z (b, n), first-guess shift rungs (b,)):
    (gradient, direction, jacobian, rungs)."""
    N, K, count = batch.N, batch.K, len(rows)
    v, tau, omega = state["v"], t / batch.phi_scale[rows], batch.omega[rows]
    inv_crb, phi, P = state["inv_crb"], state["phi"], state["P"]
    slack = batch.slacks(state)
    d_T, d_psi, G = _rate_derivatives(batch, v, rows)
    grad_crb, crb_blocks, factors = _crb_derivatives(batch, state, rows)
    eps, eta, xi = batch.eps[rows], batch.eta[rows], batch.xi[rows]
    a, b = v["a"], v["b"]
    grad_power = 2.0 * np.stack((a + eps * b, b + eps * a), axis=2).reshape(count, -1)
    G_sum = G.sum(axis=1)
    grad_num = (1.0 - omega)[:, None] * G_sum + omega[:, None] * grad_crb.sum(axis=1)
    grad_den = grad_power / eta[:, None] + xi[:, None] * G_sum
    grad_phi = (grad_num - phi[:, None] * grad_den) / P[:, None]
    jacobian = np.concatenate(
        (
            G,
            batch.crb_max[rows][:, :, None] * grad_crb,
            (-grad_power / batch.P_max[rows][:, None])[:, None],
        ),
        axis=1,
    )
    gradient = -tau[:, None] * grad_phi - _each(jacobian, 1.0 / slack, transpose=True)
    rate_coef = (-tau * ((1.0 - omega) - phi * xi) / P)[:, None] - lam[:, :K]
    crb_coef = (-tau * omega / P)[:, None] - batch.crb_max[rows] * lam[:, K : K + 2]
    power_coef = tau * phi / (eta * P) + lam[:, -1] / batch.P_max[rows]
    stream = np.einsum("bi,binkpq->bnkpq", crb_coef * inv_crb**2, crb_blocks)
    stream = stream + power_coef[:, None, None, None, None] * np.array([[2.0, 0.0], [0.0, 2.0]])
    stream[..., 0, 1] += power_coef[:, None, None] * 2.0 * eps
    stream[..., 1, 0] += power_coef[:, None, None] * 2.0 * eps
    blocks = _curvature_blocks(batch, state, rows, d_T, d_psi, rate_coef, stream)
    columns = np.concatenate((np.swapaxes(grad_crb, 1, 2), factors[:, 0], factors[:, 1]), axis=2)
    weights = np.concatenate(
        (2.0 * crb_coef / inv_crb, np.repeat(-2.0 * crb_coef * inv_crb**2, 4, axis=1)), axis=1
    )
    columns = np.concatenate((np.swapaxes(jacobian, 1, 2), columns), axis=2)
    weights = np.concatenate((lam / slack, weights), axis=1)
    ratio = grad_den * (tau / P)[:, None]  # the ratio's rank-2 term
    left = np.concatenate(
        (columns * weights[:, None, :], grad_phi[..., None], ratio[..., None]), axis=2
    )
    columns = np.concatenate((columns, ratio[..., None], grad_phi[..., None]), axis=2)
    hessian = left @ np.swapaxes(columns, 1, 2)
    m = 2 * K
    h0, h1, h2 = hessian.strides
    diagonal = np.lib.stride_tricks.as_strided(
        hessian, (count, N, m, m), (h0, m * (h1 + h2), h1, h2)
    )
    diagonal += blocks
    z = state["z"]
    hessian.reshape(count, -1)[:, :: batch.n + 1] += lam_z / z
    gradient = gradient - 1.0 / z
    direction, rungs = _shifted_solves(hessian, gradient, rungs)
    return gradient, direction, jacobian, rungs


def _each(matrices, vectors, transpose=False):
    """``matrices[i] @ vectors[i]`` (or ``matrices[i].T @``), one BLAS call per frame as
    in the single-frame code (a stacked product may sum in another order)."""
    if transpose:
        matrices = np.swapaxes(matrices, 1, 2)
    return np.array([matrix @ vector for matrix, vector in zip(matrices, vectors, strict=True)])


def _shifted_solves(hessian, gradient, rungs):
    """direct.newton_direction's Jacobi-scaled, Levenberg-shifted Cholesky solve, frame
    by frame (the shift differs per frame): (directions, rungs)."""
    scale = 1.0 / np.sqrt(np.maximum(np.abs(np.diagonal(hessian, axis1=1, axis2=2)), 1e-300))
    scaled = hessian * scale[:, :, None]
    scaled *= scale[:, None, :]
    frames = zip(scaled, scale, gradient, rungs, strict=True)
    directions, rungs = zip(*(shifted_solve(*frame) for frame in frames), strict=True)
    return np.array(directions), np.array(rungs)


class _Paths:
    """Each frame's place on its barrier path (``direct.barrier_path`` and ``centre``):
    weight t, multipliers, steps in the stage, Phi since the stage began."""

    def __init__(self, batch: FrameBatch, Z, t0, *, gap, growth):
        count = len(Z)
        self.Z, self.growth = Z.copy(), growth
        self.t = np.broadcast_to(np.asarray(t0, dtype=float), (count,)).copy()
        self.t_final = batch.n_constraints / gap
        state, _ = batch.state(self.Z, np.arange(count))
        self.lam, self.lam_z = 1.0 / batch.slacks(state), 1.0 / self.Z
        self.rung = np.zeros(count, dtype=int)  # the Levenberg shift's next first guess
        self.step = np.zeros(count, dtype=int)  # Newton steps in the current stage
        self.steps = np.zeros(count, dtype=int)  # in all stages
        self.history: list[list[float]] = [[] for _ in range(count)]  # Phi, this stage
        self.stage_phis: list[list[float]] = [[] for _ in range(count)]
        self.done = np.zeros(count, dtype=bool)

    def end_stage(self, frame: int, phi: float) -> None:
        self.steps[frame] += self.step[frame]
        self.stage_phis[frame].append(phi)
        if self.t[frame] >= self.t_final:
            self.done[frame] = True
        else:
            self.t[frame] = min(self.t_final, self.t[frame] * self.growth)
        self.step[frame] = 0
        self.history[frame] = []

    def stalled(self, frame: int, phi: float, max_steps: int, rising) -> bool:
        """direct._stalled_after's rule after an accepted step."""
        phis = self.history[frame]
        phis.append(phi)
        n = len(phis)
        window, gain = rising
        return n >= max_steps and phis[-1] < phis[max(0, n - 1 - window)] * (1.0 + gain)


def barrier_paths(
    batch: FrameBatch, Z, *, t0, gap=1e-6, growth=10.0, tol=1e-2, max_steps=20,
    rising=(10, 1e-5), cap=200,
) -> _Paths:  # fmt: skip
    """``direct.barrier_path`` (the same arguments) from the strictly feasible rows of Z,
    every frame on its own path; a round is one Newton step of every frame not done."""
    paths = _Paths(batch, Z, t0, gap=gap, growth=growth)
    while not paths.done.all():
        rows = np.flatnonzero(~paths.done)
        state, _ = batch.state(paths.Z[rows], rows)
        t = paths.t[rows]
        gradient, direction, jacobian, paths.rung[rows] = newton_directions(
            batch, state, rows, t, paths.lam[rows], paths.lam_z[rows], paths.rung[rows]
        )
        slope = np.array([g @ d for g, d in zip(gradient, direction, strict=True)])
        paths.step[rows] += 1
        centred = -slope / 2.0 <= tol
        moving = np.flatnonzero(~centred)
        value = batch.merit(state, rows, t)[moving]
        trials = _line_search(
            batch, rows[moving], paths.Z[rows[moving]], t[moving], direction[moving],
            slope[moving], value, state["p"][moving],
        )  # fmt: skip
        for i in np.flatnonzero(centred):
            paths.end_stage(rows[i], state["phi"][i])
        accepted = np.array([trial is not None for _, trial in trials], dtype=bool)
        for i in moving[~accepted]:  # no step decreased the barrier function: stage ends
            paths.end_stage(rows[i], state["phi"][i])
        if accepted.any():
            taken = [trials[j] for j in np.flatnonzero(accepted)]
            stall = (max_steps, rising, cap)
            _take_steps(paths, state, rows, moving[accepted], direction, jacobian, taken, stall)
    return paths


def _take_steps(paths, state, rows, taken, direction, jacobian, trials, stall):
    """The accepted steps of the round's rows ``taken``: multipliers (``direct._dual_step``
    for all of them at once), iterates, and the stage's end where it stalls or caps
    (``stall`` = (max_steps, rising, cap))."""
    max_steps, rising, cap = stall
    frames = rows[taken]
    sizes = np.array([size for size, _ in trials])
    new_z = np.array([trial["z"] for _, trial in trials])
    slack_change = _each(jacobian[taken], direction[taken])
    paths.lam[frames] = _dual_steps(
        paths.lam[frames], FrameBatch.slacks(state)[taken], slack_change, sizes,
        np.array([trial["slacks"] for _, trial in trials]),
    )  # fmt: skip
    paths.lam_z[frames] = _dual_steps(
        paths.lam_z[frames], paths.Z[frames], direction[taken], sizes, new_z
    )
    paths.Z[frames] = new_z
    for frame, (_, trial) in zip(frames, trials, strict=True):
        stalled = paths.stalled(frame, trial["phi"], max_steps, rising)
        if stalled or paths.step[frame] == cap:
            paths.end_stage(frame, trial["phi"])


def _dual_steps(lam, slack, slack_change, size, new_slack, spread=1e4):
    """``direct._dual_step`` of several frames (rows), the same arithmetic."""
    d_lam = 1.0 / slack - lam - lam / slack * slack_change
    lam = lam + np.minimum(size, _to_boundary(lam, d_lam))[:, None] * d_lam
    return np.minimum(np.maximum(lam, 1.0 / (spread * new_slack)), spread / new_slack)


def _to_boundary(value, direction, fraction=0.99):
    """``direct._to_boundary`` of each row (inf where no entry shrinks)."""
    shrinking = direction < 0
    ratios = np.where(shrinking, -value / np.where(shrinking, direction, -1.0), np.inf)
    return fraction * ratios.min(axis=1)


def _line_search(batch: FrameBatch, frames, Z, t, direction, slope, value, slack, tries=6):
    """``direct.centre``'s backtracking on the barrier function (trials past P_max scaled
    back onto the power ball, ``slack`` the frames' power slacks before the step), for
    the frames ``frames`` at Z with their merit ``value``: one (size, trial) per frame,
    trial None when the step shrank below 1e-14 with no decrease. After a first try at
    the full step, each call tries the next ``tries`` halvings of every frame still
    searching at once (the first acceptable one in order is the single-frame search's).
    Six rather than four: one call then ends most searches (a call's fixed cost is shared
    by its frames; hor actions 172-183 -> 205-207 env steps per CPU s, BENCHMARKS.md)."""
    size = np.minimum(1.0, _to_boundary(Z, direction))
    trials: list = [(None, None)] * len(frames)
    searching = np.flatnonzero(size > 1e-14)
    halvings = 1
    while searching.size:
        sizes = size[searching, None] * 0.5 ** np.arange(halvings)  # exact: powers of 2
        valid = sizes > 1e-14
        pick, step = np.nonzero(valid)
        trial_Z = Z[searching[pick]] + sizes[pick, step, None] * direction[searching[pick]]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            state, inside = batch.state(
                trial_Z, frames[searching[pick]], budget_slack=slack[searching[pick]]
            )
            merit = np.where(
                inside, batch.merit(state, frames[searching[pick]], t[searching[pick]]), np.inf
            )
        accept = np.zeros(valid.shape, dtype=bool)
        bound = value[searching, None] + 1e-4 * sizes * slope[searching, None]
        accept[pick, step] = merit <= bound[pick, step]
        slacks = batch.slacks(state)
        candidate = np.full(valid.shape, -1)
        candidate[pick, step] = np.arange(len(pick))
        first = accept.argmax(axis=1)  # the first acceptable halving, in order
        found = accept.any(axis=1)
        for r in np.flatnonzero(found):
            c = candidate[r, first[r]]
            trial = dict(z=trial_Z[c], phi=state["phi"][c], slacks=slacks[c])
            trials[searching[r]] = (sizes[r, first[r]], trial)
        exhausted = ~found & valid.all(axis=1)  # all tried, none acceptable: halve on
        size[searching[exhausted]] = sizes[exhausted, -1] * 0.5
        still = searching[exhausted][size[searching[exhausted]] > 1e-14]
        searching = still
        halvings = tries
    return trials


def solve_warm_batch(
    snapshots: list[MIMOSnapshot], omegas, warm_starts: list[MIMOAllocation], *,
    margin: float = 1e-4, phase1_rounds: int = 300, constants: list | None = None,
) -> list:  # fmt: skip
    """``solve_mimo(snapshot, omega, "proposed", method="fast", warm_start=start,
    margin=margin, phase1_rounds=phase1_rounds)`` of each frame, with the frames' barrier
    paths run together (module docstring). A start that is not strictly feasible is
    restored by phase I frame by frame, as ``solve_mimo`` does; where that fails, the
    frame is finished as ``solve_mimo`` finishes it (its cold starts, frame by frame,
    without running that phase I twice). A frame certified infeasible has the entry
    None: ``solve_mimo`` reports it without a solve. ``info["wall_time_s"]``: a batched
    frame's share of the batch, a rescued frame's own time. The frames need equal N
    and K. ``constants``: the frames' ``stream_constants`` where the caller has them
    (computed here when None)."""
    from optimizers.mimo.dinkelbach import MIMOSolution  # dinkelbach imports this module

    clock = time.perf_counter()
    sizes = {(snapshot.N, snapshot.K) for snapshot in snapshots}
    if len(sizes) > 1:
        raise ValueError(f"snapshots must have equal (N, K), got {sorted(sizes)}")
    if constants is None:
        constants = [None] * len(snapshots)
    frames = zip(snapshots, omegas, warm_starts, constants, strict=True)
    prepared = [_prepare(*frame, margin, phase1_rounds) for frame in frames]
    solutions: list = [None] * len(prepared)
    rescue_time = 0.0
    for i, frame in enumerate(prepared):
        if frame is not None and "failed" in frame:  # phase I failed: the cold starts
            start = time.perf_counter()
            prepared[i] = _rescue(frame, margin, phase1_rounds)
            seconds = time.perf_counter() - start
            rescue_time += seconds
            if isinstance(prepared[i], MIMOSolution):  # finished frame by frame
                solutions[i], prepared[i] = prepared[i], None
            else:  # its proposed path joins the batch
                prepared[i]["own_time"] = seconds
    ready = [i for i, frame in enumerate(prepared) if frame is not None]
    if not ready:
        return solutions
    batch = FrameBatch([prepared[i]["problem"] for i in ready])
    t0 = np.array([prepared[i]["t0"] for i in ready])
    paths = barrier_paths(batch, np.array([prepared[i]["z"] for i in ready]), t0=t0)
    wall = (time.perf_counter() - clock - rescue_time) / len(ready)
    for row, i in enumerate(ready):
        frame = prepared[i]
        best = _finished(frame, paths, row)
        if "rescue" in frame:
            solutions[i] = _rescued_by_path(frame, best, wall + frame["own_time"])
            continue
        point, judged, info = best
        info.update(scheme="proposed", method="fast", starts=[frame["start"]], wall_time_s=wall)
        solutions[i] = MIMOSolution(point, judged, info)
    return solutions


def _prepare(snapshot, omega, warm_start, constants, margin, phase1_rounds):
    """One frame up to its barrier path, as ``solve_mimo`` (its warm-start branch) and
    ``direct.solve_direct`` set it up: the start, phase I where it is not strictly
    feasible, and the path's t0; None where the budget is certified too small for the
    CRB ceilings (:mod:`optimizers.mimo.certificate`); where phase I fails, the failed
    start's result under ``"failed"`` (:func:`_rescued` finishes the solve)."""
    from isac_gym.mimo.model import check_omega
    from optimizers.mimo.dinkelbach import _RESTORE_ROUNDS

    clock = time.perf_counter()
    omega = check_omega(omega)
    if constants is None:
        constants = stream_constants(snapshot)
    warm_start.check(snapshot)
    if certified_infeasible(snapshot, crb_power_bound(snapshot, constants)):
        return None  # solve_mimo reports it without a solve
    judged = evaluate(snapshot, warm_start, omega, constants)
    start = "warm" if judged.feasible else "warm_restored"
    model = ExactModel(snapshot, constants, "proposed", omega)
    z = model.to_z(warm_start)
    problem = BarrierProblem(model, margin, 1.0)
    state, phase1_steps, warm = problem.state(z), 0, True
    if state is None:  # solve_direct: phase I (a restored warm start keeps its basin)
        restored = start == "warm_restored"
        rounds = min(phase1_rounds, _RESTORE_ROUNDS) if restored else phase1_rounds
        z, state, phase1_steps, failed = restore_start(
            problem, z, constants, margin=margin, max_steps=rounds, evaluate=evaluate
        )
        if failed is not None:  # solve_direct's result, named as solve_mimo names it
            failed[2]["start"] = start
            return dict(
                failed=failed, snapshot=snapshot, constants=constants, omega=omega,
                start=start, warm_start=warm_start, clock=clock,
            )  # fmt: skip
        warm = restored
    point = model.allocation(z)
    if not _same_point(point, warm_start):  # else its judgement is the one above
        judged = evaluate(snapshot, point, omega, constants)
    return _path_frame(problem, state, z, point, judged, constants, start, phase1_steps, warm)


def _path_frame(problem, state, z, point, judged, constants, start, phase1_steps, warm):
    """A frame ready for the batch, as ``direct.solve_direct`` sets up its path from the
    strictly feasible ``state`` at z: Phi's scale, and t0 = m 1e3 for a warm start (it
    stays in its basin), else m."""
    problem.phi_scale = state["phi"]
    t0 = problem.n_constraints * (1e3 if warm else 1.0)
    return dict(
        model=problem.model, problem=problem, z=z, point=point, judged=judged,
        constants=constants, start=start, phase1_steps=phase1_steps, t0=t0,
    )  # fmt: skip


def _same_point(point: MIMOAllocation, other: MIMOAllocation) -> bool:
    return np.array_equal(point.a, other.a) and np.array_equal(point.b, other.b)


def _rescue(frame, margin, phase1_rounds):
    """A frame whose phase I failed in :func:`_prepare`, continued as ``solve_mimo``
    continues it: its cold starts (the EqualCom solve runs here, frame by frame: the
    batch does not carry EqualCom's tie map). Where they are the EqualCom point alone
    and it is strictly feasible, the proposed path from it joins the batch: a frame as
    :func:`_prepare` makes them, with the failed start under ``"rescue"`` and the cold
    starts under ``"cold"``. Otherwise the solve is finished here (a MIMOSolution)."""
    from optimizers.mimo import dinkelbach

    snapshot, constants, omega = frame["snapshot"], frame["constants"], frame["omega"]
    cold = None
    if dinkelbach.goes_cold(frame["start"], frame["failed"]):
        settings = dinkelbach.fast_settings(margin, phase1_rounds)
        cold = dinkelbach.cold_starts(snapshot, constants, omega, settings)
        if [name for name, _ in cold] == ["equal_com"]:
            path = _warm_path_frame(snapshot, constants, omega, cold[0][1], margin)
            if path is not None:
                return dict(path, rescue=frame, cold=cold)
    return dinkelbach.finish_failed_warm_start(
        snapshot, constants, omega, frame["start"], frame["warm_start"], frame["failed"],
        margin=margin, phase1_rounds=phase1_rounds, clock=frame["clock"], cold=cold,
    )  # fmt: skip


def _warm_path_frame(snapshot, constants, omega, start, margin):
    """``direct.solve_direct``'s set-up of the warm path (t0 = m 1e3) from ``start`` (the
    EqualCom point), as a batch frame; None where the start is not strictly feasible
    (solve_direct then runs phase I: left to it)."""
    model = ExactModel(snapshot, constants, "proposed", omega)
    z = model.to_z(start)
    point = model.allocation(z)
    judged = evaluate(snapshot, point, omega, constants)
    problem = BarrierProblem(model, margin, 1.0)
    state = problem.state(z)
    if state is None:
        return None
    return _path_frame(problem, state, z, point, judged, constants, "equal_com", 0, warm=True)


def _rescued_by_path(frame, result, seconds):
    """``solve_mimo``'s end (``dinkelbach._finish``) of a rescued frame whose EqualCom
    start ran its path in the batch (``result``): the better of it and the failed warm
    start, named by every start tried."""
    from optimizers.mimo.dinkelbach import keep_better, solution_of

    rescued = frame["rescue"]
    best = keep_better(rescued["failed"], result)
    problem = (rescued["snapshot"], rescued["constants"], rescued["omega"], "proposed", "fast")
    starts = [(rescued["start"], rescued["warm_start"]), *frame["cold"]]
    solution = solution_of(problem, starts, best, rescued["clock"])
    solution.info["wall_time_s"] = seconds  # its own share, as the batch's other frames
    return solution


def _finished(frame, paths, row):
    """solve_direct's end: the path's point unless it ends below its feasible start."""
    model, judged = frame["model"], frame["judged"]
    candidate = model.allocation(paths.Z[row])
    result = evaluate(model.snapshot, candidate, model.omega, frame["constants"])
    stage_phis = paths.stage_phis[row]
    info = dict(
        phase1_iterations=frame["phase1_steps"], iterations=len(stage_phis),
        newton_steps=int(paths.steps[row]), ee_trace=[judged.ee, *stage_phis],
        status="converged", start=frame["start"],
    )  # fmt: skip
    if result.feasible and not (judged.feasible and result.ee < judged.ee):
        return candidate, result, info
    info["status"] = "kept_start"
    return frame["point"], judged, info
