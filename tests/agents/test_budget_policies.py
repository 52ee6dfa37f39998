"""The beta_budget policies: lyapunov-budget (hand-computed queue and decision) and
threshold-budget; specs, evaluation in the right mode, tuning."""

import gymnasium as gym
import numpy as np
import pytest

import isac_gym  # noqa: F401  (registers the ids)
from agents import policies
from agents.evaluation import make_env_and_policy, run_episode

ENV_ID = "isac_gym/ISCC-v0"
#: defaults: b_min 0.05, outage_margin 0.02, leakage 1e-3, b_max 1, mu 0.1, e_ref 0.1,
#: drop_penalty 2, outage_penalty 1, eta_c 0.9
SETTINGS = dict(oracle="fast", horizon=5, action_mode="beta_budget", task_probability=1.0)
BATTERY = np.array([0.1, 0.5, 0.9, 0.2])


def env_with_battery(battery=BATTERY):
    env = gym.make(ENV_ID, **SETTINGS)
    env.reset(seed=0)
    env.unwrapped._battery = np.array(battery, float)
    return env, env.unwrapped._observation()


def test_lyapunov_budget_decision_against_a_hand_computed_step():
    env, obs = env_with_battery()
    policy = policies.LyapunovBudgetPolicy(
        env, policies.LyapunovBudgetParams(V=0.1, theta=0.85, rho=1.0)
    )
    # c_k = V + theta b_max - B_k = 0.95 - B
    price = np.array([0.85, 0.45, 0.05, 0.75])
    np.testing.assert_allclose(
        policy.queue_price(env.unwrapped.decode_observation(obs)), price, rtol=1e-6
    )
    beta = 0.01 / price  # V mu / c_k (gamma_Z = 0)
    # U = 0.999 B - 0.05, U_safe = 0.999 B - 0.07 - 1e-6; dip iff 0.1 * 0.1 * (2 - 1)
    # > c_k (U - U_safe) = c_k * 0.020001, i.e. c_k < 0.49998: UEs 1 and 2
    fraction = np.array([(0.0999 - 0.070001) / 0.0499, 1.0, 1.0, (0.1998 - 0.070001) / 0.1498])
    action, _ = policy.predict(obs)
    assert action.shape == (8,) and action.dtype == np.float32
    np.testing.assert_allclose(action[:4], env.unwrapped.beta_to_action(beta), atol=2e-6)
    np.testing.assert_allclose(action[4:], 2 * fraction - 1, atol=2e-5)


def test_lyapunov_budget_rho_decides_the_dip_on_both_sides():
    env, obs = env_with_battery([0.1, 0.1, 0.1, 0.1])  # c_k = 0.85
    decoded = env.unwrapped.decode_observation(obs)
    safe = (0.0999 - 0.070001) / 0.0499
    # dip iff 0.01 (2 - rho) > 0.85 * 0.020001 = 0.0170009, i.e. rho < 0.29999
    for rho, expected in ((0.29, 1.0), (0.31, safe), (2.0, safe)):
        params = policies.LyapunovBudgetParams(V=0.1, theta=0.85, rho=rho)
        _, fraction = policies.LyapunovBudgetPolicy(env, params).decide(decoded)
        np.testing.assert_allclose(fraction, expected, rtol=1e-4)
    with pytest.raises(ValueError, match="rho must be >= 0"):
        policies.LyapunovBudgetPolicy(env, policies.LyapunovBudgetParams(rho=-1))


def test_the_queue_follows_the_battery_update_of_a_step():
    env, obs = env_with_battery()
    policy = policies.LyapunovBudgetPolicy(
        env, policies.LyapunovBudgetParams(V=0.1, theta=0.85, rho=1.0)
    )
    action, _ = policy.predict(obs)
    obs, _, _, _, info = env.step(action)
    # B(t+1) = min(1, 0.999 B - E^u + 0.9 e), computed here by hand
    battery = np.minimum(1.0, 0.999 * BATTERY - info["energy_ue"] + 0.9 * info["harvest"])
    np.testing.assert_allclose(info["battery"], battery, rtol=1e-12)
    assert (info["energy_ue"] > 0).any()  # the queue moved
    decoded = env.unwrapped.decode_observation(obs)
    np.testing.assert_allclose(policy.queue_price(decoded), 0.95 - battery, atol=1e-6)


def test_threshold_budget_decision_on_both_sides_of_the_threshold():
    env, obs = env_with_battery([0.1, 0.5, 0.9, 0.2])  # levels s = (B - 0.05) / 0.95
    params = policies.ThresholdBudgetParams(
        threshold=0.2, beta_low=0.01, beta_high=0.3, low_budget=0.5
    )
    beta, fraction = policies.ThresholdBudgetPolicy(env, params).decide(
        env.unwrapped.decode_observation(obs)
    )
    level = np.array([0.05, 0.45, 0.85, 0.15]) / 0.95
    np.testing.assert_allclose(beta, 0.01 * 30**level, rtol=1e-5)
    usable = np.array([0.0499, 0.4495, 0.8491, 0.1498])
    safe = (usable - 0.020001) / usable
    expected = np.array([0.5 * safe[0], safe[1], safe[2], 0.5 * safe[3]])  # s < 0.2: rationed
    np.testing.assert_allclose(fraction, expected, rtol=1e-4)
    with pytest.raises(ValueError, match="low_budget"):
        policies.ThresholdBudgetPolicy(env, policies.ThresholdBudgetParams(low_budget=1.5))


@pytest.mark.parametrize("spec", ["lyapunov-budget", "threshold-budget"])
def test_specs_run_in_budget_mode_without_outage_from_safe_budgets(spec):
    assert spec in policies.NON_LEARNED
    env, policy = make_env_and_policy(ENV_ID, spec, dict(oracle="fast", horizon=20))
    assert policy.action_mode == env.unwrapped.config.action_mode == "beta_budget"
    result, _ = run_episode(env, policy, seed=1000)
    assert result.slots == 20 and result.tasks > 0
    assert result.outages == 0  # default batteries stay above b_out with safe budgets
    with pytest.raises(ValueError, match="takes no argument"):
        policies.parse_spec(f"{spec}:3")


def test_tuning_searches_the_budget_policies_in_their_mode():
    from agents.tuning import GRIDS, tune

    assert {"lyapunov-budget", "threshold-budget"} <= set(GRIDS)
    report = tune(
        "threshold-budget",
        grid={"threshold": [1.0], "low_budget": [0.0, 1.0]},  # always below the threshold
        seeds=(1000,),
        env_kwargs={"horizon": 3, "task_probability": 1.0},
        progress=False,
    )
    best, worst = report["search"]
    assert best["params"] == {"threshold": 1.0, "low_budget": 1.0} == report["best"]
    assert best["success_rate"] > 0.5 and worst["success_rate"] == 0.0  # no budget, no task


def test_tuning_seed_lists_take_inclusive_ranges():
    import argparse

    from isac_gym.cli import seed_list as _seed_list

    assert _seed_list("1000-1099") == tuple(range(1000, 1100))  # the validation seeds
    assert _seed_list("7") == (7,) and _seed_list("1, 3-4") == (1, 3, 4)
    for bad in ("5-3", "a", "1-", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="ranges A-B"):
            _seed_list(bad)
