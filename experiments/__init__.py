"""Experiments on top of the solvers and environments: the papers' figures and benchmarks.

* :mod:`.paper` -- ``evaluate.py paper``: the ISCC paper's Figs. 2-9 (specs in
  :mod:`.iscc_figures`, plots in :mod:`.plotting`).
* :mod:`.solver_bench` -- per-slot solver speed and quality against the CVXPY reference.
* :mod:`.env_bench` -- environment steps per second and the oracle's share of a step.
* :mod:`.mimo_bench` -- the mMIMO-OFDM ISAC schemes over seeded drops.
"""
