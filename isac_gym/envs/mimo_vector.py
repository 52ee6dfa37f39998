"""``MIMOVectorEnv``: N ``MIMOISAC-v0`` environments behind Gymnasium's vector API.

``gymnasium.make_vec("isac_gym/MIMOISAC-v0", num_envs=N,
vectorization_mode="vector_entry_point", **config)`` builds it. With the default oracle
(``fast``, scheme ``proposed``) a step solves the envs' frames together: every frame
that starts from its env's last solution (all but the first of an episode, and silent
frames) runs its barrier path in one :func:`optimizers.mimo.batched.solve_warm_batch`
call, which gives each frame bit for bit ``solve_mimo``'s result; the other frames, and
every frame of other oracles, are solved one after the other with ``solve_mimo``. It
reuses the reset, step and autoreset of :class:`~isac_gym.envs.vector.ISCCVectorEnv`:
the same seeding (an int seed S gives env i the seed S + i), ``options["reset_mask"]``,
autoreset modes (``next_step`` by default, ``same_step``, ``disabled``) and vector-style
infos. Its trajectories equal those of ``SyncVectorEnv`` over N ``MIMOISAC-v0`` with the
same seeds (tests/envs/test_mimo_vector_env.py); ``info["oracle_time_s"]`` of a batched
frame is its share of the batch's time.
"""

from __future__ import annotations

import numpy as np

from isac_gym.envs.mimo import MIMOISACEnv
from isac_gym.envs.mimo_config import make_mimo_config
from isac_gym.envs.vector import ISCCVectorEnv, StepResult

#: fewer warm frames than this are solved one by one: a batch of 2 frames runs at 0.9x
#: solve_mimo's own paths, of 4 at 1.2x, of 64 at 2.6x (BENCHMARKS.md, "MIMOISAC-v0 steps/s")
_MIN_BATCH = 3


class MIMOVectorEnv(ISCCVectorEnv):
    """N copies of ``isac_gym/MIMOISAC-v0`` whose warm frames are solved in one batch
    (module docstring).

    Arguments: ``num_envs``, ``preset`` and ``config`` as for ``MIMOISAC-v0`` (one config
    for all copies) and ``autoreset_mode`` (an ``AutoresetMode`` or its value).
    """

    single_env_class = MIMOISACEnv
    config_factory = staticmethod(make_mimo_config)

    def step_envs(self, actions: np.ndarray, active: np.ndarray) -> list[StepResult]:
        """Step the envs where ``active`` with their rows of ``actions``: plan every
        frame, solve them (the warm ones in one batch), then finish each env's step.
        Returns their ``(obs, reward, terminated, truncated, info)`` in order."""
        envs = [env for env, on in zip(self.envs, active, strict=True) if on]
        plans = [env.plan_frame(action) for env, action in zip(envs, actions[active], strict=True)]
        solved = self._solve_frames(envs, plans)
        return [
            env.finish_step(omega, request, *result)
            for env, (omega, request), result in zip(envs, plans, solved, strict=True)
        ]

    def _solve_frames(self, envs, plans) -> list[tuple]:
        """(solution, seconds) per planned frame (None for a silent one)."""
        from optimizers.mimo.batched import solve_warm_batch  # loads with the first step

        results: list = [None] * len(plans)
        options = envs[0]._oracle_options if envs else {}
        batched = self.config.scheme == "proposed" and options.get("method") == "fast"
        warm = [i for i, (_, request) in enumerate(plans) if request["warm_start"] is not None]
        if batched and len(warm) >= _MIN_BATCH:
            solutions = solve_warm_batch(
                [plans[i][1]["snapshot"] for i in warm],
                [plans[i][0] for i in warm],
                [plans[i][1]["warm_start"] for i in warm],
                constants=[plans[i][1]["constants"] for i in warm],
                **{name: options[name] for name in ("margin", "phase1_rounds") if name in options},
            )
            for i, solution in zip(warm, solutions, strict=True):
                if solution is not None:  # else certified infeasible: solve_mimo reports it
                    results[i] = (solution, solution.info["wall_time_s"])
        for i, (env, plan) in enumerate(zip(envs, plans, strict=True)):
            if results[i] is None:
                results[i] = env.solve_frame(*plan)
        return results

    def __repr__(self) -> str:
        return f"MIMOVectorEnv(num_envs={self.num_envs}, scheme={self.config.scheme!r})"
