"""Compare policies on the same seeded episodes of ``isac_gym/MIMOISAC-v0``.

Episode ``i`` resets with seed ``seed + i`` for every policy (common random numbers:
users, fading, target, harvest and demand depend only on the reset seed). A policy that
declares ``env_overrides`` (EqualCom, EqualC&S: the oracle's scheme) gets its own env
with them; everything else in ``env_kwargs`` is shared.

Per policy (means over episodes, with 95% half-widths ``*_ci95``): ``return_mean``,
``ee_comm`` and ``ee_sense`` (mean per frame), ``rate_met`` (user-frames meeting their
demand / user-frames), ``crb_met`` (frames meeting both CRB ceilings / frames),
``outage_rate`` (frames ending in outage / frames), ``energy`` and ``energy_grid``
(J per episode), ``decision_ms`` and ``oracle_ms`` (per frame).
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

METRICS = (
    "return_mean",
    "ee_comm",
    "ee_sense",
    "rate_met",
    "crb_met",
    "outage_rate",
    "energy",
    "energy_grid",
    "decision_ms",
    "oracle_ms",
)

#: why ``--bound`` (agents.bounds) has no MIMOISAC-v0 counterpart (README, MIMOISAC-v0)
BOUND_DOES_NOT_CARRY_OVER = (
    "--bound: the clairvoyant bound of agents.bounds is for ISCC-v0 only and does not carry "
    "over to MIMOISAC-v0: it needs the slot oracle's optimal cost as a convex outer "
    "description per user, while MIMOISAC-v0's frame problem (26) couples the users, is "
    "nonconvex (Dinkelbach-SCA certifies no global optimum) and its reward is a ratio "
    "(efficiency per watt), not linear in the energy; see README.md"
)


@dataclass
class MIMOEpisode:
    """Sums over one episode; :meth:`metrics` turns them into the reported means."""

    policy: str
    seed: int
    frames: int = 0
    reward: float = 0.0
    sums: dict = field(default_factory=lambda: dict.fromkeys(METRICS[1:], 0.0))
    user_frames: int = 0

    def add(self, reward: float, info: dict, decision_s: float) -> None:
        self.frames += 1
        self.reward += reward
        self.user_frames += len(info["rate_met"])
        for key, value in (
            ("ee_comm", info["ee_comm"]),
            ("ee_sense", info["ee_sense"]),
            ("rate_met", np.sum(info["rate_met"])),
            ("crb_met", np.all(info["crb_met"])),
            ("outage_rate", info["outage"]),
            ("energy", info["energy"]),
            ("energy_grid", info["energy_grid"]),
            ("decision_ms", 1e3 * decision_s),
            ("oracle_ms", 1e3 * float(info["oracle_time_s"])),
        ):
            self.sums[key] += float(value)

    @property
    def episode_return(self) -> float:
        return self.reward

    @property
    def success_rate(self) -> float:
        """The share of user-frames at their rate floor (``paired.csv``'s success)."""
        return self.sums["rate_met"] / max(self.user_frames, 1)

    def metrics(self) -> dict[str, float]:
        per_frame = {key: self.sums[key] / self.frames for key in self.sums}
        per_frame["rate_met"] = self.success_rate
        per_frame["energy"], per_frame["energy_grid"] = (
            self.sums["energy"],
            self.sums["energy_grid"],
        )
        return {"return_mean": self.reward, **per_frame}


def run_mimo_episode(env: Any, policy: Any, seed: int) -> MIMOEpisode:
    """One seeded episode of ``policy`` in ``env`` (truncation ends it)."""
    obs, _ = env.reset(seed=seed)
    policy.reset(seed)
    episode = MIMOEpisode(policy.name, seed)
    done = False
    while not done:
        clock = time.perf_counter()
        action, _ = policy.predict(obs, deterministic=True)
        decision = time.perf_counter() - clock
        obs, reward, terminated, truncated, info = env.step(action)
        episode.add(reward, info, decision)
        done = terminated or truncated
    return episode


def evaluate_mimo_policies(
    specs: list[str],
    episodes: int,
    seed: int = 0,
    env_kwargs: dict | None = None,
    *,
    jobs: int = 1,
    progress: bool = False,
    backend: str = "local",
    ray_address: str | None = None,
) -> list[list[MIMOEpisode]]:
    """Every policy on episodes ``seed .. seed + episodes - 1``; one list per policy.
    Each (policy, episode) is one task of :func:`isac_gym.runs.map_jobs` (``jobs``
    worker processes or Ray tasks, a progress bar when ``progress``); an episode
    depends only on its seed, so the results do not depend on ``jobs`` or ``backend``."""
    from isac_gym.runs import map_jobs

    tasks = [(spec, seed + i, dict(env_kwargs or {})) for spec in specs for i in range(episodes)]
    done = map_jobs(
        _episode_task, tasks, jobs, progress="episodes" if progress else False,
        unit="episode", torch=True, backend=backend, address=ray_address,
    )  # fmt: skip
    return [done[k * episodes : (k + 1) * episodes] for k in range(len(specs))]


def _episode_task(task: tuple) -> MIMOEpisode:
    """One seeded episode of one policy in a fresh env (its own, with the policy's
    ``env_overrides``: EqualCom and EqualC&S set the oracle's scheme)."""
    import gymnasium

    import isac_gym  # noqa: F401  (registers the ids)
    from agents.mimo_policies import make_mimo_policy

    spec, episode_seed, env_kwargs = task
    env = gymnasium.make("isac_gym/MIMOISAC-v0", **env_kwargs)
    policy = make_mimo_policy(spec, env)
    if policy.env_overrides:
        env = gymnasium.make("isac_gym/MIMOISAC-v0", **{**env_kwargs, **policy.env_overrides})
        policy = make_mimo_policy(spec, env)
    return run_mimo_episode(env, policy, episode_seed)


def summarize_mimo(results: list[list[MIMOEpisode]]) -> list[dict[str, Any]]:
    """One row per policy: the mean and the 95% half-width of every metric."""
    from scipy import stats

    rows = []
    for runs in results:
        table = np.array([[run.metrics()[key] for key in METRICS] for run in runs])
        count = len(runs)
        spread = table.std(axis=0, ddof=1) if count > 1 else np.full(len(METRICS), np.nan)
        half = stats.t.ppf(0.975, count - 1) * spread / np.sqrt(count) if count > 1 else spread
        row = {"policy": runs[0].policy, "episodes": count}
        row.update(zip(METRICS, table.mean(axis=0), strict=True))
        row.update({f"{key}_ci95": value for key, value in zip(METRICS, half, strict=True)})
        rows.append(row)
    return rows


def write_mimo_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """``policy,episodes`` then every metric and its ``_ci95``, 6 significant digits."""
    columns = ["policy", "episodes", *METRICS, *(f"{key}_ci95" for key in METRICS)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
    return path


def format_mimo_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the main metrics (mean +- 95 % half-width)."""
    lines = [
        "| policy | return | EE_c | EE_s | rate met | CRB met | outage | energy [J] |",
        "|" + "---|" * 8,
    ]
    for row in rows:
        cells = [f"{row['return_mean']:.2f} ± {row['return_mean_ci95']:.2f}"]
        cells += [f"{row[key]:.4g}" for key in ("ee_comm", "ee_sense")]
        cells += [f"{100 * row[key]:.1f} %" for key in ("rate_met", "crb_met", "outage_rate")]
        cells.append(f"{row['energy']:.3f}")
        lines.append(f"| {row['policy']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_from_args(args) -> int:
    """``evaluate.py policies --env isac_gym/MIMOISAC-v0 ...``: the table, ``policies.csv``
    and ``manifest.json`` in ``--out``."""
    import shlex
    import sys

    from agents.evaluation import write_paired
    from agents.mimo_policies import parse_mimo_spec
    from isac_gym.cli import UsageError
    from isac_gym.runs import prepare_output, write_manifest

    if getattr(args, "bound", False):
        raise UsageError(BOUND_DOES_NOT_CARRY_OVER)
    specs = [spec.strip() for spec in args.policies.split(",") if spec.strip()]
    reference = getattr(args, "paired_reference", None)
    if reference is not None and reference not in specs:
        raise UsageError(f"--paired-reference {reference!r} is not in --policies")
    for spec in specs:
        try:
            parse_mimo_spec(spec)
        except ValueError as error:
            raise UsageError(f"--policies: {error}") from None
    prepare_output(args.out)
    start = time.perf_counter()
    results = evaluate_mimo_policies(
        specs, args.episodes, args.seed, args.env_kwargs or {}, jobs=args.jobs,
        progress=not args.no_progress, backend=args.backend, ray_address=args.ray_address,
    )  # fmt: skip
    rows = summarize_mimo(results)
    path = write_mimo_csv(rows, Path(args.out) / "policies.csv")
    paired = write_paired(args, rows, [run for runs in results for run in runs])
    wall = round(time.perf_counter() - start, 2)
    write_manifest(args.out, shlex.join([sys.executable, *sys.argv]), wall_time_s=wall)
    print(format_mimo_table(rows))
    if paired:
        print(paired)
    print(f"wrote {path} ({wall:.1f} s)")
    return 0
