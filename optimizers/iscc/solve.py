"""One entry point for every per-slot solver: ``solve(snapshot, beta, method) -> Solution``.

Every solution is judged by one call of the true model, ``isac_gym.iscc.evaluate`` (a
batch of slots by ``isac_gym.iscc.model.evaluate_batch``, the same model over slots).
Methods (paper Section VI for the baselines):

* ``fast``: structured beams + exact compute allocation (``optimizers.iscc.fast``).
* ``sca_admm``: the paper's double-loop SCA-ADMM (``optimizers.iscc.sca_admm``).
* ``cvxpy``: slow CVXPY reference (``optimizers.iscc.reference``), for tests.
* ``fl`` / ``fo`` / ``ho``: alpha pinned to 0 / 1 / 0.5 (``_FIXED_ALPHA``) in every
  slot, CPUs and beams optimised; pinned UEs that cannot be served are reported
  infeasible, never moved.
* ``ctem``: optimise with beta = 1, report the cost at the true beta.
* ``ofdma``: bandwidth shares proportional to path loss (worse channel, more band),
  no inter-UE interference, noise scaled with the share.

``solve_batch`` (``optimizers.iscc.batch``) solves many slots at once with the same
results. The baselines run on the ``fast`` beams (option ``base="sca_admm"`` uses SCA-ADMM
where it supports the baseline's constraints).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from isac_gym.iscc import Allocation, Evaluation, Snapshot, evaluate
from isac_gym.iscc.model import as_beta, evaluate_batch

METHODS = ("fast", "sca_admm", "cvxpy", "fl", "fo", "ho", "ctem", "ofdma")
#: The offloading share alpha each fixed-offloading baseline pins (the one home of it).
_FIXED_ALPHA = {"fl": 0.0, "fo": 1.0, "ho": 0.5}


@dataclass(frozen=True, eq=False)
class Solution:
    """A solver's allocation, its true-model evaluation and diagnostics."""

    allocation: Allocation
    evaluation: Evaluation
    info: dict = field(default_factory=dict)

    @property
    def cost(self) -> float:
        return self.evaluation.cost

    @property
    def feasible(self) -> np.ndarray:
        return self.evaluation.feasible


def ofdma_shares(snapshot: Snapshot) -> np.ndarray:
    """Bandwidth shares proportional to path loss 1/g_k (Section VI, baseline (v))."""
    loss = 1.0 / snapshot.path_gain
    return loss / np.sum(loss)


def solve(snapshot: Snapshot, beta, method: str = "sca_admm", **options) -> Solution:
    """Solve one slot of (P1) with ``method`` and evaluate the result on the true model.

    ``beta`` is a scalar or a (K,) array (> 0). Options: ``weight_ue`` (K,) weights of
    the UE energy (default 1); ``warm_start`` (a previous ``Solution`` or
    ``Allocation``, used by ``sca_admm``); method-specific keyword arguments.
    Physically infeasible slots return the best allocation found with
    ``evaluation.feasible`` false for the failing UEs; bad arguments raise ValueError.
    """
    if not isinstance(snapshot, Snapshot):
        raise ValueError(f"snapshot must be a Snapshot, got {type(snapshot).__name__}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    beta = as_beta(beta, snapshot.K)
    warm = options.pop("warm_start", None)
    if isinstance(warm, Solution):
        warm = warm.allocation
    start = time.perf_counter()
    allocation, info = _dispatch(snapshot, beta, method, warm, options)
    wall = time.perf_counter() - start
    return judged(snapshot, allocation, beta, method, info, wall)


def judged(snapshot: Snapshot, allocation: Allocation, beta, method: str, info, wall) -> Solution:
    """A ``Solution``: the allocation evaluated on the true model, with ``info``."""
    try:  # the arguments were checked: a bad allocation (shape, NaN) is a solver bug
        evaluation = evaluate(snapshot, allocation, beta)
    except ValueError as error:
        raise RuntimeError(f"solver {method!r} returned an invalid allocation: {error}") from error
    return _solution(allocation, evaluation, method, info, wall)


def judged_batch(snapshots, allocations, betas, method: str, infos, wall) -> list[Solution]:
    """:func:`judged` of every slot, with one ``evaluate_batch`` over the slots."""
    try:  # the arguments were checked: a bad allocation (shape, NaN) is a solver bug
        evaluations = evaluate_batch(snapshots, allocations, betas)
    except ValueError as error:
        raise RuntimeError(f"solver {method!r} returned an invalid allocation: {error}") from error
    return [
        _solution(allocation, evaluation, method, info, wall)
        for allocation, evaluation, info in zip(allocations, evaluations, infos, strict=True)
    ]


def _solution(allocation: Allocation, evaluation: Evaluation, method: str, info, wall):
    info = {"method": method, "wall_time_s": wall, **info}
    info.setdefault("objective_trace", [evaluation.cost])
    return Solution(allocation=allocation, evaluation=evaluation, info=info)


def _dispatch(snapshot, beta, method, warm, options):
    from optimizers.iscc.fast import solve_fast

    if method == "fast":
        return solve_fast(snapshot, beta, **options)
    if method == "sca_admm":
        from optimizers.iscc.sca_admm import solve_sca_admm

        return solve_sca_admm(snapshot, beta, warm_start=warm, **options)
    if method == "cvxpy":
        from optimizers.iscc.reference import solve_reference

        return solve_reference(snapshot, beta, **options), {"iterations": None, "converged": True}
    if method in _FIXED_ALPHA:
        return solve_fast(snapshot, beta, alpha_fixed=_FIXED_ALPHA[method], **options)
    if method == "ctem":
        return solve_fast(snapshot, np.ones(snapshot.K), **options)
    if method == "ofdma":
        return solve_fast(snapshot, beta, bandwidth_share=ofdma_shares(snapshot), **options)
    raise AssertionError(method)  # unreachable: METHODS was checked
