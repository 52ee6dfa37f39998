"""How isac_gym/MIMOISAC-v0 calls its oracle: options, warm starts, their reset.

A recording stand-in replaces ``optimizers.mimo.solve_mimo``: it returns the warm start
if there is one, else the equal split using the whole budget, judged by the true model.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from conftest import MIMO_TINY_CELL

import isac_gym  # noqa: F401  (registers the ids)
from isac_gym.mimo import evaluate, stream_constants, transmit_power_closed_form

ENV_ID = "isac_gym/MIMOISAC-v0"
TINY = {**MIMO_TINY_CELL, "grid_connected": True}
TINY.pop("solver_options")


class StandInOracle:
    """A deterministic ``solve_mimo`` that records its calls (snapshot, options)."""

    def __init__(self, feasible=True):
        self.calls, self.feasible = [], feasible

    def __call__(self, snapshot, omega, scheme="proposed", *, warm_start=None, **options):
        from optimizers.mimo.dinkelbach import MIMOSolution, equal_split

        constants = stream_constants(snapshot)
        point = warm_start or equal_split(snapshot, constants, snapshot.P_max)
        self.calls.append(dict(snapshot=snapshot, warm_start=warm_start, point=point, **options))
        judged = evaluate(snapshot, point, omega, constants)
        if not self.feasible:
            judged = judged.__class__(**{**judged.__dict__, "feasible": False})
        return MIMOSolution(point, judged, {"status": "stand-in", "iterations": 1})


def stand_in_oracle(snapshot, omega, scheme="proposed", **options):
    return StandInOracle()(snapshot, omega, scheme, **options)


@pytest.fixture
def oracle(monkeypatch):
    import optimizers.mimo

    recorder = StandInOracle()
    monkeypatch.setattr(optimizers.mimo, "solve_mimo", recorder)
    return recorder


def power(call, allocation):
    return transmit_power_closed_form(stream_constants(call["snapshot"]), allocation)


def test_the_oracle_is_fast_by_default_and_options_override_it(oracle):
    env = gym.make(ENV_ID, **TINY)
    env.reset(seed=0)
    env.step(np.zeros(2, np.float32))
    assert oracle.calls[-1]["method"] == "fast" and "tol" not in oracle.calls[-1]
    env = gym.make(ENV_ID, **TINY, solver_options={"method": "cvxpy", "tol": 1e-2})
    env.reset(seed=0)
    env.step(np.zeros(2, np.float32))
    assert oracle.calls[-1]["method"] == "cvxpy" and oracle.calls[-1]["tol"] == 1e-2


def test_the_last_solution_warm_starts_the_next_frame_scaled_onto_its_budget(oracle):
    env = gym.make(ENV_ID, **TINY).unwrapped
    env.reset(seed=1)
    actions = [[0.0, 1.0], [0.0, -0.5], [0.0, 1.0]]  # full budget, a smaller one, full
    infos = [env.step(np.array(action, np.float32))[4] for action in actions]
    first, shrunk, grown = oracle.calls
    assert first["warm_start"] is None
    # the full-budget solution is scaled down to 99.9 % of the smaller budget ...
    assert power(shrunk, shrunk["warm_start"]) == pytest.approx(0.999 * infos[1]["budget"])
    # ... and the small solution fits the larger budget as it is
    assert power(grown, grown["warm_start"]) < infos[2]["budget"]
    ratio = np.concatenate(
        [shrunk["warm_start"].a / first["point"].a, shrunk["warm_start"].b / first["point"].b]
    )
    np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-12)  # one scale factor
    assert ratio.flat[0] < 1.0
    np.testing.assert_array_equal(grown["warm_start"].a, shrunk["warm_start"].a)
    env.reset(seed=1)
    env.step(np.zeros(2, np.float32))
    assert oracle.calls[-1]["warm_start"] is None  # reset forgets the last episode


def test_no_warm_start_when_disabled_or_after_an_infeasible_frame(oracle, monkeypatch):
    env = gym.make(ENV_ID, **TINY, warm_start=False)
    env.reset(seed=0)
    for _ in range(2):
        env.step(np.zeros(2, np.float32))
    assert [call["warm_start"] for call in oracle.calls] == [None, None]
    import optimizers.mimo

    infeasible = StandInOracle(feasible=False)
    monkeypatch.setattr(optimizers.mimo, "solve_mimo", infeasible)
    env = gym.make(ENV_ID, **TINY)
    env.reset(seed=0)
    for _ in range(2):
        env.step(np.zeros(2, np.float32))
    assert [call["warm_start"] for call in infeasible.calls] == [None, None]


def test_the_oracle_gets_each_frames_own_precoders(oracle):
    """The env computes a frame's ``stream_constants`` once and hands them to the oracle:
    they must be that frame's (the users move and the budget changes every frame)."""
    env = gym.make(ENV_ID, **TINY)
    env.reset(seed=2)
    for action in ([0.0, 1.0], [0.5, -0.5], [-0.5, 0.2]):
        env.step(np.array(action, np.float32))
    for call in oracle.calls:
        expected = stream_constants(call["snapshot"])
        for name in ("W", "zeta", "g", "eps", "fim_forms"):
            np.testing.assert_array_equal(getattr(call["constants"], name), getattr(expected, name))
    assert not np.array_equal(oracle.calls[0]["constants"].g, oracle.calls[-1]["constants"].g)


class FailingAfter(StandInOracle):
    """Feasible for the first ``good`` calls, then infeasible with a best-effort point of
    its own (a tenth of the split's amplitudes), which the env must not transmit."""

    def __init__(self, good):
        super().__init__()
        self.good = good

    def __call__(self, snapshot, omega, scheme="proposed", **options):
        solution = super().__call__(snapshot, omega, scheme, **options)
        if len(self.calls) <= self.good:
            return solution
        from optimizers.mimo.dinkelbach import MIMOSolution

        point = solution.allocation.__class__(
            a=0.1 * solution.allocation.a, b=0.1 * solution.allocation.b
        )
        judged = evaluate(snapshot, point, omega)
        judged = judged.__class__(**{**judged.__dict__, "feasible": False})
        return MIMOSolution(point, judged, {"status": "infeasible", "iterations": 1})


@pytest.mark.parametrize("good", [0, 1])
def test_an_infeasible_frame_transmits_its_start_not_the_oracles_point(monkeypatch, good):
    """Without a feasible frame yet: the equal split at half the budget; after one: the
    warm start, scaled onto the budget (the points solve_mimo itself returns for a frame
    it certifies infeasible)."""
    import optimizers.mimo

    oracle = FailingAfter(good)
    monkeypatch.setattr(optimizers.mimo, "solve_mimo", oracle)
    env = gym.make(ENV_ID, **TINY).unwrapped
    env.reset(seed=1)
    infos = [env.step(np.array(action, np.float32))[4] for action in ([0.0, 1.0], [0.0, -0.5])]
    call, info = oracle.calls[-1], infos[-1]
    assert info["status"] == "infeasible"
    start = call["warm_start"]
    expected = 0.5 * info["budget"] if start is None else power(call, start)
    assert (start is None) == (good == 0)
    assert info["transmit_power"] == pytest.approx(expected, rel=1e-12)


def test_solver_options_are_checked_when_the_env_is_made():
    for bad in ({"warm_start": None}, {"start": None}, {"nope": 1}, "fast"):
        with pytest.raises(ValueError, match="solver_options must be a dict with keys among"):
            gym.make(ENV_ID, **TINY, solver_options=bad)
    with pytest.raises(ValueError, match="warm_start must be a bool"):
        gym.make(ENV_ID, **TINY, warm_start=1)
