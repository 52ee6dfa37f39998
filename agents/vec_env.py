"""An SB3 ``VecEnv`` over the native vector env of ``isac_gym/ISCC-v0``.

:class:`NativeVecEnv` steps N environments through
:meth:`isac_gym.envs.vector.ISCCVectorEnv.step_envs` (one batched oracle call per
round) and follows SB3's conventions, exactly as ``DummyVecEnv`` over N ``gym.make``
envs does: ``seed(s)`` gives env i the seed ``s + i`` at the next ``reset()``; an env
that ends is reset at once, its last observation in ``infos[i]["terminal_observation"]``
and ``infos[i]["TimeLimit.truncated"]`` set; rewards are float32; ``infos`` is a list of
per-env dicts (the env's own ``info``). So training on it is the same run as on
``DummyVecEnv``, only faster.

:class:`SubprocNativeVecEnv` splits the same N envs over P worker processes (N / P
each, one batched oracle call per worker and round), for the cores one process leaves
idle; its trajectories are :class:`NativeVecEnv`'s, bit for bit.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from agents.vec_worker import make_vector_env, rebuild_error, reset_envs, step_envs, worker


class NativeVecEnv(VecEnv):
    """SB3 adapter of an :class:`~isac_gym.envs.vector.ISCCVectorEnv`."""

    def __init__(self, vector_env: Any) -> None:
        self.vector_env = vector_env
        self.envs = vector_env.envs
        super().__init__(
            vector_env.num_envs,
            vector_env.single_observation_space,
            vector_env.single_action_space,
        )
        self.actions: np.ndarray | None = None

    @classmethod
    def make(cls, env_id: str, num_envs: int, **env_kwargs: Any) -> NativeVecEnv:
        """``NativeVecEnv(gymnasium.make_vec(env_id, num_envs, "vector_entry_point", ...))``."""
        return cls(make_vector_env(env_id, num_envs, env_kwargs))

    def reset(self) -> np.ndarray:
        observations, self.reset_infos = reset_envs(self.envs, self._seeds, self._options)
        self._reset_seeds()
        self._reset_options()
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        self.actions = np.asarray(actions)

    def step_wait(self):
        return step_envs(self.vector_env, self.actions, self.reset_infos)

    def close(self) -> None:
        self.vector_env.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.envs[i], attr_name) for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for index in self._get_indices(indices):
            setattr(self.envs[index], attr_name, value)

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        return [
            getattr(self.envs[i], method_name)(*method_args, **method_kwargs)
            for i in self._get_indices(indices)
        ]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]  # the envs are not wrapped


START_METHODS = ("spawn", "forkserver")  #: both safe with torch in the main process


class SubprocNativeVecEnv(VecEnv):
    """The envs of a :class:`NativeVecEnv` split over ``n_procs`` worker processes.

    Worker w owns one native vector env of envs ``w * m ... (w + 1) * m - 1``
    (``m = num_envs / n_procs``) and steps them with one batched oracle call per
    round, with one BLAS thread; the main process only sends actions and gathers the
    results. Env i is seeded ``s + i`` by ``seed(s)`` however the envs are split, so
    the trajectories (observations, rewards, dones, infos) equal :class:`NativeVecEnv`'s
    with the same ``num_envs`` and seed. ``get_attr``, ``set_attr`` and ``env_method``
    go to the worker that owns the env. A worker's exception is re-raised here with
    its type and message (its traceback chained); one in ``reset`` or ``step`` closes
    all workers first, as the envs are then out of step. ``close()`` ends them all.
    """

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        n_procs: int = 2,
        start_method: str = "spawn",
        **env_kwargs: Any,
    ) -> None:
        _check_split(num_envs, n_procs)
        if start_method not in START_METHODS:
            raise ValueError(f"start_method must be one of {START_METHODS}, got {start_method!r}")
        self.n_procs, self.envs_per_proc = n_procs, num_envs // n_procs
        self.closed, self.waiting = False, False
        self.remotes: list[Any] = []
        self.processes: list[Any] = []
        try:
            spaces = self._start(mp.get_context(start_method), env_id, env_kwargs)
        except BaseException:
            self.close()
            raise
        super().__init__(num_envs, *spaces[0])

    def _start(self, context: Any, env_id: str, env_kwargs: dict) -> list:
        """Start the workers (BLAS variables 1 while they start); their spaces."""
        with _one_thread_environment():
            for index in range(self.n_procs):
                remote, work_remote = context.Pipe()
                args = (work_remote, env_id, self.envs_per_proc, env_kwargs)
                process = context.Process(
                    target=worker, args=args, daemon=True, name=f"native-vec-worker-{index}"
                )
                process.start()
                work_remote.close()  # the worker's end: EOF here when the worker is gone
                self.remotes.append(remote)
                self.processes.append(process)
        return self._receive(range(self.n_procs), fatal=True)

    def reset(self) -> np.ndarray:
        self._check_open()
        per = self.envs_per_proc
        for index in range(self.n_procs):
            share = slice(index * per, (index + 1) * per)
            self._send(index, ("reset", (self._seeds[share], self._options[share])))
        replies = self._receive(range(self.n_procs), fatal=True)
        self.reset_infos = [info for _, infos in replies for info in infos]
        self._reset_seeds()
        self._reset_options()
        return np.concatenate([observations for observations, _ in replies])

    def step_async(self, actions: np.ndarray) -> None:
        self._check_open()
        actions = np.asarray(actions)
        per = self.envs_per_proc
        for index in range(self.n_procs):
            self._send(index, ("step", (actions[index * per : (index + 1) * per],)))
        self.waiting = True

    def step_wait(self):
        replies = self._receive(range(self.n_procs), fatal=True)
        self.waiting = False
        infos = []
        for index, (_, _, _, worker_infos, reset_infos) in enumerate(replies):
            infos.extend(worker_infos)
            for local, info in reset_infos.items():
                self.reset_infos[index * self.envs_per_proc + local] = info
        observations, rewards, dones = (
            np.concatenate([reply[part] for reply in replies]) for part in range(3)
        )
        return observations, rewards, dones, infos

    def _receive(self, workers: Any, fatal: bool = False) -> list:
        """The replies of ``workers`` (all of them, so that the pipes stay in step);
        the first worker error re-raised (after closing every worker if ``fatal``)."""
        replies, failure = [], None
        for index in workers:
            try:
                status, payload = self.remotes[index].recv()
            except (EOFError, OSError):
                self._lost(index)
            replies.append(payload)
            if status != "ok" and failure is None:
                failure = (index, payload)
        if failure is None:
            return replies
        if fatal:
            self.waiting = False
            self.close()
        index, payload = failure
        first = index * self.envs_per_proc
        where = f"raised in worker {index} (envs {first}-{first + self.envs_per_proc - 1})"
        raise rebuild_error(payload, where)

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("SubprocNativeVecEnv is closed (by close() or a worker error)")

    def _send(self, index: int, message: tuple) -> None:
        try:
            self.remotes[index].send(message)
        except OSError:  # BrokenPipeError: the worker is gone
            self._lost(index)

    def _lost(self, index: int) -> NoReturn:
        """Close every worker and say which one ended (killed, crashed)."""
        process = self.processes[index]
        process.join(timeout=5)
        self.waiting = False
        self.close()
        code = process.exitcode
        raise RuntimeError(f"SubprocNativeVecEnv: worker {index} ended (exit code {code})")

    def _route(self, indices: VecEnvIndices) -> tuple[dict[int, list[int]], list[tuple]]:
        """``{worker: its local env indices}`` and each requested env's place there."""
        groups: dict[int, list[int]] = {}
        places = []
        for index in self._get_indices(indices):
            if not -self.num_envs <= index < self.num_envs:
                raise IndexError(f"env index {index} out of range for {self.num_envs} envs")
            owner, local = divmod(index % self.num_envs, self.envs_per_proc)
            places.append((owner, len(groups.setdefault(owner, []))))
            groups[owner].append(local)
        return groups, places

    def _call(self, command: str, indices: VecEnvIndices, *args: Any) -> list:
        """``command`` on the envs at ``indices``, their results in that order."""
        self._check_open()
        groups, places = self._route(indices)
        for owner, local in groups.items():
            self._send(owner, (command, (*args, local)))
        replies = dict(zip(groups, self._receive(groups), strict=True))
        return [replies[owner][position] for owner, position in places]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return self._call("get_attr", indices, attr_name)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._call("set_attr", indices, attr_name, value)

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        return self._call("env_method", indices, method_name, method_args, method_kwargs)

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        """All False, as in :class:`NativeVecEnv` (the workers' envs are not wrapped);
        answered here, so that pickling ``wrapper_class`` cannot import torch there."""
        return [False for _ in self._route(indices)[1]]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs

    def close(self) -> None:
        """End every worker: ``close`` to each and our ends of the pipes closed (EOF
        ends a worker too), then join them (kill one that hangs)."""
        if self.closed:
            return
        self.closed = True
        for remote in self.remotes:
            with contextlib.suppress(EOFError, OSError):
                if self.waiting:
                    remote.recv()  # the pending step's reply
                remote.send(("close", None))
            remote.close()
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        self.waiting = False


def _check_split(num_envs: Any, n_procs: Any) -> None:
    for name, value in (("num_envs", num_envs), ("n_procs", n_procs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if num_envs % n_procs:
        raise ValueError(
            f"num_envs ({num_envs}) must be divisible by n_procs ({n_procs}): every "
            "worker steps the same number of envs"
        )


@contextlib.contextmanager
def _one_thread_environment():
    """``OMP/OPENBLAS/MKL_NUM_THREADS=1`` while workers start (they inherit them)."""
    from isac_gym.runs import THREAD_VARIABLES

    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
