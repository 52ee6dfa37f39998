#!/usr/bin/env python
"""Evaluate isac-gym: reproduce the papers' figures, or compare policies on episodes.

    python evaluate.py paper --figure 2 [--trials T] [--jobs J] [--seed S] [--out DIR]
    python evaluate.py policies --env ID --policies a,b,... --episodes E [--out DIR] [--bound]

Thin over library functions: ``experiments.paper`` (figures) and
``agents.evaluation`` (policy comparison). Each registers its own arguments.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from agents import evaluation
    from experiments import paper

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    paper.add_arguments(
        commands.add_parser("paper", help="reproduce a figure of the ISCC paper (Sec. VI)")
    )
    evaluation.add_arguments(
        commands.add_parser("policies", help="compare policies on the same seeded episodes")
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.run(args, parser) or 0)


if __name__ == "__main__":
    sys.exit(main())
