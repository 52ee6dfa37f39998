"""The next slot's channels of several ``ISCC-v0`` envs, drawn in one stacked call.

:func:`draw_channels` samples the snapshots of N envs with one call of
:func:`isac_gym.iscc.scenario.sample_snapshot` over their N K UEs stacked, then splits
it per env (``Snapshot.select``). The random numbers still come from each env's own
``fading`` generator, in the same calls and shapes as a single env's draw
(:class:`StackedDraws`), and every channel formula acts per UE, so each env gets exactly
the snapshot it would draw alone; only the numpy calls are shared (N times fewer).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from isac_gym.iscc.config import PER_UE_FIELDS, ISCCConfig
from isac_gym.iscc.scenario import sample_snapshot

#: the Generator methods StackedDraws stacks; any other raises (add it here when needed)
_STACKED_METHODS = frozenset({"uniform", "standard_normal", "normal", "random"})


class StackedDraws(np.random.Generator):
    """A ``Generator`` for N stacked slots: a draw of ``size = (N K, ...)`` is the
    concatenation of each generator's draw of ``size = (K, ...)``, in order.

    Array parameters with a leading axis of N K (e.g. per-UE ``low``) are split the same
    way. Methods other than ``uniform``, ``standard_normal``, ``normal`` and ``random``
    raise ``NotImplementedError``, so that a new kind of draw cannot silently come from
    a shared stream.
    """

    def __init__(self, generators: Sequence[np.random.Generator]) -> None:
        super().__init__(np.random.PCG64(0))  # never drawn from
        self._generators = list(generators)

    def __getattribute__(self, name: str):
        if not name.startswith("_") and name not in _STACKED_METHODS:
            raise NotImplementedError(f"StackedDraws does not stack Generator.{name}")
        return super().__getattribute__(name)

    def uniform(self, low=0.0, high=1.0, size=None):
        return self._draw("uniform", size, low, high)

    def normal(self, loc=0.0, scale=1.0, size=None):
        return self._draw("normal", size, loc, scale)

    def standard_normal(self, size=None):
        return self._draw("standard_normal", size)

    def random(self, size=None):
        return self._draw("random", size)

    def _draw(self, method: str, size, *params) -> np.ndarray:
        count = len(self._generators)
        shape = (size,) if np.ndim(size) == 0 and size is not None else tuple(size or ())
        if not shape or shape[0] % count:
            raise ValueError(f"stacked draws need a leading size divisible by {count}: {size}")
        rows = shape[0] // count
        draws = []
        for index, generator in enumerate(self._generators):
            mine = [_rows(param, index, rows, shape[0]) for param in params]
            draws.append(getattr(generator, method)(*mine, size=(rows, *shape[1:])))
        return np.concatenate(draws)


def _rows(param, index: int, rows: int, total: int):
    if isinstance(param, np.ndarray) and param.ndim and param.shape[0] == total:
        return param[index * rows : (index + 1) * rows]
    return param


def draw_channels(envs: Sequence) -> None:
    """Draw the current slot's snapshot of every env (``ISCCEnv``) of ``envs``, stacked.

    Each env's ``_snapshot`` becomes ``sample_snapshot(cell, its fading generator, its
    UE positions, its headings)``, bit for bit.
    """
    if not envs:
        return
    cell = envs[0].config.cell
    if len(envs) == 1:
        env = envs[0]
        env._snapshot = sample_snapshot(cell, env._rng["fading"], env._position, env._heading)
        return
    draws = StackedDraws([env._rng["fading"] for env in envs])
    positions = np.concatenate([env._position for env in envs])
    headings = np.concatenate([env._heading for env in envs])
    stacked = sample_snapshot(_stacked_cell(cell, len(envs)), draws, positions, headings)
    K = cell.K
    for index, env in enumerate(envs):
        env._snapshot = stacked.select(np.arange(index * K, (index + 1) * K))


@lru_cache(maxsize=64)
def _stacked_cell(cell: ISCCConfig, copies: int) -> ISCCConfig:
    """``cell`` with its K UEs repeated ``copies`` times (per-UE fields tiled)."""
    changes = {"K": cell.K * copies}
    for name in PER_UE_FIELDS:
        value = getattr(cell, name)
        if np.ndim(value):
            changes[name] = tuple(np.tile(np.asarray(value, dtype=float), copies))
    return cell.replace(**changes)
