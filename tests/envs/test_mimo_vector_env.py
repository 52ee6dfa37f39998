"""The native vector form of isac_gym/MIMOISAC-v0: equal to SyncVectorEnv, seeded, async.

The equality tests replace the Dinkelbach oracle by the cheap deterministic stand-in
of test_mimo_oracle.py (it depends on the frame and on the env's warm start), so that
they run whole episodes in well under a second; what they check is the vector env's
bookkeeping, which does not depend on the oracle's quality. One short test runs the
real oracle, and one the async vector env.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from conftest import MIMO_TINY_CELL
from gymnasium.vector import AutoresetMode
from test_mimo_oracle import stand_in_oracle
from test_vector_env import (
    assert_close,
    assert_seeds_give_each_env_its_single_env_trajectory,
    run,
)

import isac_gym  # noqa: F401  (registers the ids)
from isac_gym.envs.mimo_vector import MIMOVectorEnv

ENV_ID = "isac_gym/MIMOISAC-v0"
#: 3-frame episodes on the tiny cell; a low battery and no harvest make silent frames
SHORT = {
    **MIMO_TINY_CELL,
    "solver_options": {"method": "cvxpy", "max_iterations": 3},
    "horizon": 3,
    "b_init": (0.1, 0.15),
    "harvest_power": (0.0, 0.0),
}


@pytest.fixture
def cheap_oracle(monkeypatch):
    import optimizers.mimo

    monkeypatch.setattr(optimizers.mimo, "solve_mimo", stand_in_oracle)


def random_actions(steps, num_envs, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (steps, num_envs, 2)).astype(np.float32)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_native_vector_env_equals_sync_vector_env_through_autoresets(cheap_oracle, mode):
    num_envs, actions = 3, random_actions(8, 3)  # 3-frame episodes: two ends each
    native = gym.make_vec(ENV_ID, num_envs, "vector_entry_point", autoreset_mode=mode, **SHORT)
    sync = gym.make_vec(ENV_ID, num_envs, "sync", vector_kwargs={"autoreset_mode": mode}, **SHORT)
    assert isinstance(native, MIMOVectorEnv) and native.metadata["autoreset_mode"] == mode
    assert native.action_space == sync.action_space
    assert native.observation_space == sync.observation_space
    assert native.single_observation_space == gym.make(ENV_ID, **SHORT).observation_space
    ours, theirs = run(native, actions, seed=[5, 9, 2]), run(sync, actions, seed=[5, 9, 2])
    assert_close(ours, theirs, rtol=0)
    truncations = np.array([step[3] for step in ours[1:]])
    assert truncations.sum() == 2 * num_envs  # the comparison saw autoresets
    infos = [step[4] for step in ours[1:]] + [step[4].get("final_info", {}) for step in ours[1:]]
    statuses = {status for info in infos for status in info.get("status", []) if status}
    assert statuses == {"stand-in", "silent"}  # and frames both solved and silent


def test_seeds_give_each_env_its_single_env_trajectory(cheap_oracle):
    actions = random_actions(4, 2, seed=1)
    assert_seeds_give_each_env_its_single_env_trajectory(MIMOVectorEnv, ENV_ID, SHORT, actions)


def test_partial_reset_by_mask_equals_sync_vector_env(cheap_oracle):
    actions = random_actions(2, 2, seed=2)
    native, sync = MIMOVectorEnv(2, **SHORT), gym.make_vec(ENV_ID, 2, "sync", **SHORT)
    traces = []
    for envs in (native, sync):
        trace = [envs.reset(seed=[1, 2]), envs.step(actions[0])]
        mask = np.array([False, True])
        trace.append(envs.reset(seed=[None, 7], options={"reset_mask": mask}))
        trace.append(envs.step(actions[1]))
        traces.append(trace)
    assert_close(traces[0], traces[1], rtol=0)


def test_the_sb3_adapter_steps_the_mimo_vector_env_like_single_envs(cheap_oracle):
    from agents.vec_env import NativeVecEnv

    venv = NativeVecEnv.make(ENV_ID, 2, **SHORT)
    venv.seed(6)
    obs = venv.reset()
    single = gym.make(ENV_ID, **SHORT)
    np.testing.assert_array_equal(obs[1], single.reset(seed=7)[0])
    for action in random_actions(4, 2, seed=6):  # through one episode end (horizon 3)
        obs, rewards, dones, infos = venv.step(action)
        expected, reward, terminated, truncated, _ = single.step(action[1])
        assert rewards[1] == np.float32(reward) and dones[1] == (terminated or truncated)
        if dones[1]:
            np.testing.assert_array_equal(infos[1]["terminal_observation"], expected)
            break
        np.testing.assert_array_equal(obs[1], expected)
    else:
        pytest.fail("the episode did not end")


def test_per_user_demands_are_seeded_per_env_in_the_vector_env(cheap_oracle):
    kwargs = {**SHORT, "demand_sojourn": 1.5}  # switch w.p. 2/3: the demands move
    actions = random_actions(2, 2, seed=7)
    first, again = (run(MIMOVectorEnv(2, **kwargs), actions, seed=3) for _ in range(2))
    assert_close(first, again, rtol=0)  # same seed, same demands
    single = gym.make(ENV_ID, **kwargs).unwrapped
    demands = []
    for index, seed in enumerate((3, 4)):  # env i is seeded S + i
        single.reset(seed=seed)
        for step, action in enumerate(actions, start=1):
            info = single.step(action[index])[4]
            vector_info = first[step][4]
            assert vector_info["rate_demand"].shape == (2, single.K)
            np.testing.assert_array_equal(vector_info["rate_demand"][index], info["rate_demand"])
            decoded = single.decode_observation(first[step][0][index])["demand"]
            np.testing.assert_allclose(decoded, single._demand, rtol=1e-6)
            demands.append(info["rate_demand"])
    assert not np.array_equal(demands[:2], demands[2:])  # the two envs draw their own


def test_vector_env_rejects_bad_arguments():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="num_envs"):
            MIMOVectorEnv(bad, **SHORT)
    with pytest.raises(ValueError, match="sensing_weight"):
        MIMOVectorEnv(2, **{**SHORT, "sensing_weight": 2.0})
    envs = MIMOVectorEnv(2, **SHORT)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions must have shape \(2, 2\)"):
        envs.step(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        envs.step(np.full((2, 2), np.nan, np.float32))


@pytest.mark.slow
def test_the_real_oracle_runs_in_the_vector_env_as_in_single_envs():
    actions = random_actions(2, 2, seed=3)
    native = run(MIMOVectorEnv(2, **SHORT), actions, seed=11)
    single = gym.make(ENV_ID, **SHORT)
    single.reset(seed=12)
    for step, action in enumerate(actions, start=1):
        obs, reward, _, _, info = single.step(action[1])
        np.testing.assert_array_equal(native[step][0][1], obs)
        assert native[step][1][1] == reward and native[step][4]["status"][1] == info["status"]


def test_async_vector_env_is_seeded_like_the_native_one(cheap_oracle):
    actions = random_actions(4, 2, seed=4)
    native = run(MIMOVectorEnv(2, **SHORT), actions, seed=[8, 1])
    forked = {"context": "fork"}  # the workers inherit the stand-in oracle
    async_envs = gym.make_vec(ENV_ID, 2, "async", vector_kwargs=forked, **SHORT)
    assert_close(native, run(async_envs, actions, seed=[8, 1]), rtol=0)


@pytest.mark.slow
def test_async_vector_env_with_the_real_oracle_is_seeded_like_the_native_one():
    actions = random_actions(3, 2, seed=5)
    native = run(MIMOVectorEnv(2, **SHORT), actions, seed=[4, 6])
    async_envs = gym.make_vec(ENV_ID, 2, "async", **SHORT)
    assert_close(native, run(async_envs, actions, seed=[4, 6]), rtol=0)


#: the tiny cell with the env's default oracle (fast, uncapped)
FAST_CELL = {**MIMO_TINY_CELL, "solver_options": {}, "horizon": 8}


def test_the_native_vector_env_batches_its_warm_frames_and_equals_sync(monkeypatch):
    import optimizers.mimo.batched as batched

    sizes = []
    original = batched.solve_warm_batch

    def counting(snapshots, *args, **options):
        sizes.append(len(snapshots))
        return original(snapshots, *args, **options)

    monkeypatch.setattr(batched, "solve_warm_batch", counting)
    actions = np.random.default_rng(1).uniform(-0.2, 1.0, (5, 3, 2)).astype(np.float32)
    native = gym.make_vec("isac_gym/MIMOISAC-v0", 3, "vector_entry_point", **FAST_CELL)
    sync = gym.make_vec("isac_gym/MIMOISAC-v0", 3, "sync", **FAST_CELL)
    ours, theirs = run(native, actions, seed=4), run(sync, actions, seed=4)
    assert_close(ours, theirs, rtol=0)
    assert sizes and max(sizes) == 3  # after the first (cold) frame: all three together
