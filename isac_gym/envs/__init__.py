"""Gymnasium environments, registered by entry-point strings (``import isac_gym`` is light).

``register_envs()`` is idempotent and runs on ``import isac_gym``; ids resolve in
spawned subprocesses too (``gymnasium.make_vec(..., vectorization_mode="async")``).
``gymnasium.make_vec(id, num_envs=N)`` builds the native vector env
(``vectorization_mode="vector_entry_point"``: ISCC-v0 makes one batched oracle call per
round, MIMOISAC-v0 steps its per-frame oracles in a loop);
``vectorization_mode="sync"`` or ``"async"`` builds N separate envs.
"""

from __future__ import annotations

import gymnasium as gym

ENV_IDS = {
    "isac_gym/ISCC-v0": "isac_gym.envs.iscc:ISCCEnv",
    "isac_gym/MIMOISAC-v0": "isac_gym.envs.mimo:MIMOISACEnv",
}
VECTOR_ENTRY_POINTS = {
    "isac_gym/ISCC-v0": "isac_gym.envs.vector:ISCCVectorEnv",
    "isac_gym/MIMOISAC-v0": "isac_gym.envs.mimo_vector:MIMOVectorEnv",
}


def register_envs() -> None:
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point=entry_point,
                vector_entry_point=VECTOR_ENTRY_POINTS.get(env_id),
            )
