"""The native vector env ISCCVectorEnv: equal to SyncVectorEnv, seeded, diagnose_drops."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import isac_gym  # noqa: F401  (registers the ids)
from isac_gym.envs.allocation import DROP_CAUSES, UNDIAGNOSED_CODE
from isac_gym.envs.vector import ISCCVectorEnv

ENV_ID = "isac_gym/ISCC-v0"
#: short episodes whose batteries run low: fallbacks and drops of every cause happen, so
#: the envs of one batch need different numbers of oracle rounds
DRAINING = dict(
    oracle="fast",
    horizon=4,
    b_init=(0.05, 0.3),
    deadline=(0.1, 1.0),
    C_ap=3e9,
    harvest_rate_on=0.0,
    harvest_rate_off=0.0,
    task_probability=1.0,
)


def assert_close(a, b, path="", rtol=1e-9):
    """Nested equality: exact for bools, ints and objects; floats to ``rtol`` (a batched
    oracle equals the per-slot one to 1e-9 relative, the loop fallback exactly)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), (path, set(a) ^ set(b))
        for key in a:
            assert_close(a[key], b[key], f"{path}/{key}", rtol)
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), path
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{path}[{index}]", rtol)
    elif isinstance(a, np.ndarray) and a.dtype.kind == "f":
        assert a.dtype == b.dtype and a.shape == b.shape, path
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0, err_msg=path)
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert a.shape == b.shape, path
        for x, y in zip(a, b, strict=True):
            assert_close(x, y, path, rtol)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, path
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, float):
        assert a == b or a == pytest.approx(b, rel=rtol, abs=0), path  # (WallTimes: equal)
    else:
        assert a == b, path


def run(envs, actions, seed):
    trace = [envs.reset(seed=seed)]
    trace += [envs.step(action) for action in actions]
    envs.close()
    return trace


def random_actions(steps, num_envs, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (steps, num_envs, 4)).astype(np.float32)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_native_vector_env_equals_sync_vector_env_through_autoresets(mode):
    num_envs, actions = 2, random_actions(9, 2)  # 4-slot episodes: two ends each
    kwargs = dict(num_envs=num_envs, **DRAINING)
    native = gym.make_vec(ENV_ID, vectorization_mode="vector_entry_point", **kwargs)
    native.unwrapped.autoreset_mode = mode
    native.unwrapped.metadata["autoreset_mode"] = mode
    sync = gym.make_vec(
        ENV_ID, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode}, **kwargs
    )
    assert isinstance(native, ISCCVectorEnv) and native.metadata["autoreset_mode"] == mode
    assert native.action_space == sync.action_space
    assert native.observation_space == sync.observation_space
    ours, theirs = run(native, actions, seed=[5, 9]), run(sync, actions, seed=[5, 9])
    assert_close(ours, theirs)
    # the comparison saw autoresets, drops and more than one cause
    truncations = np.array([step[3] for step in ours[1:]])
    assert truncations.sum() == 2 * num_envs
    causes = np.concatenate([s[4]["drop_cause"].ravel() for s in ours[1:] if "drop_cause" in s[4]])
    assert len(set(causes[causes > 0])) >= 2


def assert_seeds_give_each_env_its_single_env_trajectory(make_vector, env_id, kwargs, actions):
    """A vector env of 2 reset with an int seed S steps env i as ``gym.make(env_id)``
    reset with S + i; a list of seeds seeds each env; the same seed, the same run.
    ``actions``: (steps >= 3, 2, ...) actions of both envs."""
    native = run(make_vector(2, **kwargs), actions, seed=3)
    again = run(make_vector(2, **kwargs), actions, seed=3)
    assert_close(native, again, rtol=0)
    single = gym.make(env_id, **kwargs)
    obs, _ = single.reset(seed=4)  # an int seed S gives env i the seed S + i
    np.testing.assert_array_equal(native[0][0][1], obs)
    for step, action in enumerate(actions[:3], start=1):
        obs, reward, _, _, info = single.step(action[1])
        np.testing.assert_array_equal(native[step][0][1], obs)
        assert native[step][1][1] == reward
        np.testing.assert_array_equal(native[step][4]["battery"][1], info["battery"])
    other = run(make_vector(2, **kwargs), actions[:1], seed=[3, 5])
    assert not np.array_equal(native[0][0][1], other[0][0][1])


def test_seeds_give_each_env_its_single_env_trajectory():
    actions = random_actions(4, 2, seed=1)
    assert_seeds_give_each_env_its_single_env_trajectory(ISCCVectorEnv, ENV_ID, DRAINING, actions)


@pytest.mark.parametrize("vector", [False, True])
def test_without_diagnosis_the_trajectory_and_drop_counts_stay(vector):
    actions = random_actions(4, 2, seed=2)
    if vector:
        on = run(ISCCVectorEnv(2, **DRAINING), actions, seed=0)
        off = run(ISCCVectorEnv(2, diagnose_drops=False, **DRAINING), actions, seed=0)
    else:
        on = [run_single(a, diagnose_drops=True) for a in (actions[:, 0],)][0]
        off = [run_single(a, diagnose_drops=False) for a in (actions[:, 0],)][0]
    dropped = 0
    for step_on, step_off in zip(on[1:], off[1:], strict=True):
        assert_close(step_on[:4], step_off[:4], rtol=0)  # obs, reward, terminated, truncated
        info_on, info_off = step_on[4], step_off[4]
        causes_on = {key for key in info_on["drops"] if not key.startswith("_")}
        causes_off = {key for key in info_off["drops"] if not key.startswith("_")}
        assert causes_on == set(DROP_CAUSES) and causes_off == {"undiagnosed"}
        drops_on = sum(np.asarray(info_on["drops"][cause]) for cause in DROP_CAUSES)
        np.testing.assert_array_equal(drops_on, info_off["drops"]["undiagnosed"])
        failed = np.asarray(info_on["drop_cause"]) > 0
        np.testing.assert_array_equal(np.asarray(info_off["drop_cause"]) > 0, failed)
        assert np.all(np.asarray(info_off["drop_cause"])[failed] == UNDIAGNOSED_CODE)
        assert np.all(np.asarray(info_on["drop_cause"])[failed] <= len(DROP_CAUSES))
        dropped += int(failed.sum())
        for key in set(info_on) - {"drops", "_drops", "drop_cause", "oracle_iterations"}:
            assert_close(info_on[key], info_off[key], key, rtol=0)
    assert dropped >= 2


def run_single(actions, **config):
    env = gym.make(ENV_ID, **{**DRAINING, **config})
    return run(env, actions, seed=0)


def test_vector_env_rejects_bad_arguments():
    envs = ISCCVectorEnv(2, **DRAINING)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(2, 4\)"):
        envs.step(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        envs.step(np.full((2, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="num_envs"):
        ISCCVectorEnv(0)
    with pytest.raises(ValueError, match="seeds"):
        envs.reset(seed=[1, 2, 3])
    with pytest.raises(ValueError, match="diagnose_drops"):
        ISCCVectorEnv(2, diagnose_drops="yes")


def test_env_bench_runs_whole_episodes_of_both_policies(capsys):
    from experiments import env_bench

    single = env_bench.measure("fast", episodes=2, policy="draining", horizon=3)
    assert single["steps"] == 6 and single["steps_per_s"] > 0 and single["oracle_ms"] > 0
    rows = list(env_bench.vector_table(["fast"], [1, 2], [2], horizon=3))
    assert [(r["policy"], r["N"]) for r in rows] == [
        ("random", 1),
        ("draining", 1),
        ("random", 2),
        ("draining", 2),
    ]
    assert np.isnan(rows[0]["sync"]) and rows[3]["sync"] > 0 and rows[3]["native"] > 0
    assert np.isnan(rows[0]["sync_cpu"]) and rows[3]["sync_cpu"] > 0 and rows[3]["native_cpu"] > 0
    shares = dict(env_bench.profile_vector_step(horizon=3, num_envs=2))
    assert 0.0 < shares["oracle (solve_batch, evaluation included)"] < 1.0, shares
    assert all(share >= 0.0 for share in shares.values()), shares
    assert 0.0 < sum(shares.values()) <= 1.0 + 1e-9, shares
    with pytest.raises(ValueError, match="policy"):
        env_bench.policy_actions("greedy", (4,), np.random.default_rng(0))


def test_partial_reset_by_mask_equals_sync_vector_env():
    kwargs = dict(num_envs=3, **DRAINING)
    native = gym.make_vec(ENV_ID, vectorization_mode="vector_entry_point", **kwargs)
    sync = gym.make_vec(ENV_ID, vectorization_mode="sync", **kwargs)
    actions = random_actions(2, 3, seed=4)
    mask = np.array([False, True, False])
    traces = []
    for envs in (native, sync):
        trace = [envs.reset(seed=1)]
        trace.append(envs.step(actions[0]))
        trace.append(envs.reset(seed=[None, 40, None], options={"reset_mask": mask.copy()}))
        trace.append(envs.step(actions[1]))
        traces.append(trace)
    assert_close(traces[0], traces[1])
    assert native.unwrapped.get_attr("K") == sync.get_attr("K") == (4, 4, 4)
    with pytest.raises(ValueError, match="reset_mask"):
        native.reset(options={"reset_mask": np.zeros(3, dtype=bool)})


def test_one_solve_batch_call_per_oracle_round(monkeypatch):
    import optimizers

    calls, mixed = [], []
    batched = optimizers.solve_batch

    def recording(snapshots, beta, method="fast", mixed_k=False, **options):
        sizes = {snapshot.K for snapshot in snapshots}
        assert mixed_k or len(sizes) == 1  # different sizes share a padded batch only
        assert [np.size(b) for b in beta] == [snapshot.K for snapshot in snapshots]
        calls.append((method, len(snapshots)))
        mixed.append(len(sizes) > 1)
        return batched(snapshots, beta, method=method, mixed_k=mixed_k, **options)

    monkeypatch.setattr(optimizers, "solve_batch", recording, raising=False)
    # full batteries, every UE has a task and is served: one round, one batch of all N
    easy = dict(oracle="fast", horizon=3, task_probability=1.0, b_init=(0.9, 0.9))
    envs = ISCCVectorEnv(5, **easy)
    envs.reset(seed=0)
    _, _, _, _, info = envs.step(np.zeros((5, 4), np.float32))
    assert info["success"].all() and calls == [("fast", 5)]
    # with drops: several rounds, still one call per round and method (``fast`` here:
    # oracle, fallback and drop causes alike), the envs' slots of different K together
    from isac_gym.envs import allocation

    rounds = []
    solve_round = allocation._solve_round
    monkeypatch.setattr(
        allocation, "_solve_round", lambda *a: rounds.append(len(calls)) or solve_round(*a)
    )
    calls.clear()
    envs = ISCCVectorEnv(4, **DRAINING)
    envs.reset(seed=5)
    for action in random_actions(3, 4, seed=3):
        envs.step(action)
    assert len(calls) == len(rounds) and rounds == list(range(len(rounds)))
    assert any(size > 1 for _, size in calls) and any(mixed)
    assert len(calls) < sum(size for _, size in calls)


def test_channels_drawn_for_all_envs_at_once_equal_each_envs_own_bit_for_bit(monkeypatch):
    from isac_gym.iscc import scenario
    from isac_gym.iscc.scenario import channels_from_draws

    def dense(snapshot):
        raise AssertionError("a dense channel was built in the vector env's step")

    envs = ISCCVectorEnv(3, **{**DRAINING, "horizon": 5})  # fallbacks and drop causes too
    envs.reset(seed=4)
    # the fast oracle and evaluate_batch work from the path factors: no dense H is built
    monkeypatch.setattr(scenario, "_DENSE_BUILDERS", {"H": dense, "H_sense": dense})
    for _ in range(3):
        envs.step(random_actions(1, 3)[0])
    monkeypatch.undo()
    positions = {tuple(env._position.ravel()) for env in envs.envs}
    assert len(positions) == 3  # the envs' slots differ
    for env in envs.envs:
        alone = channels_from_draws(env.config.cell, env._position, env._heading, env._fading)
        for name, value in alone.items():
            np.testing.assert_array_equal(getattr(env._snapshot, name), value, err_msg=name)


def _same_infos(ours, theirs):
    """Equal vector infos: key order, types, dtypes, shapes and values."""
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        if isinstance(value, dict):
            _same_infos(ours[key], value)
            continue
        assert type(ours[key]) is type(value) and ours[key].dtype == value.dtype, key
        assert ours[key].shape == value.shape, key
        assert [repr(x) for x in ours[key].ravel()] == [repr(x) for x in value.ravel()], key


def test_vector_infos_built_key_by_key_equal_gymnasiums_add_info_fold():
    from isac_gym.envs.iscc import WallTime
    from isac_gym.envs.vector import stacked_infos

    envs = ISCCVectorEnv(5, oracle="fast")
    entries = [
        (0, {"a": 1.5, "n": 3, "flag": True, "arr": np.array([1, 2]), "wall": WallTime(0.1),
             "nested": {"x": np.float32(2), "y": {"z": 1}}, "name": "s"}),
        (2, {"battery": np.array([0.5, 0.25]), "a": 2, "n": np.int64(4)}),
        (3, {"nested": {"y": {"z": 5.5}, "w": 7}, "arr": np.array([3.7, 4.0]), "flag": False}),
        (4, {}),
    ]  # fmt: skip
    theirs: dict = {}
    for index, info in entries:
        theirs = envs._add_info(theirs, info, index)
    indices, infos = zip(*entries, strict=True)
    _same_infos(stacked_infos(list(indices), list(infos), 5), theirs)
    assert envs._vector_infos(entries).keys() == theirs.keys()
    for special in ({"final_obs": 1}, {"_a": 1}, {"a": {"x": 1}}):  # left to the fold
        assert stacked_infos([0, 1], [{"a": 1.0}, special], 5) is None
