"""Policies that map environment observations to actions (SB3 ``predict`` shape).

* :mod:`agents.policies` -- fixed-beta, heuristic, Lyapunov, random, FL/FO/HO and
  saved SB3 models behind one ``predict``; ``make_policy(spec, env)``.
* :mod:`agents.training` -- ``train(TrainSettings(...))`` behind ``train.py``
  (callbacks in :mod:`agents.callbacks`).
* :mod:`agents.metrics` -- the one reducer from the env's ``info`` to metrics.
* :mod:`agents.evaluation` -- ``evaluate.py policies``: every policy on the same
  seeded episodes.
* :mod:`agents.bounds` -- the clairvoyant episode bound and plan
  (``evaluate.py policies --bound``).
* :mod:`agents.tuning` -- grid search of the heuristic / Lyapunov constants on
  validation seeds.

Importing this package is light (no torch, stable-baselines3 or matplotlib).
"""

from __future__ import annotations
