"""SCA-ADMM's own acceptance rule (deviation 9), seen without the safeguard and the polish.

With ``safeguard=False, polish=False`` nothing after the SCA loop can hide a bad accept:
the returned point is the best-ranked point the loop saw. At Q = 1e4 bit the ADMM
candidates are slightly worse than the ``fast`` start (the communication energy
dominates), so a rule that accepts every candidate returns a worse point.
"""

import math

import numpy as np
import pytest

from isac_gym.demo import simple_allocation
from isac_gym.iscc import ISCCConfig, evaluate, sample_snapshot
from optimizers.iscc.fast import solve_fast
from optimizers.iscc.sca_admm import solve_sca_admm


@pytest.mark.parametrize(("seed", "beta"), [(1, 10.0), (2, 0.1)])
def test_a_worse_admm_candidate_is_rejected(seed, beta):
    snap = sample_snapshot(ISCCConfig.paper(Q=1e4), np.random.default_rng(seed))
    start, _ = solve_fast(snap, beta)
    start_cost = evaluate(snap, start, beta).cost
    alloc, info = solve_sca_admm(snap, beta, safeguard=False, polish=False)
    assert info["candidate"] == "sca_admm"
    # the case is a real test: the ADMM's first candidate is worse than the start ...
    assert info["admm_objective_trace"][0] > start_cost * (1 + 1e-5)
    # ... and it is not taken: the start is kept, to the last digit
    ev = evaluate(snap, alloc, beta)
    assert ev.feasible.all()
    assert ev.cost <= start_cost * (1 + 1e-12)
    assert info["objective_trace"][-1] == pytest.approx(ev.cost, rel=1e-12)
    assert np.all(np.diff(info["objective_trace"]) <= 0)


def test_from_a_poor_start_every_accepted_point_is_feasible_and_no_worse():
    """alpha_0 = 0.95 (the optimum is 0.76): correctness, not speed.

    Lower bound (an oracle independent of the solver): with t_com >= 0 the CPUs need at
    least their latency-bound frequencies, so (17a) >= K xi (varpi Q)^3 / tau^2
    min_a [(1 - a)^3 + beta a^3] = 2 * 0.1 / 0.4^2 * 0.05772 = 0.07215 J (Table I).
    """
    beta = 0.1
    snap = sample_snapshot(ISCCConfig.paper(), np.random.default_rng(1))
    start = simple_allocation(snap, 0.95)
    start_ev = evaluate(snap, start, beta)
    assert start_ev.feasible.all()
    alloc, info = solve_sca_admm(
        snap, beta, warm_start=start, polish=False, max_outer=10, safeguard=False
    )
    ev = evaluate(snap, alloc, beta)
    assert ev.feasible.all()
    trace = np.asarray(info["objective_trace"])
    assert trace[-1] == pytest.approx(ev.cost, rel=1e-12)  # the trace is the true cost
    assert np.all(np.diff(trace) <= 0) and trace[0] <= start_ev.cost
    alpha_star = 1 / (1 + math.sqrt(beta))
    bound = 2 * 0.1 / 0.4**2 * ((1 - alpha_star) ** 3 + beta * alpha_star**3)
    assert bound == pytest.approx(0.07215, rel=1e-4)
    assert bound <= ev.cost < start_ev.cost
    assert np.all(alloc.alpha < 0.95) and np.all(alloc.alpha >= alpha_star - 0.01)
