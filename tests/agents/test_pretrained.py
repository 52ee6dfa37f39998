"""The shipped agents (agents/pretrained/ISCC-v0/, MIMOISAC-v0/) load and act without training."""

from __future__ import annotations

import json

import gymnasium
import numpy as np
import pytest

import isac_gym  # noqa: F401 - registers the environments
from agents.evaluation import make_env_and_policy, run_episode
from agents.policies import (
    PRETRAINED_DIR,
    ThresholdBudgetParams,
    ThresholdBudgetPolicy,
    make_policy,
    parse_spec,
)
from agents.residual import residual_action

FOLDER = PRETRAINED_DIR / "ISCC-v0"


def test_the_folder_holds_a_model_its_statistics_config_and_card():
    for name in ("model.zip", "vecnormalize.pkl", "config.json", "README.md"):
        assert (FOLDER / name).is_file(), name
    config = json.loads((FOLDER / "config.json").read_text())
    assert config["env_kwargs"]["action_mode"] == "beta_budget"
    assert config["residual"]["base"] == "threshold-budget"
    assert config["residual"]["params"]["threshold"] == 0.9  # the constants it trained on
    assert (FOLDER / "model.zip").stat().st_size < 2_000_000  # committed small


def test_pretrained_runs_in_its_own_env_settings_and_acts_as_trained():
    env, policy = make_env_and_policy("isac_gym/ISCC-v0", "pretrained", {"horizon": 30})
    config = env.unwrapped.config
    assert (config.action_mode, config.oracle, config.horizon) == ("beta_budget", "fast", 30)
    assert policy.name == "pretrained" and policy.residual is not None
    obs, _ = env.reset(seed=0)
    action, _ = policy.predict(obs)
    assert action.shape == env.action_space.shape and np.all(np.abs(action) <= 1.0)
    # the base it trained on: low_budget 0.05 pinned, not today's default of 0.1
    pinned = json.loads((FOLDER / "config.json").read_text())["residual"]["params"]
    assert pinned["low_budget"] == 0.05 != ThresholdBudgetParams().low_budget
    base = ThresholdBudgetPolicy(env, ThresholdBudgetParams(**pinned))
    normalized = policy.vec_normalize.normalize_obs(obs).astype(np.float32)
    correction, _ = policy.model.predict(normalized, deterministic=True)
    np.testing.assert_array_equal(action, residual_action(base.predict(obs)[0], correction, 1.0))
    today = make_policy("threshold-budget", env).predict(obs)[0]
    assert not np.array_equal(action, residual_action(today, correction, 1.0))
    result, _ = run_episode(env, policy, seed=0)
    assert result.slots == 30 and np.isfinite(result.episode_return)


def test_pretrained_takes_no_argument_and_needs_a_shipped_agent(monkeypatch, tmp_path):
    assert parse_spec("pretrained") == ("pretrained", None)
    with pytest.raises(ValueError, match="takes no argument"):
        parse_spec("pretrained:x")
    monkeypatch.setattr("agents.policies.PRETRAINED_DIR", tmp_path)
    with pytest.raises(ValueError, match="no shipped agent"):
        make_policy("pretrained", gymnasium.make("isac_gym/ISCC-v0", oracle="fast"))


MIMO_FOLDER = PRETRAINED_DIR / "MIMOISAC-v0"


def test_the_mimo_folder_holds_a_model_its_statistics_config_and_card():
    for name in ("model.zip", "vecnormalize.pkl", "config.json", "README.md"):
        assert (MIMO_FOLDER / name).is_file(), name
    config = json.loads((MIMO_FOLDER / "config.json").read_text())
    assert config["env_id"] == "isac_gym/MIMOISAC-v0" and config["env_kwargs"] == {}
    assert config["residual"] == {"base": "fixed-omega:hor", "scale": 0.5}
    assert (MIMO_FOLDER / "model.zip").stat().st_size < 2_000_000  # committed small


def test_the_mimo_pretrained_agent_is_a_residual_on_hor_and_runs_an_episode():
    from agents.mimo_evaluation import run_mimo_episode
    from agents.mimo_policies import make_mimo_policy

    env = gymnasium.make("isac_gym/MIMOISAC-v0", horizon=2)
    policy = make_mimo_policy("pretrained", env)
    assert policy.name == "pretrained" and policy.residual is not None
    obs, _ = env.reset(seed=0)
    action, _ = policy.predict(obs)
    hor = make_mimo_policy("fixed-omega:hor", env).predict(obs)[0]
    normalized = policy.vec_normalize.normalize_obs(obs).astype(np.float32)
    correction, _ = policy.model.predict(normalized, deterministic=True)
    np.testing.assert_array_equal(action, residual_action(hor, correction, 0.5))
    assert not np.array_equal(action, hor)  # it acts, not only its base
    episode = run_mimo_episode(env, policy, seed=0)
    assert episode.frames == 2 and np.isfinite(episode.episode_return)
