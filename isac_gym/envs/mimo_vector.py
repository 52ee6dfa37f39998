"""``MIMOVectorEnv``: N ``MIMOISAC-v0`` environments behind Gymnasium's vector API.

``gymnasium.make_vec("isac_gym/MIMOISAC-v0", num_envs=N,
vectorization_mode="vector_entry_point", **config)`` builds it. The Dinkelbach oracle
(``optimizers.mimo.solve_mimo``) solves one frame at a time and has no batched form,
so this vector env **steps the envs' oracles in a loop**, one
:class:`~isac_gym.envs.mimo.MIMOISACEnv` after the other; it gains no oracle speed
over ``SyncVectorEnv``, only one process, no wrapper stack and the shared interface of
:class:`~isac_gym.envs.vector.ISCCVectorEnv`, whose reset, step and autoreset it reuses:
the same seeding (an int seed S gives env i the seed S + i), ``options["reset_mask"]``,
autoreset modes (``next_step`` by default, ``same_step``, ``disabled``) and vector-style
infos. Its trajectories equal those of ``SyncVectorEnv`` over N ``MIMOISAC-v0`` with the
same seeds (tests/envs/test_mimo_vector_env.py).
"""

from __future__ import annotations

import numpy as np

from isac_gym.envs.mimo import MIMOISACEnv
from isac_gym.envs.mimo_config import make_mimo_config
from isac_gym.envs.vector import ISCCVectorEnv, StepResult


class MIMOVectorEnv(ISCCVectorEnv):
    """N copies of ``isac_gym/MIMOISAC-v0`` whose oracles run in a loop (module docstring).

    Arguments: ``num_envs``, ``preset`` and ``config`` as for ``MIMOISAC-v0`` (one config
    for all copies) and ``autoreset_mode`` (an ``AutoresetMode`` or its value).
    """

    single_env_class = MIMOISACEnv
    config_factory = staticmethod(make_mimo_config)

    def step_envs(self, actions: np.ndarray, active: np.ndarray) -> list[StepResult]:
        """Step the envs where ``active`` with their rows of ``actions``, one oracle
        solve after the other. Returns their ``(obs, reward, terminated, truncated,
        info)`` in order."""
        envs = [env for env, on in zip(self.envs, active, strict=True) if on]
        return [env.step(action) for env, action in zip(envs, actions[active], strict=True)]

    def __repr__(self) -> str:
        return f"MIMOVectorEnv(num_envs={self.num_envs}, scheme={self.config.scheme!r})"
