"""agents.rollout: a batch of episodes in the native vector env equals one by one."""

import dataclasses

import pytest

import isac_gym  # noqa: F401  (registers the ids)
from agents import evaluation
from agents.rollout import run_batch

ENV_ID = "isac_gym/ISCC-v0"
SHORT = dict(oracle="fast", horizon=6, b_init=(0.05, 0.3), task_probability=1.0)
TIMES = ("predict_s", "oracle_s")  # wall times: machine, not episode


@pytest.mark.parametrize("spec", ["random", "lyapunov", "fl"])
def test_batched_episodes_equal_single_episodes(spec):
    env, policy = evaluation.make_env_and_policy(ENV_ID, spec, SHORT)
    seeds, episodes = [7, 8, 9], [0, 1, 2]
    batched = run_batch(env, policy, spec, seeds, episodes, trace_at=1)
    for (result, trace), seed, episode in zip(batched, seeds, episodes, strict=True):
        single, single_trace = evaluation.run_episode(env, policy, seed, episode, episode == 1)
        mine = {k: v for k, v in dataclasses.asdict(result).items() if k not in TIMES}
        theirs = {k: v for k, v in dataclasses.asdict(single).items() if k not in TIMES}
        assert mine == theirs
        assert trace == single_trace
        assert result.slots == SHORT["horizon"] and result.predict_s > 0
    assert batched[1][1] is not None and batched[0][1] is None
    # the episodes differ (different seeds): the comparison is not vacuous
    assert batched[0][0].episode_return != batched[1][0].episode_return


def test_evaluate_policies_in_batches_keeps_order_and_traces():
    results, traces = evaluation.evaluate_policies(
        ENV_ID, ["fixed-beta:mu", "random"], 3, seed=2, env_kwargs=SHORT, progress=False, batch=2
    )
    assert [(r.policy, r.seed, r.episode) for r in results] == [
        ("fixed-beta:mu", 2, 0),
        ("fixed-beta:mu", 3, 1),
        ("fixed-beta:mu", 4, 2),
        ("random", 2, 0),
        ("random", 3, 1),
        ("random", 4, 2),
    ]
    assert set(traces) == {"fixed-beta:mu", "random"}
