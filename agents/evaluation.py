"""Compare policies on the same seeded episodes (``python evaluate.py policies``).

Every policy runs the same episodes: episode ``i`` resets with seed ``seed + i`` for
every policy (common random numbers: the env's exogenous streams -- tasks, harvests,
mobility, fading, AP load -- depend only on the reset seed). A policy that needs the
other action mode (FL/FO/HO: ``allocation``) gets its own env with ``action_mode``
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
plot, and ``policies.csv`` gains ``gap_closed = (R - R_myopic) / (R_bound - R_myopic)``
with ``fixed-beta:mu`` as the myopic policy (nan without that row).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from isac_gym.cli import json_object, positive_int

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
DROP_CAUSES = ("battery", "ap_capacity", "deadline")


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
    drops: dict = field(default_factory=lambda: dict.fromkeys(DROP_CAUSES, 0))

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
    """``(env, policy)`` for ``spec``, the env in the action mode the policy declares."""
    import gymnasium

    from agents.policies import make_policy

    _import_env_packages(env_id)
    env_kwargs = dict(env_kwargs or {})
    env = gymnasium.make(env_id, **env_kwargs)
    policy = make_policy(spec, env)
    config = getattr(env.unwrapped, "config", None)
    mode = getattr(config, "action_mode", None)
    if mode is not None and mode != policy.action_mode:
        env.close()
        env = gymnasium.make(env_id, **{**env_kwargs, "action_mode": policy.action_mode})
        policy = make_policy(spec, env)
    return env, policy


def run_episode(env: Any, policy: Any, seed: int, episode: int = 0, trace: bool = False):
    """Run one episode (reset with ``seed``) to its end: ``(EpisodeResult, trace)``.

    ``trace`` (when asked) holds per-slot ``battery``, ``beta``, ``alpha`` (slots x K)
    and ``reward`` (slots,).
    """
    result = EpisodeResult(policy.name, episode, seed, policy.action_mode)
    series: dict[str, Any] = {"battery": [], "beta": [], "alpha": [], "reward": []}
    series["action_mode"] = policy.action_mode
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
        result.slots += 1
        result.episode_return += float(reward)
        result.energy_cost += float(info.get("energy_cost", 0.0))
        result.weighted_cost += float(info.get("weighted_cost", 0.0))
        result.oracle_s += float(info.get("oracle_time_s", 0.0))
        if "task" in info and "success" in info:
            task = np.asarray(info["task"], bool)
            result.tasks += int(task.sum())
            result.successes += int(np.asarray(info["success"], bool)[task].sum())
        if "outage" in info:
            outage = np.asarray(info["outage"], bool)
            result.ue_slots += outage.size
            result.outages += int(outage.sum())
        for cause, count in info.get("drops", {}).items():
            result.drops[cause] = result.drops.get(cause, 0) + int(count)
        if "alpha" in info and "task" in info:
            task = np.asarray(info["task"], bool)
            result.alpha_sum += float(np.asarray(info["alpha"], float)[task].sum())
            result.alpha_count += int(task.sum())
        if trace:
            for key in ("battery", "beta", "alpha"):
                series[key].append(np.asarray(info.get(key, np.nan), float).tolist())
            series["reward"].append(float(reward))
    return result, (series if trace else None)


def _run_task(task: tuple) -> tuple[int, EpisodeResult, dict | None]:
    index, env_id, env_kwargs, spec, seed, episode, trace = task
    key = (env_id, json.dumps(env_kwargs, sort_keys=True), spec)
    if key not in _CACHE:
        _CACHE[key] = make_env_and_policy(env_id, spec, env_kwargs)
    env, policy = _CACHE[key]
    result, series = run_episode(env, policy, seed, episode, trace)
    result.policy = spec
    return index, result, series


def _worker_init() -> None:
    from agents import limit_threads

    limit_threads(1)


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
) -> tuple[list[EpisodeResult], dict[str, dict]]:
    """Run every policy of ``specs`` on episodes seeded ``seed + i``, i < ``episodes``.

    Returns the per-episode results (ordered by policy, then episode) and, per policy,
    the per-slot trace of episode ``trace_episode``. ``jobs > 1`` runs episodes in
    spawned worker processes (one BLAS/torch thread each).
    """
    from tqdm.auto import tqdm

    env_kwargs = dict(env_kwargs or {})
    tasks = [
        (i * episodes + e, env_id, env_kwargs, spec, seed + e, e, e == trace_episode)
        for i, spec in enumerate(specs)
        for e in range(episodes)
    ]
    results: list[EpisodeResult | None] = [None] * len(tasks)
    traces: dict[str, dict] = {}
    bar = tqdm(total=len(tasks), desc="episodes", unit="ep", disable=not progress)
    if jobs <= 1:
        from agents import limit_threads

        limit_threads(1)
        for task in tasks:
            index, result, series = _run_task(task)
            results[index] = result
            if series is not None:
                traces[task[3]] = series
            bar.set_postfix_str(task[3][:30])
            bar.update()
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, "1")
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_init) as pool:
            futures = {pool.submit(_run_task, task): task for task in tasks}
            for future in as_completed(futures):
                index, result, series = future.result()
                results[index] = result
                if series is not None:
                    traces[futures[future][3]] = series
                bar.update()
    bar.close()
    return [r for r in results if r is not None], traces


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
                for cause in DROP_CAUSES
            },
            "mean_alpha": sum(r.alpha_sum for r in group) / alpha_count
            if alpha_count
            else math.nan,
        }
        for metric in CI_METRICS:
            row[f"{metric}_ci95"] = ci95(per_episode[metric])
        rows.append(row)
    return rows


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(row.get(k)) for k in columns})


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def short_name(spec: str) -> str:
    """A label for plots: ``ppo:runs/x/best/best_model.zip`` -> ``PPO (x/best/best_model)``."""
    kind, _, path = spec.partition(":")
    if kind.lower() in ("ppo", "sac", "td3") and path:
        p = Path(path).with_suffix("")
        return f"{kind.upper()} ({'/'.join(p.parts[-3:])})"
    return spec


def plot_policies(rows: list[dict], results: list[EpisodeResult], path: Path) -> Path:
    """Box plot of episode returns, bars (95% CI) of weighted cost, success, time."""
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
    axes[0, 0].set_title("episode return (higher is better)")

    def bars(ax, key, title, log=False):
        values = np.array([row[key] for row in rows], float)
        errors = np.array([row.get(f"{key}_ci95", np.nan) for row in rows], float)
        ax.bar(x, values, yerr=np.nan_to_num(errors), capsize=3, color="tab:blue", alpha=0.8)
        ax.set_xticks(x, labels)
        ax.set_title(title)
        if log:
            ax.set_yscale("log")

    bars(axes[0, 1], "weighted_cost", "weighted cost per episode [J] (at the env's mu)")
    bars(axes[1, 0], "success_rate", "task success rate (95% CI)")
    axes[1, 0].set_ylim(min(0.9, np.nanmin([r["success_rate"] for r in rows]) - 0.02), 1.0)
    decision = np.array([row["decision_ms"] for row in rows])
    oracle = np.array([row["oracle_ms"] for row in rows])
    axes[1, 1].bar(x, decision, label="policy predict", color="tab:green")
    axes[1, 1].bar(x, oracle, bottom=decision, label="slot solver (oracle)", color="tab:gray")
    axes[1, 1].set_xticks(x, labels)
    axes[1, 1].set_yscale("log")
    axes[1, 1].set_title("time per slot [ms]")
    axes[1, 1].legend()
    for ax in axes.flat:
        ax.tick_params(axis="x", labelrotation=35)
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
    """Write policies.csv, episodes.csv, policies.json, policies.png and trace.png."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out / "policies.csv",
        "episodes": out / "episodes.csv",
        "json": out / "policies.json",
        "plot": out / "policies.png",
        "trace": out / "trace.png",
    }
    columns = list(COLUMNS) + list(EXTRA_COLUMNS) + [f"{m}_ci95" for m in CI_METRICS]
    columns += ["gap_closed"] if rows and "gap_closed" in rows[0] else []
    _write_csv(paths["csv"], rows, columns)
    episode_rows = [r.row() for r in results]
    _write_csv(paths["episodes"], episode_rows, list(episode_rows[0]) if episode_rows else [])
    payload = {
        **settings,
        "columns": columns,
        "results": rows,
        "episodes_detail": [asdict(r) for r in results],
    }
    paths["json"].write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
    plot_policies(rows, results, paths["plot"])
    if traces:
        plot_trace(traces, paths["trace"], settings.get("trace_seed"))
    return paths


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def format_table(rows: list[dict]) -> str:
    """A Markdown table of the main columns (mean +- 95% CI)."""
    head = (
        "| policy | return | weighted cost [J] | energy cost [J] | success | outage "
        "| decision [ms] | oracle [ms] |"
    )
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        lines.append(
            f"| {short_name(r['policy'])} | {r['return_mean']:.1f} ± {r['return_mean_ci95']:.1f} "
            f"| {r['weighted_cost']:.2f} ± {r['weighted_cost_ci95']:.2f} "
            f"| {r['energy_cost']:.2f} ± {r['energy_cost_ci95']:.2f} "
            f"| {100 * r['success_rate']:.2f}% | {100 * r['outage_rate']:.2f}% "
            f"| {r['decision_ms']:.3f} | {r['oracle_ms']:.1f} |"
        )
    return "\n".join(lines)


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
        help="comma-separated specs: fixed-beta:B (B a number or 'mu'), "
        "heuristic, lyapunov, random, fl, fo, ho, ppo:PATH, sac:PATH, td3:PATH",
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
    parser.add_argument(
        "--bound",
        action="store_true",
        help="add the rows clairvoyant-bound and clairvoyant-plan (agents.bounds) and the "
        "column gap_closed; the bound holds for beta-mode policies",
    )
    parser.add_argument(
        "--bound-time-limit",
        type=float,
        default=45.0,
        help="MILP time limit per episode in seconds (default 45; an early stop reports "
        "the dual bound)",
    )
    parser.set_defaults(run=run)
    return parser


def _check_specs(text: str, parser: argparse.ArgumentParser) -> list[str]:
    from agents.policies import parse_spec

    specs = [s.strip() for s in text.split(",") if s.strip()]
    if not specs:
        parser.error("--policies: give at least one policy")
    if len(set(specs)) != len(specs):
        parser.error(f"--policies: duplicate specs in {text!r}")
    for spec in specs:
        try:
            kind, argument = parse_spec(spec)
        except ValueError as error:
            parser.error(f"--policies: {error}")
        if kind in ("ppo", "sac", "td3"):
            path = Path(argument)
            if not (path.is_file() or path.with_suffix(".zip").is_file()):
                parser.error(f"--policies: {spec}: no saved model at {argument!r}")
    return specs


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Handler of ``evaluate.py policies``."""
    specs = _check_specs(args.policies, parser)
    env_kwargs = args.env_kwargs or {}
    try:
        probe, _ = make_env_and_policy(args.env, specs[0], env_kwargs)
    except Exception as error:  # unknown env id or bad env kwargs
        parser.error(f"cannot make {args.env!r} with {env_kwargs}: {error}")
    config = getattr(probe.unwrapped, "config", None)
    oracle = getattr(config, "oracle", None)
    probe.close()
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
    )
    if getattr(args, "bound", False):  # issue 13: agents.bounds adds rows and a column
        from agents import bounds

        try:
            extra, _ = bounds.bound_results(
                env_kwargs,
                [args.seed + i for i in range(args.episodes)],
                env_id=args.env,
                time_limit=args.bound_time_limit,
                progress=not args.no_progress,
            )
        except ValueError as error:
            parser.error(f"--bound: {error}")
        results = results + extra
    wall = time.perf_counter() - start
    rows = summarize(results, oracle)
    if getattr(args, "bound", False):
        bounds.add_gap_closed(rows)
        note = bounds.allocation_note(rows)
        if note:
            print(note)
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
        "wall_time_s": round(wall, 2),
    }
    paths = write_outputs(args.out, rows, results, traces, settings)
    print(format_table(rows))
    print(f"wrote {paths['csv']} ({wall:.1f} s)")
    return 0
