"""agents.vec_env.SubprocNativeVecEnv: NativeVecEnv's envs split over worker processes."""

import csv
import multiprocessing

import numpy as np
import pytest
import torch

import isac_gym  # noqa: F401  (registers the ids)
from agents import training
from agents.vec_env import NativeVecEnv, SubprocNativeVecEnv
from isac_gym.cli import UsageError

ENV_ID = "isac_gym/ISCC-v0"
SHORT = dict(oracle="fast", horizon=3, b_init=(0.05, 0.3), task_probability=1.0)
TIMINGS = ("oracle_time_s",)  #: wall times, the one part of an info that may differ


def _assert_same_infos(ours: list[dict], expected: list[dict]) -> None:
    for info, other in zip(ours, expected, strict=True):
        assert info.keys() == other.keys()
        for key, value in other.items():
            if key in TIMINGS:
                continue
            if isinstance(value, dict):
                assert info[key].keys() == value.keys()
                value, mine = list(value.values()), list(info[key].values())
            else:
                mine = info[key]
            np.testing.assert_array_equal(mine, value, err_msg=key)


def test_two_workers_give_the_native_trajectories_through_autoresets():
    """Env i is seeded s + i in whichever worker it lives: 7 steps of 3-slot episodes
    (two autoresets per env) equal NativeVecEnv's; attributes reach the owning env."""
    native = NativeVecEnv.make(ENV_ID, 4, **SHORT)
    split = SubprocNativeVecEnv(ENV_ID, 4, n_procs=2, **SHORT)
    try:
        for venv in (native, split):
            venv.seed(21)
        np.testing.assert_array_equal(split.reset(), native.reset())
        _assert_same_infos(split.reset_infos, native.reset_infos)
        actions = np.random.default_rng(0).uniform(-1, 1, (7, 4, 4)).astype(np.float32)
        ends = 0
        for action in actions:
            ours, theirs = split.step(action), native.step(action)
            for mine, other in zip(ours[:3], theirs[:3], strict=True):
                np.testing.assert_array_equal(mine, other)
                assert mine.dtype == other.dtype
            _assert_same_infos(ours[3], theirs[3])
            _assert_same_infos(split.reset_infos, native.reset_infos)
            ends += int(ours[2].sum())
        assert ends == 8  # two 3-slot episodes per env ended and were reset at once
        split.set_attr("tag", "mine", indices=[3])
        assert split.get_attr("tag", [3]) == ["mine"] and not split.has_attr("tag")
        assert split.get_attr("K", [3, 0, -1]) == [4, 4, 4]
        assert split.env_method("__getattribute__", "tag", indices=3) == ["mine"]
        assert split.env_is_wrapped(object) == [False] * 4
    finally:
        split.close()


def test_n_procs_must_divide_n_envs():
    with pytest.raises(ValueError, match=r"num_envs \(5\) must be divisible by n_procs \(2\)"):
        SubprocNativeVecEnv(ENV_ID, 5, n_procs=2, **SHORT)
    with pytest.raises(ValueError, match="n_procs must be an integer >= 1, got 0"):
        SubprocNativeVecEnv(ENV_ID, 4, n_procs=0)
    with pytest.raises(ValueError, match="start_method must be one of"):
        SubprocNativeVecEnv(ENV_ID, 4, n_procs=2, start_method="fork")
    assert not multiprocessing.active_children()
    settings = dict(env_id=ENV_ID, algo="ppo", timesteps=8, out="unused", progress=False)
    for options, message in (
        (dict(n_envs=6, n_procs=4), r"n_envs \(6\) must be divisible by n_procs \(4\)"),
        (dict(n_envs=4, n_procs=2, vec_env="dummy"), "n_procs > 1 needs vec_env native"),
    ):
        with pytest.raises(UsageError, match=message):
            training.resolve(training.TrainSettings(**settings, **options))


def test_a_worker_error_is_raised_here_with_its_message():
    """An attribute error leaves the envs usable; a failed step closes every worker."""
    venv = SubprocNativeVecEnv(ENV_ID, 4, n_procs=2, **SHORT)
    with pytest.raises(AttributeError, match="'ISCCEnv' object has no attribute 'nope'") as caught:
        venv.get_attr("nope", indices=2)
    assert "raised in worker 1 (envs 2-3)" in caught.value.__notes__
    assert "Traceback" in str(caught.value.__cause__)
    venv.seed(0)
    venv.reset()
    with pytest.raises(ValueError, match=r"action.*shape") as caught:
        venv.step(np.zeros((4, 3), np.float32))  # the action space is (4,)
    assert "raised in worker 0 (envs 0-1)" in caught.value.__notes__
    assert venv.closed and not any(process.is_alive() for process in venv.processes)
    with pytest.raises(RuntimeError, match="closed"):
        venv.reset()
    with pytest.raises(ValueError, match="oracle"):  # an error while the workers start
        SubprocNativeVecEnv(ENV_ID, 2, n_procs=2, oracle="nope")
    assert not multiprocessing.active_children()
    venv = SubprocNativeVecEnv(ENV_ID, 2, n_procs=2, **SHORT)
    venv.processes[1].kill()  # as the kernel's out-of-memory killer would
    venv.processes[1].join()
    with pytest.raises(RuntimeError, match=r"worker 1 ended \(exit code -9\)"):
        venv.reset()
    assert not multiprocessing.active_children()


def test_close_ends_every_worker_and_a_lost_main_process_too():
    venv = SubprocNativeVecEnv(ENV_ID, 2, n_procs=2, **SHORT)
    venv.close()
    assert [process.exitcode for process in venv.processes] == [0, 0]
    assert not multiprocessing.active_children()
    venv.close()  # twice is fine
    orphan = SubprocNativeVecEnv(ENV_ID, 2, n_procs=2, **SHORT)
    for remote in orphan.remotes:  # what the workers see when this process dies
        remote.close()
    for process in orphan.processes:
        process.join(timeout=20)
    assert [process.exitcode for process in orphan.processes] == [0, 0]


def test_training_with_two_workers_is_the_single_process_run(tmp_path):
    """The same PPO run (residual on threshold-budget, VecNormalize: ppo.yml's wrappers;
    monitor file, parameters) with n_procs 1 and 2; the phase times are logged."""
    from stable_baselines3 import PPO

    hyperparams = dict(n_envs=4, normalize=True, n_steps=8, batch_size=16, n_epochs=1)
    hyperparams["residual"] = {"base": "threshold-budget", "scale": 1.0}
    env_kwargs = {**SHORT, "action_mode": "beta_budget"}
    runs = {}
    for n_procs in (1, 2):
        out = tmp_path / f"p{n_procs}"
        options = dict(env_kwargs=env_kwargs, hyperparams=hyperparams, eval_freq=10**6)
        training.train(ENV_ID, "ppo", 64, out, n_procs=n_procs, progress=False, **options)
        monitor = (out / "monitor" / "native.monitor.csv").read_text().splitlines()[2:]
        policy = PPO.load(out / "model.zip", device="cpu").policy.state_dict()
        runs[n_procs] = [row.split(",")[:2] for row in monitor], policy  # r, l (not t)
    assert runs[1][0] == runs[2][0] and len(runs[1][0]) >= 16
    assert all(torch.equal(value, runs[2][1][key]) for key, value in runs[1][1].items())
    assert not multiprocessing.active_children()
    rows = list(csv.DictReader((out / "logs" / "run_0" / "progress.csv").open()))
    assert float(rows[-1]["time/rollouts_s"]) > 0 and float(rows[-1]["time/updates_s"]) > 0
