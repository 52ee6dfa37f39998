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


def _warm_calls(run_episodes) -> list:
    """(snapshot, omega, warm start) of the warm-started oracle calls ``run_episodes()``
    makes."""
    calls = []
    original = optimizers.mimo.solve_mimo

    def recording(snapshot, omega, scheme="proposed", **options):
        calls.append((snapshot, omega, options.get("warm_start")))
        return original(snapshot, omega, scheme, **options)

    optimizers.mimo.solve_mimo = recording
    try:
        run_episodes()
    finally:
        optimizers.mimo.solve_mimo = original
    return [call for call in calls if call[2] is not None]


@pytest.fixture(scope="module")
def warm_frames():
    """The oracle calls of short episodes under changing actions: warm starts feasible
    for their frame and ones phase I restores."""

    def episodes():
        rng = np.random.default_rng(0)
        for seed in range(3):
            env = gym.make("isac_gym/MIMOISAC-v0", **CELL)
            env.reset(seed=seed)
            for _ in range(7):
                env.step(rng.uniform([-1.0, 0.0], [1.0, 1.0]).astype(np.float32))

    return _warm_calls(episodes)


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


def _default_preset_frames(seed: int, steps: int) -> list:
    """The warm-started oracle calls of a default-preset episode under uniform random
    actions (``default_rng(seed)``)."""

    def episode():
        env = gym.make("isac_gym/MIMOISAC-v0")
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        for _ in range(steps):
            env.step(rng.uniform(-1.0, 1.0, 2).astype(np.float32))

    return _warm_calls(episode)


def test_a_frame_whose_phase_one_fails_is_finished_as_solve_mimo_finishes_it():
    """Where phase I from the warm start fails, the batch goes on with solve_mimo's cold
    starts (without running that phase I again): the results, infos included, are
    solve_mimo's bit for bit, whether the cold starts find a feasible point or not
    (default-preset frames under random actions: seed 3 frame 19 is rescued by the
    EqualCom start, seed 2 frame 9 is infeasible from every start)."""
    frames = _default_preset_frames(2, 10) + _default_preset_frames(3, 20)
    snapshots, omegas, starts = zip(*frames, strict=True)
    batch = solve_warm_batch(list(snapshots), list(omegas), list(starts))
    outcomes = set()
    for (snapshot, omega, start), ours in zip(frames, batch, strict=True):
        theirs = solve_mimo(snapshot, omega, method="fast", warm_start=start)
        if ours is None:  # certified infeasible: solve_mimo reports it without a solve
            assert theirs.info["starts"] == ["certificate"]
            continue
        np.testing.assert_array_equal(ours.allocation.a, theirs.allocation.a)
        np.testing.assert_array_equal(ours.allocation.b, theirs.allocation.b)
        mine = {key: value for key, value in ours.info.items() if key != "wall_time_s"}
        assert mine == {key: value for key, value in theirs.info.items() if key != "wall_time_s"}
        assert ours.feasible == theirs.feasible
        if len(ours.info["starts"]) > 1:
            outcomes.add((tuple(ours.info["starts"]), ours.feasible))
    assert outcomes == {
        (("warm_restored", "equal_com"), True),
        (("warm_restored", "equal_split"), False),
    }


def test_the_batch_does_not_run_a_failed_phase_one_twice(warm_frames, monkeypatch):
    """A hopeless frame (rate floors no power reaches): one phase I from the warm start
    (50 steps) and then the cold starts' own, as solve_mimo runs them."""
    import optimizers.mimo.phase_one as phase_one

    snapshot, omega, start = warm_frames[0]
    hopeless = dataclasses.replace(snapshot, R_th=np.full(snapshot.K, 60.0))
    original, budgets = phase_one.restore_feasibility, []

    def counting(model, z, *, margin, max_steps):
        budgets.append(max_steps)
        return original(model, z, margin=margin, max_steps=max_steps)

    monkeypatch.setattr(phase_one, "restore_feasibility", counting)
    (ours,) = solve_warm_batch([hopeless], [omega], [start])
    batch_budgets, budgets[:] = list(budgets), []
    theirs = solve_mimo(hopeless, omega, method="fast", warm_start=start)
    assert not ours.feasible and ours.info["starts"] == theirs.info["starts"]
    assert batch_budgets == budgets and batch_budgets.count(50) == 1


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


def test_a_rescued_frame_left_to_solve_mimos_end_keeps_its_equalcom_solve(monkeypatch):
    """Where the EqualCom point cannot start a batched path (forced here), the rescued
    frame is finished frame by frame from the cold starts already made: solve_mimo's
    result and info, and one EqualCom solve per rescued frame, not two."""
    import optimizers.mimo.batched as batched
    from optimizers.mimo import dinkelbach

    frames = _default_preset_frames(3, 20)
    snapshots, omegas, starts = zip(*frames, strict=True)
    made = []
    cold_starts = dinkelbach._starts

    def counting(*args):
        made.append(args[5:7] == (None, None))  # the cold starts (no given or warm start)
        return cold_starts(*args)

    monkeypatch.setattr(batched, "_warm_path_frame", lambda *args: None)
    monkeypatch.setattr(dinkelbach, "_starts", counting)
    batch = solve_warm_batch(list(snapshots), list(omegas), list(starts))
    monkeypatch.setattr(dinkelbach, "_starts", cold_starts)
    rescued = [s for s in batch if s is not None and len(s.info["starts"]) > 1]
    assert rescued and sum(made) == len(rescued)
    for (snapshot, omega, start), ours in zip(frames, batch, strict=True):
        if ours is None:
            continue
        theirs = solve_mimo(snapshot, omega, method="fast", warm_start=start)
        np.testing.assert_array_equal(ours.allocation.a, theirs.allocation.a)
        mine = {key: value for key, value in ours.info.items() if key != "wall_time_s"}
        assert mine == {key: value for key, value in theirs.info.items() if key != "wall_time_s"}
