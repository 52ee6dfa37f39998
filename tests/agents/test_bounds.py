"""The clairvoyant episode bound and plan (agents.bounds)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from agents import bounds
from agents.evaluation import make_env_and_policy, run_episode

#: A coarse grid keeps the default suite fast (the bound is valid with any grid).
FEW_BETAS = (0.01, 0.1, 1.0)
BETA_POLICIES = ("fixed-beta:mu", "fixed-beta:1", "heuristic", "lyapunov", "random:3")
#: A short episode where batteries, drops and the AP all bind: low batteries, weak
#: harvest, heavy background load.
BINDING = dict(
    K=2,
    horizon=14,
    oracle="fast",
    b_init=(0.06, 0.09),
    harvest_quantum=0.1e-3,
    background_load=(0.9, 1.3),
    load_sojourn=5.0,
)
#: Batteries and the AP never bind: huge battery, ample harvest, no background load (and
#: no leakage: a drain the harvest does not cover makes the terminal price bind).
NON_BINDING = dict(
    K=2,
    horizon=10,
    oracle="fast",
    b_max=100.0,
    b_init=(5.0, 5.0),
    leakage=0.0,
    harvest_quantum=1e-2,
    background_load=(0.0, 0.0),
)


def _returns(env_kwargs: dict, seed: int, specs=BETA_POLICIES) -> dict[str, float]:
    out = {}
    for spec in specs:
        env, policy = make_env_and_policy("isac_gym/ISCC-v0", spec, env_kwargs)
        result, _ = run_episode(env, policy, seed)
        out[spec] = result.episode_return
        env.close()
    return out


def _solve(env_kwargs: dict, seed: int, betas=FEW_BETAS, **options):
    env = bounds.make_env(env_kwargs)
    draws = bounds.record_draws(env, seed)
    front = bounds.slot_frontiers(draws, betas)
    result = bounds.clairvoyant_bound(draws, front=front, time_limit=20.0, **options)
    plan = bounds.best_plan(env, seed, result)
    env.close()
    return draws, front, result, plan


@pytest.fixture(scope="module")
def binding():
    return _solve(BINDING, seed=1)


def test_draws_do_not_depend_on_the_actions():
    kwargs = dict(K=2, horizon=12, oracle="fast")
    env = bounds.make_env(kwargs)
    draws = bounds.record_draws(env, seed=5)
    env.reset(seed=5)
    rng = np.random.default_rng(0)
    for t in range(kwargs["horizon"]):
        base = env.unwrapped
        assert np.array_equal(base._snapshot.H, draws.snapshots[t].H)
        assert np.array_equal(base._tasks["tau"], draws.snapshots[t].tau)
        assert base._arrivals == draws.arrivals[t]
        _, _, _, _, info = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        assert np.array_equal(info["task"], draws.task[t])
        assert np.array_equal(info["harvest"], draws.harvest[t])


def test_bound_is_valid_on_a_binding_episode(binding):
    draws, _, result, plan = binding
    returns = _returns(BINDING, seed=1)
    assert returns["fixed-beta:mu"] < -5.0  # the episode does bind (drops/outages)
    for spec, value in returns.items():
        assert result.bound >= value - 1e-6, spec
    assert result.bound >= plan.episode_return - 1e-6


def test_bound_plan_and_myopic_agree_when_nothing_binds():
    _, _, result, plan = _solve(NON_BINDING, seed=2)
    myopic = _returns(NON_BINDING, seed=2, specs=("fixed-beta:mu",))["fixed-beta:mu"]
    assert result.bound >= myopic - 1e-9
    assert result.bound >= plan.episode_return - 1e-9
    assert abs(result.bound - myopic) <= 0.005 * abs(myopic)
    assert abs(plan.episode_return - myopic) <= 0.005 * abs(myopic)


def test_more_battery_capacity_never_lowers_the_bound(binding):
    draws, front, _, _ = binding
    base = draws.config
    values = []
    # an outage threshold near the capacity (b_min + margin = 0.095 J) makes it matter
    for b_max in (0.09, 0.1, 1.0):
        draws.config = base.replace(b_max=b_max, outage_margin=0.045)
        values.append(bounds.clairvoyant_bound(draws, front=front, time_limit=20.0).bound)
    draws.config = base
    assert values[0] <= values[1] + 1e-6 <= values[2] + 2e-6
    assert values[0] < values[1] - 1.0  # the capacity does matter on this episode


def test_a_task_no_allocation_serves_is_a_forced_drop_in_both():
    kwargs = dict(K=2, horizon=8, oracle="fast", deadline=(0.02, 1.0))
    draws, front, result, plan = _solve(kwargs, seed=0)
    impossible = ~front.alone_ok
    assert impossible.any() and (~impossible).any()
    t, k = front.slot[impossible], front.ue[impossible]
    assert not result.served[t, k].any()
    env, policy = make_env_and_policy("isac_gym/ISCC-v0", "fixed-beta:mu", kwargs)
    policy.reset(seed=0)
    obs, _ = env.reset(seed=0)
    success = []
    for _ in range(kwargs["horizon"]):
        obs, _, _, _, info = env.step(policy.predict(obs)[0])
        success.append(info["success"])
    assert not np.array(success)[t, k].any()
    assert result.bound >= plan.episode_return - 1e-9
    myopic = _returns(kwargs, seed=0, specs=("fixed-beta:mu",))["fixed-beta:mu"]
    assert result.bound >= myopic
    # the forced drops are charged (drop_penalty 2 each): on this seed the myopic policy
    # is optimal up to a hair, and a bound that forgot them would be 4 higher
    assert result.bound <= myopic + 0.5


def test_bound_needs_the_iscc_env():
    with pytest.raises(ValueError, match="ISCC-v0"):
        bounds.make_env({}, env_id="CartPole-v1")


def test_gap_closed_is_zero_for_myopic_and_one_for_the_bound():
    rows = [
        {"policy": "fixed-beta:mu", "return_mean": -10.0},
        {"policy": "heuristic", "return_mean": -7.0},
        {"policy": bounds.BOUND, "return_mean": -4.0},
    ]
    bounds.add_gap_closed(rows)
    assert [row["gap_closed"] for row in rows] == [0.0, 0.5, 1.0]
    rows = bounds.add_gap_closed([{"policy": "heuristic", "return_mean": -7.0}])
    assert math.isnan(rows[0]["gap_closed"])


def test_a_congested_ap_is_no_reason_to_drop_with_full_batteries():
    # reserve capped (0.2 C^ap left), cheap drops: a bound that let a possibly-short AP
    # drop tasks at will would drop them; with full batteries the least offloading is
    # the CPU-forced one, which the AP carries, so the env serves every task
    kwargs = dict(
        K=2,
        horizon=6,
        oracle="fast",
        b_init=(0.8, 0.9),
        background_load=(2.0, 2.0),
        drop_penalty=0.1,
    )
    _, front, result, plan = _solve(kwargs, seed=0)
    servable = front.alone_ok & ~front.joint_fail
    assert servable.sum() >= 10
    assert result.served[front.slot[servable], front.ue[servable]].all()
    myopic = _returns(kwargs, seed=0, specs=("fixed-beta:mu",))["fixed-beta:mu"]
    assert myopic <= result.bound <= myopic + 0.2 * abs(myopic)
    assert plan.episode_return <= result.bound


def test_bound_rows_for_an_allocation_mode_evaluation():
    from agents.evaluation import summarize

    kwargs = dict(K=2, horizon=3, oracle="fast", action_mode="allocation")
    rows, solved = bounds.bound_results(kwargs, [4], progress=False)
    assert [r.policy for r in rows] == [bounds.BOUND, bounds.PLAN]
    assert all(r.action_mode == "beta" for r in rows)  # the bound is for beta mode
    assert rows[0].episode_return == solved[0].bound >= rows[1].episode_return
    beta_env = bounds.make_env({k: v for k, v in kwargs.items() if k != "action_mode"})
    assert beta_env.unwrapped.config.action_mode == "beta"
    again = bounds.replay_plan(beta_env, 4, solved[0].beta_schedule)
    assert again.episode_return == rows[1].episode_return  # the plan ran in beta mode
    table = bounds.add_gap_closed(summarize(rows))
    assert all(math.isnan(row["gap_closed"]) for row in table)  # no fixed-beta:mu row
    assert bounds.allocation_note(table) is None
    note = bounds.allocation_note([*table, {"policy": "fo", "action_mode": "allocation"}])
    assert "fo" in note and "beta and beta_budget" in note


@pytest.mark.slow  # the CLI imports torch and draws policies.png (several seconds)
def test_cli_bound_with_an_allocation_mode_policy(tmp_path):
    import evaluate

    argv = [
        "policies",
        "--policies",
        "fixed-beta:mu,fo",
        "--episodes",
        "1",
        "--bound",
        "--no-progress",
        "--env-kwargs",
        '{"K": 2, "horizon": 4, "oracle": "fast"}',
        "--out",
        str(tmp_path),
    ]
    assert evaluate.main(argv) == 0
    with open(tmp_path / "policies.csv") as handle:
        rows = {row["policy"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"fixed-beta:mu", "fo", bounds.BOUND, bounds.PLAN}
    assert float(rows["fixed-beta:mu"]["gap_closed"]) == 0.0
    assert float(rows[bounds.BOUND]["gap_closed"]) == 1.0
    assert rows[bounds.PLAN]["action_mode"] == "beta"
    with open(tmp_path / "episodes.csv") as handle:
        episodes = [row["policy"] for row in csv.DictReader(handle)]
    assert bounds.BOUND in episodes and bounds.PLAN in episodes


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bound_is_valid_on_default_preset_episodes(seed):
    kwargs = dict(horizon=100, oracle="fast", b_init=(0.08, 0.2))
    _, _, result, plan = _solve(kwargs, seed=seed, betas=bounds.DEFAULT_BETAS)
    for spec, value in _returns(kwargs, seed).items():
        assert result.bound >= value - 1e-6, spec
    assert result.bound >= plan.episode_return - 1e-6
