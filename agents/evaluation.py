"""Compare policies on the same seeded episodes (``python evaluate.py policies``).

Every policy runs the same episodes: episode ``i`` resets with seed ``seed + i`` for
every policy (common random numbers: the env's exogenous streams -- tasks, harvests,
mobility, fading, AP load -- depend only on the reset seed). A policy that needs the
other action mode (FL/FO/HO: ``allocation``; ``lyapunov-budget``, ``threshold-budget``:
``beta_budget``) gets its own env with ``action_mode``
overridden; everything else in ``env_kwargs`` is shared.

Outputs under ``out``:

* ``policies.csv`` -- one row per policy: ``policy,energy_cost,weighted_cost,
  success_rate,outage_rate,return_mean,return_std,decision_ms,episodes`` then
  ``oracle_ms``, ``action_mode``, ``oracle``, mean drops per episode by cause, mean
  alpha, and the 95% confidence half-widths ``*_ci95`` (Student t over episodes).
  Costs are mean per-episode sums [J]; the weighted cost is always at the env's mu;
  success rate = successful / arrived tasks; outage rate = UE-slots in outage /
  UE-slots; ``decision_ms`` = mean ``predict`` time per slot; ``oracle_ms`` = mean
  per-slot time of the env's slot solver (the oracle of beta-mode policies, the
  allocation completion of allocation-mode ones).
* ``episodes.csv`` -- the same metrics per policy and episode.
* ``policies.png`` -- box plot of episode returns and bars with 95% CIs.
* ``trace.png`` -- battery, beta and alpha per slot of one episode for every policy.
* ``policies.json`` -- the command, the settings, and the rows.

With ``--bound`` (:mod:`agents.bounds`) the rows ``clairvoyant-bound`` (an upper bound
on the return of any beta-mode policy per seed; only its return is filled) and
``clairvoyant-plan`` (its beta schedule replayed open-loop) join both CSVs and the
plot (with a ``beta_budget`` policy also ``clairvoyant-bound-budget`` and
``clairvoyant-plan-budget``, the same for that mode), and ``policies.csv`` gains
``gap_closed = (R - R_myopic) / (R_bound - R_myopic)`` with ``fixed-beta:mu`` as the
myopic policy and the bound of the row's mode (nan without those rows).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.metrics import drop_causes, step_counts
from isac_gym import ray_backend
from isac_gym.cli import UsageError, json_object, positive_int

COLUMNS = (
    "policy",
    "energy_cost",
    "weighted_cost",
    "success_rate",
    "outage_rate",
    "return_mean",
    "return_std",
    "decision_ms",
    "episodes",
)
EXTRA_COLUMNS = (
    "oracle_ms",
    "action_mode",
    "oracle",
    "drops_battery",
    "drops_ap_capacity",
    "drops_deadline",
    "drops_budget",
    "mean_alpha",
)
CI_METRICS = (
    "energy_cost",
    "weighted_cost",
    "success_rate",
    "outage_rate",
    "return_mean",
    "decision_ms",
    "oracle_ms",
)


@dataclass
class EpisodeResult:
    """Per-episode sums of one policy on one seeded episode."""

    policy: str
    episode: int
    seed: int
    action_mode: str
    slots: int = 0
    ue_slots: int = 0
    episode_return: float = 0.0
    energy_cost: float = 0.0
    weighted_cost: float = 0.0
    tasks: int = 0
    successes: int = 0
    outages: int = 0
    predict_s: float = 0.0
    oracle_s: float = 0.0
    alpha_sum: float = 0.0
    alpha_count: int = 0
    drops: dict = field(default_factory=lambda: dict.fromkeys(drop_causes(), 0))

    @property
    def success_rate(self) -> float:
        return self.successes / self.tasks if self.tasks else math.nan

    @property
    def outage_rate(self) -> float:
        return self.outages / self.ue_slots if self.ue_slots else math.nan

    @property
    def decision_ms(self) -> float:
        return 1e3 * self.predict_s / max(self.slots, 1)

    @property
    def oracle_ms(self) -> float:
        return 1e3 * self.oracle_s / max(self.slots, 1)

    def add_step(self, reward: float, info: dict) -> None:
        """Add one step's reward and its ``info`` metrics (:func:`agents.metrics.step_counts`)."""
        counts = step_counts(info)
        self.slots += 1
        self.episode_return += float(reward)
        self.energy_cost += counts["energy_cost"]
        self.weighted_cost += counts["weighted_cost"]
        self.oracle_s += counts["oracle_s"]
        self.tasks += counts["tasks"]
        self.successes += counts["successes"]
        self.ue_slots += counts["ue_slots"]
        self.outages += counts["outages"]
        self.alpha_sum += counts["alpha_sum"]
        self.alpha_count += counts["alpha_count"]
        for key, count in counts.items():
            if key.startswith("drops_"):
                cause = key.removeprefix("drops_")
                self.drops[cause] = self.drops.get(cause, 0) + count

    def row(self) -> dict:
        return {
            "policy": self.policy,
            "episode": self.episode,
            "seed": self.seed,
            "action_mode": self.action_mode,
            "return": self.episode_return,
            "energy_cost": self.energy_cost,
            "weighted_cost": self.weighted_cost,
            "success_rate": self.success_rate,
            "outage_rate": self.outage_rate,
            "tasks": self.tasks,
            "successes": self.successes,
            "decision_ms": self.decision_ms,
            "oracle_ms": self.oracle_ms,
            **{f"drops_{cause}": n for cause, n in self.drops.items()},
        }


# ---------------------------------------------------------------------------------------
# Running episodes
# ---------------------------------------------------------------------------------------
_CACHE: dict[tuple, tuple[Any, Any]] = {}


def _import_env_packages(env_id: str) -> None:
    if env_id.startswith("isac_gym/"):
        import isac_gym  # noqa: F401 - registers the environments


def make_env_and_policy(env_id: str, spec: str, env_kwargs: dict | None = None):
    """``(env, policy)`` for ``spec``, the env in the action mode the policy declares.

    A trained agent brings the env settings it was trained with (``policy.env_kwargs``,
    from its ``config.json``); ``env_kwargs`` override them, except ``action_mode``.
    """
    import gymnasium

    from agents.policies import make_policy

    _import_env_packages(env_id)
    env_kwargs = dict(env_kwargs or {})
    env = gymnasium.make(env_id, **env_kwargs)
    policy = make_policy(spec, env)
    config = getattr(env.unwrapped, "config", None)
    own = getattr(policy, "env_kwargs", {})
    mode = getattr(config, "action_mode", None)
    if (mode is not None and mode != policy.action_mode) or set(own) - set(env_kwargs):
        env.close()
        wanted = {**own, **env_kwargs}
        if mode is not None:
            wanted["action_mode"] = policy.action_mode
        env = gymnasium.make(env_id, **wanted)
        policy = make_policy(spec, env)
    return env, policy


def run_episode(env: Any, policy: Any, seed: int, episode: int = 0, trace: bool = False):
    """Run one episode (reset with ``seed``) to its end: ``(EpisodeResult, trace)``.

    ``trace`` (when asked) holds per-slot ``battery``, ``beta``, ``alpha`` (slots x K)
    and ``reward`` (slots,).
    """
    result = EpisodeResult(policy.name, episode, seed, policy.action_mode)
    series = new_trace(policy.action_mode)
    policy.reset(seed=seed)
    obs, _ = env.reset(seed=seed)
    episode_start = np.ones((1,), dtype=bool)
    state = None
    done = False
    while not done:
        start = time.perf_counter()
        action, state = policy.predict(
            obs, state=state, episode_start=episode_start, deterministic=True
        )
        result.predict_s += time.perf_counter() - start
        episode_start = np.zeros((1,), dtype=bool)
        obs, reward, terminated, truncated, info = env.step(action)
        done = bool(terminated or truncated)
        result.add_step(reward, info)
        if trace:
            record_trace(series, reward, info)
    return result, (series if trace else None)


def new_trace(action_mode: str) -> dict[str, Any]:
    return {"battery": [], "beta": [], "alpha": [], "reward": [], "action_mode": action_mode}


def record_trace(series: dict[str, Any], reward: float, info: dict) -> None:
    for key in ("battery", "beta", "alpha"):
        series[key].append(np.asarray(info.get(key, np.nan), float).tolist())
    series["reward"].append(float(reward))


def _run_task(task: tuple) -> list[tuple[int, EpisodeResult, dict | None]]:
    """One batch of episodes of one policy: ``[(index, result, trace or None)]``.

    Envs with a native vector env run the batch together (``agents.rollout``), others
    episode by episode.
    """
    from agents.rollout import has_native_vector_env, run_batch

    indices, env_id, env_kwargs, spec, seeds, episodes, trace_at = task
    key = (env_id, json.dumps(env_kwargs, sort_keys=True), spec)
    if key not in _CACHE:
        _CACHE[key] = make_env_and_policy(env_id, spec, env_kwargs)
    env, policy = _CACHE[key]
    if has_native_vector_env(env):
        outcomes = run_batch(env, policy, spec, seeds, episodes, trace_at)
    else:
        outcomes = [
            run_episode(env, policy, seed, episode, episode == trace_at)
            for seed, episode in zip(seeds, episodes, strict=True)
        ]
    for result, _ in outcomes:
        result.policy = spec
    return [
        (index, result, series) for index, (result, series) in zip(indices, outcomes, strict=True)
    ]


def _batch_tasks(env_id, env_kwargs, specs, episodes, seed, size, trace_episode) -> list:
    """``_run_task`` arguments: each policy's episodes in batches of ``size``."""
    tasks = []
    for i, spec in enumerate(specs):
        for first in range(0, episodes, size):
            numbers = list(range(first, min(first + size, episodes)))
            indices = [i * episodes + e for e in numbers]
            seeds = [seed + e for e in numbers]
            tasks.append((indices, env_id, env_kwargs, spec, seeds, numbers, trace_episode))
    return tasks


def evaluate_policies(
    env_id: str,
    specs: list[str],
    episodes: int,
    *,
    seed: int = 0,
    env_kwargs: dict | None = None,
    jobs: int = 1,
    trace_episode: int | None = 0,
    progress: bool = True,
    batch: int = 64,
    backend: str = "local",
    ray_address: str | None = None,
) -> tuple[list[EpisodeResult], dict[str, dict]]:
    """Run every policy of ``specs`` on episodes seeded ``seed + i``, i < ``episodes``.

    Returns the per-episode results (ordered by policy, then episode) and, per policy,
    the per-slot trace of episode ``trace_episode``. Episodes run in batches of up to
    ``batch`` in the native vector env (one batched oracle call per round; the same
    episodes as one by one). ``jobs > 1`` runs batches in spawned worker processes (one
    BLAS/torch thread each, :func:`isac_gym.runs.map_jobs`; batches then hold at most
    ``ceil(episodes / jobs)``); ``backend="ray"`` runs them as Ray tasks (on the
    cluster at ``ray_address``). The results do not depend on either.
    """
    from isac_gym.runs import map_jobs

    size = max(1, min(batch, -(-episodes // jobs)))
    tasks = _batch_tasks(env_id, dict(env_kwargs or {}), specs, episodes, seed, size, trace_episode)
    title = "episodes" if progress else False
    done = map_jobs(
        _run_task,
        tasks,
        jobs,
        progress=title,
        unit="batch",
        torch=True,
        backend=backend,
        address=ray_address,
    )
    results: list[EpisodeResult | None] = [None] * (len(specs) * episodes)
    traces: dict[str, dict] = {}
    for task, outcomes in zip(tasks, done, strict=True):
        for index, result, series in outcomes:
            results[index] = result
            if series is not None:
                traces[task[3]] = series
    return [result for result in results if result is not None], traces


# ---------------------------------------------------------------------------------------
# Summaries and outputs
# ---------------------------------------------------------------------------------------
def ci95(values) -> float:
    """Half-width of the 95% Student-t confidence interval of the mean (nan if n < 2)."""
    values = np.asarray([v for v in values if np.isfinite(v)], float)
    if values.size < 2:
        return math.nan
    from scipy import stats

    t = stats.t.ppf(0.975, values.size - 1)
    return float(t * values.std(ddof=1) / math.sqrt(values.size))


def summarize(results: list[EpisodeResult], oracle: str | None = None) -> list[dict]:
    """One row per policy (in first-seen order) with the CSV columns."""
    order: list[str] = []
    groups: dict[str, list[EpisodeResult]] = {}
    for result in results:
        if result.policy not in groups:
            order.append(result.policy)
            groups[result.policy] = []
        groups[result.policy].append(result)
    rows = []
    for name in order:
        group = groups[name]
        per_episode = {
            "energy_cost": [r.energy_cost for r in group],
            "weighted_cost": [r.weighted_cost for r in group],
            "success_rate": [r.success_rate for r in group],
            "outage_rate": [r.outage_rate for r in group],
            "return_mean": [r.episode_return for r in group],
            "decision_ms": [r.decision_ms for r in group],
            "oracle_ms": [r.oracle_ms for r in group],
        }
        tasks = sum(r.tasks for r in group)
        ue_slots = sum(r.ue_slots for r in group)
        slots = sum(r.slots for r in group)
        returns = np.array(per_episode["return_mean"])
        mode = group[0].action_mode
        alpha_count = sum(r.alpha_count for r in group)
        row = {
            "policy": name,
            "energy_cost": float(np.mean(per_episode["energy_cost"])),
            "weighted_cost": float(np.mean(per_episode["weighted_cost"])),
            "success_rate": sum(r.successes for r in group) / tasks if tasks else math.nan,
            "outage_rate": sum(r.outages for r in group) / ue_slots if ue_slots else math.nan,
            "return_mean": float(returns.mean()),
            "return_std": float(returns.std(ddof=1)) if returns.size > 1 else 0.0,
            "decision_ms": 1e3 * sum(r.predict_s for r in group) / max(slots, 1),
            "episodes": len(group),
            "oracle_ms": 1e3 * sum(r.oracle_s for r in group) / max(slots, 1),
            "action_mode": mode,
            "oracle": (oracle or "") if mode == "beta" else "fast (alpha fixed)",
            **{
                f"drops_{cause}": float(np.mean([r.drops.get(cause, 0) for r in group]))
                for cause in drop_causes()
            },
            "mean_alpha": sum(r.alpha_sum for r in group) / alpha_count
            if alpha_count
            else math.nan,
        }
        for metric in CI_METRICS:
            row[f"{metric}_ci95"] = ci95(per_episode[metric])
        rows.append(row)
    return rows


def short_name(spec: str) -> str:
    """A label for plots: ``ppo:runs/x/best/best_model.zip`` -> ``PPO (x/best/best_model)``."""
    kind, _, path = spec.partition(":")
    if kind.lower() in ("ppo", "sac", "td3") and path:
        p = Path(path).with_suffix("")
        return f"{kind.upper()} ({'/'.join(p.parts[-3:])})"
    return spec


def plot_policies(rows: list[dict], results: list[EpisodeResult], path: Path) -> Path:
    """Box plot of episode returns, bars (95% CI) of weighted cost, success, time."""
    import matplotlib.pyplot as plt

    fig = policies_figure(rows, results)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def clipped_errors(values, errors, low: float = 0.0, high: float = math.inf) -> np.ndarray:
    """Asymmetric error bars ``(2, n)`` of ``values +- errors`` cut to ``[low, high]``
    (a cost is never below 0, a rate never above 100 %); NaN errors draw none."""
    values = np.asarray(values, float)
    errors = np.nan_to_num(np.asarray(errors, float))
    lower = np.clip(values - errors, low, high)
    upper = np.clip(values + errors, low, high)
    return np.vstack([values - lower, upper - values])


def policies_figure(rows: list[dict], results: list[EpisodeResult]):
    """The figure of :func:`plot_policies` (Agg backend; the caller closes it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row["policy"] for row in rows]
    labels = [short_name(n) for n in names]
    x = np.arange(len(rows))
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    returns = [[r.episode_return for r in results if r.policy == n] for n in names]
    axes[0, 0].boxplot(returns, showmeans=True)
    axes[0, 0].set_xticks(x + 1, labels)
    axes[0, 0].set(title="episode return (higher is better)", ylabel="return per episode")

    cost = np.array([row["weighted_cost"] for row in rows], float)
    cost_ci = [row.get("weighted_cost_ci95", np.nan) for row in rows]
    axes[0, 1].bar(x, cost, yerr=clipped_errors(cost, cost_ci), capsize=3, alpha=0.8)
    axes[0, 1].set(title="weighted cost per episode (at the env's mu), 95% CI")
    axes[0, 1].set(ylabel="weighted cost [J]", ylim=(0, None))
    _success_panel(axes[1, 0], rows, x)
    decision = np.array([row["decision_ms"] for row in rows])
    oracle = np.array([row["oracle_ms"] for row in rows])
    axes[1, 1].bar(x, decision, label="policy predict", color="tab:green")
    axes[1, 1].bar(x, oracle, bottom=decision, label="slot solver (oracle)", color="tab:gray")
    axes[1, 1].set_yscale("log")
    axes[1, 1].set(title="time per slot", ylabel="time per slot [ms]")
    axes[1, 1].legend()
    for ax in axes.flat:
        ax.set_xticks(x if ax is not axes[0, 0] else x + 1, labels)
        ax.tick_params(axis="x", labelrotation=35)
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def _success_panel(ax, rows: list[dict], x: np.ndarray) -> None:
    """Task success rate in percent (as in the table), CI bars cut to [0, 100] %."""
    rate = 100 * np.array([row["success_rate"] for row in rows], float)
    ci = 100 * np.array([row.get("success_rate_ci95", np.nan) for row in rows], float)
    errors = clipped_errors(rate, ci, 0.0, 100.0)
    ax.bar(x, rate, yerr=errors, capsize=3, color="tab:blue", alpha=0.8)
    bottom = np.nanmin(rate - errors[0]) if np.isfinite(rate).any() else 0.0
    ax.set_ylim(max(0.0, min(90.0, bottom - 2.0)), 100.5)
    ax.set(title="task success rate, 95% CI", ylabel="task success rate [%]")


def plot_trace(traces: dict[str, dict], path: Path, episode_seed: int | None = None) -> Path:
    """Per-slot mean battery, geometric-mean beta and mean alpha of one episode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(11, 9), sharex=True)
    for name, series in traces.items():
        label = short_name(name)
        battery = np.asarray(series["battery"], float)
        (line,) = axes[0].plot(battery.mean(axis=1), label=label, lw=1.2)
        beta = np.asarray(series["beta"], float)
        if series.get("action_mode", "beta") == "beta":
            with np.errstate(divide="ignore", invalid="ignore"):
                axes[1].plot(np.exp(np.log(beta).mean(axis=1)), color=line.get_color(), lw=1.0)
        alpha = np.asarray(series["alpha"], float)
        axes[2].plot(alpha.mean(axis=1), color=line.get_color(), lw=0.8, alpha=0.8)
    axes[0].set_ylabel("mean battery [J]")
    axes[1].set_ylabel("geometric-mean beta")
    axes[1].set_yscale("log")
    axes[2].set_ylabel("mean alpha (0 = dropped/none)")
    axes[2].set_xlabel("slot")
    title = "per-slot trace" + (
        f" (episode seed {episode_seed})" if episode_seed is not None else ""
    )
    axes[0].set_title(title)
    axes[0].legend(fontsize=8, ncol=3)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write_outputs(
    out: Path,
    rows: list[dict],
    results: list[EpisodeResult],
    traces: dict[str, dict],
    settings: dict,
) -> dict[str, Path]:
    """Publish policies.csv, episodes.csv, policies.json, policies.png and trace.png
    together (:func:`isac_gym.runs.publish_set`)."""
    from isac_gym.runs import format_csv, publish_set, to_jsonable

    out.mkdir(parents=True, exist_ok=True)
    names = {
        "csv": "policies.csv",
        "episodes": "episodes.csv",
        "json": "policies.json",
        "plot": "policies.png",
        "trace": "trace.png",
    }
    columns = list(COLUMNS) + list(EXTRA_COLUMNS) + [f"{m}_ci95" for m in CI_METRICS]
    columns += ["gap_closed"] if rows and "gap_closed" in rows[0] else []
    episode_rows = [r.row() for r in results]
    payload = {
        **settings,
        "columns": columns,
        "results": rows,
        "episodes_detail": [asdict(r) for r in results],
    }
    with publish_set(out, "policies") as staging:
        (staging / names["csv"]).write_text(format_csv(rows, columns))
        (staging / names["episodes"]).write_text(format_csv(episode_rows))
        (staging / names["json"]).write_text(json.dumps(to_jsonable(payload), indent=2) + "\n")
        plot_policies(rows, results, staging / names["plot"])
        if traces:
            plot_trace(traces, staging / names["trace"], settings.get("trace_seed"))
    return {key: out / name for key, name in names.items()}


#: Fewer episodes than this make the 95% CIs too wide to compare policies (t = 12.7
#: for 2 episodes, 4.3 for 3).
MIN_EPISODES_FOR_CI = 3


def format_table(rows: list[dict]) -> str:
    """A Markdown table of the main columns (mean +- 95% CI; "n/a" where undefined)."""
    head = (
        "| policy | return | weighted cost [J] | energy cost [J] | success | outage "
        "| decision [ms] | oracle [ms] |"
    )
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        lines.append(
            f"| {short_name(r['policy'])} | {_mean_ci(r, 'return_mean', 1)} "
            f"| {_mean_ci(r, 'weighted_cost', 2)} | {_mean_ci(r, 'energy_cost', 2)} "
            f"| {100 * r['success_rate']:.2f}% | {100 * r['outage_rate']:.2f}% "
            f"| {r['decision_ms']:.3f} | {r['oracle_ms']:.1f} |"
        )
    return "\n".join(lines)


def _mean_ci(row: dict, key: str, digits: int) -> str:
    ci = row.get(f"{key}_ci95", math.nan)
    ci_text = f"{ci:.{digits}f}" if np.isfinite(ci) else "n/a"
    return f"{row[key]:.{digits}f} ± {ci_text}"


def ci_warning(episodes: int) -> str | None:
    """A warning when ``episodes`` per policy are too few for a meaningful 95% CI."""
    if episodes >= MIN_EPISODES_FOR_CI:
        return None
    reason = "undefined" if episodes < 2 else "meaningless (Student t = 12.7 with 2)"
    return (
        f"warning: {episodes} episode(s) per policy: the 95% CIs are {reason}; "
        f"use --episodes {MIN_EPISODES_FOR_CI} or more (10+ to compare policies)"
    )


# ---------------------------------------------------------------------------------------
# Command line (evaluate.py policies)
# ---------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register ``evaluate.py policies`` arguments on ``parser`` (sets ``run``)."""
    parser.add_argument(
        "--env", default="isac_gym/ISCC-v0", help="registered env id (default isac_gym/ISCC-v0)"
    )
    parser.add_argument(
        "--policies",
        required=True,
        help="comma-separated specs: fixed-beta:B (B a number or 'mu'), heuristic, "
        "lyapunov, lyapunov-budget, threshold-budget, random, fl, fo, ho, pretrained "
        "(the shipped agent), ppo:PATH, sac:PATH, td3:PATH",
    )
    parser.add_argument(
        "--episodes",
        required=True,
        type=positive_int,
        help="episodes per policy; episode i resets with seed S+i",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed S of episode 0 (default 0)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("results/policies"),
        help="output folder (default results/policies)",
    )
    parser.add_argument(
        "--env-kwargs",
        type=json_object,
        default=None,
        help='JSON object passed to gymnasium.make, e.g. \'{"oracle": "fast"}\'',
    )
    parser.add_argument("--jobs", type=positive_int, default=1, help="worker processes (default 1)")
    parser.add_argument(
        "--trace-episode", type=int, default=0, help="episode index drawn in trace.png (default 0)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    ray_backend.add_arguments(parser)
    parser.add_argument(
        "--bound",
        action="store_true",
        help="add the rows clairvoyant-bound and clairvoyant-plan (agents.bounds; with a "
        "beta_budget policy also clairvoyant-bound-budget and clairvoyant-plan-budget) and "
        "the column gap_closed; the bounds hold for beta (and beta_budget) policies",
    )
    parser.add_argument(
        "--bound-time-limit",
        type=float,
        default=45.0,
        help="MILP time limit per episode in seconds (default 45; an early stop reports "
        "the dual bound)",
    )
    parser.add_argument(
        "--paired-reference",
        default=None,
        help="the policy every other is compared with, paired by seed, in paired.csv "
        "(default: the best non-learned policy by mean return)",
    )
    parser.set_defaults(run=run)
    return parser


def write_paired(args: argparse.Namespace, rows: list[dict], results: list) -> str:
    """``paired.csv`` (:mod:`agents.comparison`) under ``args.out``; its table."""
    from agents import comparison
    from isac_gym.runs import atomic_write_text, format_csv

    reference = args.paired_reference or comparison.default_reference(rows)
    if reference is None or len(rows) < 2:
        return ""
    paired = comparison.paired_differences(results, reference)
    atomic_write_text(args.out / "paired.csv", format_csv(paired, list(comparison.COLUMNS)))
    return comparison.format_paired(paired)


def _check_specs(text: str) -> list[str]:
    from agents.policies import parse_spec

    specs = [s.strip() for s in text.split(",") if s.strip()]
    if not specs:
        raise UsageError("--policies: give at least one policy")
    if len(set(specs)) != len(specs):
        raise UsageError(f"--policies: duplicate specs in {text!r}")
    for spec in specs:
        try:
            kind, argument = parse_spec(spec)
        except ValueError as error:
            raise UsageError(f"--policies: {error}") from None
        if kind in ("ppo", "sac", "td3"):
            path = Path(argument)
            if not (path.is_file() or path.with_suffix(".zip").is_file()):
                raise UsageError(f"--policies: {spec}: no saved model at {argument!r}")
    return specs


def _probe(env_id: str, spec: str, env_kwargs: dict) -> Any:
    """The env's config (None for foreign envs); a bad env is a one-line UsageError."""
    import gymnasium

    try:
        probe, _ = make_env_and_policy(env_id, spec, env_kwargs)
    except (gymnasium.error.Error, ValueError, TypeError) as error:
        message = f"{type(error).__name__}: {error}"
        raise UsageError(f"cannot make {env_id!r} with {env_kwargs}: {message}") from error
    config = getattr(probe.unwrapped, "config", None)
    probe.close()
    return config


def _bound_results(args: argparse.Namespace, env_kwargs: dict, results: list) -> list:
    """The rows ``clairvoyant-bound`` and ``clairvoyant-plan`` per episode, and their
    ``-budget`` rows when a ``beta_budget`` policy is evaluated (:mod:`agents.bounds`);
    a bad request is a one-line UsageError."""
    from agents import bounds

    budget = any(result.action_mode == "beta_budget" for result in results)
    try:
        extra, _ = bounds.bound_results(
            env_kwargs,
            [args.seed + i for i in range(args.episodes)],
            env_id=args.env,
            modes=("beta", "beta_budget") if budget else ("beta",),
            jobs=args.jobs,
            time_limit=args.bound_time_limit,
            progress=not args.no_progress,
        )
    except ValueError as error:
        raise UsageError(f"--bound: {error}") from None
    return extra


def _add_gap_closed(rows: list[dict]) -> None:
    """The column ``gap_closed`` (and a note when allocation-mode rows are present)."""
    from agents import bounds

    bounds.add_gap_closed(rows)
    note = bounds.allocation_note(rows)
    if note:
        print(note)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Handler of ``evaluate.py policies``."""
    from isac_gym.runs import prepare_output, write_manifest

    if args.env.startswith("isac_gym/MIMOISAC"):  # its own policies and metrics
        from agents.mimo_evaluation import run_from_args

        return run_from_args(args)
    specs = _check_specs(args.policies)
    if args.paired_reference is not None and args.paired_reference not in specs:
        raise UsageError(f"--paired-reference {args.paired_reference!r} is not in --policies")
    ray_backend.check_arguments(args, parser)
    prepare_output(args.out)
    env_kwargs = args.env_kwargs or {}
    config = _probe(args.env, specs[0], env_kwargs)
    oracle = getattr(config, "oracle", None)
    start = time.perf_counter()
    results, traces = evaluate_policies(
        args.env,
        specs,
        args.episodes,
        seed=args.seed,
        env_kwargs=env_kwargs,
        jobs=args.jobs,
        trace_episode=args.trace_episode,
        progress=not args.no_progress,
        backend=args.backend,
        ray_address=args.ray_address,
    )
    if getattr(args, "bound", False):
        results = results + _bound_results(args, env_kwargs, results)
    wall = time.perf_counter() - start
    rows = summarize(results, oracle)
    if getattr(args, "bound", False):
        _add_gap_closed(rows)
    settings = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "env_id": args.env,
        "env_kwargs": env_kwargs,
        "oracle": oracle,
        "mu": getattr(config, "mu", None),
        "horizon": getattr(config, "horizon", None),
        "K": getattr(config, "K", None),
        "policies": specs,
        "episodes": args.episodes,
        "seed": args.seed,
        "episode_seeds": [args.seed + i for i in range(args.episodes)],
        "trace_episode": args.trace_episode,
        "trace_seed": args.seed + args.trace_episode,
        "jobs": args.jobs,
        "backend": args.backend,
        "wall_time_s": round(wall, 2),
    }
    paths = write_outputs(args.out, rows, results, traces, settings)
    write_manifest(args.out, settings["command"], wall_time_s=settings["wall_time_s"])
    print(format_table(rows))
    print(write_paired(args, rows, results))
    warning = ci_warning(args.episodes)
    if warning:
        print(warning, file=sys.stderr)
    print(f"wrote {paths['csv']} ({wall:.1f} s)")
    return 0
