"""One slot's allocation in ``ISCC-v0`` as rounds of oracle requests (shared by both envs).

:func:`allocation_rounds` is a generator: it yields the oracle problems of one round (a
list of :class:`Request`) and receives their solutions, until the slot is settled; it
then returns the outcome (per-UE energies, alpha, success, drop causes). The single
environment answers each round with ``optimizers.iscc.solve``; the vector environment
(:mod:`isac_gym.envs.vector`) answers the rounds of all its environments together, one
``solve_batch`` call per group of requests that can share one (:meth:`Request.group_key`:
the batched methods pad slots of different sizes, ``mixed_k``). Both therefore run the
same logic on the same problems.

A round is: the oracle at the agent's beta; if it fails a UE, the minimum-UE-energy
fallback (``fast``, beta -> 0 for the failing UEs); UEs that still fail drop their task
and the rest is re-solved. With ``diagnose`` the cause of each drop is found by two
relaxed ``fast`` solves (:func:`drop_cause_requests`), asked in the re-solve's round;
without it the drop is counted with the cause ``undiagnosed``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import numpy as np

from isac_gym.iscc.scenario import Snapshot

# the batched methods pad slots of any K into one batch, per-UE options one per slot
from optimizers.iscc.batch import BATCHED_METHODS as MIXED_K_METHODS
from optimizers.iscc.batch import PER_UE_OPTIONS

#: Causes a drop is diagnosed with; ``info["drop_cause"]`` codes are 1 + their index
#: (0: no drop): 1 ``battery``, 2 ``ap_capacity``, 3 ``deadline``, 4 ``budget`` (only in
#: ``beta_budget`` mode: the agent's energy budget, not the battery, was too small).
DROP_CAUSES = ("battery", "ap_capacity", "deadline", "budget")
#: The cause of a drop when ``diagnose_drops`` is off (code ``len(DROP_CAUSES) + 1``).
UNDIAGNOSED = "undiagnosed"
UNDIAGNOSED_CODE = len(DROP_CAUSES) + 1
#: beta of the minimum-UE-energy fallback: the AP's energy is (almost) free.
FALLBACK_BETA = 1e-6

Rounds = Generator[list["Request"], list[Any], dict[str, Any]]


@dataclass(frozen=True, eq=False)
class Request:
    """One oracle problem: ``solve(snapshot, beta, method=method, **options)``.

    ``counted``: its time and iterations count in ``info["oracle_time_s"]`` and
    ``info["oracle_iterations"]`` (the regret reference solve does not).
    """

    method: str
    snapshot: Snapshot
    beta: np.ndarray
    options: dict[str, Any] = field(default_factory=dict)
    counted: bool = True

    def group_key(self) -> tuple:
        """Requests with equal keys can share one ``solve_batch`` call: equal method and
        options, and equal K unless the method pads (then per-UE options may differ)."""
        mixed = self.method in MIXED_K_METHODS
        options = tuple(
            (name, None if mixed and name in PER_UE_OPTIONS else np.asarray(value).tobytes())
            for name, value in sorted(self.options.items())
        )
        return (self.method, None if mixed else self.snapshot.K, self.counted, options)


@dataclass(frozen=True)
class SlotProblem:
    """Everything :func:`allocation_rounds` needs about one slot."""

    slot: Snapshot  #: the slot with batteries as budgets and the AP capacity left
    task: np.ndarray  #: (K,) bool, UEs with a task
    beta: np.ndarray  #: (K,) the agent's beta (beta mode) or mu (allocation mode)
    alpha_fixed: np.ndarray | None  #: (K,) the agent's alpha (allocation mode) or None
    oracle: str  #: the oracle's method
    weight_ue: np.ndarray  #: (K,) w_ue
    full_capacity: float  #: C^ap without background load
    diagnose: bool  #: find the cause of each drop
    regret_mu: float | None  #: allocation mode: also solve with the oracle at this beta
    #: beta_budget mode: (K,) the battery's usable energy when the agent's budget is tighter
    #: (``slot.energy_budget``); a drop that it would serve has the cause ``budget``
    full_budget: np.ndarray | None = None


def allocation_rounds(problem: SlotProblem) -> Rounds:
    """Oracle (or the agent's alpha), fallback, drops; per-UE results as (K,) arrays."""
    K = problem.slot.K
    served = problem.task.copy()
    cause = np.zeros(K, dtype=int)  # 0: none, else 1 + index in DROP_CAUSES (+ UNDIAGNOSED)
    solution = None
    # The drop-cause solves of a round do not depend on the re-solve of the UEs left:
    # they ride along with its first request (one round, one batch, fewer small calls).
    riders, diagnosed = [], None  # (dropped UEs, their rows among the riders' UEs)
    while served.any():
        solution, answers = yield from _served_round(problem, served, riders)
        if diagnosed is not None:
            cause[diagnosed[0]] = _drop_codes(answers)[diagnosed[1]]
            riders, diagnosed = [], None
        if solution.feasible.all():
            break
        failing = ~solution.feasible
        dropped = np.flatnonzero(served)[failing]
        if problem.diagnose:
            riders, diagnosed = drop_cause_requests(problem, served), (dropped, failing)
        else:
            cause[dropped] = UNDIAGNOSED_CODE
        served[dropped] = False
        solution = None
    if diagnosed is not None:  # every task dropped: the causes alone
        cause[diagnosed[0]] = _drop_codes((yield riders))[diagnosed[1]]
    outcome = _outcome(K, served, cause, solution)
    if problem.alpha_fixed is not None and problem.regret_mu is not None and problem.task.any():
        outcome["regret_cost"] = yield from _regret_round(problem)
    return outcome


def _served_round(problem: SlotProblem, served: np.ndarray, riders: list[Request]) -> Rounds:
    """The oracle on the served UEs (and its fallback); the agent's alpha stays pinned.

    ``riders``: requests solved together with the first one; returns ``(solution, their
    solutions)``."""
    snapshot = problem.slot.select(served)
    options = {"weight_ue": problem.weight_ue[served]}
    beta = problem.beta[served]
    if problem.alpha_fixed is not None:
        options["alpha_fixed"] = problem.alpha_fixed[served]
        solution, *answers = yield [Request("fast", snapshot, beta, options), *riders]
        return solution, answers
    solution, *answers = yield [Request(problem.oracle, snapshot, beta, options), *riders]
    if solution.feasible.all():
        return solution, answers
    fallback_beta = np.where(solution.feasible, beta, FALLBACK_BETA)
    (solution,) = yield [Request("fast", snapshot, fallback_beta, options)]
    return solution, answers


def drop_cause_requests(problem: SlotProblem, served: np.ndarray) -> list[Request]:
    """The relaxations that tell a drop's cause, for the UEs ``served``.

    1 ``battery``: an unlimited battery would serve the UE; 2 ``ap_capacity``: an
    unlimited AP would (besides the battery); 3 ``deadline``: neither (link, sensing,
    local CPU); 4 ``budget`` (when ``problem.full_budget`` is set): the battery's full
    usable energy would, where the agent's budget did not (this cause comes first). All
    are ``fast`` solves with the fallback beta; the agent's pinned alpha carries over.
    """
    snapshot = problem.slot.select(served)
    options = {"weight_ue": problem.weight_ue[served]}
    if problem.alpha_fixed is not None:
        options["alpha_fixed"] = problem.alpha_fixed[served]
    fallback = np.full(snapshot.K, FALLBACK_BETA)
    relaxed = snapshot.replace(energy_budget=np.full(snapshot.K, np.inf))
    unlimited = relaxed.replace(C_ap=1e6 * problem.full_capacity)
    requests = [
        Request("fast", relaxed, fallback, options),
        Request("fast", unlimited, fallback, options),
    ]
    if problem.full_budget is not None:
        full = snapshot.replace(energy_budget=problem.full_budget[served])
        requests.append(Request("fast", full, fallback, options))
    return requests


def _drop_codes(solutions: list[Any]) -> np.ndarray:
    """Cause codes (see :data:`DROP_CAUSES`) from the answers to :func:`drop_cause_requests`."""
    no_battery, unlimited = solutions[:2]
    codes = np.where(no_battery.feasible, 1, np.where(unlimited.feasible, 2, 3))
    if len(solutions) > 2:  # the full battery's budget
        codes = np.where(solutions[2].feasible, 4, codes)
    return codes


def _regret_round(problem: SlotProblem) -> Rounds:
    """The oracle's weighted cost at beta = mu on the slot's tasks (not timed)."""
    task = problem.task
    snapshot = problem.slot.select(task)
    beta = np.full(snapshot.K, problem.regret_mu)
    options = {"weight_ue": problem.weight_ue[task]}
    (oracle,) = yield [Request(problem.oracle, snapshot, beta, options, counted=False)]
    evaluation = oracle.evaluation
    return float(np.sum(evaluation.energy_ue) + problem.regret_mu * np.sum(evaluation.energy_ap))


def _outcome(K: int, served: np.ndarray, cause: np.ndarray, solution) -> dict[str, Any]:
    outcome = dict(
        energy_ue=np.zeros(K),
        energy_ap=np.zeros(K),
        alpha=np.zeros(K),
        cause=cause,
        success=served,
    )
    if solution is not None:
        evaluation = solution.evaluation
        outcome["energy_ue"][served] = evaluation.energy_ue
        outcome["energy_ap"][served] = evaluation.energy_ap
        outcome["alpha"][served] = solution.allocation.alpha
    return outcome


# --- drivers ----------------------------------------------------------------------------

#: ``solve_group(requests) -> solutions``: requests of one group (equal ``group_key``).
GroupSolver = Callable[[Sequence[Request]], list[Any]]


def run_rounds(rounds: Sequence[Rounds], solve_group: GroupSolver) -> list[dict[str, Any]]:
    """Drive allocation generators to their end, answering each round's requests of all
    of them together, grouped by ``Request.group_key``.

    Returns their outcomes, each with ``time`` (the counted solves' wall time, a group's
    time shared evenly among its requests) and ``iterations`` added.
    """
    outcomes: list[dict[str, Any] | None] = [None] * len(rounds)
    stats = [{"time": 0.0, "iterations": 0} for _ in rounds]
    pending = {}
    for index, generator in enumerate(rounds):
        _advance(index, generator, None, pending, outcomes)
    while pending:
        answers = _solve_round(pending, solve_group, stats)
        for index in list(pending):
            requests = pending.pop(index)
            solutions = [answers[(index, j)] for j in range(len(requests))]
            _advance(index, rounds[index], solutions, pending, outcomes)
    return [{**outcome, **stat} for outcome, stat in zip(outcomes, stats, strict=True)]


def _advance(index, generator, solutions, pending, outcomes) -> None:
    try:
        pending[index] = next(generator) if solutions is None else generator.send(solutions)
    except StopIteration as stop:
        outcomes[index] = stop.value


def _solve_round(pending, solve_group: GroupSolver, stats) -> dict[tuple[int, int], Any]:
    groups: dict[tuple, list[tuple[int, int, Request]]] = {}
    for index, requests in pending.items():
        for number, request in enumerate(requests):
            groups.setdefault(request.group_key(), []).append((index, number, request))
    answers = {}
    for members in groups.values():
        start = perf_counter()  # the whole call, true-model evaluation included
        solutions = solve_group([request for _, _, request in members])
        share = (perf_counter() - start) / len(members)
        for (index, number, request), solution in zip(members, solutions, strict=True):
            answers[(index, number)] = solution
            if request.counted:
                stats[index]["time"] += share
                stats[index]["iterations"] += int(solution.info.get("iterations") or 0)
    return answers


def solve_each(requests: Sequence[Request]) -> list[Any]:
    """Answer requests one by one with ``optimizers.iscc.solve`` (the single env).

    ``optimizers.iscc.solve`` is looked up at each call, so that wrapping it there
    (``experiments.env_bench.recorded_oracle_calls``) sees every oracle problem.
    """
    import optimizers

    return [
        optimizers.iscc.solve(r.snapshot, r.beta, method=r.method, **r.options) for r in requests
    ]


def solve_batched(requests: Sequence[Request]) -> list[Any]:
    """Answer a group of requests with one ``solve_batch`` call (the vector env): slots of
    different K padded (``mixed_k``), per-UE options one per slot."""
    import optimizers

    first = requests[0]
    snapshots = [request.snapshot for request in requests]
    if first.method not in MIXED_K_METHODS:  # equal K and options (group_key)
        betas = np.array([request.beta for request in requests])
        return optimizers.solve_batch(snapshots, betas, method=first.method, **first.options)
    options = {
        name: [request.options[name] for request in requests] if name in PER_UE_OPTIONS else value
        for name, value in first.options.items()
    }
    betas = [request.beta for request in requests]
    return optimizers.solve_batch(snapshots, betas, method=first.method, mixed_k=True, **options)
