#!/usr/bin/env python
"""Evaluate isac-gym: reproduce the papers' figures, or compare policies on episodes.

    python evaluate.py paper --figure 2 [--trials T] [--jobs J] [--seed S] [--out DIR]
    python evaluate.py paper-mimo --figure 2..7|all [--trials T] [--jobs J] [--seed S]
    python evaluate.py policies --env ID --policies a,b,... --episodes E [--out DIR] [--bound]

A thin wrapper of ``isac-evaluate`` (:func:`experiments.cli.evaluate_main`): figures in
``experiments.paper``, policy comparison in ``agents.evaluation``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from experiments.cli import evaluate_main

    return evaluate_main(argv)


if __name__ == "__main__":
    sys.exit(main())
