"""``ISCCVectorEnv``: N ``ISCC-v0`` environments stepped with one oracle batch per round.

``gymnasium.make_vec("isac_gym/ISCC-v0", num_envs=N,
vectorization_mode="vector_entry_point", **config)`` builds it (it is also what
``make_vec`` picks without a ``vectorization_mode``). Each sub-environment is an
:class:`~isac_gym.envs.iscc.ISCCEnv` with its own seeded generators; the vector env
runs the same step hooks, but answers the oracle rounds of all N slots together
(:func:`isac_gym.envs.allocation.run_rounds` with ``optimizers.solve_batch``, one call
per round and group of equal method and size). So its trajectories equal those of
``SyncVectorEnv`` over N ``ISCC-v0`` with the same seeds, in observations, rewards,
terminations, truncations and infos (vector-style: ``info[key]`` stacked over the
envs with the mask ``info["_" + key]``, exactly as ``SyncVectorEnv`` builds them).

Autoreset follows Gymnasium 1.x (``autoreset_mode``, default ``next_step``: the step
after an episode's end resets that env, returning its first observation, reward 0 and
the reset info); ``same_step`` (reset at once, the final observation and info in
``info["final_obs"]`` / ``info["final_info"]``) and ``disabled`` are supported too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from isac_gym.envs.allocation import allocation_rounds, run_rounds, solve_batched
from isac_gym.envs.config import ISCCEnvConfig, make_config
from isac_gym.envs.iscc import ISCCEnv
from isac_gym.iscc.scenario import channels_from_draws

StepResult = tuple[np.ndarray, float, bool, bool, dict[str, Any]]


class ISCCVectorEnv(VectorEnv):
    """N copies of ``isac_gym/ISCC-v0`` sharing one batched oracle (see module docstring).

    Arguments: ``num_envs``, ``preset`` and ``config`` as for ``ISCC-v0`` (one config for
    all copies) and ``autoreset_mode`` (an ``AutoresetMode`` or its value).
    """

    #: the single env's class and config factory (a vector env of another env sets them)
    single_env_class: type = ISCCEnv
    config_factory = staticmethod(make_config)

    def __init__(
        self,
        num_envs: int,
        preset: str | ISCCEnvConfig = "default",
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        **config: Any,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        self.config = self.config_factory(preset, **config)
        self.envs = [self.single_env_class(self.config) for _ in range(num_envs)]
        self.num_envs = num_envs
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        self.metadata = {"autoreset_mode": self.autoreset_mode}
        self.render_mode = None
        self.single_action_space = self.envs[0].action_space
        self.single_observation_space = self.envs[0].observation_space
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._autoreset_envs = np.zeros(num_envs, dtype=bool)
        self._observations = np.zeros(self.observation_space.shape, np.float32)

    # --- Gymnasium API ----------------------------------------------------------------------

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        """Reset the envs; ``seed`` None, an int (env i gets ``seed + i``) or a list;
        ``options["reset_mask"]`` (a bool (N,) array) resets only those envs."""
        if seed is None or isinstance(seed, int):
            seed = [None if seed is None else seed + i for i in range(self.num_envs)]
        if len(seed) != self.num_envs:
            raise ValueError(f"seed must list {self.num_envs} seeds, got {len(seed)}")
        options = dict(options or {})
        mask = np.asarray(options.pop("reset_mask", np.ones(self.num_envs, dtype=bool)))
        if mask.shape != (self.num_envs,) or mask.dtype != bool or not mask.any():
            raise ValueError(f"options['reset_mask'] must be a ({self.num_envs},) bool array")
        self._autoreset_envs[mask] = False
        infos: dict[str, Any] = {}
        for index in np.flatnonzero(mask):
            obs, info = self.envs[index].reset(seed=seed[index], options=options or None)
            self._observations[index] = obs
            infos = self._add_info(infos, info, index)
        return self._observations.copy(), infos

    def step(self, actions):
        actions = self._checked_actions(actions)
        if self.autoreset_mode == AutoresetMode.DISABLED and self._autoreset_envs.any():
            raise RuntimeError("autoreset is disabled: reset the ended envs before step()")
        resetting = self._autoreset_envs
        if self.autoreset_mode != AutoresetMode.NEXT_STEP:
            resetting = np.zeros(self.num_envs, dtype=bool)
        results = self.step_envs(actions, ~resetting)
        stepped = dict(zip(np.flatnonzero(~resetting), results, strict=True))
        entries: list[tuple[int, dict[str, Any]]] = []  # (env, info) in _add_info's order
        rewards = np.zeros(self.num_envs)
        terminations = np.zeros(self.num_envs, dtype=bool)
        truncations = np.zeros(self.num_envs, dtype=bool)
        for index, env in enumerate(self.envs):
            if resetting[index]:
                obs, info = env.reset()
            else:
                obs, rewards[index], terminations[index], truncations[index], info = stepped[index]
                if self.autoreset_mode == AutoresetMode.SAME_STEP and (
                    terminations[index] or truncations[index]
                ):
                    entries.append((index, {"final_obs": obs, "final_info": info}))
                    obs, info = env.reset()
            self._observations[index] = obs
            entries.append((index, info))
        self._autoreset_envs = terminations | truncations
        infos = self._vector_infos(entries)
        return self._observations.copy(), rewards, terminations, truncations, infos

    # --- batched stepping (also used by agents.vec_env) -------------------------------------

    def step_envs(self, actions: np.ndarray, active: np.ndarray) -> list[StepResult]:
        """Step the envs where ``active`` with their rows of ``actions``; one oracle batch
        per round. Returns their ``(obs, reward, terminated, truncated, info)`` in order."""
        envs = [env for env, on in zip(self.envs, active, strict=True) if on]
        plans = [
            env._slot_problem(env._checked_action(action))
            for env, action in zip(envs, actions[active], strict=True)
        ]
        outcomes = run_rounds([allocation_rounds(problem) for problem, _ in plans], solve_batched)
        settled = [
            env._settle_step(problem, reserve, outcome, channels=False)
            for env, (problem, reserve), outcome in zip(envs, plans, outcomes, strict=True)
        ]
        place_channels([env for env, (_, ended, _) in zip(envs, settled, strict=True) if not ended])
        return [
            (env._observation(), reward, False, truncated, info)
            for env, (reward, truncated, info) in zip(envs, settled, strict=True)
        ]

    def get_attr(self, name: str) -> tuple:
        """The attribute ``name`` of every env (as ``SyncVectorEnv.get_attr``)."""
        return tuple(getattr(env, name) for env in self.envs)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple:
        """Call the method ``name`` of every env (as ``SyncVectorEnv.call``)."""
        return tuple(getattr(env, name)(*args, **kwargs) for env in self.envs)

    def _vector_infos(self, entries: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
        """The vector info of the envs' infos: what ``VectorEnv._add_info`` folded over
        ``entries`` builds, built key by key over the envs (a fraction of its cost)."""
        indices = [index for index, _ in entries]
        if len(set(indices)) == len(indices):  # else an env adds twice (same_step)
            stacked = stacked_infos(indices, [info for _, info in entries], self.num_envs)
            if stacked is not None:
                return stacked
        vector_infos: dict[str, Any] = {}
        for index, info in entries:
            vector_infos = self._add_info(vector_infos, info, index)
        return vector_infos

    def _checked_actions(self, actions) -> np.ndarray:
        actions = np.asarray(actions)
        shape = (self.num_envs, *self.single_action_space.shape)
        if actions.shape != shape:
            raise ValueError(f"actions must have shape {shape}, got {actions.shape}")
        return actions

    def __repr__(self) -> str:
        return f"ISCCVectorEnv(num_envs={self.num_envs}, oracle={self.config.oracle!r})"


def stacked_infos(indices: list[int], infos: list[dict], num_envs: int) -> dict | None:
    """``VectorEnv._add_info`` folded over the infos of the distinct envs ``indices``
    (in that order), built key by key: the same arrays (dtype of the first env's value:
    its Python or numpy scalar type, its array's dtype, else object), masks ``_key`` and
    key order. None for infos the fold treats specially (``final_obs``, keys starting
    with ``_``, a key holding a dict for some envs only): fold those."""
    columns: dict[str, tuple[list[int], list[Any]]] = {}
    for index, info in zip(indices, infos, strict=True):
        for key, value in info.items():
            where, values = columns.setdefault(key, ([], []))
            where.append(index)
            values.append(value)
    vector_infos: dict[str, Any] = {}
    for key, (where, values) in columns.items():
        nested = [isinstance(value, dict) for value in values]
        if key == "final_obs" or key.startswith("_") or any(nested) != all(nested):
            return None
        if nested[0]:
            array = stacked_infos(where, values, num_envs)
            if array is None:
                return None
        else:
            array = _info_array(values[0], num_envs)
            for index, value in zip(where, values, strict=True):
                array[index] = value
        mask = np.zeros(num_envs, dtype=np.bool_)
        mask[where] = True
        vector_infos[key], vector_infos["_" + key] = array, mask
    return vector_infos


def _info_array(first: Any, num_envs: int) -> np.ndarray:
    """The empty vector array ``_add_info`` makes for a key whose first value is ``first``."""
    if type(first) in (int, float, bool) or issubclass(type(first), np.number):
        return np.zeros(num_envs, dtype=type(first))
    if isinstance(first, np.ndarray):
        return np.zeros((num_envs, *first.shape), dtype=first.dtype)
    return np.full(num_envs, fill_value=None, dtype=object)


def place_channels(envs: list[ISCCEnv]) -> None:
    """The channels of the envs' next slots (drawn, :meth:`ISCCEnv._draw_slot` without
    ``channels``) computed in one ``channels_from_draws`` call over all of them: the
    same numbers as each env's own call (elementwise arithmetic), at a fraction of the
    Python overhead."""
    if not envs:
        return
    stacked = {name: np.array([env._fading[name] for env in envs]) for name in envs[0]._fading}
    positions = np.array([env._position for env in envs])
    headings = np.array([env._heading for env in envs])
    channels = channels_from_draws(envs[0].config.cell, positions, headings, stacked)
    for index, env in enumerate(envs):
        env._place_channels({name: value[index] for name, value in channels.items()})
