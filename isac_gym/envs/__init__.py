"""Gymnasium environments, registered by entry-point strings (``import isac_gym`` is light).

``register_envs()`` is idempotent and runs on ``import isac_gym``; ids resolve in
spawned subprocesses too (``gymnasium.make_vec(..., vectorization_mode="async")``).
"""

from __future__ import annotations

import gymnasium as gym

ENV_IDS = {
    "isac_gym/ISCC-v0": "isac_gym.envs.iscc:ISCCEnv",
    "isac_gym/MIMOISAC-v0": "isac_gym.envs.mimo:MIMOISACEnv",
}


def register_envs() -> None:
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point)
