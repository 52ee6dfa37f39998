"""Paired comparison of policies over the same seeded episodes (``paired.csv``).

Every policy of ``evaluate.py policies`` runs the same episodes (episode i resets with
seed S + i, and the exogenous draws do not depend on the actions), so two policies are
compared by the per-episode differences, which cancel the large seed-to-seed spread of
the return. For policy P and the reference policy Q:

    d_i = R_i(P) - R_i(Q),   mean(d) +- t_{0.975, n-1} std(d) / sqrt(n),

and likewise for the success rate. P beats Q (at the 95 % level) when the whole
interval of ``return_diff`` is above 0. The default reference is the best non-learned
policy by mean return (learned agents and the clairvoyant rows are not references).
"""

from __future__ import annotations

import math

import numpy as np

from agents.policies import LEARNED_KINDS  # learned agents are never the default reference

COLUMNS = (
    "policy",
    "reference",
    "episodes",
    "return_diff",
    "return_diff_ci95",
    "success_diff",
    "success_diff_ci95",
    "beats_reference",
)


def _is_reference_candidate(policy: str) -> bool:
    kind = policy.split(":", 1)[0].strip().lower()
    return kind not in LEARNED_KINDS and not policy.startswith("clairvoyant")


def default_reference(rows: list[dict]) -> str | None:
    """The non-learned policy with the highest mean return (None if there is none)."""
    candidates = [row for row in rows if _is_reference_candidate(row["policy"])]
    if not candidates:
        return None
    return max(candidates, key=lambda row: row["return_mean"])["policy"]


def _by_seed(results: list, policy: str) -> dict[int, object]:
    return {r.seed: r for r in results if r.policy == policy}


def paired_differences(results: list, reference: str) -> list[dict]:
    """One row per policy other than ``reference``: the paired differences over the
    episode seeds both ran (``results``: :class:`agents.evaluation.EpisodeResult`)."""
    from agents.evaluation import ci95

    base = _by_seed(results, reference)
    if not base:
        raise ValueError(f"paired reference {reference!r} has no episodes")
    rows = []
    for policy in dict.fromkeys(r.policy for r in results):
        if policy == reference:
            continue
        mine = _by_seed(results, policy)
        seeds = sorted(set(mine) & set(base))
        if not seeds:
            continue
        returns = [mine[s].episode_return - base[s].episode_return for s in seeds]
        success = [mine[s].success_rate - base[s].success_rate for s in seeds]
        half = ci95(returns)
        mean = float(np.mean(returns))
        rows.append(
            {
                "policy": policy,
                "reference": reference,
                "episodes": len(seeds),
                "return_diff": mean,
                "return_diff_ci95": half,
                "success_diff": float(np.mean(success)),
                "success_diff_ci95": ci95(success),
                "beats_reference": bool(math.isfinite(half) and mean - half > 0),
            }
        )
    return rows


def format_paired(rows: list[dict]) -> str:
    """A Markdown table of :func:`paired_differences`."""
    if not rows:
        return ""
    lines = [
        f"paired against {rows[0]['reference']} (same seeds; 95% CI):",
        "| policy | return diff | success diff [pp] | beats it |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['policy']} | {r['return_diff']:+.1f} ± {r['return_diff_ci95']:.1f} "
            f"| {100 * r['success_diff']:+.2f} ± {100 * r['success_diff_ci95']:.2f} "
            f"| {'yes' if r['beats_reference'] else 'no'} |"
        )
    return "\n".join(lines)


__all__ = ["COLUMNS", "default_reference", "format_paired", "paired_differences"]
