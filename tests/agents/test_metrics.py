"""The policy-evaluation metrics (agents/evaluation.py) against counts made by hand.

Success rate = successful / arrived tasks (not UE-slots), outage rate = UE-slots in
outage / UE-slots, costs and returns are per-episode sums, and ``summarize`` pools the
counts over episodes (it does not average per-episode ratios).
"""

import math
import time

import gymnasium as gym
import numpy as np
import pytest

from agents import evaluation
from agents.evaluation import EpisodeResult

ENV_ID = "isac_gym/ISCC-v0"


class Recorder(gym.Wrapper):
    """Keeps every step's reward and info, to count the metrics by hand."""

    def reset(self, **kwargs):
        self.steps = []
        return self.env.reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps.append((reward, info))
        return obs, reward, terminated, truncated, info


def test_run_episode_counts_tasks_successes_and_outages_by_hand():
    # half the UE-slots carry a task; low batteries make some tasks fail and some outages
    kwargs = dict(
        oracle="fast",
        horizon=12,
        task_probability=0.5,
        b_init=(0.05, 0.06),
        outage_margin=0.005,
        harvest_quantum=1e-5,
    )
    env, policy = evaluation.make_env_and_policy(ENV_ID, "fixed-beta:mu", kwargs)
    env = Recorder(env)
    result, _ = evaluation.run_episode(env, policy, seed=7)
    infos = [info for _, info in env.steps]
    tasks = sum(int(info["task"].sum()) for info in infos)
    successes = sum(int((info["success"] & info["task"]).sum()) for info in infos)
    ue_slots = 4 * 12
    outages = sum(int(info["outage"].sum()) for info in infos)
    # the case separates the candidate denominators and numerators
    assert 0 < tasks < ue_slots and 0 < successes < tasks and 0 < outages < ue_slots
    assert result.success_rate == successes / tasks
    assert result.outage_rate == outages / ue_slots
    assert (result.tasks, result.successes, result.slots) == (tasks, successes, 12)
    assert result.episode_return == pytest.approx(sum(r for r, _ in env.steps), rel=1e-12)
    energy = sum(info["energy_ue"].sum() + info["energy_ap"].sum() for info in infos)
    assert result.energy_cost == pytest.approx(energy, rel=1e-12)
    weighted = sum(info["energy_ue"].sum() + 0.1 * info["energy_ap"].sum() for info in infos)
    assert result.weighted_cost == pytest.approx(weighted, rel=1e-12)  # mu = 0.1
    drops = {cause: sum(info["drops"][cause] for info in infos) for cause in result.drops}
    assert result.drops == drops and sum(drops.values()) == tasks - successes
    alpha = sum(info["alpha"][info["task"]].sum() for info in infos)
    assert result.alpha_sum == pytest.approx(alpha, rel=1e-12) and result.alpha_count == tasks


def episode(policy, tasks, successes, outages, **sums):
    result = EpisodeResult(policy, 0, 0, "beta")
    result.tasks, result.successes, result.outages = tasks, successes, outages
    for name, value in sums.items():
        setattr(result, name, value)
    return result


def test_summarize_pools_counts_over_episodes():
    results = [
        episode("a", 10, 5, 2, slots=10, ue_slots=40, episode_return=-3.0, energy_cost=1.0,
                weighted_cost=0.5, predict_s=0.02, oracle_s=0.1, alpha_sum=4.0, alpha_count=10,
                drops={"battery": 3, "ap_capacity": 0, "deadline": 2}),
        episode("a", 30, 30, 0, slots=10, ue_slots=40, episode_return=-1.0, energy_cost=3.0,
                weighted_cost=1.5, predict_s=0.04, oracle_s=0.3, alpha_sum=6.0, alpha_count=30,
                drops={"battery": 0, "ap_capacity": 1, "deadline": 0}),
        episode("b", 0, 0, 0, slots=5, ue_slots=20),
    ]  # fmt: skip
    row_a, row_b = evaluation.summarize(results, oracle="fast")
    assert row_a["policy"] == "a" and row_b["policy"] == "b"
    assert row_a["success_rate"] == 35 / 40  # pooled; the mean of 0.5 and 1.0 is 0.75
    assert row_a["outage_rate"] == 2 / 80
    assert row_a["energy_cost"] == 2.0 and row_a["weighted_cost"] == 1.0
    assert row_a["return_mean"] == -2.0
    assert row_a["return_std"] == pytest.approx(math.sqrt(2.0), rel=1e-12)  # ddof = 1
    assert row_a["decision_ms"] == pytest.approx(3.0, rel=1e-12)  # 1e3 * 0.06 s / 20
    assert row_a["oracle_ms"] == pytest.approx(20.0, rel=1e-12)
    assert row_a["episodes"] == 2
    assert (row_a["drops_battery"], row_a["drops_ap_capacity"]) == (1.5, 0.5)
    assert row_a["drops_deadline"] == 1.0
    assert row_a["mean_alpha"] == 10.0 / 40
    assert row_a["oracle"] == "fast" and row_a["action_mode"] == "beta"
    # t_{0.975, 1} = 12.7062; the success rates 0.5 and 1.0 have s = sqrt(0.125)
    assert row_a["success_rate_ci95"] == pytest.approx(12.7062 * 0.5 / 2, rel=1e-5)
    assert math.isnan(row_b["success_rate"]) and math.isnan(row_b["mean_alpha"])
    assert row_b["return_std"] == 0.0 and math.isnan(row_b["return_mean_ci95"])


def test_episode_result_ratios_and_empty_cases():
    result = episode("a", 4, 3, 1, slots=2, ue_slots=8, predict_s=0.004, oracle_s=0.01)
    assert result.success_rate == 0.75 and result.outage_rate == 0.125
    assert result.decision_ms == pytest.approx(2.0) and result.oracle_ms == pytest.approx(5.0)
    row = result.row()
    assert (row["success_rate"], row["tasks"], row["successes"]) == (0.75, 4, 3)
    empty = EpisodeResult("a", 0, 0, "beta")
    assert math.isnan(empty.success_rate) and math.isnan(empty.outage_rate)
    assert empty.decision_ms == 0.0


def test_allocation_mode_row_names_its_completion():
    result = EpisodeResult("fl", 0, 0, "allocation")
    assert evaluation.summarize([result], oracle="sca_admm")[0]["oracle"] == "fast (alpha fixed)"


@pytest.mark.parametrize("values", [[1.0, 2.0, 4.0], [0.0, 0.0]])
def test_ci95_against_the_t_table(values):
    # t_{0.975, 2} = 4.3027; mean 7/3, s^2 = ((4/3)^2 + (1/3)^2 + (5/3)^2) / 2 = 7/3
    expected = 4.302653 * math.sqrt(7 / 3) / math.sqrt(3) if len(values) == 3 else 0.0
    assert evaluation.ci95(values) == pytest.approx(expected, rel=1e-6, abs=1e-15)
    assert evaluation.ci95([*values, math.nan]) == evaluation.ci95(values)  # NaN skipped


class ScriptedEnv:
    """Returns prescribed steps; infos use 0/1 integer lists (as a vector env may)."""

    def __init__(self, steps):
        self.steps, self.reset_seeds, self.actions = steps, [], []

    def reset(self, seed=None):
        self.reset_seeds.append(seed)
        self.t = 0
        return "obs0", {}

    def step(self, action):
        self.actions.append(action)
        reward, info = self.steps[self.t]
        self.t += 1
        return f"obs{self.t}", reward, False, self.t == len(self.steps), info


class ScriptedPolicy:
    name, action_mode = "scripted", "allocation"

    def __init__(self):
        self.calls, self.reset_seeds = [], []

    def reset(self, seed=None):
        self.reset_seeds.append(seed)

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        self.calls.append((obs, state, episode_start.copy(), deterministic))
        time.sleep(0.005)
        return f"action-{obs}", len(self.calls)


STEPS = [
    (-1.0, dict(task=[1, 0, 1], success=[0, 0, 1], outage=[0, 1, 0], energy_cost=0.5,
                weighted_cost=0.25, oracle_time_s=0.01, drops={"battery": 1},
                alpha=[0.2, 0.9, 0.4], beta=[1.0, 2.0, 3.0], battery=[0.5, 0.4, 0.3])),
    (-2.5, dict(task=[0, 1, 1], success=[0, 1, 1], outage=[1, 1, 0], energy_cost=1.5,
                weighted_cost=0.75, oracle_time_s=0.03, drops={"deadline": 2, "other": 2},
                alpha=[0.7, 0.6, 0.5], battery=[0.6, 0.5, 0.4])),
    # no success, alpha, cost or drop keys: nothing counted
    (0.5, dict(battery=[0.7, 0.6, 0.5], task=[1, 1, 1])),
]  # fmt: skip


def test_run_episode_on_a_scripted_env_by_hand():
    env, policy = ScriptedEnv(STEPS), ScriptedPolicy()
    result, series = evaluation.run_episode(env, policy, seed=11, episode=3, trace=True)
    assert env.reset_seeds == [11] and policy.reset_seeds == [11]
    # predict: the previous obs and state; episode_start True once, then False
    assert [(obs, state) for obs, state, _, _ in policy.calls] == [
        ("obs0", None),
        ("obs1", 1),
        ("obs2", 2),
    ]
    for i, (_, _, start, deterministic) in enumerate(policy.calls):
        assert start.dtype == bool and start.shape == (1,) and start[0] == (i == 0)
        assert deterministic is True
    assert env.actions == ["action-obs0", "action-obs1", "action-obs2"]
    assert (result.policy, result.episode, result.seed) == ("scripted", 3, 11)
    assert result.action_mode == "allocation" and result.slots == 3
    assert result.episode_return == -3.0
    assert (result.energy_cost, result.weighted_cost) == (2.0, 1.0)
    assert result.oracle_s == pytest.approx(0.04, rel=1e-12)
    assert 3 * 0.005 <= result.predict_s < 1.0  # three sleeps of 5 ms, summed
    # tasks: [1, 0, 1] + [0, 1, 1] = 4 (step 3 has no success: not counted); successes
    # among them: 1 + 2 = 3 (0/1 lists are masks, not indices)
    assert (result.tasks, result.successes) == (4, 3)
    assert (result.ue_slots, result.outages) == (6, 3)
    assert result.drops == {"battery": 1, "ap_capacity": 0, "deadline": 2, "budget": 0, "other": 2}
    assert result.alpha_sum == pytest.approx(0.2 + 0.4 + 0.6 + 0.5) and result.alpha_count == 4
    assert series["battery"] == [[0.5, 0.4, 0.3], [0.6, 0.5, 0.4], [0.7, 0.6, 0.5]]
    assert series["alpha"][:2] == [[0.2, 0.9, 0.4], [0.7, 0.6, 0.5]]
    assert np.isnan(series["alpha"][2]) and np.isnan(series["beta"][1])
    assert series["beta"][0] == [1.0, 2.0, 3.0] and series["reward"] == [-1.0, -2.5, 0.5]
    assert series["action_mode"] == "allocation"
    plain, no_series = evaluation.run_episode(ScriptedEnv(STEPS), ScriptedPolicy(), seed=0)
    assert no_series is None and plain.episode == 0


def test_episode_result_row_names_every_column():
    result = episode("p", 4, 3, 1, slots=2, ue_slots=8, predict_s=0.004, oracle_s=0.01,
                     episode_return=-1.5, energy_cost=2.0, weighted_cost=1.0)  # fmt: skip
    result.episode, result.seed = 2, 9
    assert result.row() == {
        "policy": "p",
        "episode": 2,
        "seed": 9,
        "action_mode": "beta",
        "return": -1.5,
        "energy_cost": 2.0,
        "weighted_cost": 1.0,
        "success_rate": 0.75,
        "outage_rate": 0.125,
        "tasks": 4,
        "successes": 3,
        "decision_ms": pytest.approx(2.0),
        "oracle_ms": pytest.approx(5.0),
        "drops_battery": 0,
        "drops_ap_capacity": 0,
        "drops_deadline": 0,
        "drops_budget": 0,
    }


def test_summarize_single_slot_missing_causes_and_no_oracle():
    result = episode("p", 1, 1, 0, slots=1, ue_slots=3, predict_s=0.002, oracle_s=0.004)
    result.drops = {"battery": 2}  # the other causes absent: zero
    (row,) = evaluation.summarize([result])
    assert row["decision_ms"] == pytest.approx(2.0) and row["oracle_ms"] == pytest.approx(4.0)
    assert (row["drops_battery"], row["drops_ap_capacity"], row["drops_deadline"]) == (2, 0, 0)
    assert row["oracle"] == ""
