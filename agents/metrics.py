"""The one reducer from the environment's step ``info`` to metrics.

Training (:class:`agents.callbacks.InfoLoggerCallback`) and evaluation
(:class:`agents.evaluation.EpisodeResult`) both sum :func:`step_counts` over steps;
rates are ratios of the sums (success rate = successful / arrived tasks, outage rate =
UE-slots in outage / UE-slots). The drop causes are the environment's
(``isac_gym.envs.iscc.DROP_CAUSES``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

#: The sums :func:`step_counts` returns for every step (plus ``drops_<cause>`` and
#: ``reward_<component>`` for the causes and components the info names).
COUNT_KEYS = (
    "energy_cost",
    "weighted_cost",
    "oracle_s",
    "tasks",
    "successes",
    "ue_slots",
    "outages",
    "alpha_sum",
    "alpha_count",
)


def drop_causes() -> tuple[str, ...]:
    """The environment's drop causes, in the order of its ``info["drop_cause"]`` codes."""
    from isac_gym.envs.iscc import DROP_CAUSES

    return DROP_CAUSES


def step_counts(info: Mapping[str, Any]) -> dict[str, float]:
    """What one step adds to the metric sums, read from its ``info``.

    ``energy_cost``, ``weighted_cost`` [J] and ``oracle_s`` (the slot solver's time);
    ``tasks`` arrived and ``successes`` among them; ``ue_slots`` and ``outages``;
    ``alpha_sum`` / ``alpha_count`` over the UEs with a task; ``drops_<cause>`` per
    cause of ``info["drops"]``; ``reward_<key>`` per component of ``info["rewards"]``.
    Missing fields add nothing.
    """
    counts: dict[str, float] = {key: 0 for key in COUNT_KEYS}
    counts["energy_cost"] = float(info.get("energy_cost", 0.0))
    counts["weighted_cost"] = float(info.get("weighted_cost", 0.0))
    counts["oracle_s"] = float(info.get("oracle_time_s", 0.0))
    counts["alpha_sum"] = 0.0
    if "task" in info:
        task = np.asarray(info["task"], bool)
        if "success" in info:
            counts["tasks"] = int(task.sum())
            counts["successes"] = int(np.asarray(info["success"], bool)[task].sum())
        if "alpha" in info:
            counts["alpha_sum"] = float(np.asarray(info["alpha"], float)[task].sum())
            counts["alpha_count"] = int(task.sum())
    if "outage" in info:
        outage = np.asarray(info["outage"], bool)
        counts["ue_slots"] = int(outage.size)
        counts["outages"] = int(outage.sum())
    for cause, count in info.get("drops", {}).items():
        counts[f"drops_{cause}"] = int(count)
    rewards = info.get("rewards")
    if isinstance(rewards, Mapping):
        for key, value in rewards.items():
            counts[f"reward_{key}"] = float(value)
    return counts


def add_counts(totals: dict[str, float], counts: Mapping[str, float]) -> dict[str, float]:
    """``totals += counts`` key by key (in place; returns ``totals``)."""
    for key, value in counts.items():
        totals[key] = totals.get(key, 0) + value
    return totals


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is 0 (no tasks, no UEs)."""
    return numerator / denominator if denominator else math.nan
