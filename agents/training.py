"""Train stable-baselines3 agents (PPO, SAC, TD3) on a registered environment.

``train.py`` is a thin command line over :func:`train`. A run writes, under ``out``::

    model.zip            the final model
    vecnormalize.pkl     VecNormalize statistics (obs + reward) of the training envs
    config.json          every setting used (hyperparameters, env kwargs, seed, versions)
    command.txt          the command line that produced the run (one line per (re)start)
    checkpoints/         rl_model_<N>_steps.zip (model with optimizer state and timestep
                         count) + rl_model_vecnormalize_<N>_steps.pkl (+ the replay
                         buffer for SAC/TD3) + rl_model_state_<N>_steps.json (evaluation
                         counters, best score); ``resume=True`` continues from the newest
    best/                best_model.zip + vecnormalize.pkl (EvalCallback)
    eval/evaluations.npz EvalCallback results (kept and extended across resumes)
    monitor/             Monitor CSVs of the training envs (episode return and length)
    logs/run_<i>/        SB3 logger output (progress.csv; TensorBoard events when the
                         ``tensorboard`` package is installed), with the env's
                         ``info["rewards"]`` components, weighted/energy cost, success
                         and outage rates under ``env/``
    training_curve.png   training episode returns and evaluation returns vs timesteps

Hyperparameters come from ``agents/hyperparams/<algo>.yml`` keyed by env id (falling
back to the ``default`` entry); the keys ``n_envs``, ``n_procs``, ``normalize``, ``policy``,
``vec_env``, ``env_kwargs``, ``eval_freq``, ``eval_episodes``, ``checkpoint_freq`` and
``action_bias_init`` (start the mean action there, see :func:`init_action_bias`) and
``residual`` (``{base: SPEC, scale: s}``: the agent's action corrects that policy's,
:mod:`agents.residual`) are read by this module, the rest go to the algorithm's
constructor. ``policy: EquivariantPolicy`` selects the permutation-equivariant
actor-critic of :mod:`agents.equivariant` (its K and feature count come from the env).

Environments with a native vector env (``isac_gym/ISCC-v0``) train on it by default
(``vec_env: native``, :class:`agents.vec_env.NativeVecEnv`: one batched oracle call per
round, the same trajectories as ``DummyVecEnv``); ISCC-v0 trains with
``diagnose_drops=False``. ``n_procs`` > 1 steps those envs in as many worker processes
(:class:`agents.vec_env.SubprocNativeVecEnv`), the same training run.

Same seed, same settings -> same training run (CPU, ``native`` or ``DummyVecEnv``): the
global
seeds, the model seed, the training-env seeds ``seed + i`` and the evaluation-env seed
``seed + EVAL_SEED_OFFSET`` (re-applied before every evaluation, so that every
evaluation runs the same episodes) all derive from ``seed``. A resumed run continues
from the checkpoint's parameters and statistics but not from the random generators'
states, so it is reproducible only as a resumed run.

The run lifecycle: :class:`TrainSettings` -> :func:`prepare_run_folder` (a non-empty
``out`` is refused unless ``resume`` or ``overwrite``) -> :func:`build_or_resume` ->
learning (SIGINT/SIGTERM stop at the end of the step) -> :func:`save_run` (the model, a
final resumable checkpoint, config.json, the curve). Evaluations and checkpoints run
every ``eval_freq``/``checkpoint_freq`` *total* steps, so a resumed run keeps the
schedule of the first (:mod:`agents.callbacks`).

Heavy imports (torch, stable-baselines3, matplotlib) happen inside the functions.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import json
import math
import os
import platform
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from isac_gym.cli import UsageError, json_object, positive_int
from isac_gym.runs import (
    THREAD_VARIABLES,
    atomic_write_text,
    limit_threads,
    prepare_output,
    to_jsonable,
)

ALGO_NAMES = ("ppo", "sac", "td3")
VEC_ENVS = ("native", "dummy", "subproc")
HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"
EVAL_SEED_OFFSET = 10_000  #: evaluation-env seeds; test seeds of evaluate.py start at 0
_MODULE_KEYS = (
    "n_envs",
    "n_procs",
    "normalize",
    "policy",
    "vec_env",
    "env_kwargs",
    "eval_freq",
    "eval_episodes",
    "checkpoint_freq",
    "action_bias_init",
    "residual",
    "n_timesteps",
)
#: ``policy`` names resolved by this module (others are SB3's own aliases).
CUSTOM_POLICIES = ("EquivariantPolicy",)
_CHECKPOINT_RE = re.compile(r"rl_model_(\d+)_steps\.zip$")
STOP_SIGNALS = ("SIGINT", "SIGTERM")  #: the signals that stop training and save


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


def default_timesteps(algo: str, env_id: str, path: str | Path | None = None) -> int:
    """``n_timesteps`` of the hyperparameter entry (rl-baselines3-zoo's key), the
    length of a run when ``--timesteps`` is not given."""
    try:
        value = load_hyperparams(algo, env_id, path).get("n_timesteps")
    except ValueError as error:
        raise UsageError(str(error)) from None
    if value is None:
        source = path or HYPERPARAMS_DIR / f"{algo}.yml"
        raise UsageError(f"--timesteps is required: {source} has no n_timesteps for {env_id}")
    try:
        steps = int(value)
        valid = steps > 0 and steps == float(value) and not isinstance(value, bool)
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise UsageError(f"n_timesteps must be a positive integer, got {value!r}")
    return steps


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


# ---------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------
#: What a run folder holds (``--overwrite`` removes these and refuses anything else).
RUN_ENTRIES = (
    "model.zip",
    "vecnormalize.pkl",
    "config.json",
    "command.txt",
    "checkpoints",
    "best",
    "eval",
    "monitor",
    "logs",
    "training_curve.png",
)


@dataclass
class TrainSettings:
    """Everything :func:`train` needs (``train.py``'s arguments).

    ``hyperparams``: a YAML path or a dict (default: ``agents/hyperparams/<algo>.yml``);
    ``n_envs``/``n_procs``/``eval_freq``/``eval_episodes``/``checkpoint_freq``/``vec_env``
    override the YAML's, ``env_kwargs`` are merged over the YAML's. ``n_procs``: worker
    processes that step the native envs (:class:`agents.vec_env.SubprocNativeVecEnv`;
    1: this process steps them), the same training run for every value. ``resume``:
    continue from the newest checkpoint in ``out`` up to ``timesteps`` in total;
    ``overwrite``: clear a non-empty ``out`` first (without either, a non-empty ``out``
    is refused).
    ``eval_freq``/``checkpoint_freq`` count total env steps (all envs together).
    ``threads``: torch/BLAS threads of this process (None: leave them alone).
    ``max_minutes``: stop (and save) after this wall time. ``handle_signals``: SIGINT
    and SIGTERM stop training and save a resumable checkpoint.
    """

    env_id: str
    algo: str
    timesteps: int
    out: Path
    seed: int = 0
    n_envs: int | None = None
    n_procs: int | None = None
    env_kwargs: dict | None = None
    hyperparams: str | Path | dict | None = None
    resume: bool = False
    overwrite: bool = False
    eval_freq: int | None = None
    eval_episodes: int | None = None
    checkpoint_freq: int | None = None
    vec_env: str | None = None
    progress: bool = True
    verbose: int = 0
    command: str | None = None
    threads: int | None = 1
    max_minutes: float | None = None
    handle_signals: bool = True

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.algo not in ALGO_NAMES:
            raise UsageError(f"unknown algorithm {self.algo!r}; valid: {', '.join(ALGO_NAMES)}")
        if int(self.timesteps) <= 0:
            raise UsageError(f"timesteps must be positive, got {self.timesteps}")
        if self.resume and self.overwrite:
            raise UsageError("--resume and --overwrite exclude each other")
        if self.vec_env not in (None, *VEC_ENVS):
            raise UsageError(f"vec_env must be one of {VEC_ENVS}, got {self.vec_env!r}")
        self.command = self.command or shlex.join([sys.executable, *sys.argv])


@dataclass
class RunPlan:
    """The settings resolved against the hyperparameter file."""

    n_envs: int
    vec_env: str
    env_kwargs: dict
    eval_freq: int
    eval_episodes: int
    checkpoint_freq: int
    normalize: bool | dict
    policy: str
    hyperparams: dict  # the algorithm's constructor arguments, as read
    hyperparams_source: str
    action_bias_init: Any = None
    residual: Any = None  # agents.residual.ResidualSpec or None
    n_procs: int = 1

    @property
    def normalize_kwargs(self) -> dict:
        return self.normalize if isinstance(self.normalize, dict) else {}

    @property
    def gamma(self) -> float:
        return float(self.hyperparams.get("gamma", 0.99))

    def model_kwargs(self) -> dict:
        """The algorithm's constructor arguments (``policy_kwargs`` parsed)."""
        kwargs = dict(self.hyperparams)
        policy_kwargs = kwargs.pop("policy_kwargs", None)
        if isinstance(policy_kwargs, str):
            policy_kwargs = ast.literal_eval(policy_kwargs)
        policy_kwargs = _policy_kwargs(policy_kwargs)
        return kwargs if policy_kwargs is None else {**kwargs, "policy_kwargs": policy_kwargs}


def resolve(settings: TrainSettings) -> RunPlan:
    """The :class:`RunPlan` of ``settings``: explicit values over the YAML's."""
    if isinstance(settings.hyperparams, dict):
        hp, source = dict(settings.hyperparams), "dict"
    else:
        hp = load_hyperparams(settings.algo, settings.env_id, settings.hyperparams)
        source = str(settings.hyperparams or HYPERPARAMS_DIR / f"{settings.algo}.yml")
    module = {key: hp.pop(key) for key in _MODULE_KEYS if key in hp}
    vec_env = settings.vec_env or module.get("vec_env") or default_vec_env(settings.env_id)
    if vec_env not in VEC_ENVS:
        raise UsageError(f"vec_env must be one of {VEC_ENVS}, got {vec_env!r}")
    n_envs = int(settings.n_envs or module.get("n_envs", 1))
    return RunPlan(
        residual=_residual_spec(module.get("residual")),
        n_envs=n_envs,
        n_procs=_n_procs(settings.n_procs or module.get("n_procs", 1), n_envs, vec_env),
        vec_env=vec_env,
        env_kwargs={**(module.get("env_kwargs") or {}), **(settings.env_kwargs or {})},
        eval_freq=int(settings.eval_freq or module.get("eval_freq", 10_000)),
        eval_episodes=int(settings.eval_episodes or module.get("eval_episodes", 2)),
        checkpoint_freq=int(settings.checkpoint_freq or module.get("checkpoint_freq", 10_000)),
        normalize=module.get("normalize", False),
        policy=module.get("policy", "MlpPolicy"),
        hyperparams=hp,
        hyperparams_source=source,
        action_bias_init=module.get("action_bias_init"),
    )


def _n_procs(value: Any, n_envs: int, vec_env: str) -> int:
    """``n_procs`` checked: an integer >= 1 dividing ``n_envs``, > 1 only with the
    ``native`` vec env (``subproc`` already steps every env in its own process)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"n_procs must be an integer >= 1, got {value!r}")
    if value > 1 and vec_env != "native":
        raise UsageError(f"n_procs > 1 needs vec_env native, got n_procs={value}, {vec_env!r}")
    if n_envs % value:
        raise UsageError(f"n_envs ({n_envs}) must be divisible by n_procs ({value})")
    return value


def _residual_spec(value: Any) -> Any:
    from agents.residual import ResidualSpec

    try:
        return ResidualSpec.from_dict(value)
    except ValueError as error:
        raise UsageError(f"hyperparameter 'residual': {error}") from None


def policy_and_kwargs(plan: RunPlan, env_id: str) -> tuple[Any, dict]:
    """The ``policy`` argument of the algorithm and its constructor kwargs.

    ``EquivariantPolicy`` becomes :class:`agents.equivariant.EquivariantPolicy` with
    ``num_ues`` and ``ue_features`` read from the env (YAML ``policy_kwargs`` on top).
    """
    kwargs = plan.model_kwargs()
    if plan.policy not in CUSTOM_POLICIES:
        return plan.policy, kwargs
    import gymnasium

    from agents.equivariant import EquivariantPolicy, iscc_policy_kwargs

    env = gymnasium.make(env_id, **plan.env_kwargs)
    shape = iscc_policy_kwargs(env)
    env.close()
    kwargs["policy_kwargs"] = {**shape, **(kwargs.get("policy_kwargs") or {})}
    return EquivariantPolicy, kwargs


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------
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
    """The training (or evaluation) VecEnv: ``native`` (the env's batched vector env, in
    this process or, with ``n_procs`` > 1, split over worker processes), ``dummy`` or
    ``subproc``. ISCC-v0 trains without the drop-cause diagnosis
    (``diagnose_drops=False``) unless ``env_kwargs`` asks for it."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    if env_id.startswith("isac_gym/ISCC"):
        env_kwargs = {"diagnose_drops": False, **env_kwargs}
    if vec_env == "native":
        return _make_native_env(env_id, n_envs, seed, env_kwargs, **kw)

    cls = {"dummy": DummyVecEnv, "subproc": SubprocVecEnv}[vec_env]
    vec_kwargs = None
    ignore_sigint = contextlib.nullcontext()
    if cls is SubprocVecEnv:
        vec_kwargs = {"start_method": "spawn"}
        for name in THREAD_VARIABLES:
            os.environ.setdefault(name, "1")  # inherited by the spawned env workers
        ignore_sigint = _sigint_ignored()  # Ctrl-C stops the learner, not the workers
    if env_id.startswith("isac_gym/") and ":" not in env_id:
        env_id = f"isac_gym:{env_id}"  # spawned workers import (and register) isac_gym
    with ignore_sigint:
        return make_vec_env(
            env_id,
            n_envs=n_envs,
            seed=seed,
            env_kwargs=env_kwargs,
            vec_env_cls=cls,
            vec_env_kwargs=vec_kwargs,
            **kw,
        )


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored while worker processes start (they inherit it: Python keeps an
    ignored SIGINT ignored), so that Ctrl-C reaches only the learner."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _make_native_env(
    env_id, n_envs, seed, env_kwargs, monitor_dir=None, monitor_kwargs=None, n_procs=1
):
    """``agents.vec_env.NativeVecEnv`` (or, with ``n_procs`` > 1, ``SubprocNativeVecEnv``:
    the same envs in worker processes) seeded like ``make_vec_env`` (env i:
    ``seed + i``), with one ``VecMonitor`` file ``monitor_dir/native.monitor.csv``."""
    from stable_baselines3.common.monitor import ResultsWriter
    from stable_baselines3.common.vec_env import VecMonitor

    from agents.vec_env import NativeVecEnv, SubprocNativeVecEnv

    if n_procs > 1:
        with _sigint_ignored():  # Ctrl-C stops the learner, not the workers
            venv = SubprocNativeVecEnv(env_id, n_envs, n_procs, **env_kwargs)
    else:
        venv = NativeVecEnv.make(env_id, n_envs, **env_kwargs)
    venv.seed(seed)
    venv.action_space.seed(seed)
    monitor = VecMonitor(venv)
    if monitor_dir is not None:
        monitor.results_writer = ResultsWriter(
            str(Path(monitor_dir) / "native"),
            header={"t_start": monitor.t_start, "env_id": env_id},
            override_existing=(monitor_kwargs or {}).get("override_existing", True),
        )
    return monitor


def default_vec_env(env_id: str) -> str:
    """``native`` where the env registers a native vector env, else ``dummy``."""
    import gymnasium

    spec = gymnasium.registry.get(env_id)
    return "native" if spec is not None and spec.vector_entry_point is not None else "dummy"


def _import_env_packages(env_id: str) -> None:
    if env_id.startswith("isac_gym/"):
        import isac_gym  # noqa: F401 - registers the environments

        envs = importlib.util.find_spec("isac_gym.envs")
        if envs is not None:
            import isac_gym.envs  # noqa: F401


@dataclass
class TrainResult:
    """What :func:`train` produced. ``stopped_by``: None (target reached), a signal
    name (``SIGINT``/``SIGTERM``) or ``"time limit"``; the run is saved in every case."""

    out: Path
    model_path: Path
    num_timesteps: int
    wall_time_s: float
    resumed_from: Path | None
    stopped_by: str | None = None
    checkpoint: Path | None = None


@dataclass
class _Session:
    """A built (or resumed) run: the model, its envs and where it started."""

    model: Any
    venv: Any
    eval_venv: Any
    checkpoint: tuple[Path, int] | None
    log_dir: Path
    start_steps: int
    end_steps: int  # where learning will stop: whole rollouts past the target
    resume_state: dict = field(default_factory=dict)
    evaluation_state: Any = None  # callable: the evaluation callback's counters


def train(settings: TrainSettings | str, *args: Any, **options: Any) -> TrainResult:
    """Train as ``settings`` says into ``settings.out``: build or resume, learn, save.

    Also callable as ``train(env_id, algo, timesteps, out, **options)`` (the fields of
    :class:`TrainSettings`). SIGINT/SIGTERM during learning stop at the end of the
    step and save the run and a resumable checkpoint (``result.stopped_by``).
    """
    if not isinstance(settings, TrainSettings):
        settings = TrainSettings(settings, *args, **options)
    start_wall = time.perf_counter()
    _import_env_packages(settings.env_id)
    plan = resolve(settings)
    checkpoint = prepare_run_folder(settings)
    check_env(settings.env_id, plan.env_kwargs)
    with open(settings.out / "command.txt", "a") as handle:
        handle.write(settings.command + "\n")
    if settings.threads:
        limit_threads(settings.threads, torch=True)
    session = build_or_resume(settings, plan, checkpoint)
    stopped_by = _learn(settings, plan, session)
    return save_run(settings, plan, session, stopped_by, time.perf_counter() - start_wall)


def prepare_run_folder(settings: TrainSettings) -> tuple[Path, int] | None:
    """Check ``out`` before any work; the checkpoint to resume from (None: a new run).

    A new run needs an empty (or new) folder, or ``overwrite``; ``resume`` needs a
    checkpoint. Errors are one-line :class:`~isac_gym.cli.UsageError`s.
    """
    out = settings.out
    if not settings.resume:
        prepare_output(out, must_be_empty=True, overwrite=settings.overwrite, owned=RUN_ENTRIES)
        return None
    checkpoint = latest_checkpoint(out) if out.is_dir() else None
    if checkpoint is None:
        raise UsageError(f"--resume: no checkpoint under {out / 'checkpoints'}")
    prepare_output(out)
    return checkpoint


def build_or_resume(
    settings: TrainSettings, plan: RunPlan, checkpoint: tuple[Path, int] | None
) -> _Session:
    """The envs and the model: new (seeded), or loaded from ``checkpoint``."""
    from stable_baselines3.common.utils import set_random_seed

    set_random_seed(settings.seed)
    venv, eval_venv = _make_envs(settings, plan, resume=checkpoint is not None)
    cls = algo_class(settings.algo)
    resume_state: dict = {}
    if checkpoint is not None:
        model, venv, resume_state = _load_checkpoint(cls, plan, venv, checkpoint)
        print(
            f"resuming from {checkpoint[0]} ({checkpoint[1]} of {settings.timesteps} steps)",
            file=sys.stderr,
        )
    else:
        venv = _normalized(venv, plan)
        policy, kwargs = policy_and_kwargs(plan, settings.env_id)
        model = cls(
            policy, venv, seed=settings.seed, verbose=settings.verbose, device="cpu", **kwargs
        )
        if plan.action_bias_init is not None:
            init_action_bias(model, plan.action_bias_init)
    if plan.normalize:
        eval_kwargs = {"gamma": plan.gamma, **plan.normalize_kwargs, "training": False}
        eval_venv = _normalized(eval_venv, plan, **{**eval_kwargs, "norm_reward": False})
    start = int(model.num_timesteps)
    end = planned_end(start, int(settings.timesteps), plan.n_envs)
    _warn_overshoot(settings, start, end)
    log_dir = _configure_logger(model, settings.out, settings.verbose)
    return _Session(model, venv, eval_venv, checkpoint, log_dir, start, end, resume_state)


def _normalized(venv: Any, plan: RunPlan, **kwargs: Any) -> Any:
    from stable_baselines3.common.vec_env import VecNormalize

    if not plan.normalize:
        return venv
    return VecNormalize(venv, **(kwargs or {"gamma": plan.gamma, **plan.normalize_kwargs}))


def _load_checkpoint(cls: type, plan: RunPlan, venv: Any, checkpoint: tuple[Path, int]):
    """``(model, venv, callbacks' state)`` of the checkpoint (statistics restored)."""
    from stable_baselines3.common.vec_env import VecNormalize

    from agents.callbacks import checkpoint_paths, read_checkpoint_state

    path, steps = checkpoint
    paths = checkpoint_paths(path.parent, steps)
    if plan.normalize and paths["vecnormalize"].is_file():
        venv = VecNormalize.load(str(paths["vecnormalize"]), venv)
        venv.training = True
    else:
        venv = _normalized(venv, plan)
    model = cls.load(str(path), env=venv, device="cpu")
    if hasattr(model, "replay_buffer") and paths["replay_buffer"].is_file():
        model.load_replay_buffer(str(paths["replay_buffer"]))
    return model, venv, read_checkpoint_state(path, steps)


def planned_end(start: int, target: int, n_envs: int) -> int:
    """The timestep count training stops at: the first multiple of ``n_envs`` steps
    (one step of every env) at or past ``target``. Training stops there even inside a
    rollout; the partial rollout is not learned from, so a run of ``T`` steps holds
    exactly what a longer run of the same seed held at ``T`` (its checkpoint)."""
    if target <= start:
        return start
    return start + math.ceil((target - start) / n_envs) * n_envs


def _warn_overshoot(settings: TrainSettings, start: int, end: int) -> None:
    target = int(settings.timesteps)
    if start >= target:
        print(
            f"note: the run already has {start} >= --timesteps {target} steps; "
            "nothing to train (raise --timesteps to continue)",
            file=sys.stderr,
        )
    elif end > target:
        print(
            f"note: the envs step together: --timesteps {target} ends at {end} steps "
            f"(from {start})",
            file=sys.stderr,
        )


def check_env(env_id: str, env_kwargs: dict) -> None:
    """Make (and close) the env once: an unknown id or bad kwargs is a UsageError."""
    import gymnasium

    try:
        gymnasium.make(env_id, **env_kwargs).close()
    except (gymnasium.error.Error, ValueError, TypeError) as error:
        raise UsageError(
            f"--env {env_id} with {env_kwargs}: {type(error).__name__}: {error}"
        ) from error


def _make_envs(settings: TrainSettings, plan: RunPlan, resume: bool) -> tuple[Any, Any]:
    """The training envs (Monitor CSVs under ``out/monitor``) and the evaluation env."""
    monitor = {
        "monitor_dir": str(settings.out / "monitor"),
        "monitor_kwargs": {"override_existing": not resume},
    }
    if plan.n_procs > 1:
        monitor["n_procs"] = plan.n_procs
    venv = _make_env(
        settings.env_id, plan.n_envs, settings.seed, plan.env_kwargs, plan.vec_env, **monitor
    )
    eval_seed = settings.seed + EVAL_SEED_OFFSET
    eval_kind = "native" if plan.vec_env == "native" else "dummy"  # wrapped like training
    eval_venv = _make_env(settings.env_id, 1, eval_seed, plan.env_kwargs, eval_kind)
    if plan.residual is None:
        return venv, eval_venv
    from agents.residual import ResidualVecEnv, residual_base

    plan.residual, base = residual_base(plan.residual, settings.env_id, plan.env_kwargs)
    scale = plan.residual.scale
    return ResidualVecEnv(venv, base, scale), ResidualVecEnv(eval_venv, base, scale)


def _configure_logger(model: Any, out: Path, verbose: int) -> Path:
    """SB3 logger into ``out/logs/run_<i>`` (a new ``i`` per (re)start)."""
    from stable_baselines3.common.logger import configure

    run_index = len(list((out / "logs").glob("run_*"))) if (out / "logs").is_dir() else 0
    log_dir = out / "logs" / f"run_{run_index}"
    formats = ["csv"] + (["stdout"] if verbose else [])
    if importlib.util.find_spec("tensorboard") is not None:
        formats.append("tensorboard")
    model.set_logger(configure(str(log_dir), formats))
    return log_dir


def _previous_evaluations(out: Path, checkpoint: tuple[Path, int] | None) -> dict | None:
    """The evaluation results up to the checkpoint (later ones are redone)."""
    eval_file = out / "eval" / "evaluations.npz"
    if checkpoint is None or not eval_file.is_file():
        return None
    with np.load(eval_file) as data:
        keep = data["timesteps"] <= checkpoint[1]
        return {key: data[key][keep] for key in ("timesteps", "results", "ep_lengths")}


def _callbacks(settings: TrainSettings, plan: RunPlan, session: _Session, stop) -> list:
    from agents import callbacks as cb

    out = settings.out
    evaluation = cb.ScheduledEvalCallback(
        session.eval_venv,
        every=plan.eval_freq,
        best_model_save_path=str(out / "best"),
        log_path=str(out / "eval"),
        n_eval_episodes=plan.eval_episodes,
        deterministic=True,
        callback_on_new_best=cb.SaveVecNormalizeCallback(out / "best"),
        eval_seed=settings.seed + EVAL_SEED_OFFSET,
        previous=_previous_evaluations(out, session.checkpoint),
        state=session.resume_state,
        verbose=settings.verbose,
    )
    callbacks = [
        cb.CheckpointEveryCallback(plan.checkpoint_freq, out / "checkpoints", evaluation.state),
        evaluation,
        cb.InfoLoggerCallback(),
        cb.PhaseTimeCallback(),
        stop,
    ]
    if settings.progress:
        callbacks.append(cb.TqdmCallback(total=session.end_steps, initial=session.start_steps))
    return callbacks


def _learn(settings: TrainSettings, plan: RunPlan, session: _Session) -> str | None:
    """Learn up to ``settings.timesteps``; why it stopped early (None: it did not)."""
    from stable_baselines3.common.callbacks import CallbackList

    from agents.callbacks import StopCallback, StopRequest

    remaining = int(settings.timesteps) - session.start_steps
    if remaining <= 0:
        return None
    request = StopRequest()
    seconds = 60.0 * settings.max_minutes if settings.max_minutes else None
    stop = StopCallback(request, seconds, at_steps=session.end_steps)
    callbacks = _callbacks(settings, plan, session, stop)
    session.evaluation_state = callbacks[1].state
    with request if settings.handle_signals else contextlib.nullcontext():
        session.model.learn(
            total_timesteps=remaining,
            callback=CallbackList(callbacks),
            reset_num_timesteps=session.checkpoint is None,
        )
    return stop.reason


def save_run(
    settings: TrainSettings, plan: RunPlan, session: _Session, stopped_by: str | None, wall: float
) -> TrainResult:
    """Save the model, a final resumable checkpoint, config.json and the curve."""
    from agents.callbacks import save_checkpoint

    model, out = session.model, settings.out
    state_of = getattr(session, "evaluation_state", None)
    state = state_of() if state_of else session.resume_state  # nothing trained: carry over
    final = save_checkpoint(model, out / "checkpoints", state)
    model_path = out / "model.zip"
    model.save(str(model_path))
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        vec_normalize.save(str(out / "vecnormalize.pkl"))
    session.venv.close()
    session.eval_venv.close()
    model.logger.close()  # flush and close progress.csv / event files
    _write_config(settings, plan, session, stopped_by, wall)
    try:
        plot_training_curve(out)
    except Exception as error:  # a plot must never lose a trained model
        print(f"warning: training curve not plotted: {error}", file=sys.stderr)
    resumed_from = session.checkpoint[0] if session.checkpoint else None
    steps = int(model.num_timesteps)
    return TrainResult(out, model_path, steps, wall, resumed_from, stopped_by, final)


def _write_config(
    settings: TrainSettings, plan: RunPlan, session: _Session, stopped_by: str | None, wall: float
) -> None:
    config_path = settings.out / "config.json"
    previous = json.loads(config_path.read_text()) if config_path.is_file() else {}
    runs = previous.get("runs", []) if session.checkpoint is not None else []
    runs.append(
        {
            "command": settings.command,
            "start_timesteps": session.start_steps,
            "end_timesteps": int(session.model.num_timesteps),
            "wall_time_s": round(wall, 2),
            "resumed_from": str(session.checkpoint[0]) if session.checkpoint else None,
            "stopped_by": stopped_by,
            "log_dir": str(session.log_dir.relative_to(settings.out)),
        }
    )
    config = {
        "env_id": settings.env_id,
        "algo": settings.algo,
        "timesteps": int(settings.timesteps),
        "seed": settings.seed,
        "n_envs": plan.n_envs,
        "n_procs": plan.n_procs,
        "vec_env": plan.vec_env,
        "env_kwargs": plan.env_kwargs,
        "policy": plan.policy,
        "residual": plan.residual.as_dict() if plan.residual else None,
        "normalize": plan.normalize,
        "hyperparams": plan.hyperparams,
        "hyperparams_source": plan.hyperparams_source,
        "eval_freq": plan.eval_freq,
        "eval_episodes": plan.eval_episodes,
        "eval_seed": settings.seed + EVAL_SEED_OFFSET,
        "checkpoint_freq": plan.checkpoint_freq,
        "num_timesteps": int(session.model.num_timesteps),
        "wall_time_s": round(sum(r["wall_time_s"] for r in runs), 2),
        "runs": runs,
        "versions": _versions(),
    }
    atomic_write_text(config_path, json.dumps(to_jsonable(config), indent=2) + "\n")


def _versions() -> dict[str, str]:
    import gymnasium
    import stable_baselines3
    import torch

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
        "stable_baselines3": stable_baselines3.__version__,
    }


def read_monitor(out: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(global timestep at episode end, episode return) from ``out/monitor/*.csv``."""
    rows = []
    for path in sorted(Path(out, "monitor").glob("*.monitor.csv")):
        if len(path.read_text().splitlines()) <= 2:  # the header only: no episode ended
            continue
        data = np.genfromtxt(path, delimiter=",", skip_header=2, ndmin=2)
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
        type=positive_int,
        default=None,
        help="total training timesteps, exact to a multiple of n_envs (also the target of "
        "--resume; default: n_timesteps of the YAML entry)",
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
        "--n-procs",
        type=positive_int,
        default=None,
        help="worker processes stepping the native envs, n_envs / n_procs each; the same "
        "run for every value (default: from the YAML, else 1: the learner steps them)",
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
        "--overwrite",
        action="store_true",
        help="clear a non-empty --out first (without it, or --resume, it is refused)",
    )
    _add_schedule_arguments(parser)
    from agents import seeds

    seeds.add_arguments(parser)  # --seeds, --tune, --backend, --ray-address
    parser.set_defaults(run=run)
    return parser


def _add_schedule_arguments(parser: argparse.ArgumentParser) -> None:
    """Evaluation, checkpoint, parallelism and output options of train.py."""
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
        choices=VEC_ENVS,
        default=None,
        help="vectorised envs (default: YAML, else native where the env has one, else dummy)",
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


def resume_command(command: str) -> str:
    """``command`` with ``--resume`` (and without ``--overwrite``)."""
    words = [word for word in shlex.split(command) if word != "--overwrite"]
    return shlex.join(words if "--resume" in words else [*words, "--resume"])


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Handler of train.py: train, print where the results are (or how to resume).

    Exit code 0 when the target (or --max-minutes) was reached, 128 + the signal's
    number after SIGINT/SIGTERM (the run and a checkpoint are saved).
    """
    import signal

    from agents import seeds

    if args.hyperparams is not None and not args.hyperparams.is_file():
        raise UsageError(f"--hyperparams: no such file: {args.hyperparams}")
    if args.timesteps is None:
        args.timesteps = default_timesteps(args.algo, args.env, args.hyperparams)
    if seeds.wanted(args):  # several seeds, a sweep, or Ray
        return seeds.run(args, parser)
    names = ("seed", "n_envs", "n_procs", "env_kwargs", "hyperparams", "resume", "overwrite")
    names += ("eval_freq", "eval_episodes", "checkpoint_freq", "vec_env", "verbose")
    names += ("threads", "max_minutes")
    options = {name: getattr(args, name) for name in names}
    settings = TrainSettings(
        args.env, args.algo, args.timesteps, args.out, progress=not args.no_progress, **options
    )
    result = train(settings)
    if result.stopped_by in STOP_SIGNALS:
        print(
            f"{result.stopped_by}: stopped at {result.num_timesteps} of {args.timesteps} steps; "
            f"saved {result.checkpoint}; resume with: {resume_command(settings.command)}"
        )
        return 128 + getattr(signal, result.stopped_by)
    print(
        f"saved {result.model_path} after {result.num_timesteps} timesteps "
        f"({result.wall_time_s:.1f} s)"
    )
    return 0


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``isac-train`` / ``train.py``."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Train a stable-baselines3 agent on a registered environment."
    )
    return add_arguments(parser)


def main(argv: list[str] | None = None) -> int:
    """``isac-train`` / ``train.py``; the exit code (:func:`isac_gym.cli.run_main`)."""
    from isac_gym.cli import run_main

    return run_main(build_parser(), argv)
