"""The Dinkelbach parameter: every step is priced at lam = Phi(point), the true weighted
EE (26a) of the point the step starts from (single-loop Dinkelbach, spec 5.1).

Taking lam from the surrogate's value instead still converges (monotone, feasible), only
to a different point in more iterations, so the loop tests cannot see it; this one reads
the (point, lam) pair handed to each step and judges it with the true model.
"""

import numpy as np
import pytest
from conftest import MIMO_SMALL_CELL
from conftest import cvxpy_solve_mimo as solve_mimo

from isac_gym.mimo import MIMOISACConfig, evaluate, sample_snapshot, stream_constants
from optimizers.mimo import dinkelbach

SMALL = MIMOISACConfig.paper(**MIMO_SMALL_CELL)


@pytest.mark.parametrize("omega", [1e-5, 1.0])
def test_each_step_is_priced_at_the_true_ee_of_its_point(monkeypatch, omega):
    snapshot = sample_snapshot(SMALL, np.random.default_rng(0))
    constants = stream_constants(snapshot)
    calls = []
    original = dinkelbach._SurrogateProgram.dinkelbach_step

    def recording_step(self, point, lam, omega_):
        calls.append((point, lam))
        return original(self, point, lam, omega_)

    monkeypatch.setattr(dinkelbach._SurrogateProgram, "dinkelbach_step", recording_step)
    solution = solve_mimo(snapshot, omega)
    assert solution.feasible and len(calls) >= 3
    for point, lam in calls:
        assert lam == pytest.approx(evaluate(snapshot, point, omega, constants).ee, rel=1e-12)
    # the trace of the kept start is a run of those prices, then the EE of the returned
    # point (``proposed`` runs two starts and keeps the better)
    trace = np.array(solution.info["ee_trace"])
    lams = np.array([lam for _, lam in calls])
    steps = len(trace) - 1
    runs = [lams[i : i + steps] for i in range(len(lams) - steps + 1)]
    assert any(np.allclose(run, trace[:steps], rtol=1e-12, atol=0) for run in runs)
    assert trace[-1] == pytest.approx(solution.ee, rel=1e-12)
