#!/usr/bin/env python
"""Train a stable-baselines3 agent on a registered environment.

    python train.py --env isac_gym/ISCC-v0 --algo ppo --timesteps 100000 --out runs/ppo \
        [--seed 0] [--n-envs 2] [--env-kwargs '{"oracle": "fast"}'] [--hyperparams FILE] \
        [--resume | --overwrite]

A thin wrapper of ``isac-train`` (:func:`agents.training.main`): writes model.zip,
vecnormalize.pkl, config.json, command.txt, checkpoints, the best model, logs and
training_curve.png under --out. Ctrl-C saves a checkpoint; ``--resume`` continues.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from agents.training import main as training_main

    return training_main(argv)


if __name__ == "__main__":
    sys.exit(main())
