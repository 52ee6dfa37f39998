"""Residual control: a learned correction on top of a non-learned policy.

The agent does not act from scratch. Its action ``r`` in [-1, 1]^A is a correction to
the action of a *base* policy (e.g. ``threshold-budget``), in the env's action units:

    a = clip(a_base(obs) + scale * r, -1, 1).

With ``r = 0`` the agent is the base policy, so training starts from a good controller
and only has to learn where to deviate from it (residual policy learning: Johannink et
al., 2019; Silver et al., 2018). ``scale = 1`` lets the correction move any action by
half the box: enough to turn a budget fraction from 0 to 1 or beta by two decades.
The base policy must be stateless (a function of the observation), as every policy of
:mod:`agents.policies` and :mod:`agents.mimo_policies` is except ``random``; its spec is
one of the env's own (``threshold-budget`` on ISCC-v0, ``fixed-omega:hor`` on
MIMOISAC-v0).

* :func:`residual_action` -- the map above, the one place it is written;
* :class:`ResidualSpec` -- ``{"base": spec, "scale": s}`` from a hyperparameter file or a
  saved run's ``config.json``, checked;
* :class:`ResidualVecEnv` -- an SB3 ``VecEnvWrapper`` that applies the map while
  training. It sits under ``VecNormalize``: the base policy reads raw observations
  (:func:`residual_base` builds it and pins its constants).

:class:`agents.policies.SB3Policy` applies the same map when a saved run's
``config.json`` names a residual, so evaluation acts exactly as training did.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnvWrapper


def residual_action(base_action: np.ndarray, correction: np.ndarray, scale: float) -> np.ndarray:
    """``clip(base_action + scale * clip(correction, -1, 1), -1, 1)`` as float32."""
    correction = np.clip(np.asarray(correction, dtype=np.float64), -1.0, 1.0)
    total = np.asarray(base_action, dtype=np.float64) + scale * correction
    return np.clip(total, -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class ResidualSpec:
    """Which base policy the correction is added to, and its ``scale`` (in (0, 2]).

    ``params``: the base policy's constants (its ``params`` dataclass as a dict). A
    trained agent is a correction to one particular base, so a run records them
    (:meth:`pinned`) and a loaded agent acts on them, even after the base policy's
    defaults are retuned. ``None``: the base's current defaults.
    """

    base: str
    scale: float = 1.0
    params: dict | None = None

    def __post_init__(self) -> None:
        from agents.policies import LEARNED_KINDS

        kind, _ = _parse_base(self.base)  # ValueError naming the valid specs
        if kind in ("random", *LEARNED_KINDS):
            raise ValueError(
                f"residual base must be a deterministic non-learned policy, got {self.base!r}"
            )
        if not (isinstance(self.scale, int | float) and math.isfinite(self.scale)):
            raise ValueError(f"residual scale must be a number in (0, 2], got {self.scale!r}")
        if not 0.0 < float(self.scale) <= 2.0:
            raise ValueError(f"residual scale must be in (0, 2], got {self.scale!r}")

    @classmethod
    def from_dict(cls, value: Any) -> ResidualSpec | None:
        """``None`` for ``None``; a spec from ``{"base": ..., "scale": ...}``."""
        if value is None:
            return None
        keys = {"base", "scale", "params"}
        if not isinstance(value, dict) or set(value) - keys or "base" not in value:
            raise ValueError(
                "residual must be a mapping with keys 'base' and optionally 'scale' and "
                f"'params', got {value!r}"
            )
        params = value.get("params")
        if params is not None and not isinstance(params, dict):
            raise ValueError(f"residual params must be a mapping, got {params!r}")
        return cls(str(value["base"]), float(value.get("scale", 1.0)), params)

    def as_dict(self) -> dict:
        spec = {"base": self.base, "scale": float(self.scale)}
        return spec if self.params is None else {**spec, "params": dict(self.params)}

    def pinned(self, env: Any) -> ResidualSpec:
        """This spec with ``params`` set to the constants the base acts on now."""
        constants = getattr(self.base_policy(env), "params", None)
        if constants is None:  # a base without constants (e.g. fixed-beta:B)
            return self
        return dataclasses.replace(self, params=dataclasses.asdict(constants))

    def base_policy(self, env: Any) -> Any:
        """The base policy for ``env``; its action mode must be the env's."""
        policy = _make_base(self.base, env)
        if self.params is not None:
            if getattr(policy, "params", None) is None:
                raise ValueError(f"residual base {self.base!r} has no params to set")
            try:
                policy.params = dataclasses.replace(policy.params, **self.params)
            except TypeError as error:
                raise ValueError(f"residual params for {self.base!r}: {error}") from None
        mode = getattr(getattr(env.unwrapped, "config", None), "action_mode", policy.action_mode)
        if policy.action_mode != mode:
            raise ValueError(
                f"residual base {self.base!r} acts in action_mode={policy.action_mode!r}, "
                f"but the env's action_mode is {mode!r}"
            )
        return policy


class ResidualVecEnv(VecEnvWrapper):
    """Steps ``venv`` with ``residual_action(base(obs), actions, scale)``.

    ``base`` is a policy with an SB3 ``predict`` (batched observations); the wrapper
    keeps the last observation of every env (after autoreset: the new episode's
    first), which is what the base policy acts on.
    """

    def __init__(self, venv: Any, base: Any, scale: float) -> None:
        super().__init__(venv)
        self.base, self.scale = base, float(scale)
        self._observations: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        self._observations = self.venv.reset()
        return self._observations

    def step_async(self, actions: np.ndarray) -> None:
        if self._observations is None:
            raise RuntimeError("ResidualVecEnv: step before reset")
        base_actions, _ = self.base.predict(self._observations, deterministic=True)
        self.venv.step_async(residual_action(base_actions, actions, self.scale))

    def step_wait(self):
        observations, rewards, dones, infos = self.venv.step_wait()
        self._observations = observations
        return observations, rewards, dones, infos


def _parse_base(spec: str) -> tuple[str, str | None]:
    """``(kind, argument)`` of an ISCC-v0 or a MIMOISAC-v0 policy spec."""
    from agents.mimo_policies import parse_mimo_spec
    from agents.policies import parse_spec

    try:
        return parse_spec(spec)
    except ValueError as iscc_error:
        try:
            return parse_mimo_spec(spec)
        except ValueError as mimo_error:
            raise ValueError(f"{iscc_error}; on isac_gym/MIMOISAC-v0: {mimo_error}") from None


def _make_base(spec: str, env: Any) -> Any:
    """The policy named by ``spec`` for ``env``, from the env's own family of policies."""
    from isac_gym.envs.mimo import MIMOISACEnv

    if not isinstance(env.unwrapped, MIMOISACEnv):
        from agents.policies import make_policy

        return make_policy(spec, env)
    from agents.mimo_policies import make_mimo_policy

    policy = make_mimo_policy(spec, env)
    if policy.env_overrides:  # e.g. equal-com: it acts through another scheme
        raise ValueError(f"residual base {spec!r} needs env settings {policy.env_overrides}")
    return policy


def residual_base(spec: ResidualSpec, env_id: str, env_kwargs: dict) -> tuple[ResidualSpec, Any]:
    """``(spec pinned, its base policy)`` on one template env of ``env_id``; the base is
    stateless, so the training and evaluation wrappers can share it."""
    import gymnasium

    template = gymnasium.make(env_id, **env_kwargs)  # the base policy reads its config
    pinned = spec.pinned(template)
    return pinned, pinned.base_policy(template)


__all__ = ["ResidualSpec", "ResidualVecEnv", "residual_action", "residual_base"]
