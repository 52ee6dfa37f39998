"""SB3's step conventions on a native vector env, and the worker process of
:class:`agents.vec_env.SubprocNativeVecEnv`.

:class:`agents.vec_env.NativeVecEnv` and the workers run the same :func:`reset_envs` and
:func:`step_envs`, so splitting the envs over processes cannot change a trajectory.
This module imports neither torch nor stable-baselines3: a worker then starts in a
fraction of a second and without torch's memory.
"""

from __future__ import annotations

import os
import pickle
import signal
import traceback
from typing import Any

import numpy as np


def make_vector_env(env_id: str, num_envs: int, env_kwargs: dict) -> Any:
    """The unwrapped native vector env of ``env_id`` (``isac_gym/...`` ids import
    ``isac_gym`` first, so that a fresh worker process finds them registered)."""
    import gymnasium

    if env_id.startswith("isac_gym/") and ":" not in env_id:
        env_id = f"isac_gym:{env_id}"
    vector_env = gymnasium.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **env_kwargs
    )
    return vector_env.unwrapped


def reset_envs(envs: list, seeds: list, options: list) -> tuple[np.ndarray, list[dict]]:
    """Reset env i with ``seeds[i]`` and ``options[i]`` (SB3's ``reset``)."""
    observations, infos = [], []
    for env, seed, option in zip(envs, seeds, options, strict=True):
        obs, info = env.reset(seed=seed, **({"options": option} if option else {}))
        observations.append(obs)
        infos.append(info)
    return np.stack(observations), infos


def step_envs(vector_env: Any, actions: np.ndarray, reset_infos: list[dict]) -> tuple:
    """One step of every env, one batched oracle call per round, with SB3's autoreset:
    an ended env is reset at once, its last observation in ``terminal_observation``,
    its new reset info in ``reset_infos``. Returns ``(obs, rewards, dones, infos)``."""
    num_envs = vector_env.num_envs
    results = vector_env.step_envs(actions, np.ones(num_envs, dtype=bool))
    observations, infos = [], []
    rewards = np.zeros(num_envs, dtype=np.float32)
    dones = np.zeros(num_envs, dtype=bool)
    for index, (obs, reward, terminated, truncated, info) in enumerate(results):
        rewards[index], dones[index] = reward, terminated or truncated
        info["TimeLimit.truncated"] = truncated and not terminated
        if dones[index]:
            info["terminal_observation"] = obs
            obs, reset_infos[index] = vector_env.envs[index].reset()
        observations.append(obs)
        infos.append(info)
    return np.array(observations), rewards, dones, infos


class RemoteTraceback(Exception):
    """The worker's traceback, chained as the ``__cause__`` of a re-raised error."""

    def __str__(self) -> str:
        return self.args[0]


def error_reply(error: BaseException) -> tuple:
    """``("error", (pickled error or None, "Type: message", traceback text))``."""
    try:
        payload = pickle.dumps(error)
        pickle.loads(payload)  # some exception classes pickle but do not unpickle
    except Exception:
        payload = None
    text = "".join(traceback.format_exception(error))
    return "error", (payload, f"{type(error).__name__}: {error}", text)


def rebuild_error(details: tuple, where: str) -> BaseException:
    """The worker's exception (its type and message where it unpickles, else a
    ``RuntimeError`` with them), noting ``where`` and chaining the remote traceback."""
    payload, summary, text = details
    error = pickle.loads(payload) if payload is not None else RuntimeError(summary)
    error.add_note(where)
    error.__cause__ = RemoteTraceback(text)
    return error


class _Worker:
    """The commands a worker answers, on its share of the envs (local indices)."""

    def __init__(self, env_id: str, num_envs: int, env_kwargs: dict) -> None:
        self.vector_env = make_vector_env(env_id, num_envs, env_kwargs)
        self.envs = self.vector_env.envs
        self.reset_infos: list[dict] = [{} for _ in range(num_envs)]

    def spaces(self) -> tuple:
        return self.vector_env.single_observation_space, self.vector_env.single_action_space

    def reset(self, seeds: list, options: list) -> tuple[np.ndarray, list[dict]]:
        observations, self.reset_infos = reset_envs(self.envs, seeds, options)
        return observations, self.reset_infos

    def step(self, actions: np.ndarray) -> tuple:
        """The step, and the reset infos of the envs that were reset (by index)."""
        observations, rewards, dones, infos = step_envs(self.vector_env, actions, self.reset_infos)
        reset_infos = {int(i): self.reset_infos[i] for i in np.flatnonzero(dones)}
        return observations, rewards, dones, infos, reset_infos

    def get_attr(self, name: str, indices: list[int]) -> list:
        return [getattr(self.envs[i], name) for i in indices]

    def set_attr(self, name: str, value: Any, indices: list[int]) -> list[None]:
        for index in indices:
            setattr(self.envs[index], name, value)
        return [None] * len(indices)

    def env_method(self, name: str, args: tuple, kwargs: dict, indices: list[int]) -> list:
        return [getattr(self.envs[i], name)(*args, **kwargs) for i in indices]


COMMANDS = ("reset", "step", "get_attr", "set_attr", "env_method")


def worker(remote: Any, env_id: str, num_envs: int, env_kwargs: dict) -> None:
    """A worker process: build ``num_envs`` envs (reply: their spaces), then answer
    ``(command, args)`` messages with ``("ok", result)`` or :func:`error_reply` until
    ``close`` or until the main process is gone (its end of the pipe closed: no
    orphan outlives it).

    One BLAS thread (the slot solvers' 64 x 64 matrices run slower on more); its own
    process group, so that a Ctrl-C or a group-wide SIGTERM reaches only the main
    process, which stops training at the end of a step, with the workers' help.
    """
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    try:
        state = _Worker(env_id, num_envs, env_kwargs)
    except Exception as error:
        _send(remote, error_reply(error))
        remote.close()
        return
    reply: tuple = ("ok", state.spaces())  # ready
    while _send(remote, reply):
        try:
            command, args = remote.recv()
        except (EOFError, OSError):  # the main process closed its end, or is gone
            break
        if command == "close":
            break
        try:
            if command not in COMMANDS:
                raise ValueError(f"unknown worker command {command!r}; valid: {COMMANDS}")
            reply = ("ok", getattr(state, command)(*args))
        except Exception as error:
            reply = error_reply(error)
    state.vector_env.close()
    remote.close()


def _send(remote: Any, reply: tuple) -> bool:
    """Send ``reply`` (an error reply where it does not pickle); False: the main
    process is gone."""
    try:
        try:
            remote.send(reply)
        except (pickle.PicklingError, TypeError, AttributeError) as error:  # nothing sent
            remote.send(error_reply(error))
    except OSError:  # BrokenPipeError, ConnectionResetError
        return False
    return True
