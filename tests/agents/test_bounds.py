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
BUDGET_POLICIES = ("lyapunov-budget", "threshold-budget")
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


def test_bound_is_valid_on_a_binding_episode(binding, binding_returns):
    draws, _, result, plan = binding
    returns = {spec: binding_returns[spec] for spec in BETA_POLICIES}
    assert returns["fixed-beta:mu"] < -5.0  # the episode does bind (drops/outages)
    for spec, value in returns.items():
        assert result.bound >= value - 1e-6, spec
    assert result.bound >= plan.episode_return - 1e-6


@pytest.fixture(scope="module")
def binding_returns():
    return _returns(BINDING, seed=1, specs=BETA_POLICIES + BUDGET_POLICIES)


@pytest.fixture(scope="module")
def binding_budget(binding):
    draws, front, _, _ = binding
    result = bounds.clairvoyant_bound(draws, front=front, mode="beta_budget", time_limit=20.0)
    env = bounds.make_env(BINDING, mode="beta_budget")
    plan = bounds.best_plan(env, 1, result)
    env.close()
    return result, plan


def test_budget_bound_is_valid_for_every_policy(binding, binding_budget, binding_returns):
    _, _, beta_result, _ = binding
    result, plan = binding_budget
    for spec, value in binding_returns.items():
        assert result.bound >= value - 1e-6, spec
    assert result.bound >= plan.episode_return - 1e-6
    assert plan.policy == bounds.PLAN and result.mode == "beta_budget"
    # a beta_budget policy may spend into the outage margin to serve tasks (the batteries
    # start below b_out here): the budget plan does, and beats the beta-mode bound, which
    # therefore bounds beta-mode policies only
    assert plan.episode_return > beta_result.bound + 10.0
    assert result.bound <= plan.episode_return + 0.05 * abs(plan.episode_return)


def test_budget_bound_lets_policies_ration():
    # cheap drops: every task costs more energy than its drop_penalty is worth, so a
    # beta_budget policy drops them all (budget 0), which a beta-mode policy cannot do;
    # the beta bound (drops forced) is below that plan, the budget bound is not
    kwargs = dict(K=2, horizon=6, oracle="fast", drop_penalty=0.02)
    draws, front, beta_result, beta_plan = _solve(kwargs, seed=0)
    result = bounds.clairvoyant_bound(draws, front=front, mode="beta_budget", time_limit=20.0)
    plan = bounds.best_plan(bounds.make_env(kwargs, mode="beta_budget"), 0, result)
    assert plan.episode_return == pytest.approx(-0.02 * draws.task.sum())  # drops all
    assert plan.episode_return > beta_result.bound + 0.5 >= beta_plan.episode_return + 0.5
    assert result.bound >= plan.episode_return - 1e-9
    for spec, value in _returns(kwargs, 0, ("fixed-beta:mu", *BUDGET_POLICIES)).items():
        assert result.bound >= value, spec


def test_beta_bound_spends_only_above_the_outage_threshold(binding, binding_returns):
    # beta mode: the env's budget is (1 - leak) B - b_out, so the batteries that start
    # below b_out serve nothing until the harvest lifts them; a bound that let beta-mode
    # UEs spend down to b_min would be far above every beta policy on this episode
    _, _, result, plan = binding
    best = max(binding_returns[spec] for spec in BETA_POLICIES)
    assert best - 1e-6 <= result.bound <= best + 0.5
    assert result.bound >= plan.episode_return - 1e-6


def test_budget_plan_follows_its_spend_schedule():
    kwargs = dict(K=2, horizon=3, oracle="fast", b_init=(0.5, 0.5))
    env = bounds.make_env(kwargs, mode="beta_budget")
    schedule = np.full((3, 2), 0.1)
    # UE 0: safe, drop, dip; UE 1: pinned 1 mJ, drop, safe
    spend = np.array([[np.nan, 1e-3], [0.0, 0.0], [np.inf, np.nan]])
    policy = bounds.ScheduledBudgetPolicy(env, schedule, spend)
    obs, _ = env.reset(seed=0)
    policy.reset(seed=0)
    cfg, budgets = env.unwrapped.config, []
    for _ in range(3):
        battery = env.unwrapped._battery.copy()
        obs, _, _, _, info = env.step(policy.predict(obs)[0])
        budgets.append((battery, info["energy_budget"]))
    keep = 1.0 - cfg.leakage
    (b0, first), (_, second), (b2, third) = budgets
    safe = keep * b0[0] - cfg.outage_threshold
    assert safe - 2e-6 <= first[0] <= safe  # all but the margin (float32 observation)
    # pinned, PIN_SLACK above at most (the float32 action rounds the fraction)
    assert 1e-3 <= first[1] <= 1.05e-3 * (1.0 + 1e-4)
    assert np.all(second == 0.0)  # dropped
    full = keep * b2[0] - cfg.b_min
    assert full - 2e-6 <= third[0] <= full and third[0] > keep * b2[0] - cfg.outage_threshold
    env.close()


def test_modes_are_checked():
    with pytest.raises(ValueError, match="mode"):
        bounds.make_env({}, mode="allocation")
    config = bounds.make_env({"K": 2}).unwrapped.config
    with pytest.raises(ValueError, match="mode"):
        bounds.spend_floor(config, "allocation")
    assert bounds.spend_floor(config, "beta") == config.outage_threshold
    assert bounds.spend_floor(config, "beta_budget") == config.b_min


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


def test_mip_gap_is_measured_in_return(binding):
    draws, front, solved, _ = binding
    # a closed MILP and the LP alone: no gap; the solved one bounds its own solution
    assert solved.optimal and 0.0 <= solved.mip_gap <= 1e-3
    assert solved.bound >= solved.planned - 1e-9
    lp_only = bounds.clairvoyant_bound(draws, front=front, time_limit=0)
    assert lp_only.mip_gap == 0.0 and lp_only.planned == lp_only.bound
    # seed 1 at 200 slots after 1200 s (BENCHMARKS): HiGHS reported 4.4 % of the cost
    assert bounds._return_gap(-136.0, -190.6, True) == pytest.approx(0.2865, abs=1e-4)
    assert math.isnan(bounds._return_gap(-136.0, -105.7, False))


def test_an_early_stop_reports_its_gap_in_return(binding, monkeypatch):
    """A MILP stopped with its dual bound 0.5 below its incumbent's cost: the gap is
    0.5 / |planned| in return, not HiGHS's gap of the cost (whose constant is large)."""
    draws, front, _, _ = binding
    solve = bounds._Program.solve

    def stopped_early(self, time_limit, relax=False):
        result = solve(self, time_limit, relax)
        result.mip_dual_bound = result.fun - 0.5
        result.mip_gap, result.status = 0.5 / abs(result.fun), 1
        return result

    monkeypatch.setattr(bounds._Program, "solve", stopped_early)
    result = bounds.clairvoyant_bound(draws, front=front, time_limit=20.0)
    assert not result.optimal
    assert result.bound - result.planned == pytest.approx(0.5)
    assert result.mip_gap == pytest.approx(0.5 / abs(result.planned))


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
    # a beta_budget row is measured against the budget bound (nan without it)
    budget_bound = bounds.ROW_NAMES["beta_budget"][0]
    rows = [
        {"policy": "fixed-beta:mu", "return_mean": -10.0},
        {"policy": "threshold-budget", "return_mean": -5.0, "action_mode": "beta_budget"},
        {"policy": bounds.BOUND, "return_mean": -4.0},
    ]
    assert math.isnan(bounds.add_gap_closed(rows)[1]["gap_closed"])
    rows.append({"policy": budget_bound, "return_mean": 0.0, "action_mode": "beta_budget"})
    bounds.add_gap_closed(rows)
    assert [row["gap_closed"] for row in rows] == [0.0, 0.5, 1.0, 1.0]


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
        "fixed-beta:mu,fo,threshold-budget",
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
    budget_bound, budget_plan = bounds.ROW_NAMES["beta_budget"]
    policies = {"fixed-beta:mu", "fo", "threshold-budget"}
    assert set(rows) == policies | {bounds.BOUND, bounds.PLAN, budget_bound, budget_plan}
    assert float(rows["fixed-beta:mu"]["gap_closed"]) == 0.0
    assert float(rows[bounds.BOUND]["gap_closed"]) == 1.0
    assert rows[bounds.PLAN]["action_mode"] == "beta"
    assert rows[budget_plan]["action_mode"] == "beta_budget"
    # the budget program relaxes the beta one (up to the MILP's relative gap, 1e-4)
    beta_bound = float(rows[bounds.BOUND]["return_mean"])
    assert float(rows[budget_bound]["return_mean"]) >= beta_bound - 0.01
    with open(tmp_path / "episodes.csv") as handle:
        episodes = [row["policy"] for row in csv.DictReader(handle)]
    assert bounds.BOUND in episodes and bounds.PLAN in episodes


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bound_is_valid_on_default_preset_episodes(seed):
    kwargs = dict(horizon=100, oracle="fast", b_init=(0.08, 0.2))
    draws, front, result, plan = _solve(kwargs, seed=seed, betas=bounds.DEFAULT_BETAS)
    budget = bounds.clairvoyant_bound(draws, front=front, mode="beta_budget", time_limit=20.0)
    budget_plan = bounds.best_plan(bounds.make_env(kwargs, mode="beta_budget"), seed, budget)
    for spec, value in _returns(kwargs, seed, BETA_POLICIES + BUDGET_POLICIES).items():
        if spec in BETA_POLICIES:
            assert result.bound >= value - 1e-6, spec
        assert budget.bound >= value - 1e-6, spec
    assert result.bound >= plan.episode_return - 1e-6
    assert budget.bound >= budget_plan.episode_return - 1e-6


@pytest.mark.slow  # spawns worker processes
def test_bound_results_do_not_depend_on_jobs():
    kwargs = dict(K=2, horizon=4, oracle="fast")
    options = dict(modes=bounds.MODES, time_limit=5.0, progress=False)
    one, _ = bounds.bound_results(kwargs, [3, 4], **options)
    two, _ = bounds.bound_results(kwargs, [3, 4], jobs=2, **options)
    assert [(r.policy, r.seed) for r in one] == [(r.policy, r.seed) for r in two]
    assert [r.episode_return for r in one] == [r.episode_return for r in two]
    names = [bounds.BOUND, bounds.PLAN, *bounds.ROW_NAMES["beta_budget"]]
    assert [r.policy for r in one] == [name for name in names for _ in range(2)]


def test_bracket_rows_per_seed_and_mode(tmp_path):
    budget_bound, budget_plan = bounds.ROW_NAMES["beta_budget"]
    rows = [
        ("fixed-beta:mu", "beta", -100.0),
        ("heuristic", "beta", -90.0),
        ("threshold-budget", "beta_budget", -80.0),
        ("fo", "allocation", -10.0),  # covered by neither bound
        (bounds.BOUND, "beta", -60.0),
        (bounds.PLAN, "beta", -75.0),
        (budget_bound, "beta_budget", -50.0),
        (budget_plan, "beta_budget", -85.0),
    ]
    episodes = [
        {"policy": name, "action_mode": mode, "seed": str(seed), "return": str(value - seed)}
        for seed in (1, 0)
        for name, mode, value in rows
    ]
    table = bounds.bracket_rows(episodes)
    assert [row["seed"] for row in table] == [0, 1]
    first = table[0]
    assert first["bracket"] == pytest.approx(15.0 / 75.0)
    assert first["best_policy"] == "heuristic"
    assert first["plan_over_best"] == pytest.approx(15.0 / 90.0)
    assert first["bracket_budget"] == pytest.approx(35.0 / 85.0)
    assert first["best_policy_budget"] == "threshold-budget"
    assert first["plan_over_best_budget"] == pytest.approx(-5.0 / 80.0)
    assert table[1]["bound"] == -61.0
    with open(tmp_path / "episodes.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(episodes[0]))
        writer.writeheader()
        writer.writerows(episodes)
    with open(bounds.write_brackets(tmp_path)) as handle:
        written = list(csv.DictReader(handle))
    assert [float(row["bracket"]) for row in written] == pytest.approx([0.2, 15 / 76], rel=1e-5)
