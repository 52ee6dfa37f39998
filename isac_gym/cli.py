"""The command lines' shared parts: argparse value types (clear messages), the user-error
type and :func:`run_main`, the one way every ``main(argv=None) -> int`` runs its handler."""

from __future__ import annotations

import argparse
import json


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    return _int_at_least(text, 0, "an integer >= 0")


def json_object(text: str) -> dict:
    """A JSON object (e.g. ``--env-kwargs '{"oracle": "fast"}'``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r}")
    return value


def seed_list(text: str) -> tuple[int, ...]:
    """Seeds from ``"1000,1001"`` or ``"1000-1099"`` (inclusive), or both mixed."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            low, dash, high = part.strip().partition("-")
            first, last = int(low), int(high if dash else low)
            if last < first:
                raise ValueError
            seeds.extend(range(first, last + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated integers or ranges A-B, got {text!r}"
        ) from None
    return tuple(seeds)


def _int_at_least(text: str, low: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


class UsageError(ValueError):
    """A mistake in a command's input (a path, an environment id, a spec): the command
    line prints it as one line and exits with code 2, without a traceback."""


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types a command line reports as one line: :class:`UsageError` (and its
    subclasses, e.g. :class:`isac_gym.runs.OutputError`) and Gymnasium's registry errors
    (unknown namespace, env id or version)."""
    import sys

    types: list[type[BaseException]] = [UsageError]
    gymnasium_error = sys.modules.get("gymnasium.error")
    if gymnasium_error is not None:
        types.append(gymnasium_error.Error)
    return tuple(types)


def run_main(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse ``argv`` and call the chosen handler ``args.run(args, parser)``.

    The one command-line style of the project (every ``main(argv=None) -> int``):
    argparse errors exit with code 2 (argparse's message); user errors
    (:func:`user_errors`) print ``prog: error: message`` and return 2; anything else
    keeps its traceback.
    """
    import sys

    args = parser.parse_args(argv)
    try:
        return int(args.run(args, parser) or 0)
    except user_errors() as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return 2
