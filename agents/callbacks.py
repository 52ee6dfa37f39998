"""The training callbacks of :func:`agents.training.train` (stable-baselines3).

* :class:`InfoLoggerCallback` -- the env's ``info`` metrics (:mod:`agents.metrics`) of
  the training envs under ``env/`` in the SB3 logger, per rollout.
* :class:`ScheduledEvalCallback` -- evaluation every ``eval_freq`` *total* steps (so a
  resumed run keeps the schedule of the first), on the same seeded episodes each time,
  keeping the earlier results and the best score across resumes.
* :class:`CheckpointEveryCallback` -- :func:`save_checkpoint` every ``save_freq`` total
  steps.
* :class:`StopCallback` -- stops training at the end of the current step when a
  signal arrived (:class:`StopRequest`) or a wall-time limit passed.
* :class:`TqdmCallback` -- a tqdm progress bar; :class:`SaveVecNormalizeCallback`
  keeps the normalisation statistics next to the best model.
* :class:`PhaseTimeCallback` -- wall time in rollouts and in updates under ``time/``.

A checkpoint is ``checkpoints/rl_model_<N>_steps.zip`` (model with its optimizer
state and timestep count) + ``rl_model_vecnormalize_<N>_steps.pkl`` +
``rl_model_replay_buffer_<N>_steps.pkl`` (SAC/TD3) + ``rl_model_state_<N>_steps.json``
(the callbacks' counters and best score).

Importing this module imports stable-baselines3; :mod:`agents.training` imports it
only when training starts.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback

from agents.metrics import add_counts, ratio, step_counts

CHECKPOINT_PREFIX = "rl_model"


def checkpoint_paths(folder: str | Path, steps: int) -> dict[str, Path]:
    """The files of the checkpoint at ``steps`` in ``folder`` (SB3's names)."""
    folder = Path(folder)
    stem = CHECKPOINT_PREFIX
    return {
        "model": folder / f"{stem}_{steps}_steps.zip",
        "vecnormalize": folder / f"{stem}_vecnormalize_{steps}_steps.pkl",
        "replay_buffer": folder / f"{stem}_replay_buffer_{steps}_steps.pkl",
        "state": folder / f"{stem}_state_{steps}_steps.json",
    }


def save_checkpoint(model: Any, folder: str | Path, state: dict | None = None) -> Path:
    """Save a resumable checkpoint of ``model`` at its ``num_timesteps``; its path.

    The model file is written last, so that :func:`agents.training.latest_checkpoint`
    (which looks for it) never finds a checkpoint without its statistics.
    """
    paths = checkpoint_paths(folder, int(model.num_timesteps))
    paths["model"].parent.mkdir(parents=True, exist_ok=True)
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        vec_normalize.save(str(paths["vecnormalize"]))
    if hasattr(model, "replay_buffer") and model.replay_buffer is not None:
        model.save_replay_buffer(str(paths["replay_buffer"]))
    paths["state"].write_text(json.dumps(state or {}, indent=2) + "\n")
    model.save(str(paths["model"]))
    return paths["model"]


def read_checkpoint_state(model_path: str | Path, steps: int) -> dict:
    """The callbacks' state saved with the checkpoint (``{}`` for older checkpoints)."""
    path = checkpoint_paths(Path(model_path).parent, steps)["state"]
    return json.loads(path.read_text()) if path.is_file() else {}


def crossed(before: int, after: int, every: int) -> bool:
    """Whether a multiple of ``every`` lies in ``(before, after]`` (total-step schedules)."""
    return every > 0 and after // every > before // every


class InfoLoggerCallback(BaseCallback):
    """Log means per step of ``info["rewards"][*]``, the weighted and energy cost, and
    the success and outage rates of the training envs under ``env/`` (per rollout)."""

    def _on_training_start(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.totals: dict[str, float] = {}
        self.steps = 0

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            if isinstance(info.get("rewards"), dict):
                self.steps += 1
                add_counts(self.totals, step_counts(info))
        return True

    def _on_rollout_end(self) -> None:
        if self.steps:
            for key, total in self.totals.items():
                if key.startswith("reward_") or key in ("weighted_cost", "energy_cost"):
                    self.logger.record_mean(f"env/{key}", total / self.steps)
            totals = self.totals
            if totals.get("tasks"):
                self.logger.record_mean("env/success_rate", totals["successes"] / totals["tasks"])
            if totals.get("ue_slots"):
                self.logger.record_mean(
                    "env/outage_rate", ratio(totals["outages"], totals["ue_slots"])
                )
        self._reset()


class PhaseTimeCallback(BaseCallback):
    """Log ``time/rollouts_s`` and ``time/updates_s``: the wall seconds this run has
    spent collecting rollouts (env steps, policy forward passes, callbacks) and between
    them (the updates, up to the previous one), to see where a training step goes."""

    def _on_training_start(self) -> None:
        self.rollouts_s = self.updates_s = 0.0
        self._mark: float | None = None

    def _on_rollout_start(self) -> None:
        now = time.perf_counter()
        if self._mark is not None:
            self.updates_s += now - self._mark
        self._mark = now

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        now = time.perf_counter()
        self.rollouts_s += now - self._mark
        self._mark = now
        self.logger.record("time/rollouts_s", round(self.rollouts_s, 3))
        self.logger.record("time/updates_s", round(self.updates_s, 3))


class TqdmCallback(BaseCallback):
    """A tqdm progress bar over timesteps from ``initial`` to ``total`` (SB3's own
    needs ``rich``); ``total`` is where training will really end (whole rollouts)."""

    def __init__(self, total: int, initial: int = 0) -> None:
        super().__init__()
        self.total, self.initial = int(total), int(initial)

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
        self.folder = Path(folder)

    def _on_step(self) -> bool:
        vec_normalize = self.model.get_vec_normalize_env()
        if vec_normalize is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            vec_normalize.save(str(self.folder / "vecnormalize.pkl"))
        return True


class ScheduledEvalCallback(EvalCallback):
    """EvalCallback on a total-step schedule: evaluates when ``num_timesteps`` passes a
    multiple of ``every`` (also after a resume), re-seeding the evaluation env first
    (the same episodes each time); ``previous`` (the results up to the checkpoint) and
    ``state`` (:meth:`state` of the interrupted run) continue the earlier run."""

    def __init__(self, *args, every: int, eval_seed: int, previous=None, state=None, **kw):
        super().__init__(*args, eval_freq=1, **kw)
        self.every, self.eval_seed = int(every), eval_seed
        self.previous, self.resume_state = previous or {}, state or {}
        self._last_steps = 0

    def _init_callback(self) -> None:
        super()._init_callback()
        self._last_steps = int(self.model.num_timesteps)
        if self.previous:
            self.evaluations_timesteps = list(self.previous["timesteps"])
            self.evaluations_results = [list(r) for r in self.previous["results"]]
            self.evaluations_length = [list(r) for r in self.previous["ep_lengths"]]
            means = [float(np.mean(r)) for r in self.previous["results"]]
            self.best_mean_reward = max(means) if means else -np.inf
        if "best_mean_reward" in self.resume_state:
            self.best_mean_reward = float(self.resume_state["best_mean_reward"])
            self.last_mean_reward = float(self.resume_state.get("last_mean_reward", -np.inf))

    def _on_step(self) -> bool:
        before, self._last_steps = self._last_steps, int(self.num_timesteps)
        if not crossed(before, self._last_steps, self.every):
            return True
        self.eval_env.seed(self.eval_seed)
        return super()._on_step()  # evaluates: eval_freq = 1 divides every n_calls

    def state(self) -> dict[str, float]:
        """The counters a resumed run needs (saved with every checkpoint)."""
        return {
            "best_mean_reward": float(self.best_mean_reward),
            "last_mean_reward": float(self.last_mean_reward),
            "evaluations": len(self.evaluations_timesteps),
        }


class CheckpointEveryCallback(BaseCallback):
    """:func:`save_checkpoint` when ``num_timesteps`` passes a multiple of ``every``;
    ``state()`` gives the callbacks' counters saved with it."""

    def __init__(self, every: int, folder: Path, state) -> None:
        super().__init__()
        self.every, self.folder, self.state = int(every), Path(folder), state
        self._last_steps = 0

    def _on_training_start(self) -> None:
        self._last_steps = int(self.model.num_timesteps)

    def _on_step(self) -> bool:
        before, self._last_steps = self._last_steps, int(self.num_timesteps)
        if crossed(before, self._last_steps, self.every):
            save_checkpoint(self.model, self.folder, self.state())
        return True


class StopRequest:
    """Catches SIGINT and SIGTERM while active (a context manager): the first one asks
    training to stop at the end of the step (``signal_name`` is set); a second
    SIGINT aborts at once (KeyboardInterrupt). Does nothing outside the main thread."""

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                number = getattr(signal, name)
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc) -> bool:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        return False

    def _handle(self, number: int, frame) -> None:
        if self.signal_name is not None and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(number).name
        import sys

        print(
            f"\n{self.signal_name}: saving a checkpoint after this step "
            "(Ctrl-C again aborts without saving)",
            file=sys.stderr,
        )


def _completes_rollout(frame: dict) -> bool:
    """Whether the step SB3 just took is the last of its rollout (PPO's ``n_steps`` per
    env; SAC/TD3's ``train_freq`` in steps), from ``collect_rollouts``' locals."""
    if "n_rollout_steps" in frame:  # on-policy: n_steps counts the steps before this one
        return frame["n_steps"] + 1 >= frame["n_rollout_steps"]
    train_freq = frame.get("train_freq")
    if train_freq is not None and train_freq.unit.value == "step":
        return frame["num_collected_steps"] >= train_freq.frequency
    return False


class StopCallback(BaseCallback):
    """Stop training when ``request`` caught a signal, after ``seconds`` of wall time
    (``reason`` says which), or on reaching ``at_steps`` timesteps (``reason`` None).

    At ``at_steps`` a rollout that this step completes is still learned from; one that
    it leaves unfinished is dropped, where SB3 would collect it to the end. So a run
    stopped inside a rollout holds what a longer run of the same seed saves as its
    checkpoint at that step."""

    def __init__(
        self, request: StopRequest, seconds: float | None = None, at_steps: int | None = None
    ) -> None:
        super().__init__()
        self.request, self.seconds, self.at_steps = request, seconds, at_steps
        self.reason: str | None = None

    def _on_training_start(self) -> None:
        self.start = time.perf_counter()

    def _on_step(self) -> bool:
        if self.request.signal_name is not None:
            self.reason = self.request.signal_name
        elif self.seconds is not None and time.perf_counter() - self.start >= self.seconds:
            self.reason = "time limit"
        reached = self.at_steps is not None and self.num_timesteps >= self.at_steps
        return self.reason is None and not (reached and not _completes_rollout(self.locals))
