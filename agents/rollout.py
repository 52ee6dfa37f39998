"""Run one policy on a batch of seeded episodes in the native vector env.

:func:`run_batch` steps the episodes of ``seeds`` together in an
:class:`~isac_gym.envs.vector.ISCCVectorEnv` (one batched oracle call per round) and
records each exactly as :func:`agents.evaluation.run_episode` records one episode in
its own env: the same seeds, actions and per-step metrics (``EpisodeResult.add_step``).
A policy with per-episode state (``reset`` overridden, e.g. ``random``) gets one instance per
episode, seeded like a single-env run; a stateless one answers the whole batch with one
``predict`` call. Environments without a native vector env run episode by episode.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def has_native_vector_env(env: Any) -> bool:
    """Whether ``env`` (a single env) has the batched stepping of ISCCVectorEnv."""
    from isac_gym.envs.iscc import ISCCEnv

    return isinstance(env.unwrapped, ISCCEnv)


def run_batch(
    env: Any, policy: Any, spec: str, seeds: list[int], episodes: list[int], trace_at=None
):
    """Run the episodes ``seeds`` (numbered ``episodes``) of ``policy`` to their end.

    ``env`` is a single env in the policy's action mode (its config is copied); ``spec``
    makes per-episode policy copies where needed; ``trace_at``: the episode number whose
    per-slot trace to record. Returns
    ``[(EpisodeResult, trace or None)]`` in the order of ``seeds``.
    """
    from agents.evaluation import EpisodeResult, new_trace, record_trace
    from isac_gym.envs.vector import ISCCVectorEnv

    vector_env = ISCCVectorEnv(len(seeds), env.unwrapped.config)
    results = [
        EpisodeResult(policy.name, episode, seed, policy.action_mode)
        for episode, seed in zip(episodes, seeds, strict=True)
    ]
    traces = [new_trace(policy.action_mode) if e == trace_at else None for e in episodes]
    predict = _batch_predictor(policy, spec, env, seeds)
    obs, _ = vector_env.reset(seed=list(seeds))
    running = np.ones(len(seeds), dtype=bool)
    starts = np.ones(len(seeds), dtype=bool)
    while running.any():
        start = time.perf_counter()
        actions = predict(obs, starts)
        share = (time.perf_counter() - start) / running.sum()
        starts[:] = False
        steps = vector_env.step_envs(np.asarray(actions), running)
        for index, (row, reward, terminated, truncated, info) in zip(
            np.flatnonzero(running), steps, strict=True
        ):
            obs[index] = row
            results[index].predict_s += share
            results[index].add_step(reward, info)
            if traces[index] is not None:
                record_trace(traces[index], reward, info)
            running[index] = not (terminated or truncated)
    vector_env.close()
    return list(zip(results, traces, strict=True))


def _batch_predictor(policy: Any, spec: str, env: Any, seeds: list[int]):
    """``predict(obs (n, d), episode_start (n,)) -> actions (n, K)`` for the batch."""
    from agents.policies import Policy, make_policy

    if type(policy).reset is Policy.reset:  # no per-episode state: one batched call

        def predict_all(obs, starts):
            action, _ = policy.predict(obs, episode_start=starts, deterministic=True)
            return action

        return predict_all
    policies = [make_policy(spec, env) for _ in seeds]
    for copy, seed in zip(policies, seeds, strict=True):
        copy.reset(seed=seed)

    def predict_each(obs, starts):
        rows = [
            copy.predict(row, episode_start=start[None], deterministic=True)[0]
            for copy, row, start in zip(policies, obs, starts, strict=True)
        ]
        return np.stack(rows)

    return predict_each
