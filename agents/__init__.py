"""Policies that map environment observations to actions (SB3 ``predict`` shape).

* :mod:`agents.policies` -- fixed-beta, heuristic, Lyapunov, random, FL/FO/HO and
  saved SB3 models behind one ``predict``; ``make_policy(spec, env)``.
* :mod:`agents.training` -- ``train(...)`` behind ``train.py``.
* :mod:`agents.evaluation` -- ``evaluate.py policies``: every policy on the same
  seeded episodes.
* :mod:`agents.bounds` -- the clairvoyant episode bound and plan
  (``evaluate.py policies --bound``).
* :mod:`agents.tuning` -- grid search of the heuristic / Lyapunov constants on
  validation seeds.

Importing this package is light (no torch, stable-baselines3 or matplotlib).
"""

from __future__ import annotations

_LIMITERS: list = []


def limit_threads(threads: int = 1) -> None:
    """Use ``threads`` torch and BLAS threads in this process.

    The slot solvers work on 64 x 64 matrices, where multi-threaded BLAS is several
    times slower than one thread, and a small MLP gains nothing from more threads.
    BLAS is limited with ``threadpoolctl`` when it is installed (else set
    ``OPENBLAS_NUM_THREADS`` before starting Python).
    """
    import torch

    torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    _LIMITERS.append(threadpool_limits(threads))
