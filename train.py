#!/usr/bin/env python
"""Train a stable-baselines3 agent on a registered environment.

    python train.py --env isac_gym/ISCC-v0 --algo ppo --timesteps 100000 --out runs/ppo \
        [--seed 0] [--n-envs 2] [--env-kwargs '{"oracle": "fast"}'] [--hyperparams FILE] \
        [--resume]

Thin over ``agents.training.train``: writes model.zip, vecnormalize.pkl, config.json,
command.txt, checkpoints, the best model, logs and training_curve.png under --out.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from agents import training

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    training.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from isac_gym.cli import run_main

    return run_main(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
