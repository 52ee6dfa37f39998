"""Per-slot solvers for the ISCC problem (P1), all judged by ``isac_gym.iscc.evaluate``.

For timing, run with one BLAS thread (``OPENBLAS_NUM_THREADS=1``): the matrices are
small (64 x 64), and multi-threaded BLAS is several times slower on them.
"""

from optimizers.compute import ComputeAllocation, exact_compute_allocation
from optimizers.solve import METHODS, Solution, ofdma_shares, solve

__all__ = [
    "METHODS",
    "ComputeAllocation",
    "Solution",
    "exact_compute_allocation",
    "ofdma_shares",
    "solve",
]
