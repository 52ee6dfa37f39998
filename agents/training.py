"""Train stable-baselines3 agents (PPO, SAC, TD3) on a registered environment.

``train.py`` is a thin command line over :func:`train`. A run writes, under ``out``::

    model.zip            the final model
    vecnormalize.pkl     VecNormalize statistics (obs + reward) of the training envs
    config.json          every setting used (hyperparameters, env kwargs, seed, versions)
    command.txt          the command line that produced the run (one line per (re)start)
    checkpoints/         rl_model_<N>_steps.zip + rl_model_vecnormalize_<N>_steps.pkl
                         (+ the replay buffer for SAC/TD3); ``resume=True`` continues
                         from the newest one (model, statistics, timestep count)
    best/                best_model.zip + vecnormalize.pkl (EvalCallback)
    eval/evaluations.npz EvalCallback results (kept across resumes)
    monitor/             Monitor CSVs of the training envs (episode return and length)
    logs/run_<i>/        SB3 logger output (progress.csv; TensorBoard events when the
                         ``tensorboard`` package is installed), with the env's
                         ``info["rewards"]`` components, weighted/energy cost, success
                         and outage rates under ``env/``
    training_curve.png   training episode returns and evaluation returns vs timesteps

Hyperparameters come from ``agents/hyperparams/<algo>.yml`` keyed by env id (falling
back to the ``default`` entry); the keys ``n_envs``, ``normalize``, ``policy``,
``vec_env``, ``env_kwargs``, ``eval_freq``, ``eval_episodes``, ``checkpoint_freq`` and
``action_bias_init`` (start the mean action there, see :func:`init_action_bias`) are
read by this module, the rest go to the algorithm's constructor.

Same seed, same settings -> same training run (CPU, ``DummyVecEnv``): the global
seeds, the model seed, the training-env seeds ``seed + i`` and the evaluation-env seed
``seed + EVAL_SEED_OFFSET`` (re-applied before every evaluation, so that every
evaluation runs the same episodes) all derive from ``seed``. A resumed run continues
from the checkpoint's parameters and statistics but not from the random generators'
states, so it is reproducible only as a resumed run.

Heavy imports (torch, stable-baselines3, matplotlib) happen inside the functions.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import platform
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from isac_gym.cli import json_object, positive_int

ALGO_NAMES = ("ppo", "sac", "td3")
HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"
EVAL_SEED_OFFSET = 10_000  #: evaluation-env seeds; test seeds of evaluate.py start at 0
_MODULE_KEYS = (
    "n_envs",
    "normalize",
    "policy",
    "vec_env",
    "env_kwargs",
    "eval_freq",
    "eval_episodes",
    "checkpoint_freq",
    "action_bias_init",
)
_CHECKPOINT_RE = re.compile(r"rl_model_(\d+)_steps\.zip$")


def algo_class(name: str) -> type:
    """The SB3 class for ``ppo``, ``sac`` or ``td3`` (imports stable-baselines3)."""
    from stable_baselines3 import PPO, SAC, TD3

    classes = {"ppo": PPO, "sac": SAC, "td3": TD3}
    if name not in classes:
        raise ValueError(f"unknown algorithm {name!r}; valid: {', '.join(ALGO_NAMES)}")
    return classes[name]


class _Algos:
    """Lazy ``ALGOS["ppo"]`` mapping (stable-baselines3 is imported on first use)."""

    def __getitem__(self, name: str) -> type:
        return algo_class(name)

    def __contains__(self, name: object) -> bool:
        return name in ALGO_NAMES


ALGOS = _Algos()


def load_yaml(path: str | Path) -> dict:
    """Load a YAML file (an empty file gives ``{}``)."""
    import yaml

    return yaml.safe_load(Path(path).read_text()) or {}


def load_hyperparams(algo: str, env_id: str, path: str | Path | None = None) -> dict:
    """Hyperparameters of ``algo`` for ``env_id`` from ``path`` (default
    ``agents/hyperparams/<algo>.yml``): the env's entry, else ``default``, else ``{}``."""
    path = Path(path) if path is not None else HYPERPARAMS_DIR / f"{algo}.yml"
    if not path.is_file():
        raise ValueError(f"hyperparameter file not found: {path}")
    table = load_yaml(path)
    entry = table.get(env_id, table.get("default", {}))
    if not isinstance(entry, dict):
        raise ValueError(f"{path}: entry for {env_id!r} must be a mapping")
    return dict(entry)


def _policy_kwargs(kwargs: dict | None) -> dict | None:
    if not kwargs:
        return kwargs
    kwargs = dict(kwargs)
    activation = kwargs.get("activation_fn")
    if isinstance(activation, str):
        import torch.nn

        names = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "elu": torch.nn.ELU}
        kwargs["activation_fn"] = names[activation.lower().removeprefix("nn.")]
    return kwargs


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


# ---------------------------------------------------------------------------------------
# Callbacks (built lazily: they subclass SB3's BaseCallback)
# ---------------------------------------------------------------------------------------
def _callbacks():
    from stable_baselines3.common.callbacks import BaseCallback, EvalCallback

    class InfoLoggerCallback(BaseCallback):
        """Log means of ``info["rewards"][*]``, weighted/energy cost, success and outage
        rates of the training envs under ``env/`` (per rollout, averaged per dump)."""

        def _on_training_start(self) -> None:
            self._reset()

        def _reset(self) -> None:
            self.sums: dict[str, float] = {}
            self.steps = 0
            self.tasks = self.successes = 0.0
            self.ue_slots = self.outages = 0.0

        def _on_step(self) -> bool:
            for info in self.locals.get("infos", ()):
                rewards = info.get("rewards")
                if not isinstance(rewards, dict):
                    continue
                self.steps += 1
                for key, value in rewards.items():
                    self.sums[f"reward_{key}"] = self.sums.get(f"reward_{key}", 0.0) + value
                for key in ("weighted_cost", "energy_cost"):
                    if key in info:
                        self.sums[key] = self.sums.get(key, 0.0) + float(info[key])
                if "task" in info and "success" in info:
                    task = np.asarray(info["task"], bool)
                    self.tasks += task.sum()
                    self.successes += np.asarray(info["success"], bool)[task].sum()
                if "outage" in info:
                    outage = np.asarray(info["outage"], bool)
                    self.ue_slots += outage.size
                    self.outages += outage.sum()
            return True

        def _on_rollout_end(self) -> None:
            if self.steps:
                for key, total in self.sums.items():
                    self.logger.record_mean(f"env/{key}", total / self.steps)
                if self.tasks:
                    self.logger.record_mean("env/success_rate", self.successes / self.tasks)
                if self.ue_slots:
                    self.logger.record_mean("env/outage_rate", self.outages / self.ue_slots)
            self._reset()

    class TqdmCallback(BaseCallback):
        """A tqdm progress bar over timesteps (SB3's own needs ``rich``)."""

        def __init__(self, total: int, initial: int = 0) -> None:
            super().__init__()
            self.total, self.initial = total, initial

        def _on_training_start(self) -> None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, initial=self.initial, unit="step", desc="train")

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    class SaveVecNormalizeCallback(BaseCallback):
        """Save the VecNormalize statistics next to the best model."""

        def __init__(self, folder: Path) -> None:
            super().__init__()
            self.folder = folder

        def _on_step(self) -> bool:
            vec_normalize = self.model.get_vec_normalize_env()
            if vec_normalize is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
                vec_normalize.save(str(self.folder / "vecnormalize.pkl"))
            return True

    class SeededEvalCallback(EvalCallback):
        """EvalCallback that re-seeds the evaluation env before every evaluation (the
        same episodes each time) and keeps earlier results across resumes."""

        def __init__(self, *args, eval_seed: int, previous: dict | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            self.eval_seed = eval_seed
            self.previous = previous or {}

        def _init_callback(self) -> None:
            super()._init_callback()
            if self.previous:
                self.evaluations_timesteps = list(self.previous["timesteps"])
                self.evaluations_results = [list(r) for r in self.previous["results"]]
                self.evaluations_length = [list(r) for r in self.previous["ep_lengths"]]
                means = [float(np.mean(r)) for r in self.previous["results"]]
                self.best_mean_reward = max(means) if means else -np.inf

        def _on_step(self) -> bool:
            if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
                self.eval_env.seed(self.eval_seed)
            return super()._on_step()

    class TimeLimitCallback(BaseCallback):
        """Stop training after ``seconds`` of wall time (the run is saved as usual)."""

        def __init__(self, seconds: float) -> None:
            super().__init__()
            self.seconds = seconds

        def _on_training_start(self) -> None:
            self.start = time.perf_counter()

        def _on_step(self) -> bool:
            return time.perf_counter() - self.start < self.seconds

    return (
        InfoLoggerCallback,
        TqdmCallback,
        SaveVecNormalizeCallback,
        SeededEvalCallback,
        TimeLimitCallback,
    )


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What :func:`train` produced."""

    out: Path
    model_path: Path
    num_timesteps: int
    wall_time_s: float
    resumed_from: Path | None


def init_action_bias(model: Any, value: float | list[float]) -> None:
    """Start the policy's mean action at ``value`` (in [-1, 1]; e.g. the action of the
    myopic optimum beta = mu), by setting the bias of the last actor layer."""
    import torch

    shape = model.action_space.shape
    target = torch.as_tensor(np.broadcast_to(np.asarray(value, float), shape).copy())
    with torch.no_grad():
        if hasattr(model.policy, "action_net"):  # PPO: Gaussian mean, clipped to the box
            layer = model.policy.action_net
            value_t = target
        else:  # SAC / TD3: tanh-squashed actor
            mu = model.actor.mu
            layer = mu if isinstance(mu, torch.nn.Linear) else mu[-2]
            value_t = torch.atanh(target.clamp(-0.999, 0.999))
        layer.weight.mul_(0.01)
        layer.bias.copy_(value_t.to(layer.bias.dtype))
        if hasattr(model, "actor_target"):
            model.actor_target.load_state_dict(model.actor.state_dict())


def latest_checkpoint(out: str | Path) -> tuple[Path, int] | None:
    """The newest ``checkpoints/rl_model_<N>_steps.zip`` under ``out`` and its N."""
    folder = Path(out) / "checkpoints"
    found = []
    for path in folder.glob("rl_model_*_steps.zip"):
        match = _CHECKPOINT_RE.search(path.name)
        if match:
            found.append((int(match.group(1)), path))
    if not found:
        return None
    steps, path = max(found)
    return path, steps


def _make_env(env_id: str, n_envs: int, seed: int, env_kwargs: dict, vec_env: str, **kw):
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    cls = {"dummy": DummyVecEnv, "subproc": SubprocVecEnv}[vec_env]
    vec_kwargs = None
    if cls is SubprocVecEnv:
        vec_kwargs = {"start_method": "spawn"}
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, "1")  # inherited by the spawned env workers
    if env_id.startswith("isac_gym/") and ":" not in env_id:
        env_id = f"isac_gym:{env_id}"  # spawned workers import (and register) isac_gym
    return make_vec_env(
        env_id,
        n_envs=n_envs,
        seed=seed,
        env_kwargs=env_kwargs,
        vec_env_cls=cls,
        vec_env_kwargs=vec_kwargs,
        **kw,
    )


def _import_env_packages(env_id: str) -> None:
    if env_id.startswith("isac_gym/"):
        import isac_gym  # noqa: F401 - registers the environments

        envs = importlib.util.find_spec("isac_gym.envs")
        if envs is not None:
            import isac_gym.envs  # noqa: F401


def train(
    env_id: str,
    algo: str,
    timesteps: int,
    out: str | Path,
    *,
    seed: int = 0,
    n_envs: int | None = None,
    env_kwargs: dict | None = None,
    hyperparams: str | Path | dict | None = None,
    resume: bool = False,
    eval_freq: int | None = None,
    eval_episodes: int | None = None,
    checkpoint_freq: int | None = None,
    vec_env: str | None = None,
    progress: bool = True,
    verbose: int = 0,
    command: str | None = None,
    threads: int | None = 1,
    max_minutes: float | None = None,
) -> TrainResult:
    """Train ``algo`` on ``env_id`` for ``timesteps`` total steps into ``out``.

    ``hyperparams``: a YAML path or a dict (default: ``agents/hyperparams/<algo>.yml``).
    Explicit arguments override the YAML's ``n_envs``/``eval_freq``/... and
    ``env_kwargs`` are merged over the YAML's. ``resume``: continue from the newest
    checkpoint in ``out`` up to ``timesteps`` in total (an error if there is none).
    ``eval_freq``/``checkpoint_freq`` count total env steps (all envs together).
    ``threads``: torch/BLAS threads of this process (None: leave them alone).
    ``max_minutes``: stop (and save) after this wall time even if ``timesteps`` is not
    reached; ``resume`` can continue later.
    """
    if algo not in ALGO_NAMES:
        raise ValueError(f"unknown algorithm {algo!r}; valid: {', '.join(ALGO_NAMES)}")
    if int(timesteps) <= 0:
        raise ValueError(f"timesteps must be positive, got {timesteps}")
    start_wall = time.perf_counter()
    out = Path(out)
    _import_env_packages(env_id)

    import gymnasium
    import stable_baselines3
    import torch
    from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.utils import set_random_seed
    from stable_baselines3.common.vec_env import VecNormalize

    if isinstance(hyperparams, dict):
        hp, hp_source = dict(hyperparams), "dict"
    else:
        hp = load_hyperparams(algo, env_id, hyperparams)
        hp_source = str(hyperparams or HYPERPARAMS_DIR / f"{algo}.yml")
    module = {key: hp.pop(key) for key in _MODULE_KEYS if key in hp}
    n_envs = int(n_envs or module.get("n_envs", 1))
    vec_env = vec_env or module.get("vec_env", "dummy")
    if vec_env not in ("dummy", "subproc"):
        raise ValueError(f"vec_env must be 'dummy' or 'subproc', got {vec_env!r}")
    env_kwargs = {**(module.get("env_kwargs") or {}), **(env_kwargs or {})}
    eval_freq = int(eval_freq or module.get("eval_freq", 10_000))
    eval_episodes = int(eval_episodes or module.get("eval_episodes", 2))
    checkpoint_freq = int(checkpoint_freq or module.get("checkpoint_freq", 10_000))
    normalize = module.get("normalize", False)
    normalize_kwargs = normalize if isinstance(normalize, dict) else {}
    policy = module.get("policy", "MlpPolicy")
    if "policy_kwargs" in hp and isinstance(hp["policy_kwargs"], str):
        hp["policy_kwargs"] = ast.literal_eval(hp["policy_kwargs"])
    model_kwargs = {**hp, "policy_kwargs": _policy_kwargs(hp.get("policy_kwargs"))}
    if model_kwargs["policy_kwargs"] is None:
        del model_kwargs["policy_kwargs"]

    checkpoint = latest_checkpoint(out) if resume else None
    if resume and checkpoint is None:
        raise ValueError(f"--resume: no checkpoint under {out / 'checkpoints'}")
    out.mkdir(parents=True, exist_ok=True)
    command = command or shlex.join([sys.executable, *sys.argv])
    with open(out / "command.txt", "a") as handle:
        handle.write(command + "\n")

    if threads:
        from agents import limit_threads

        limit_threads(threads)
    set_random_seed(seed)
    venv = _make_env(
        env_id,
        n_envs,
        seed,
        env_kwargs,
        vec_env,
        monitor_dir=str(out / "monitor"),
        monitor_kwargs={"override_existing": not resume},
    )
    eval_venv = _make_env(env_id, 1, seed + EVAL_SEED_OFFSET, env_kwargs, "dummy")
    gamma = float(hp.get("gamma", 0.99))
    cls = algo_class(algo)
    off_policy = algo in ("sac", "td3")
    if checkpoint is not None:
        path, steps = checkpoint
        stats = path.with_name(f"rl_model_vecnormalize_{steps}_steps.pkl")
        if normalize and stats.is_file():
            venv = VecNormalize.load(str(stats), venv)
            venv.training = True
        elif normalize:
            venv = VecNormalize(venv, **{"gamma": gamma, **normalize_kwargs})
        model = cls.load(str(path), env=venv, device="cpu")
        buffer = path.with_name(f"rl_model_replay_buffer_{steps}_steps.pkl")
        if off_policy and buffer.is_file():
            model.load_replay_buffer(str(buffer))
    else:
        if normalize:
            venv = VecNormalize(venv, **{"gamma": gamma, **normalize_kwargs})
        model = cls(policy, venv, seed=seed, verbose=verbose, device="cpu", **model_kwargs)
        if module.get("action_bias_init") is not None:
            init_action_bias(model, module["action_bias_init"])
    if normalize:
        eval_kwargs = {"gamma": gamma, **normalize_kwargs, "training": False}
        eval_venv = VecNormalize(eval_venv, **{**eval_kwargs, "norm_reward": False})

    run_index = len(list((out / "logs").glob("run_*"))) if (out / "logs").is_dir() else 0
    log_dir = out / "logs" / f"run_{run_index}"
    formats = ["csv"] + (["stdout"] if verbose else [])
    if importlib.util.find_spec("tensorboard") is not None:
        formats.append("tensorboard")
    model.set_logger(configure(str(log_dir), formats))

    info_cb, tqdm_cb, save_vn_cb, eval_cb, time_cb = _callbacks()
    previous = None
    eval_file = out / "eval" / "evaluations.npz"
    if checkpoint is not None and eval_file.is_file():
        with np.load(eval_file) as data:
            keep = data["timesteps"] <= checkpoint[1]
            previous = {
                "timesteps": data["timesteps"][keep],
                "results": data["results"][keep],
                "ep_lengths": data["ep_lengths"][keep],
            }
    start_steps = int(model.num_timesteps)
    remaining = max(int(timesteps) - start_steps, 0)
    callbacks = [
        CheckpointCallback(
            save_freq=max(checkpoint_freq // n_envs, 1),
            save_path=str(out / "checkpoints"),
            name_prefix="rl_model",
            save_replay_buffer=off_policy,
            save_vecnormalize=bool(normalize),
        ),
        eval_cb(
            eval_venv,
            best_model_save_path=str(out / "best"),
            log_path=str(out / "eval"),
            eval_freq=max(eval_freq // n_envs, 1),
            n_eval_episodes=eval_episodes,
            deterministic=True,
            callback_on_new_best=save_vn_cb(out / "best"),
            eval_seed=seed + EVAL_SEED_OFFSET,
            previous=previous,
            verbose=verbose,
        ),
        info_cb(),
    ]
    if max_minutes:
        callbacks.append(time_cb(60.0 * max_minutes))
    if progress:
        callbacks.append(tqdm_cb(total=int(timesteps), initial=start_steps))
    if remaining > 0:
        model.learn(
            total_timesteps=remaining,
            callback=CallbackList(callbacks),
            reset_num_timesteps=checkpoint is None,
        )
    model_path = out / "model.zip"
    model.save(str(model_path))
    final = out / "checkpoints" / f"rl_model_{model.num_timesteps}_steps.zip"
    final.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(final))
    if off_policy:
        model.save_replay_buffer(
            str(final.with_name(f"rl_model_replay_buffer_{model.num_timesteps}_steps.pkl"))
        )
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        vec_normalize.save(str(out / "vecnormalize.pkl"))
        vec_normalize.save(
            str(final.with_name(f"rl_model_vecnormalize_{model.num_timesteps}_steps.pkl"))
        )
    venv.close()
    eval_venv.close()
    model.logger.close()  # flush and close progress.csv / event files
    wall = time.perf_counter() - start_wall

    config_path = out / "config.json"
    previous_config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    runs = previous_config.get("runs", []) if checkpoint is not None else []
    runs.append(
        {
            "command": command,
            "start_timesteps": start_steps,
            "end_timesteps": int(model.num_timesteps),
            "wall_time_s": round(wall, 2),
            "resumed_from": str(checkpoint[0]) if checkpoint else None,
            "log_dir": str(log_dir.relative_to(out)),
        }
    )
    config = {
        "env_id": env_id,
        "algo": algo,
        "timesteps": int(timesteps),
        "seed": seed,
        "n_envs": n_envs,
        "vec_env": vec_env,
        "env_kwargs": env_kwargs,
        "policy": policy,
        "normalize": normalize,
        "hyperparams": _jsonable(hp),
        "hyperparams_source": hp_source,
        "eval_freq": eval_freq,
        "eval_episodes": eval_episodes,
        "eval_seed": seed + EVAL_SEED_OFFSET,
        "checkpoint_freq": checkpoint_freq,
        "num_timesteps": int(model.num_timesteps),
        "wall_time_s": round(sum(r["wall_time_s"] for r in runs), 2),
        "runs": runs,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "gymnasium": gymnasium.__version__,
            "stable_baselines3": stable_baselines3.__version__,
        },
    }
    config_path.write_text(json.dumps(_jsonable(config), indent=2) + "\n")
    try:
        plot_training_curve(out)
    except Exception as error:  # a plot must never lose a trained model
        print(f"warning: training curve not plotted: {error}", file=sys.stderr)
    return TrainResult(
        out, model_path, int(model.num_timesteps), wall, checkpoint and checkpoint[0]
    )


def read_monitor(out: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(global timestep at episode end, episode return) from ``out/monitor/*.csv``."""
    rows = []
    for path in sorted(Path(out, "monitor").glob("*.monitor.csv")):
        data = np.genfromtxt(path, delimiter=",", skip_header=2, ndmin=2)
        if data.size == 0:
            continue
        for index, (ret, length) in enumerate(data[:, :2]):
            rows.append((index, path.name, ret, length))
    rows.sort(key=lambda row: (row[0], row[1]))
    if not rows:
        return np.zeros(0), np.zeros(0)
    returns = np.array([row[2] for row in rows])
    steps = np.cumsum([row[3] for row in rows])
    return steps, returns


def plot_training_curve(out: str | Path) -> Path:
    """Plot training (monitor) and evaluation returns into ``out/training_curve.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    steps, returns = read_monitor(out)
    fig, ax = plt.subplots(figsize=(7, 4))
    if steps.size:
        ax.plot(steps, returns, ".", alpha=0.3, color="tab:blue", label="training episodes")
        window = max(1, min(20, steps.size // 5))
        if steps.size >= window > 1:
            smooth = np.convolve(returns, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1 :], smooth, color="tab:blue", label=f"mean of {window}")
    eval_file = out / "eval" / "evaluations.npz"
    if eval_file.is_file():
        with np.load(eval_file) as data:
            if data["timesteps"].size:
                mean, std = data["results"].mean(axis=1), data["results"].std(axis=1)
                ax.errorbar(
                    data["timesteps"],
                    mean,
                    yerr=std,
                    color="tab:red",
                    marker="o",
                    capsize=3,
                    label="evaluation (deterministic)",
                )
    config = out / "config.json"
    title = out.name
    if config.is_file():
        cfg = json.loads(config.read_text())
        title = f"{cfg['algo'].upper()} on {cfg['env_id']} {cfg.get('env_kwargs') or ''}"
    ax.set(xlabel="timesteps", ylabel="episode return", title=title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    path = out / "training_curve.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------
# Command line (train.py)
# ---------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register train.py's arguments on ``parser`` and set ``run`` as its handler."""
    parser.add_argument("--env", required=True, help="registered env id, e.g. isac_gym/ISCC-v0")
    parser.add_argument("--algo", required=True, choices=ALGO_NAMES, help="SB3 algorithm")
    parser.add_argument(
        "--timesteps",
        required=True,
        type=positive_int,
        help="total training timesteps (also the target of --resume)",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder of the run")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--n-envs",
        type=positive_int,
        default=None,
        help="parallel training envs (default: from the YAML, else 1)",
    )
    parser.add_argument(
        "--env-kwargs",
        type=json_object,
        default=None,
        help='JSON object passed to gymnasium.make, e.g. \'{"oracle": "fast"}\'',
    )
    parser.add_argument(
        "--hyperparams",
        type=Path,
        default=None,
        help="YAML file keyed by env id (default agents/hyperparams/ALGO.yml)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from the newest checkpoint in --out"
    )
    parser.add_argument(
        "--eval-freq",
        type=positive_int,
        default=None,
        help="evaluate every N total steps (default: YAML, else 10000)",
    )
    parser.add_argument(
        "--eval-episodes",
        type=positive_int,
        default=None,
        help="episodes per evaluation (default: YAML, else 2)",
    )
    parser.add_argument(
        "--checkpoint-freq",
        type=positive_int,
        default=None,
        help="checkpoint every N total steps (default: YAML, else 10000)",
    )
    parser.add_argument(
        "--vec-env",
        choices=("dummy", "subproc"),
        default=None,
        help="vectorised env class (default: YAML, else dummy)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="torch/BLAS threads of the learner process (default 1)",
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="stop and save after this wall time (resume continues)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--verbose", type=int, default=0, help="SB3 verbosity (0, 1, 2)")
    from agents import seeds

    seeds.add_arguments(parser)  # --seeds, --tune, --backend, --ray-address
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Handler of train.py: validate, train, print where the results are."""
    from agents import seeds

    if seeds.wanted(args):  # several seeds, a sweep, or Ray
        return seeds.run(args, parser)
    if args.hyperparams is not None and not args.hyperparams.is_file():
        parser.error(f"--hyperparams: no such file: {args.hyperparams}")
    if args.resume and latest_checkpoint(args.out) is None:
        parser.error(f"--resume: no checkpoint under {args.out / 'checkpoints'}")
    try:
        result = train(
            args.env,
            args.algo,
            args.timesteps,
            args.out,
            seed=args.seed,
            n_envs=args.n_envs,
            env_kwargs=args.env_kwargs,
            hyperparams=args.hyperparams,
            resume=args.resume,
            eval_freq=args.eval_freq,
            eval_episodes=args.eval_episodes,
            checkpoint_freq=args.checkpoint_freq,
            vec_env=args.vec_env,
            progress=not args.no_progress,
            verbose=args.verbose,
            threads=args.threads,
            max_minutes=args.max_minutes,
        )
    except ValueError as error:
        parser.error(str(error))
    print(
        f"saved {result.model_path} after {result.num_timesteps} timesteps "
        f"({result.wall_time_s:.1f} s)"
    )
    return 0
