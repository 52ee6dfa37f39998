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
"""

from __future__ import annotations

import time

import numpy as np

from isac_gym.iscc.model import as_beta
from optimizers.iscc.fast import SlotBatch, _pinned, solve_fast_batch
from optimizers.iscc.solve import _FIXED_ALPHA, METHODS, judged_batch, ofdma_shares, solve

#: Methods solved as one batch (the others run slot by slot, or by SCA-ADMM's own batch).
BATCHED_METHODS = ("fast", "fl", "fo", "ho", "ctem", "ofdma")


def solve_batch(snapshots, beta, method: str = "fast", **options) -> list:
    """Solve every slot of ``snapshots`` with ``method``; one ``Solution`` per slot.

    ``snapshots``: a sequence of ``Snapshot`` with equal K and array sizes (else
    ValueError). ``beta``: a scalar, (K,) (every slot) or (B, K) (one row per slot),
    finite and > 0. Options as for :func:`optimizers.iscc.solve`; per-UE options
    (``weight_ue``, ``alpha_fixed``, ``bandwidth_share``) may also be (B, K).
    ``sca_admm`` runs ``optimizers.iscc.sca_admm.solve_sca_admm_batch`` when that exists,
    else slot by slot, as does ``cvxpy`` (``warm_start``: one for all or one per slot).
    ``info["wall_time_s"]`` is the batch's solver time divided by B.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
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
        share = np.stack([ofdma_shares(s) for s in slots.snapshots])
    share = None if share is None else _per_slot("bandwidth_share", share, size, K)
    power_grid = int(options.pop("power_grid", 24))
    if options:
        raise TypeError(f"solve_batch got unexpected options {sorted(options)}")
    optimised = np.ones((size, K)) if method == "ctem" else betas
    return optimised, weight, fixed, share, power_grid
