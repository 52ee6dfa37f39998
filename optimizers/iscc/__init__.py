"""Per-slot solvers for the ISCC problem (P1), all judged by ``isac_gym.iscc.evaluate``.

``solve(snapshot, beta, method)`` is the one entry point, ``solve_batch(snapshots, beta,
method)`` its many-slots-at-once form; :mod:`.compute` holds the exact compute
allocation that every beam-level method finishes with.
"""

from optimizers.iscc.batch import solve_batch
from optimizers.iscc.compute import ComputeAllocation, exact_compute_allocation
from optimizers.iscc.solve import METHODS, Solution, ofdma_shares, solve

__all__ = [
    "METHODS",
    "ComputeAllocation",
    "Solution",
    "exact_compute_allocation",
    "ofdma_shares",
    "solve",
    "solve_batch",
]
