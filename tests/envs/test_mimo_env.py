"""isac_gym/MIMOISAC-v0: spaces, checkers, determinism, energy accounting, rewards,
per-user demand chains.

A tiny cell (4 x 4 UPA, K = 2, N = 2, loose CRB ceilings) keeps the Dinkelbach oracle
at a few frames per second, so these tests stay short.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from conftest import MIMO_TINY_CELL

import isac_gym  # noqa: F401  (registers the ids)

TINY = MIMO_TINY_CELL


def make(**overrides):
    return gym.make("isac_gym/MIMOISAC-v0", **{**TINY, **overrides})


def rollout(env, actions, seed=3):
    obs, _ = env.reset(seed=seed)
    steps = [(obs, None, None)]
    for action in actions:
        obs, reward, _, _, info = env.step(action)
        steps.append((obs, reward, info))
    return steps


def test_checkers_pass_without_warnings():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(make().unwrapped, skip_render_check=True)
        sb3_check_env(make().unwrapped, warn=True)


def test_same_seed_same_trajectory_and_exogenous_draws_ignore_the_actions():
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (4, 2)).astype(np.float32)
    first, second = rollout(make(), actions), rollout(make(), actions)
    for (obs_a, r_a, _), (obs_b, r_b, _) in zip(first, second, strict=True):
        np.testing.assert_array_equal(obs_a, obs_b)
        assert r_a == r_b
    other = rollout(make(), -actions)
    for (_, _, info_a), (_, _, info_b) in zip(first[1:], other[1:], strict=True):
        assert info_a["harvest"] == info_b["harvest"]
        np.testing.assert_array_equal(info_a["rate_demand"], info_b["rate_demand"])
    env_a, env_b = make().unwrapped, make().unwrapped
    rollout(env_a, actions), rollout(env_b, -actions)
    np.testing.assert_array_equal(env_a._position, env_b._position)
    np.testing.assert_array_equal(env_a._fading, env_b._fading)
    assert env_a._azimuth == env_b._azimuth


def test_frame_energy_is_total_power_times_frame_time_and_the_battery_pays_it():
    env = make(leakage=0.0).unwrapped
    env.reset(seed=1)
    cell, cfg = env.config.cell, env.config
    for action in ([1.0, 1.0], [-1.0, -0.5], [0.0, 0.3]):
        _, _, _, _, info = env.step(np.array(action, np.float32))
        power = info["transmit_power"] / cell.eta + cell.P_c + cell.xi * info["se"].sum()  # (12)
        assert info["energy"] == pytest.approx(power * cfg.frame_duration, rel=1e-12)
        expected = min(cfg.b_max, info["battery_before"] - info["energy"] + 0.9 * info["harvest"])
        assert info["battery"] == pytest.approx(expected, rel=1e-12)
        assert info["transmit_power"] <= info["budget"] * (1 + 1e-6)


def test_the_budget_is_the_agents_fraction_of_p_max():
    env = make().unwrapped
    env.reset(seed=0)
    lo, hi = env.config.budget_range
    assert env.transmit_budget(hi) == pytest.approx(env.config.cell.P_max)
    omega, fraction = env.action_to_decision([-1.0, -1.0])
    assert (omega, fraction) == pytest.approx((1e-6, lo))
    omega, fraction = env.action_to_decision([1.0, 1.0])
    assert (omega, fraction) == pytest.approx((1e-2, hi))
    np.testing.assert_allclose(env.decision_to_action(1e-4, (lo + hi) / 2), [0.0, 0.0], atol=1e-7)


def test_an_empty_battery_leaves_the_frame_silent_and_penalised():
    env = make(b_init=(0.1, 0.1), b_min=0.1, harvest_power=(0.0, 0.0)).unwrapped
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.ones(2, np.float32))
    assert info["status"] == "silent" and info["energy"] == 0.0
    assert info["rewards"]["rate_miss"] == -2.0  # both users miss their demand
    assert info["rewards"]["crb_miss"] == -2.0 * env.config.crb_penalty  # both ceilings
    assert info["rewards"]["outage"] == -2.0  # B < b_min + margin
    assert reward == pytest.approx(-4.0 - 2.0 * env.config.crb_penalty)


def test_starving_every_frame_below_the_sensing_ceilings_does_not_pay():
    """Default preset: a budget of 5 % of P_max is below the CRB ceilings' least power, so
    every frame is infeasible and transmits its start; the rate floors mostly hold and the
    EE per watt is several times the full budget's, so only the CRB penalty keeps that
    from being the best policy."""
    returns, comm = {}, {}
    for label, budget_action in (("full", 1.0), ("starved", -1.0)):
        env = gym.make("isac_gym/MIMOISAC-v0", horizon=20)
        env.reset(seed=0)
        steps = [env.step(np.array([0.0, budget_action], np.float32)) for _ in range(20)]
        returns[label] = sum(step[1] for step in steps)
        comm[label] = sum(step[4]["rewards"]["comm"] for step in steps)
    assert comm["starved"] > 2.0 * comm["full"]  # the per-watt pull
    assert returns["full"] > returns["starved"] + 20.0


def test_a_battery_just_above_the_floor_caps_the_budget_below_the_request():
    env = make(b_init=(0.12, 0.12), b_min=0.1, frame_duration=0.01, leakage=0.0).unwrapped
    env.reset(seed=0)
    cell = env.config.cell
    # 20 mJ usable over 10 ms pays 2 W of total power (12): P_T <= eta (2 W - P_c - xi R)
    expected = cell.eta * (2.0 - cell.P_c - cell.xi * 40.0 * cell.K)
    assert env.transmit_budget(1.0) == pytest.approx(expected, rel=1e-9)
    assert env.transmit_budget(0.5) == pytest.approx(0.5 * cell.P_max)  # below the cap
    _, _, _, _, info = env.step(np.ones(2, np.float32))
    assert info["energy"] <= 0.02 + 1e-12
    assert info["battery_before"] - info["energy"] >= 0.1 - 1e-12


def test_grid_connection_buys_what_the_battery_lacks():
    env = make(b_init=(0.1, 0.1), b_min=0.1, grid_connected=True, grid_price=2.0).unwrapped
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.ones(2, np.float32))
    assert info["budget"] == pytest.approx(env.config.cell.P_max)
    assert info["energy_grid"] == pytest.approx(info["energy"]) and info["energy"] > 0
    assert info["rewards"]["grid"] == pytest.approx(-2.0 * info["energy"] / env.config.e_ref)


def test_raw_observation_against_the_hand_formula():
    env = make().unwrapped
    obs, _ = env.reset(seed=4)
    battery = env._battery
    assert obs[env.observation_index["battery"]] == pytest.approx(
        2 * battery / env.config.b_max - 1, abs=1e-6
    )
    decoded = env.decode_observation(obs)
    np.testing.assert_allclose(decoded["gain"], 10 * np.log10(env._gain), rtol=1e-5)
    assert decoded["frame"] == 0.0


def test_bad_actions_and_configs_raise_naming_the_field():
    env = make().unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan, 0.0], np.float32))
    with pytest.raises(ValueError, match="sensing_weight"):
        make(sensing_weight=1.5)
    with pytest.raises(ValueError, match="budget_range"):
        make(budget_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="unknown MIMOISAC-v0 config key 'nope'"):
        make(nope=1)
    with pytest.raises(ValueError, match="rate_demand"):
        make(R_th=3.0)


def test_render_gives_an_rgb_array():
    env = make(render_mode="rgb_array")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3


def test_a_full_battery_with_a_large_harvest_stays_at_capacity():
    env = make(b_init=(2.0, 2.0), harvest_power=(50.0, 50.0), leakage=0.0).unwrapped
    env.reset(seed=2)
    _, _, _, _, info = env.step(np.zeros(2, np.float32))
    assert info["harvest"] * 0.9 > info["energy"]  # the harvest would overfill it
    assert info["battery"] == env.config.b_max


# --- per-user rate demands --------------------------------------------------------------


def demand_states(env, frames):
    """(frames, K) demand states of the env's chains, switched ``frames - 1`` times."""
    states = [env._demand_high.copy()]
    for _ in range(frames - 1):
        env._switch_demands()
        states.append(env._demand_high.copy())
    return np.array(states)


def test_demand_chains_switch_at_the_configured_rate_independently_per_user():
    # p = 1 / demand_sojourn = 0.25 per frame from either state, s_k(0) ~ Bernoulli(1/2).
    # Tolerances are 5 standard deviations (seeded, so deterministic; a correct chain
    # misses one with probability < 1e-6): binomial ones for switch counts, and for the
    # time averages the Markov variance factor (1 + lam) / (1 - lam), lam = 1 - 2 p the
    # chain's autocorrelation at lag 1 (lam^2 for the agreement of two chains, which
    # switches with probability 2 p (1 - p)).
    env = make(demand_sojourn=4.0).unwrapped
    env.reset(seed=0)
    p, frames = 0.25, 20_000
    states = demand_states(env, frames)
    switched, before = states[1:] != states[:-1], states[:-1]
    for k in range(env.K):
        for state in (False, True):  # from low, from high
            rows = before[:, k] == state
            tol = 5 * np.sqrt(p * (1 - p) / rows.sum())
            assert switched[rows, k].mean() == pytest.approx(p, abs=tol), (k, state)
        lam = 1 - 2 * p
        tol = 5 * np.sqrt(0.25 / frames * (1 + lam) / (1 - lam))
        assert states[:, k].mean() == pytest.approx(0.5, abs=tol)  # stationary law
    # independent users: they agree half the time, and user 1 switches at rate p
    # whether or not user 0 does (one shared chain would agree always)
    lam = (1 - 2 * p) ** 2
    agree = states[:, 0] == states[:, 1]
    assert agree.mean() == pytest.approx(0.5, abs=5 * np.sqrt(0.25 / frames * (1 + lam) / lam))
    both = switched[switched[:, 0], 1].mean()
    assert both == pytest.approx(p, abs=5 * np.sqrt(p * (1 - p) / switched[:, 0].sum()))
    starts = []
    for seed in range(4000):
        env._start_demand_chains(np.random.SeedSequence(seed))
        starts.append(env._demand_high)
    assert np.mean(starts) == pytest.approx(0.5, abs=5 * np.sqrt(0.25 / (4000 * env.K)))


def test_a_users_demands_depend_only_on_the_seed_and_its_index():
    # user k draws from its own child stream: adding a user changes no one else's demands
    pair, triple = make(K=2).unwrapped, make(K=3).unwrapped
    pair.reset(seed=7), triple.reset(seed=7)
    two, three = demand_states(pair, 200), demand_states(triple, 200)
    np.testing.assert_array_equal(two, three[:, :2])
    assert 0 < (three[:, 2] != three[:, 0]).mean() < 1  # and user 2 has its own chain


def test_the_demand_chains_leave_the_other_exogenous_draws_unchanged(monkeypatch):
    from isac_gym.envs.mimo import MIMOISACEnv

    def trace(env, frames=30):
        env.reset(seed=5)
        rows = []
        for _ in range(frames):
            rows.append([env._harvest, env._phase, env._azimuth, env._battery])
            rows[-1] += [*env._position.ravel(), *np.abs(env._fading).ravel()]
            env._advance()
        return np.array(rows)

    with_demands = trace(make().unwrapped)

    def all_low(env, seed):  # chains that draw nothing
        env._demand_high = np.zeros(env.K, bool)

    monkeypatch.setattr(MIMOISACEnv, "_start_demand_chains", all_low)
    monkeypatch.setattr(MIMOISACEnv, "_switch_demands", lambda env: None)
    np.testing.assert_array_equal(trace(make().unwrapped), with_demands)


def test_each_users_demand_reaches_the_snapshot_info_reward_and_observation(monkeypatch):
    from test_mimo_oracle import StandInOracle

    import optimizers.mimo

    oracle = StandInOracle()
    monkeypatch.setattr(optimizers.mimo, "solve_mimo", oracle)
    env = make(rate_demand=(1.0, 50.0)).unwrapped  # the SEs (2..9) meet the low, not the high
    env.reset(seed=0)
    env._demand_high = np.array([True, False])
    env._draw_frame()
    obs = env._observation()
    index = env.observation_index["demand"]
    assert env.observation_space.shape == (2 * env.K + 7,)
    assert index == slice(4, 6)  # after battery, harvest and the K gains
    np.testing.assert_allclose(obs[index], [1.0, -0.96], atol=1e-6)  # 2 R / hi - 1
    np.testing.assert_allclose(env.decode_observation(obs)["demand"], [50.0, 1.0], rtol=1e-5)
    batch = env.decode_observation(np.stack([obs, obs]))["demand"]
    assert batch.shape == (2, env.K)
    _, _, _, _, info = env.step(np.ones(2, np.float32))
    np.testing.assert_array_equal(oracle.calls[-1]["snapshot"].R_th, [50.0, 1.0])
    np.testing.assert_array_equal(info["rate_demand"], [50.0, 1.0])
    np.testing.assert_array_equal(info["rate_met"], [False, True])
    assert info["rewards"]["rate_miss"] == -env.config.rate_penalty  # one user missed
