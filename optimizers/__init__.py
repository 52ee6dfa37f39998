"""Per-slot solvers, grouped by system, all judged by the true model of their system.

* :mod:`optimizers.iscc` -- the ISCC uplink (problem P1): ``solve(snapshot, beta,
  method)`` with SCA-ADMM, ``fast``, the baselines and the CVXPY reference, and
  ``solve_batch(snapshots, beta, method)`` for many slots at once.
* :mod:`optimizers.mimo` -- the mMIMO-OFDM ISAC base station: ``solve_mimo`` (Dinkelbach
  + SCA and the EqualCom / EqualC&S schemes).

This package sits above the physics (``isac_gym.iscc``, ``isac_gym.mimo``) and below the
environments; it never imports an environment. ``solve_mimo`` is loaded on first use,
because it imports CVXPY.

For timing, run with one BLAS thread (``OPENBLAS_NUM_THREADS=1``): the matrices are
small (64 x 64), and multi-threaded BLAS is several times slower on them.
"""

from optimizers.iscc import (
    METHODS,
    ComputeAllocation,
    Solution,
    exact_compute_allocation,
    ofdma_shares,
    solve,
    solve_batch,
)

__all__ = [
    "METHODS",
    "ComputeAllocation",
    "Solution",
    "exact_compute_allocation",
    "ofdma_shares",
    "solve",
    "solve_batch",
    "solve_mimo",
]


def __getattr__(name: str):
    if name == "solve_mimo":
        from optimizers.mimo import solve_mimo

        return solve_mimo
    raise AttributeError(f"module 'optimizers' has no attribute {name!r}")
