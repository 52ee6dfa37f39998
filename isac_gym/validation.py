"""Field checks for frozen configuration dataclasses: errors name the field and its range.

Each check reads ``cfg.<name>``, raises ``ValueError("<Owner>.<name> must be ..., got
...")`` when it is out of range, and stores the normalised value (``float``/``int``) back
on the frozen instance.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any


def fail(cfg: Any, name: str, allowed: str, value: Any) -> None:
    """Raise the error of field ``name`` of ``cfg`` (an instance or its class)."""
    owner = cfg if isinstance(cfg, type) else type(cfg)
    raise ValueError(f"{owner.__name__}.{name} must be {allowed}, got {value!r}")


def integer(cfg: Any, name: str, low: int = 1) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not hasattr(value, "__index__") or value < low:
        fail(cfg, name, f"an integer >= {low}", value)
    object.__setattr__(cfg, name, int(value))


def number(
    cfg: Any,
    name: str,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """A finite real number in the interval [low, high] (ends open on request)."""
    value = getattr(cfg, name)
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    ok = (
        not isinstance(value, bool)
        and math.isfinite(x)
        and (x > low if low_open else x >= low)
        and (x < high if high_open else x <= high)
    )
    if not ok:
        left = "(" if low_open or low == -math.inf else "["
        right = ")" if high_open or high == math.inf else "]"
        interval = f"{left}{low:g}, {high:g}{right}"
        fail(cfg, name, f"a finite number in {interval}", value)
    object.__setattr__(cfg, name, x)


def interval(cfg: Any, name: str, low: float, high: float, *, low_open: bool = False) -> None:
    """A pair ``(lo, hi)`` of finite numbers with ``low <= lo <= hi <= high`` (``low < lo``
    when ``low_open``); stored back as a tuple of floats."""
    value = getattr(cfg, name)
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        lo = hi = math.nan
    above = lo > low if low_open else lo >= low
    if not (math.isfinite(lo) and math.isfinite(hi) and above and lo <= hi <= high):
        first = "<" if low_open else "<="
        allowed = f"a finite (lo, hi) pair with {low:g} {first} lo <= hi <= {high:g}"
        fail(cfg, name, allowed, value)
    object.__setattr__(cfg, name, (lo, hi))


def choice(cfg: Any, name: str, options: tuple[str, ...]) -> None:
    if getattr(cfg, name) not in options:
        fail(cfg, name, f"one of {options}", getattr(cfg, name))


def with_overrides(cls: type, base: dict[str, Any], overrides: dict[str, Any]) -> Any:
    """``cls(**base)`` with keyword overrides; an override that is not a field is an error."""
    unknown = set(overrides) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    return cls(**{**base, **overrides})
