"""optimizers.mimo.batched: the warm barrier paths of many frames at once give, frame by
frame, bit for bit what solve_mimo gives (the native MIMO vector env's use of them is
tested in tests/envs/test_mimo_vector_env.py)."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from conftest import MIMO_TINY_CELL

import isac_gym  # noqa: F401  (registers the ids)
import optimizers.mimo
from optimizers.mimo import solve_mimo
from optimizers.mimo.batched import solve_warm_batch

#: the tiny cell with the env's default oracle (fast, uncapped)
CELL = {**MIMO_TINY_CELL, "solver_options": {}, "horizon": 8}


@pytest.fixture(scope="module")
def warm_frames():
    """(snapshot, omega, warm start) of the oracle calls of short episodes under
    changing actions: warm starts feasible for their frame and ones phase I restores."""
    calls = []
    original = optimizers.mimo.solve_mimo

    def recording(snapshot, omega, scheme="proposed", **options):
        calls.append((snapshot, omega, options.get("warm_start")))
        return original(snapshot, omega, scheme, **options)

    optimizers.mimo.solve_mimo = recording
    try:
        rng = np.random.default_rng(0)
        for seed in range(3):
            env = gym.make("isac_gym/MIMOISAC-v0", **CELL)
            env.reset(seed=seed)
            for _ in range(7):
                env.step(rng.uniform([-1.0, 0.0], [1.0, 1.0]).astype(np.float32))
    finally:
        optimizers.mimo.solve_mimo = original
    return [call for call in calls if call[2] is not None]


def test_each_frame_of_the_batch_is_solve_mimos_result_bit_for_bit(warm_frames):
    snapshots, omegas, starts = zip(*warm_frames, strict=True)
    batch = solve_warm_batch(list(snapshots), list(omegas), list(starts))
    kinds = set()
    for (snapshot, omega, start), ours in zip(warm_frames, batch, strict=True):
        theirs = solve_mimo(snapshot, omega, method="fast", warm_start=start)
        assert ours is not None  # every start here is feasible or restorable
        np.testing.assert_array_equal(ours.allocation.a, theirs.allocation.a)
        np.testing.assert_array_equal(ours.allocation.b, theirs.allocation.b)
        assert ours.evaluation.ee == theirs.evaluation.ee
        mine = {key: value for key, value in ours.info.items() if key != "wall_time_s"}
        assert mine == {key: value for key, value in theirs.info.items() if key != "wall_time_s"}
        kinds.add(ours.info["start"])
    assert kinds == {"warm", "warm_restored"}  # both branches of solve_mimo's warm start
    assert len({len(solution.info["ee_trace"]) for solution in batch}) > 1  # unequal paths


def test_a_frame_phase_one_cannot_restore_is_left_to_solve_mimo(warm_frames):
    snapshot, omega, start = warm_frames[0]
    hopeless = dataclasses.replace(snapshot, R_th=np.full(snapshot.K, 60.0))  # no power suffices
    batch = solve_warm_batch([hopeless, snapshot], [omega, omega], [start, start])
    assert batch[0] is None and batch[1] is not None
    assert not solve_mimo(hopeless, omega, method="fast", warm_start=start).feasible


def test_bad_batches_raise_naming_the_problem(warm_frames):
    snapshot, omega, start = warm_frames[0]
    with pytest.raises(ValueError):
        solve_warm_batch([snapshot, snapshot], [omega], [start, start])  # lengths differ
    with pytest.raises(ValueError, match="omega"):
        solve_warm_batch([snapshot], [1.5], [start])
    env = gym.make("isac_gym/MIMOISAC-v0", **{**CELL, "K": 1})
    env.reset(seed=0)
    smaller = env.unwrapped.frame_snapshot(env.unwrapped.config.cell.P_max)
    with pytest.raises(ValueError, match=r"equal \(N, K\)"):
        solve_warm_batch([snapshot, smaller], [omega, omega], [start, start])
