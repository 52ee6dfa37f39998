"""Residual control (agents/residual.py): the map, its checks, the wrapper, a saved run."""

from __future__ import annotations

import json

import gymnasium
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

import isac_gym  # noqa: F401 - registers the environments
from agents.policies import SB3Policy, make_policy
from agents.residual import ResidualSpec, ResidualVecEnv, residual_action
from agents.training import TrainSettings, train

ENV_KWARGS = {"oracle": "fast", "horizon": 12, "action_mode": "beta_budget"}


def test_residual_action_by_hand_and_clipped_on_both_sides():
    base = np.array([0.5, -0.5, 0.9, -0.9, 0.0])
    correction = np.array([0.2, -0.4, 0.5, -0.5, 3.0])  # the last is clipped to 1 first
    got = residual_action(base, correction, 0.5)
    np.testing.assert_allclose(got, [0.6, -0.7, 1.0, -1.0, 0.5], atol=1e-7)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(residual_action(base, np.zeros(5), 2.0), base.astype(np.float32))


@pytest.mark.parametrize(
    "value, message",
    [
        ({"base": "random"}, "deterministic non-learned"),
        ({"base": "ppo:model.zip"}, "deterministic non-learned"),
        ({"base": "nonsense"}, "unknown policy"),
        ({"base": "threshold-budget", "scale": 0.0}, r"\(0, 2\]"),
        ({"base": "threshold-budget", "scale": 2.5}, r"\(0, 2\]"),
        ({"base": "threshold-budget", "scale": float("nan")}, r"\(0, 2\]"),
        ({"base": "threshold-budget", "gain": 1.0}, "keys 'base'"),
        ({"base": "threshold-budget", "params": [0.5]}, "params must be a mapping"),
        ("threshold-budget", "mapping"),
    ],
)
def test_bad_residual_specs_are_named(value, message):
    with pytest.raises(ValueError, match=message):
        ResidualSpec.from_dict(value)


def test_scale_at_the_boundary_is_accepted():
    assert ResidualSpec.from_dict({"base": "threshold-budget", "scale": 2}).scale == 2.0
    assert ResidualSpec.from_dict(None) is None


def test_base_policy_in_another_action_mode_is_refused():
    env = gymnasium.make("isac_gym/ISCC-v0", oracle="fast", horizon=12)  # beta mode
    with pytest.raises(ValueError, match="action_mode"):
        ResidualSpec("threshold-budget").base_policy(env)


def _venv(n: int = 2) -> DummyVecEnv:
    venv = DummyVecEnv([lambda: gymnasium.make("isac_gym/ISCC-v0", **ENV_KWARGS)] * n)
    venv.seed(7)
    return venv


def test_zero_correction_is_the_base_policy_and_a_correction_changes_the_step():
    """With r = 0 the wrapper replays the base policy step by step (over an autoreset);
    with r = -1 on the budgets (no UE may spend) the rewards differ."""
    base = make_policy("threshold-budget", gymnasium.make("isac_gym/ISCC-v0", **ENV_KWARGS))
    wrapped, plain = ResidualVecEnv(_venv(), base, 1.0), _venv()
    obs_wrapped, obs_plain = wrapped.reset(), plain.reset()
    for _ in range(15):  # past the 12-slot horizon
        plain.step_async(base.predict(obs_plain)[0])
        wrapped.step_async(np.zeros((2, 8), np.float32))
        obs_plain, rewards_plain, _, _ = plain.step_wait()
        obs_wrapped, rewards_wrapped, _, _ = wrapped.step_wait()
        np.testing.assert_array_equal(obs_wrapped, obs_plain)
        np.testing.assert_array_equal(rewards_wrapped, rewards_plain)
    starved = ResidualVecEnv(_venv(), base, 2.0)
    starved.reset()
    correction = np.concatenate([np.zeros((2, 4)), -np.ones((2, 4))], axis=1)
    totals = np.zeros(2)
    for _ in range(3):
        starved.step_async(correction)
        totals += starved.step_wait()[1]
    assert not np.allclose(totals, 0.0)
    with pytest.raises(RuntimeError, match="before reset"):
        ResidualVecEnv(_venv(), base, 1.0).step_async(np.zeros((2, 8)))


@pytest.fixture(scope="module")
def residual_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("residual") / "run"
    hyperparams = {
        "n_envs": 2,
        "normalize": {"norm_obs": True, "norm_reward": True},
        "policy": "EquivariantPolicy",
        "residual": {"base": "threshold-budget", "scale": 1.0},
        "env_kwargs": ENV_KWARGS,
        "n_steps": 32,
        "batch_size": 32,
        "n_epochs": 1,
    }
    settings = TrainSettings(
        "isac_gym/ISCC-v0", "ppo", 64, out, hyperparams=hyperparams, progress=False,
        eval_freq=64, checkpoint_freq=64,
    )  # fmt: skip
    train(settings)
    return out


def test_a_residual_run_saves_its_spec_and_acts_as_it_trained(residual_run):
    config = json.loads((residual_run / "config.json").read_text())
    pinned = {"threshold": 0.9, "beta_low": 0.01, "beta_high": 1.0, "low_budget": 0.1}
    assert config["residual"] == {"base": "threshold-budget", "scale": 1.0, "params": pinned}
    assert config["policy"] == "EquivariantPolicy"
    env = gymnasium.make("isac_gym/ISCC-v0", **ENV_KWARGS)
    policy = SB3Policy(env, "ppo", residual_run / "model.zip")
    assert policy.action_mode == "beta_budget" and policy.residual is not None
    obs, _ = env.reset(seed=3)
    base = make_policy("threshold-budget", env)
    normalized = policy.vec_normalize.normalize_obs(obs).astype(np.float32)
    correction, _ = policy.model.predict(normalized, deterministic=True)
    expected = residual_action(base.predict(obs)[0], correction, 1.0)
    np.testing.assert_array_equal(policy.predict(obs)[0], expected)
    assert not np.array_equal(expected, base.predict(obs)[0])  # the correction is not 0


def test_the_residual_is_not_applied_in_another_action_mode(residual_run):
    """Built on a beta-mode env (as evaluation first does), the policy declares its
    mode and applies no residual; the evaluation then rebuilds it in beta_budget mode."""
    env = gymnasium.make("isac_gym/ISCC-v0", oracle="fast", horizon=12)
    policy = SB3Policy(env, "ppo", residual_run / "model.zip")
    assert policy.action_mode == "beta_budget" and policy.residual is None


def test_evaluation_runs_a_trained_agent_in_its_own_env_settings(residual_run):
    """Without --env-kwargs the agent's env is its training env (horizon 12, fast,
    beta_budget); a user's setting overrides one key, never the action mode."""
    from agents.evaluation import make_env_and_policy

    spec = f"ppo:{residual_run / 'model.zip'}"
    env, policy = make_env_and_policy("isac_gym/ISCC-v0", spec)
    config = env.unwrapped.config
    assert (config.horizon, config.oracle, config.action_mode) == (12, "fast", "beta_budget")
    assert policy.residual is not None
    env, _ = make_env_and_policy("isac_gym/ISCC-v0", spec, {"horizon": 20, "action_mode": "beta"})
    config = env.unwrapped.config
    assert (config.horizon, config.oracle, config.action_mode) == (20, "fast", "beta_budget")


def test_pinned_params_outlive_a_retuned_default(monkeypatch):
    """A run acts on the base constants it was trained with: after the default is
    retuned, the pinned spec still gives threshold 0.9; an unknown constant is named."""
    import agents.policies as policies

    env = gymnasium.make("isac_gym/ISCC-v0", **ENV_KWARGS)
    pinned = ResidualSpec("threshold-budget").pinned(env)
    assert pinned.params["threshold"] == 0.9
    retuned = policies.ThresholdBudgetParams(threshold=0.3)
    monkeypatch.setattr(policies, "THRESHOLD_BUDGET_DEFAULTS", retuned)
    assert ResidualSpec("threshold-budget").base_policy(env).params.threshold == 0.3
    assert pinned.base_policy(env).params.threshold == 0.9
    with pytest.raises(ValueError, match="residual params for 'threshold-budget'"):
        ResidualSpec("threshold-budget", params={"treshold": 0.5}).base_policy(env)
    with pytest.raises(ValueError, match="has no params"):
        ResidualSpec("fixed-beta:mu", params={"x": 1}).base_policy(env)


# --- MIMOISAC-v0: a base from its own policies -------------------------------------------
def _mimo_env():
    from conftest import MIMO_TINY_CELL

    return gymnasium.make("isac_gym/MIMOISAC-v0", **{**MIMO_TINY_CELL, "horizon": 4})


def test_a_mimo_base_comes_from_the_mimo_policies_and_bad_ones_are_named():
    from agents.mimo_policies import FixedOmegaPolicy

    env = _mimo_env()
    spec = ResidualSpec("fixed-omega:hor")
    assert isinstance(spec.base_policy(env), FixedOmegaPolicy)
    assert spec.pinned(env) == spec  # no constants to pin
    with pytest.raises(ValueError, match="needs env settings"):  # it acts through EqualCom
        ResidualSpec("equal-com").base_policy(env)
    with pytest.raises(ValueError, match="unknown policy.*MIMOISAC-v0: unknown"):
        ResidualSpec("fixed-omegaa:hor")
    with pytest.raises(ValueError, match="random"):
        ResidualSpec("random")  # valid on both envs, but not deterministic


def test_a_mimo_residual_run_acts_as_it_trained_and_is_evaluated(tmp_path):
    from conftest import MIMO_TINY_CELL

    from agents.mimo_evaluation import evaluate_mimo_policies
    from agents.mimo_policies import make_mimo_policy

    out = tmp_path / "run"
    env_kwargs = {**MIMO_TINY_CELL, "horizon": 4}
    hyperparams = {
        "n_envs": 2, "normalize": {"norm_obs": True, "norm_reward": False},
        "policy": "MlpPolicy", "residual": {"base": "fixed-omega:lor", "scale": 0.5},
        "env_kwargs": env_kwargs, "n_steps": 8, "batch_size": 16, "n_epochs": 1,
    }  # fmt: skip
    settings = TrainSettings(
        "isac_gym/MIMOISAC-v0", "ppo", 16, out, hyperparams=hyperparams, progress=False,
        eval_freq=10**6, checkpoint_freq=10**6,
    )  # fmt: skip
    train(settings)
    env = _mimo_env()
    policy = make_mimo_policy(f"ppo:{out / 'model.zip'}", env)
    assert policy.residual is not None
    obs, _ = env.reset(seed=1)
    base = make_mimo_policy("fixed-omega:lor", env)
    correction, _ = policy.model.predict(
        policy.vec_normalize.normalize_obs(obs).astype(np.float32), deterministic=True
    )
    expected = residual_action(base.predict(obs)[0], correction, 0.5)
    np.testing.assert_array_equal(policy.predict(obs)[0], expected)
    [episodes] = evaluate_mimo_policies(
        [f"ppo:{out / 'model.zip'}"], episodes=1, seed=0, env_kwargs=env_kwargs
    )
    assert len(episodes) == 1 and episodes[0].frames == 4 and np.isfinite(episodes[0].reward)
