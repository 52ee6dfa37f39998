"""isac_gym/MIMOISAC-v0 over many random steps: never NaN, always in its spaces (slow).

20,000 random frames with the stand-in oracle of test_mimo_oracle.py cover the env's own
arithmetic (battery, budget caps, silent frames, rewards, observation map) at the
issue's count; a shorter run with the real Dinkelbach oracle covers its outcomes
(infeasible frames included: low budgets and demands the cell cannot meet).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from conftest import MIMO_TINY_CELL
from test_mimo_oracle import stand_in_oracle

import isac_gym  # noqa: F401  (registers the ids)

ENV_ID = "isac_gym/MIMOISAC-v0"
#: a small, nearly empty battery, sparse harvest and demands up to 14 bps/Hz: silent,
#: capped and infeasible frames occur
STRAINED = {
    **MIMO_TINY_CELL,
    "solver_options": {"method": "cvxpy", "max_iterations": 3},
    "horizon": 50,
    "b_max": 0.3,
    "b_init": (0.1, 0.15),
    "harvest_power": (0.0, 1.0),
    "harvest_sojourn": 20.0,
    "rate_demand": (1.0, 14.0),
    "demand_sojourn": 3.0,
}


def assert_finite_run(env, steps, seed):
    """Random actions (including the box's corners) for ``steps`` frames; returns the
    statuses seen."""
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    statuses = set()
    for step in range(steps):
        action = rng.uniform(-1, 1, 2) if step % 7 else rng.choice([-1.0, 1.0], 2)
        obs, reward, terminated, truncated, info = env.step(action.astype(np.float32))
        assert env.observation_space.contains(obs) and np.all(np.isfinite(obs)), step
        assert np.isfinite(reward) and all(np.isfinite(v) for v in info["rewards"].values())
        for key in ("energy", "battery", "budget", "transmit_power", "ee_comm", "ee_sense"):
            assert np.isfinite(info[key]), (step, key)
        assert np.all(np.isfinite(info["se"])), step
        statuses.add(info["status"])
        if terminated or truncated:
            obs, _ = env.reset()
    return statuses


@pytest.mark.slow
def test_20000_random_frames_with_the_stand_in_oracle_stay_finite(monkeypatch):
    import optimizers.mimo

    monkeypatch.setattr(optimizers.mimo, "solve_mimo", stand_in_oracle)
    statuses = assert_finite_run(gym.make(ENV_ID, **STRAINED), 20_000, seed=0)
    assert statuses == {"stand-in", "silent"}


@pytest.mark.slow
def test_random_frames_with_the_real_oracle_stay_finite():
    statuses = assert_finite_run(gym.make(ENV_ID, **STRAINED), 100, seed=1)
    assert "silent" in statuses and "infeasible" in statuses
