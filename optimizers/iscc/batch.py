"""``solve_batch(snapshots, beta, method)``: many slots of (P1) solved together.

The per-slot ``fast`` oracle is a few thousand small numpy operations of a few
microseconds each; solving B slots as one set of (B, ...) arrays pays that overhead
once. :func:`solve_batch` returns what :func:`optimizers.iscc.solve` returns
for each slot (costs equal to round-off, the same feasibility, served UEs and ``info``
keys), with every data-dependent branch a mask over slots
(``optimizers.iscc.fast.solve_fast_batch``, ``optimizers.iscc.compute.allocate``).
Every solution is judged by the true model: ``isac_gym.iscc.model.evaluate_batch`` (the
model of ``evaluate``, vectorised over slots) for the batched methods, ``evaluate`` slot by
slot for those run slot by slot.

With ``mixed_k=True`` the slots may have different numbers of UEs (an environment's
slots after drops): the batched methods then solve them in one batch padded to the
largest K (silent copies of UE 0, ``optimizers.iscc.fast.SlotBatch``), so each call
pays the fixed cost of the ``fast`` oracle once instead of once per K.
"""

from __future__ import annotations

import time

import numpy as np

from isac_gym.iscc import Snapshot
from isac_gym.iscc.model import as_beta
from optimizers.iscc.compute import _per_ue_array
from optimizers.iscc.fast import SlotBatch, _pinned, solve_fast_batch
from optimizers.iscc.solve import _FIXED_ALPHA, METHODS, judged_batch, ofdma_shares, solve

#: Methods solved as one batch (the others run slot by slot, or by SCA-ADMM's own batch).
BATCHED_METHODS = ("fast", "fl", "fo", "ho", "ctem", "ofdma")
#: Options given per UE: with ``mixed_k``, one value (scalar or (K_b,)) per slot.
PER_UE_OPTIONS = ("weight_ue", "alpha_fixed", "bandwidth_share")


def solve_batch(snapshots, beta, method: str = "fast", *, mixed_k=False, **options) -> list:
    """Solve every slot of ``snapshots`` with ``method``; one ``Solution`` per slot.

    ``snapshots``: a sequence of ``Snapshot`` with equal K and array sizes (else
    ValueError). ``beta``: a scalar, (K,) (every slot) or (B, K) (one row per slot),
    finite and > 0. Options as for :func:`optimizers.iscc.solve`; per-UE options
    (``weight_ue``, ``alpha_fixed``, ``bandwidth_share``) may also be (B, K).
    ``sca_admm`` runs ``optimizers.iscc.sca_admm.solve_sca_admm_batch`` when that exists,
    else slot by slot, as does ``cvxpy`` (``warm_start``: one for all or one per slot).
    ``info["wall_time_s"]`` is the batch's solver time divided by B.

    ``mixed_k``: the snapshots may have different K (batched methods only, K >= 1);
    ``beta`` and each per-UE option (:data:`PER_UE_OPTIONS`) are then one scalar or
    (K_b,) array for all slots, or a sequence of one per slot. Each slot's solution
    equals its ``solve`` to round-off (the padding changes the arithmetic's shapes).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if mixed_k:
        return _solve_mixed(snapshots, beta, method, options)
    slots = SlotBatch(snapshots)
    betas = batch_beta(beta, slots.size, slots.K)
    if method == "sca_admm":
        from optimizers.iscc import sca_admm

        batched = getattr(sca_admm, "solve_sca_admm_batch", None)
        if batched is not None:
            return batched(slots.snapshots, betas, **options)
    if method not in BATCHED_METHODS:
        warm = options.pop("warm_start", None)
        if not isinstance(warm, list | tuple):
            warm = [warm] * slots.size
        elif len(warm) != slots.size:
            raise ValueError(f"warm_start must be one per slot ({slots.size}), got {len(warm)}")
        return [
            solve(s, b, method=method, warm_start=w, **options)
            for s, b, w in zip(slots.snapshots, betas, warm, strict=True)
        ]
    options.pop("warm_start", None)  # used by sca_admm only, as in ``solve``
    start = time.perf_counter()
    results = solve_fast_batch(slots, *_fast_arguments(slots, betas, method, options))
    wall = (time.perf_counter() - start) / slots.size
    allocations, infos = zip(*results, strict=True)
    return judged_batch(slots.snapshots, allocations, betas, method, infos, wall)


def _solve_mixed(snapshots, beta, method: str, options: dict) -> list:
    """:func:`solve_batch` of slots with different K: one padded ``solve_fast_batch``,
    judged by one ``evaluate_batch`` per K."""
    if method not in BATCHED_METHODS:
        raise ValueError(f"mixed_k needs a batched method {BATCHED_METHODS}, got {method!r}")
    snapshots = list(snapshots)
    width = max((s.K for s in snapshots if isinstance(s, Snapshot)), default=0)
    slots = SlotBatch(snapshots, width=width)
    betas = _ragged("beta", beta, slots.snapshots, as_beta)
    checks = dict(
        weight_ue=_per_ue_array, alpha_fixed=_ragged_pinned, bandwidth_share=_per_ue_array
    )
    for name in PER_UE_OPTIONS:
        if options.get(name) is not None:
            options[name] = slots.stacked(
                _ragged(name, options[name], slots.snapshots, checks[name])
            )
    options.pop("warm_start", None)  # used by sca_admm only, as in ``solve``
    start = time.perf_counter()
    arguments = _fast_arguments(slots, slots.stacked(betas), method, options)
    results = solve_fast_batch(slots, *arguments)
    wall = (time.perf_counter() - start) / slots.size
    solutions = [None] * slots.size
    for K in np.unique(slots.counts):
        group = np.flatnonzero(slots.counts == K)
        judged = judged_batch(
            [snapshots[i] for i in group], [results[i][0] for i in group],
            [betas[i] for i in group], method, [results[i][1] for i in group], wall,
        )  # fmt: skip
        for i, solution in zip(group, judged, strict=True):
            solutions[i] = solution
    return solutions


def _ragged(name: str, value, snapshots, check) -> list[np.ndarray]:
    """One checked (K_b,) array per slot: from a scalar or a 1-D array (every slot), or
    from a list, tuple or 2-D array of one entry per slot."""
    if not isinstance(value, list | tuple) and np.ndim(value) < 2:
        value = [value] * len(snapshots)
    if len(value) != len(snapshots):
        raise ValueError(f"{name} must be one value per slot ({len(snapshots)}), got {len(value)}")
    if check is as_beta:
        return [as_beta(v, s.K) for v, s in zip(value, snapshots, strict=True)]
    return [check(name, v, s.K) for v, s in zip(value, snapshots, strict=True)]


def _ragged_pinned(name: str, value, K: int) -> np.ndarray:
    return _pinned(value, (K,))


def batch_beta(beta, size: int, K: int) -> np.ndarray:
    """beta as a validated (B, K) array from a scalar, (K,) or (B, K)."""
    array = np.asarray(beta, dtype=float)
    if array.ndim == 2:
        if array.shape != (size, K):
            raise ValueError(f"beta must be a scalar, ({K},) or ({size}, {K}), got {array.shape}")
        return np.stack([as_beta(row, K) for row in array])
    return np.broadcast_to(as_beta(array, K), (size, K)).copy()


def _per_slot(name: str, value, size: int, K: int) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.ndim == 2 and array.shape != (size, K):
        raise ValueError(f"{name} must be a scalar, ({K},) or ({size}, {K}), got {array.shape}")
    try:
        array = np.broadcast_to(array, (size, K))
    except ValueError:
        message = f"{name} must be a scalar, ({K},) or ({size}, {K}), got {array.shape}"
        raise ValueError(message) from None
    if not (np.isfinite(array).all() and (array > 0).all()):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return array


def _fast_arguments(slots: SlotBatch, betas, method: str, options: dict):
    """Arguments of ``solve_fast_batch`` for ``method`` (the baselines of ``solve``)."""
    size, K = slots.size, slots.K
    weight = options.pop("weight_ue", None)
    weight = None if weight is None else _per_slot("weight_ue", weight, size, K)
    fixed = options.pop("alpha_fixed", _FIXED_ALPHA.get(method))
    fixed = None if fixed is None else _pinned(fixed, (size, K))
    share = options.pop("bandwidth_share", None)
    if method == "ofdma":
        share = slots.stacked([ofdma_shares(s) for s in slots.snapshots])
    share = None if share is None else _per_slot("bandwidth_share", share, size, K)
    power_grid = int(options.pop("power_grid", 24))
    if options:
        raise TypeError(f"solve_batch got unexpected options {sorted(options)}")
    optimised = np.ones((size, K)) if method == "ctem" else betas
    return optimised, weight, fixed, share, power_grid
