"""Policies and the seeded comparison for isac_gym/MIMOISAC-v0 (tiny cell, short episodes)."""

from __future__ import annotations

import csv

import gymnasium as gym
import numpy as np
import pytest
from conftest import MIMO_TINY_CELL

import isac_gym  # noqa: F401  (registers the ids)
from agents.mimo_evaluation import evaluate_mimo_policies, summarize_mimo, write_mimo_csv
from agents.mimo_policies import (
    BatteryHeuristicParams,
    BatteryHeuristicPolicy,
    MIMOLyapunovParams,
    MIMOLyapunovPolicy,
    make_mimo_policy,
    parse_mimo_spec,
)
from isac_gym.mimo import OMEGA_HOR, OMEGA_LOR

TINY = {**MIMO_TINY_CELL, "horizon": 3}


@pytest.fixture
def env():
    return gym.make("isac_gym/MIMOISAC-v0", **TINY)


def decided(env, policy, battery):
    """(omega, fraction) the policy's action maps to, at a given battery level."""
    obs, _ = env.reset(seed=0)
    env.unwrapped._battery = battery
    action, _ = policy.predict(env.unwrapped._observation())
    return env.unwrapped.action_to_decision(action)


def test_fixed_omega_and_baselines_map_to_their_omega_at_the_full_budget(env):
    for spec, omega in (("fixed-omega:lor", OMEGA_LOR), ("fixed-omega:hor", OMEGA_HOR)):
        policy = make_mimo_policy(spec, env)
        assert decided(env, policy, 1.5) == pytest.approx((omega, 1.0), rel=1e-5)
    assert make_mimo_policy("equal-com", env).env_overrides == {"scheme": "equal_com"}
    assert make_mimo_policy("equal-cs", env).env_overrides == {"scheme": "equal_cs"}
    assert make_mimo_policy("fixed-omega:lor", env).env_overrides == {}


def test_heuristic_budget_follows_the_battery_level(env):
    params = BatteryHeuristicParams(budget_empty=0.2, budget_full=0.8, exponent=2.0)
    policy = BatteryHeuristicPolicy(env, params)
    cfg = env.unwrapped.config  # b_min 0.1, b_max 2.0
    level = (1.05 - cfg.b_min) / (cfg.b_max - cfg.b_min)  # = 0.5
    assert decided(env, policy, 1.05)[1] == pytest.approx(0.2 + 0.6 * level**2, rel=1e-5)
    assert decided(env, policy, 0.0)[1] == pytest.approx(0.2, rel=1e-5)  # clipped level 0


def test_lyapunov_budget_is_the_closed_form_drift_plus_penalty_maximiser(env):
    params = MIMOLyapunovParams(V=0.01, theta=0.8, power_ref=0.05)
    policy = MIMOLyapunovPolicy(env, params)
    cfg = env.unwrapped.config
    battery = 1.0  # queue Q = 0.8 * 2 - 1 = 0.6 J
    power = 0.01 * cfg.cell.eta / (0.6 * cfg.frame_duration) - 0.05  # = 0.5333 W
    assert decided(env, policy, battery)[1] == pytest.approx(power / cfg.cell.P_max, rel=1e-5)
    assert decided(env, policy, 1.9)[1] == pytest.approx(1.0)  # above target: everything
    frugal = MIMOLyapunovPolicy(env, MIMOLyapunovParams(V=0.001, theta=0.8, power_ref=0.05))
    assert decided(env, frugal, battery)[1] == pytest.approx(cfg.budget_range[0])  # 8 mW: floor


def test_heuristic_and_lyapunov_ignore_the_per_user_demands(env):
    # documented in agents/mimo_policies.py: they size the budget from the battery alone
    base = env.unwrapped
    base.reset(seed=0)
    for policy in (BatteryHeuristicPolicy(env), MIMOLyapunovPolicy(env)):
        actions = []
        for high in ([False, False], [True, False], [True, True]):
            base._demand_high = np.array(high)
            base._draw_frame()
            assert base.decode_observation(base._observation())["demand"].shape == (base.K,)
            actions.append(policy.predict(base._observation())[0])
        np.testing.assert_array_equal(actions[0], actions[1])
        np.testing.assert_array_equal(actions[0], actions[2])


def test_bad_specs_raise_listing_the_valid_ones(env):
    with pytest.raises(ValueError, match="valid: fixed-omega:lor"):
        parse_mimo_spec("nope")
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        parse_mimo_spec("fixed-omega:2")


def test_seeded_comparison_pairs_the_episodes_and_writes_the_table(tmp_path):
    specs = ["fixed-omega:lor", "heuristic", "equal-com"]
    results = evaluate_mimo_policies(specs, episodes=2, seed=5, env_kwargs=TINY)
    assert [[run.seed for run in runs] for runs in results] == [[5, 6]] * 3
    rows = summarize_mimo(results)
    assert [row["policy"] for row in rows] == ["fixed-omega:lor", "heuristic", "equal-com"]
    for row, runs in zip(rows, results, strict=True):
        returns = [run.reward for run in runs]
        assert row["return_mean"] == pytest.approx(np.mean(returns))
        assert 0.0 <= row["rate_met"] <= 1.0 and row["energy"] > 0
    path = write_mimo_csv(rows, tmp_path / "mimo_policies.csv")
    with open(path) as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 3 and "crb_met_ci95" in table[0]


def test_evaluate_policies_cli_runs_the_mimo_comparison(tmp_path, capsys):
    import json

    from experiments.cli import evaluate_main

    kwargs = json.dumps({**TINY, "horizon": 2})
    argv = ["policies", "--env", "isac_gym/MIMOISAC-v0", "--policies", "fixed-omega:hor,heuristic"]
    argv += ["--episodes", "2", "--out", str(tmp_path), "--env-kwargs", kwargs]
    assert evaluate_main(argv) == 0
    with open(tmp_path / "policies.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [row["policy"] for row in table] == ["fixed-omega:hor", "heuristic"]
    assert (tmp_path / "manifest.json").is_file()
    assert "| fixed-omega:hor |" in capsys.readouterr().out
    bad = ["policies", "--env", "isac_gym/MIMOISAC-v0", "--policies", "fl", "--episodes", "1"]
    assert evaluate_main([*bad, "--out", str(tmp_path / "bad")]) == 2  # an ISCC-only policy
    bound = [*argv[:-4], "--out", str(tmp_path / "b"), *argv[-2:], "--bound"]
    assert evaluate_main(bound) == 2
    error = capsys.readouterr().err
    assert "--bound" in error and "does not carry over to MIMOISAC-v0" in error
    assert not (tmp_path / "b").exists()  # refused before any episode or output


def test_the_cli_pairs_every_policy_with_the_reference_episode_by_episode(tmp_path, capsys):
    import json

    from experiments.cli import evaluate_main

    env_kwargs = {**TINY, "horizon": 3}
    argv = ["policies", "--env", "isac_gym/MIMOISAC-v0", "--episodes", "2"]
    argv += [
        "--policies",
        "fixed-omega:lor,fixed-omega:hor",
        "--env-kwargs",
        json.dumps(env_kwargs),
    ]
    assert evaluate_main([*argv, "--out", str(tmp_path)]) == 0
    with open(tmp_path / "paired.csv") as handle:
        [paired] = list(csv.DictReader(handle))
    other, reference = paired["policy"], paired["reference"]
    runs = evaluate_mimo_policies([other, reference], 2, 0, env_kwargs)
    by_hand = [a.reward - b.reward for a, b in zip(*runs, strict=True)]
    assert abs(np.mean(by_hand)) > 0.1  # the two policies differ on these episodes
    assert float(paired["return_diff"]) == pytest.approx(np.mean(by_hand), rel=1e-5)
    assert f"paired against {reference}" in capsys.readouterr().out
    wrong = [*argv, "--out", str(tmp_path / "w"), "--paired-reference", "lyapunov"]
    assert evaluate_main(wrong) == 2 and not (tmp_path / "w").exists()


def test_worker_processes_give_the_same_episodes():
    """--jobs spreads (policy, episode) tasks over spawned workers; each episode depends
    only on its seed, so the numbers are identical."""
    specs = ["fixed-omega:hor", "equal-com"]
    kwargs = {**TINY, "horizon": 3}
    one = evaluate_mimo_policies(specs, episodes=2, seed=1, env_kwargs=kwargs)
    two = evaluate_mimo_policies(specs, episodes=2, seed=1, env_kwargs=kwargs, jobs=2)
    assert [[(r.policy, r.seed) for r in runs] for runs in two] == [
        [(spec, 1), (spec, 2)] for spec in specs
    ]
    assert [[(r.reward, r.sums["energy"]) for r in runs] for runs in one] == [
        [(r.reward, r.sums["energy"]) for r in runs] for runs in two
    ]
