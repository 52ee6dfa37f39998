"""agents.vec_env.NativeVecEnv: SB3's DummyVecEnv conventions on the native vector env."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

import isac_gym  # noqa: F401  (registers the ids)
from agents import training
from agents.vec_env import NativeVecEnv

ENV_ID = "isac_gym/ISCC-v0"
SHORT = dict(oracle="fast", horizon=3, b_init=(0.05, 0.3), task_probability=1.0)


def test_native_adapter_equals_dummy_vec_env_through_autoresets():
    native = NativeVecEnv.make(ENV_ID, 2, **SHORT)
    dummy = DummyVecEnv([lambda: gym.make(ENV_ID, **SHORT) for _ in range(2)])
    actions = np.random.default_rng(0).uniform(-1, 1, (7, 2, 4)).astype(np.float32)
    for venv in (native, dummy):
        venv.seed(21)
    np.testing.assert_array_equal(native.reset(), dummy.reset())
    ends = 0
    for action in actions:
        ours, theirs = native.step(action), dummy.step(action)
        for mine, other in zip(ours[:3], theirs[:3], strict=True):
            np.testing.assert_array_equal(mine, other)
            assert mine.dtype == other.dtype
        for info, expected in zip(ours[3], theirs[3], strict=True):
            assert info.keys() == expected.keys()
            np.testing.assert_array_equal(info["battery"], expected["battery"])
            assert info["TimeLimit.truncated"] == expected["TimeLimit.truncated"]
            if "terminal_observation" in expected:
                np.testing.assert_array_equal(
                    info["terminal_observation"], expected["terminal_observation"]
                )
        ends += int(ours[2].sum())
    assert ends == 4  # two 3-slot episodes per env ended and were reset at once
    assert native.get_attr("K") == [4, 4] and native.env_is_wrapped(object) == [False, False]


def test_ppo_trains_on_native_envs_with_a_monitor_file(tmp_path):
    assert training.default_vec_env(ENV_ID) == "native"
    venv = training._make_env(ENV_ID, 4, 0, SHORT, "native", monitor_dir=str(tmp_path))
    assert venv.unwrapped.envs[0].config.diagnose_drops is False  # training skips causes
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=32)
    assert model.num_timesteps == 32
    rows = (tmp_path / "native.monitor.csv").read_text().splitlines()
    assert len(rows) - 2 >= 4 and rows[2].split(",")[1] == "3"  # episodes of 3 slots
    with pytest.raises(ValueError, match="vec_env"):
        training.train(ENV_ID, "ppo", 8, tmp_path / "x", vec_env="threads", progress=False)
