"""The SE majorant of the Dinkelbach step for c_R < 0 (omega near 1, spec 5.2 item 2).

With a negative rate weight the step needs an upper bound of sum_k SE_k that is tight at
the expansion point; the loop tests only see that the iterates stay feasible and
monotone, so a wrong constant, slope or scale of the majorant survives them (mutation
testing, docs/testing.md). Checked like the minorant: tight at the point, above the true
SE at random other points.
"""

import numpy as np
from conftest import MIMO_SMALL_CELL

from isac_gym.mimo import (
    MIMOAllocation,
    MIMOISACConfig,
    evaluate,
    sample_snapshot,
    stream_constants,
)
from optimizers.mimo.dinkelbach import _SurrogateProgram

SMALL = MIMOISACConfig.paper(**MIMO_SMALL_CELL)


def _random_allocation(snapshot, rng, scale):
    shape = (snapshot.N, snapshot.K)
    return MIMOAllocation(a=scale * rng.random(shape), b=scale * rng.random(shape))


def test_se_majorant_is_tight_at_the_point_and_above_everywhere():
    snapshot = sample_snapshot(SMALL, np.random.default_rng(0))
    constants = stream_constants(snapshot)
    program = _SurrogateProgram(snapshot, constants, "proposed", 1e-4)
    rng = np.random.default_rng(3)
    point = _random_allocation(snapshot, rng, 0.15)
    program._linearise(point)
    problem, params = program._problem("dinkelbach_majorant")
    program._majorant_coefficients(point, params)
    (majorant,) = [c.args[0] for c in problem.constraints[:1]]  # rate_upper >= majorant

    def sum_se(allocation):
        return float(np.sum(evaluate(snapshot, allocation, 1.0, constants).se))

    def at(allocation):
        program.variables[0].value = allocation.a
        program.variables[1].value = allocation.b
        with np.errstate(invalid="ignore"):  # log of a negative linearised psi: nan
            return float(majorant.value)

    np.testing.assert_allclose(at(point), sum_se(point), rtol=1e-9)
    gaps = []
    for _ in range(100):
        if rng.random() < 0.5:  # near the point, where the first-order terms matter
            spread = rng.choice([1e-3, 1e-2, 1e-1])
            other = MIMOAllocation(
                a=point.a * (1 + spread * rng.standard_normal(point.a.shape)),
                b=np.abs(point.b * (1 + spread * rng.standard_normal(point.b.shape))),
            )
        else:
            other = _random_allocation(snapshot, rng, rng.choice([0.01, 0.15, 0.5]))
        value = at(other)
        if np.isfinite(value):  # outside, the linearised psi leaves the domain of log
            gaps.append(value - sum_se(other))
    gaps = np.array(gaps)
    assert gaps.size >= 50
    assert gaps.min() >= -1e-9  # an upper bound ...
    assert gaps.max() > 1e-2  # ... that is not trivially tight
