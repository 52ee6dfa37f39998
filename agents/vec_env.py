"""An SB3 ``VecEnv`` over the native vector env of ``isac_gym/ISCC-v0``.

:class:`NativeVecEnv` steps N environments through
:meth:`isac_gym.envs.vector.ISCCVectorEnv.step_envs` (one batched oracle call per
round) and follows SB3's conventions, exactly as ``DummyVecEnv`` over N ``gym.make``
envs does: ``seed(s)`` gives env i the seed ``s + i`` at the next ``reset()``; an env
that ends is reset at once, its last observation in ``infos[i]["terminal_observation"]``
and ``infos[i]["TimeLimit.truncated"]`` set; rewards are float32; ``infos`` is a list of
per-env dicts (the env's own ``info``). So training on it is the same run as on
``DummyVecEnv``, only faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices


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
        import gymnasium

        vector_env = gymnasium.make_vec(
            env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **env_kwargs
        )
        return cls(vector_env.unwrapped)

    def reset(self) -> np.ndarray:
        observations = []
        for index, env in enumerate(self.envs):
            options = {"options": self._options[index]} if self._options[index] else {}
            obs, self.reset_infos[index] = env.reset(seed=self._seeds[index], **options)
            observations.append(obs)
        self._reset_seeds()
        self._reset_options()
        return np.stack(observations)

    def step_async(self, actions: np.ndarray) -> None:
        self.actions = np.asarray(actions)

    def step_wait(self):
        everyone = np.ones(self.num_envs, dtype=bool)
        results = self.vector_env.step_envs(self.actions, everyone)
        observations, infos = [], []
        rewards = np.zeros(self.num_envs, dtype=np.float32)
        dones = np.zeros(self.num_envs, dtype=bool)
        for index, (obs, reward, terminated, truncated, info) in enumerate(results):
            rewards[index], dones[index] = reward, terminated or truncated
            info["TimeLimit.truncated"] = truncated and not terminated
            if dones[index]:
                info["terminal_observation"] = obs
                obs, self.reset_infos[index] = self.envs[index].reset()
            observations.append(obs)
            infos.append(info)
        return np.array(observations), rewards, dones, infos

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
