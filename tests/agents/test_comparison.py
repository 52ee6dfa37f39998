"""Paired comparison of policies (agents/comparison.py) against hand-computed values."""

from __future__ import annotations

import math

import pytest

from agents.comparison import default_reference, paired_differences
from agents.evaluation import EpisodeResult


def _result(policy: str, seed: int, ret: float, successes: int = 9, tasks: int = 10):
    return EpisodeResult(
        policy, seed, seed, "beta", episode_return=ret, successes=successes, tasks=tasks
    )


def test_paired_difference_and_its_t_interval_by_hand():
    """d = (2, 4, 6): mean 4, std 2, half-width t(0.975, 2) * 2 / sqrt(3) = 4.9683."""
    results = [_result("ref", s, r) for s, r in enumerate((-10.0, -20.0, -30.0))]
    results += [_result("agent", s, r, successes=10) for s, r in enumerate((-8.0, -16.0, -24.0))]
    (row,) = paired_differences(results, "ref")
    assert row["policy"] == "agent" and row["episodes"] == 3
    assert row["return_diff"] == pytest.approx(4.0)
    assert row["return_diff_ci95"] == pytest.approx(4.302652729749464 * 2 / math.sqrt(3))
    assert row["success_diff"] == pytest.approx(0.1)
    assert row["beats_reference"] is False  # 4 - 4.97 < 0: not at the 95 % level


def test_beats_reference_needs_the_whole_interval_above_zero():
    """Constant differences have a zero-width interval; a seed-to-seed spread that the
    pairing cancels does not matter, only the spread of the differences does."""
    base = [_result("ref", s, -100.0 * (s + 1)) for s in range(4)]
    better = [_result("a", s, -100.0 * (s + 1) + 0.5) for s in range(4)]
    worse = [_result("b", s, -100.0 * (s + 1) - 0.5) for s in range(4)]
    rows = {row["policy"]: row for row in paired_differences(base + better + worse, "ref")}
    assert rows["a"]["beats_reference"] and rows["a"]["return_diff_ci95"] == 0.0
    assert not rows["b"]["beats_reference"]


def test_only_the_seeds_both_ran_are_paired():
    results = [_result("ref", s, 0.0) for s in (0, 1, 2)]
    results += [_result("agent", s, 1.0 * s) for s in (1, 2, 3)]
    (row,) = paired_differences(results, "ref")
    assert row["episodes"] == 2 and row["return_diff"] == pytest.approx(1.5)
    with pytest.raises(ValueError, match="no episodes"):
        paired_differences(results, "missing")


def test_default_reference_is_the_best_non_learned_policy():
    rows = [
        {"policy": "fixed-beta:mu", "return_mean": -500.0},
        {"policy": "threshold-budget", "return_mean": -450.0},
        {"policy": "pretrained", "return_mean": -400.0},
        {"policy": "ppo:runs/x/model.zip", "return_mean": -300.0},
        {"policy": "clairvoyant-bound", "return_mean": -100.0},
    ]
    assert default_reference(rows) == "threshold-budget"
    assert default_reference(rows[2:]) is None
