"""ISCC-v0's step against hand formulas: raw observation, battery cap, AP backlog with the
offloaded cycles, and every reward component (including the outage term)."""

import gymnasium as gym
import numpy as np
import pytest

import isac_gym  # noqa: F401 - registers the environments
from isac_gym.iscc.scenario import pathloss_gain

ENV_ID = "isac_gym/ISCC-v0"
FAST = {"oracle": "fast", "horizon": 6}


def make(**kwargs):
    return gym.make(ENV_ID, **{**FAST, **kwargs}).unwrapped


def expected_observation(env, battery, harvest, task, backlog, t):
    """The Observation Space table written out, feature by feature: 2 (x - lo) / span - 1."""
    cfg, cell, K = env.config, env.config.cell, env.K
    dh2 = (cell.h_a - cell.h_u) ** 2
    far = 10 * np.log10(pathloss_gain(cell, np.array([np.sqrt(cell.r_0**2 + dh2)])))[0]
    near_distance = np.sqrt(cell.min_ue_ap_distance**2 + dh2)
    near = 10 * np.log10(pathloss_gain(cell, np.array([near_distance])))[0]
    channel = 10 * np.log10(env._snapshot.path_gain)
    parts = [
        2 * battery / cfg.b_max - 1,
        2 * harvest / (2 * cfg.harvest_quantum * cfg.harvest_rate_on) - 1,
        np.where(task, 2 * env._tasks["Q"] / cfg.task_bits[1] - 1, -1.0),
        2 * env._tasks["tau"] / cfg.slot_duration - 1,
        2 * env._cpu / cfg.cpu_capacity[1] - 1,
        2 * (channel - far) / (near - far) - 1,
        [backlog / (cell.C_ap * cfg.slot_duration) - 1],  # range [0, 2 C^ap T]
        [2 * t / cfg.horizon - 1],
    ]
    assert len(parts[0]) == K
    return np.clip(np.hstack(parts), -1, 1)


def test_raw_observation_matches_the_documented_scales():
    env = make(task_probability=0.5, task_bits=(0.5e6, 1e6), b_init=(0.2, 0.9))
    obs, info = env.reset(seed=3)
    expected = expected_observation(env, info["battery"], np.zeros(env.K), info["task"], 0.0, 0)
    np.testing.assert_allclose(obs, expected, atol=2e-7)
    assert -1 < obs[0] < 1  # the battery is not clipped: the scale is really tested
    for t in range(1, 4):
        task = env._task.copy()
        obs, _, _, _, info = env.step(np.zeros(env.K, np.float32))
        expected = expected_observation(
            env, info["battery"], info["harvest"], env._task, info["backlog"], t
        )
        np.testing.assert_allclose(obs, expected, atol=2e-7)
        assert task.size == env.K


def test_battery_is_capped_at_b_max_when_full_with_a_large_harvest():
    # Poisson(25) quanta of 0.1 J in both states: e >= 1 J besides a 1e-14 chance
    env = make(b_init=(1.0, 1.0), harvest_quantum=0.1, harvest_rate_on=25.0, harvest_rate_off=25.0)
    cfg = env.config
    env.reset(seed=1)
    for _ in range(3):
        *_, info = env.step(np.zeros(env.K, np.float32))
        uncapped = (
            (1 - cfg.leakage) * info["battery_before"]
            - info["energy_ue"]
            + cfg.charge_efficiency * info["harvest"]
        )
        assert np.all(uncapped > cfg.b_max + 0.5)  # the cap binds, by a wide margin
        np.testing.assert_array_equal(info["battery"], cfg.b_max)


def test_backlog_grows_by_the_offloaded_cycles():
    env = make(task_probability=1.0, background_load=(0.9, 0.9))  # the queue never empties
    env.reset(seed=0)
    capacity = env.config.cell.C_ap * env.config.slot_duration
    offloaded_total = 0.0
    for _ in range(4):
        backlog, arrivals = env._backlog, env._arrivals
        cycles = env._snapshot.varpi * env._tasks["Q"]
        *_, info = env.step(np.zeros(env.K, np.float32))
        offloaded = float(np.sum(info["alpha"] * cycles))
        offloaded_total += offloaded
        expected = backlog + arrivals + offloaded - capacity
        assert expected > 0  # max(0, .) is not active: the sum itself is checked
        assert info["backlog"] == pytest.approx(expected, rel=1e-12)
    # offloading is a visible share of the queue: about 0.15 C^ap T per slot
    assert offloaded_total > 0.4 * capacity


def check_reward_components(env, info, reward):
    cfg = env.config
    rewards = info["rewards"]
    energy = (info["energy_ue"].sum() + cfg.mu * info["energy_ap"].sum()) / cfg.e_ref
    assert rewards["energy"] == pytest.approx(-energy, rel=1e-12)
    dropped = int(np.sum(info["task"] & ~info["success"]))
    assert rewards["drop"] == -cfg.drop_penalty * dropped
    outages = int(np.sum(info["battery"] < cfg.b_min + cfg.outage_margin))
    assert rewards["outage"] == -cfg.outage_penalty * outages
    assert reward == pytest.approx(sum(rewards.values()), rel=1e-12)
    return outages, dropped


def test_reward_components_against_hand_formulas_with_outages():
    # batteries start around the outage line b_min + margin = 0.07 J and hardly charge
    env = make(
        b_init=(0.05, 0.1),
        harvest_quantum=1e-6,
        outage_penalty=3.0,
        drop_penalty=0.5,
        horizon=5,
        terminal_battery_price=2.0,
    )
    cfg = env.config
    totals = np.zeros(2, int)
    for seed in range(3):
        _, info0 = env.reset(seed=seed)
        start = info0["battery"]
        truncated = False
        while not truncated:
            _, reward, _, truncated, info = env.step(np.zeros(env.K, np.float32))
            totals += check_reward_components(env, info, reward)
            if not truncated:
                assert info["rewards"]["terminal"] == 0.0
        drained = np.maximum(start - info["battery"], 0).sum()
        assert drained > 0
        terminal = -cfg.terminal_battery_price * drained / cfg.e_ref
        assert info["rewards"]["terminal"] == pytest.approx(terminal, rel=1e-12)
    assert totals[0] > 0 and totals[1] > 0  # outages and drops both occurred


def test_outage_is_strictly_below_the_margin():
    env = make(b_init=(0.3, 0.3), harvest_quantum=1e-9, leakage=0.0)
    cfg = env.config
    env.reset(seed=0)
    *_, info = env.step(np.zeros(env.K, np.float32))
    line = cfg.b_min + cfg.outage_margin
    np.testing.assert_array_equal(info["outage"], info["battery"] < line)
    assert not info["outage"].any() and info["rewards"]["outage"] == 0.0


def test_observation_clips_and_decodes_with_a_two_second_slot():
    # T = 2 s and a saturated AP: the backlog passes 2 C^ap T, its feature clips at 1
    env = make(slot_duration=2.0, background_load=(0.9, 0.9), horizon=12, task_probability=1.0)
    cfg, cell = env.config, env.config.cell
    env.reset(seed=0)
    clipped = False
    for t in range(1, 12):
        obs, _, _, _, info = env.step(np.zeros(env.K, np.float32))
        expected = expected_observation(
            env, info["battery"], info["harvest"], env._task, info["backlog"], t
        )
        np.testing.assert_allclose(obs, expected, atol=2e-7)
        clipped |= info["backlog"] > 2 * cell.C_ap * cfg.slot_duration
        decoded = env.decode_observation(obs)
        assert decoded["battery"].dtype == np.float64
        np.testing.assert_allclose(decoded["battery"], info["battery"], atol=1e-7)
        gain_db = 10 * np.log10(env._snapshot.path_gain)
        np.testing.assert_allclose(decoded["channel"], gain_db, atol=1e-4)
        assert decoded["slot"] == pytest.approx(t / cfg.horizon, abs=1e-7)
        backlog = min(info["backlog"], 2 * cell.C_ap * cfg.slot_duration)
        assert decoded["backlog"] == pytest.approx(backlog, rel=1e-6)
        reserved = min(cfg.reserve_max, backlog / (cell.C_ap * cfg.slot_duration))
        assert decoded["ap_reserved"] == pytest.approx(reserved, rel=1e-6)
    assert clipped


def test_step_info_against_hand_formulas_and_the_reserved_ap():
    # a saturated AP reserves r C^ap = 0.8 C^ap; the UEs share what is left, and it binds
    env = make(background_load=(0.9, 0.9), horizon=8, task_probability=1.0)
    cfg, cell = env.config, env.config.cell
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    binding = 0
    for _ in range(7):
        backlog, Q, varpi = env._backlog, env._tasks["Q"].copy(), env._snapshot.varpi
        action = rng.uniform(-1, 1, env.K).astype(np.float32)
        *_, info = env.step(action)
        lo, hi = cfg.log10_beta_range
        np.testing.assert_allclose(
            info["beta"], 10 ** (lo + (action.astype(float) + 1) * (hi - lo) / 2)
        )
        total = info["energy_ue"].sum() + info["energy_ap"].sum()
        assert info["energy_cost"] == pytest.approx(total, rel=1e-12)
        reserve = min(cfg.reserve_max * cell.C_ap, backlog / cfg.slot_duration)
        assert info["ap_reserved"] == pytest.approx(reserve / cell.C_ap, rel=1e-12)
        assert info["oracle_time_s"] >= 0 and info["oracle_iterations"] >= 0
        # f_ap from (15): E^ap = xi_ap f_ap^2 varpi alpha Q
        alpha = info["alpha"]
        served = alpha > 0
        f_ap = np.sqrt(info["energy_ap"][served] / (cell.xi_ap * (varpi * alpha * Q)[served]))
        assert f_ap.sum() <= (cell.C_ap - reserve) * (1 + 1e-6)
        binding += f_ap.sum() > 0.99 * (cell.C_ap - reserve)
        np.testing.assert_array_equal(env._last["alpha"], alpha)  # what render draws
        np.testing.assert_array_equal(env._last["success"], info["success"])
    assert binding >= 2


def test_outage_line_itself_is_not_an_outage():
    line = 0.05 + 0.02  # b_min + outage_margin as the env computes it
    env = make(
        b_init=(line, line),
        task_probability=0.0,
        leakage=0.0,
        harvest_rate_on=0.0,
        harvest_rate_off=0.0,
    )
    env.reset(seed=0)
    *_, info = env.step(np.zeros(env.K, np.float32))
    np.testing.assert_array_equal(info["battery"], line)
    assert not info["outage"].any()


def test_load_state_switches_every_slot_with_sojourn_one():
    env = make(background_load=(0.0, 0.9), load_sojourn=1.0, task_probability=0.0, horizon=8)
    env.reset(seed=0)
    zero = []
    for _ in range(7):
        zero.append(env._arrivals == 0.0)
        env.step(np.zeros(env.K, np.float32))
    assert zero[1:] == [not z for z in zero[:-1]]  # alternates: low, high, low, ...


def test_step_before_reset_names_the_fix():
    env = make()
    with pytest.raises(RuntimeError, match=r"^call reset\(\) before step\(\)"):
        env.step(np.zeros(env.K, np.float32))


def test_out_of_range_allocation_actions_are_clipped():
    # allocation mode: alpha = (a + 1) / 2 with a clipped to [-1, 1] first
    results = []
    for action in (3.0, 1.0, -1.0, -3.0):
        env = make(action_mode="allocation", task_probability=1.0)
        env.reset(seed=4)
        *_, info = env.step(np.full(env.K, action, np.float32))
        results.append(info)
    for clipped, inside in ((results[0], results[1]), (results[3], results[2])):
        np.testing.assert_array_equal(clipped["alpha"], inside["alpha"])
        np.testing.assert_array_equal(clipped["success"], inside["success"])
    assert results[1]["success"].any()  # alpha = 1 serves someone: the case is live


def test_decode_reserved_fraction_below_its_cap():
    env = make(slot_duration=2.0)  # reserve_max = 0.8
    obs = np.zeros(env.observation_space.shape, np.float32)
    obs[env.observation_index["backlog"]] = -0.75  # Z = 0.25 * 2 C^ap T / 2 = 0.25 C^ap T
    decoded = env.decode_observation(obs)
    capacity = env.config.cell.C_ap * env.config.slot_duration
    assert decoded["backlog"] == pytest.approx(0.25 * capacity, rel=1e-12)
    assert decoded["ap_reserved"] == pytest.approx(0.25, rel=1e-12)
