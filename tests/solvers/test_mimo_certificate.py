"""optimizers.mimo.certificate: the least transmit power the CRB ceilings need is a valid
bound on every allocation (judged by the true model), tight enough to matter, and
solve_mimo reports a frame below it at once."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.linalg
from conftest import MIMO_SMALL_CELL

from isac_gym.mimo import (
    MIMOAllocation,
    MIMOISACConfig,
    evaluate,
    sample_snapshot,
    stream_constants,
    transmit_power_closed_form,
)
from optimizers.mimo import certificate
from optimizers.mimo.batched import solve_warm_batch
from optimizers.mimo.dinkelbach import SCHEMES, equal_split, solve_mimo

SMALL = MIMOISACConfig.paper(**MIMO_SMALL_CELL)
CONFIGS = {"small": SMALL, "paper": MIMOISACConfig.paper()}


def _frame(config=SMALL, seed=0, **changes):
    snapshot = sample_snapshot(config, np.random.default_rng(seed))
    return dataclasses.replace(snapshot, **changes)


def _allocations(snapshot, constants, rng, count):
    """Random allocations, then the bound's own extreme for each angle: every stream
    along the top eigenvector of its pencil (Q_nk(w), P_nk), with the power weighted
    to the streams where that eigenvalue is largest, and w the Schur weights at the
    allocation itself (a fixed point, ten rounds)."""
    shape = (snapshot.N, snapshot.K)
    for _ in range(count):
        yield MIMOAllocation(a=rng.lognormal(0, 1, shape), b=rng.lognormal(0, 1, shape))
    for angle in range(2):
        allocation = MIMOAllocation(a=np.ones(shape), b=np.ones(shape))
        for _ in range(10):
            w = certificate._schur_weights(constants.fim_forms, allocation)[angle]
            form = np.einsum("j,l,nkjlpq->nkpq", w, w, constants.fim_forms)
            largest = certificate._pencil_eigenvalue(form, constants.eps)
            u = np.zeros((*shape, 2))
            for n, k in np.ndindex(shape):
                e = constants.eps[n, k]
                vectors = scipy.linalg.eigh(form[n, k], np.array([[1.0, e], [e, 1.0]]))[1]
                weight = np.exp(100.0 * (largest[n, k] / largest.max() - 1.0))
                u[n, k] = np.abs(vectors[:, -1]) * np.sqrt(weight) + 1e-12
            allocation = MIMOAllocation(a=u[..., 0], b=u[..., 1])
        yield allocation


@pytest.mark.parametrize("name", CONFIGS)
def test_no_allocation_meets_the_ceilings_below_the_bound(name):
    """For any u: with the ceilings set to u's own CRBs (so u meets them exactly), the
    bound must not exceed u's transmit power."""
    rng = np.random.default_rng(1)
    for seed in range(3):
        snapshot = _frame(CONFIGS[name], seed)
        constants = stream_constants(snapshot)
        ratios = []
        for allocation in _allocations(snapshot, constants, rng, 20):
            crb = evaluate(snapshot, allocation, 1e-3, constants).crb
            met = dataclasses.replace(snapshot, crb_max=np.asarray(crb, dtype=float))
            bound = certificate.crb_power_bound(met, constants, (allocation,))
            ratios.append(bound / transmit_power_closed_form(constants, allocation))
        assert max(ratios) <= 1.0 + 1e-9
        assert max(ratios) > 0.99  # the aligned allocations come within 1 % of it


def test_the_bound_is_close_to_the_least_feasible_budget():
    """Tight enough to matter: the fast solver finds a feasible point at 1.25x the bound,
    and the solver's solutions there spend at least the bound."""
    snapshot = _frame(SMALL, 0)
    bound = certificate.crb_power_bound(snapshot, stream_constants(snapshot))
    assert 0.0 < bound < snapshot.P_max
    solution = solve_mimo(dataclasses.replace(snapshot, P_max=1.25 * bound), 1e-5, method="fast")
    assert solution.feasible and "certificate" not in solution.info
    assert solution.evaluation.transmit_power >= bound


@pytest.mark.parametrize("method", ["fast", "cvxpy"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_frame_below_the_bound_is_reported_infeasible_without_a_solve(method, scheme):
    snapshot = _frame(SMALL, 0)
    constants = stream_constants(snapshot)
    bound = certificate.crb_power_bound(snapshot, constants)
    frame = dataclasses.replace(snapshot, P_max=0.999 * bound)
    solution = solve_mimo(frame, 1e-5, scheme, method=method)
    assert solution.info["status"] == "infeasible" and not solution.feasible
    assert solution.info["certificate"] == {"power_bound": bound}
    assert solution.info["newton_steps"] == 0 and solution.info["starts"] == ["certificate"]
    assert math.isnan(solution.ee)
    split = equal_split(frame, constants, frame.P_max / 2)  # the cold start's point
    np.testing.assert_array_equal(solution.allocation.a, split.a)
    warm = MIMOAllocation(a=split.a * 0.5, b=split.b * 2.0)
    kept = solve_mimo(frame, 1e-5, scheme, method=method, warm_start=warm)
    assert kept.allocation is warm and kept.info["status"] == "infeasible"


def test_just_above_the_bound_the_solver_runs():
    snapshot = _frame(SMALL, 0)
    bound = certificate.crb_power_bound(snapshot, stream_constants(snapshot))
    solution = solve_mimo(dataclasses.replace(snapshot, P_max=1.001 * bound), 1e-5, method="fast")
    assert "certificate" not in solution.info and solution.info["starts"] != ["certificate"]


def test_the_batch_leaves_a_certified_frame_to_solve_mimo():
    snapshot = _frame(SMALL, 0)
    constants = stream_constants(snapshot)
    bound = certificate.crb_power_bound(snapshot, constants)
    poor = dataclasses.replace(snapshot, P_max=0.9 * bound)
    start = equal_split(poor, constants, 0.5 * poor.P_max)
    assert solve_warm_batch([poor], [1e-5], [start]) == [None]
