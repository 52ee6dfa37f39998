"""Policies for ``isac_gym/MIMOISAC-v0``, with SB3's ``predict`` shape.

The action is ``(a_omega, a_budget)`` in [-1, 1]^2 (the env's ``action_to_decision``).
Specs understood by :func:`make_mimo_policy`:

* ``fixed-omega:lor`` / ``fixed-omega:hor`` / ``fixed-omega:W`` -- omega fixed (the
  paper's low / high priority of sensing, or a number in (0, 1)), full power budget.
* ``equal-com`` / ``equal-cs`` -- the paper's baselines: the oracle restricted to
  EqualCom (equal per-user communication and sensing powers on each subcarrier) or
  EqualC&S (rho^c = rho^s), at omega LoR and the full budget. They declare
  ``env_overrides = {"scheme": ...}``, so the evaluation builds their env with that
  oracle scheme.
* ``heuristic`` -- battery-aware budget (:class:`BatteryHeuristicPolicy`).
* ``lyapunov`` -- drift-plus-penalty on a virtual battery queue (:class:`MIMOLyapunovPolicy`).
* ``random`` -- uniform actions.
* ``pretrained`` -- the shipped agent in ``agents/pretrained/MIMOISAC-v0`` (a residual PPO
  on ``fixed-omega:hor``; its card says how it was trained and how it does).
* ``ppo:PATH`` / ``sac:PATH`` / ``td3:PATH`` -- saved SB3 models (as for ISCC-v0).

The heuristic and Lyapunov policies size the budget from the battery alone: they do not
read the users' rate demands (the observation's K-wide ``demand`` block, decoded by the
env as each user's R_th,k), so a burst of demand changes none of their actions; the
learned policies see the whole observation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.policies import Policy, RandomPolicy, SB3Policy, pretrained_policy
from isac_gym.mimo import OMEGA_HOR, OMEGA_LOR

MIMO_SPECS = (
    "fixed-omega:lor",
    "fixed-omega:hor",
    "fixed-omega:W",
    "equal-com",
    "equal-cs",
    "heuristic",
    "lyapunov",
    "random",
    "pretrained",
    "ppo:PATH",
    "sac:PATH",
    "td3:PATH",
)
_NAMED_OMEGA = {"lor": OMEGA_LOR, "hor": OMEGA_HOR}


class MIMOPolicy(Policy):
    """Base class: acts through (omega, budget fraction) decisions."""

    def _decision_action(self, omega: float, fraction: float) -> np.ndarray:
        return self.env.decision_to_action(omega, fraction)


class FixedOmegaPolicy(MIMOPolicy):
    """omega fixed, the whole power budget every frame (the paper's single-frame setting)."""

    def __init__(self, env: Any, omega: float, name: str, scheme: str | None = None) -> None:
        super().__init__(env)
        if not 0.0 < omega < 1.0:
            raise ValueError(f"fixed-omega needs omega in (0, 1), got {omega!r}")
        self.name = name
        if scheme is not None:
            self.env_overrides = {"scheme": scheme}
        self._action = self._decision_action(omega, self.config.budget_range[1])

    def _act(self, obs: np.ndarray) -> np.ndarray:
        return self._action.copy()


def _battery_level(decoded: dict, config: Any) -> float:
    """s = (B - b_min) / (b_max - b_min), clipped to [0, 1]."""
    span = max(config.b_max - config.b_min, 1e-12)
    return float(np.clip((float(decoded["battery"]) - config.b_min) / span, 0.0, 1.0))


@dataclass(frozen=True)
class BatteryHeuristicParams:
    """Constants of :class:`BatteryHeuristicPolicy`."""

    budget_empty: float = 0.1  #: budget fraction at an empty battery
    budget_full: float = 1.0  #: budget fraction at a full battery
    exponent: float = 1.0  #: fraction = empty + (full - empty) * level ** exponent
    omega: float = OMEGA_LOR  #: the EE weight (fixed)


class BatteryHeuristicPolicy(MIMOPolicy):
    """The budget rises with the battery level: ``u = u_0 + (u_1 - u_0) s^c``."""

    def __init__(self, env: Any, params: BatteryHeuristicParams | None = None) -> None:
        super().__init__(env)
        self.params = params or BatteryHeuristicParams()
        self.name = "heuristic"

    def decision(self, decoded: dict) -> tuple[float, float]:
        p = self.params
        level = _battery_level(decoded, self.config)
        return p.omega, p.budget_empty + (p.budget_full - p.budget_empty) * level**p.exponent

    def _act(self, obs: np.ndarray) -> np.ndarray:
        return self._decision_action(*self.decision(self.env.decode_observation(obs)))


@dataclass(frozen=True)
class MIMOLyapunovParams:
    """Constants of :class:`MIMOLyapunovPolicy`."""

    V: float = 0.02  #: weight of the utility [J]
    theta: float = 0.8  #: battery target, as a fraction of b_max
    power_ref: float = 0.05  #: p_ref of the utility log(1 + P_T / p_ref) [W]
    omega: float = OMEGA_LOR  #: the EE weight (fixed)


class MIMOLyapunovPolicy(MIMOPolicy):
    """Drift-plus-penalty on the energy deficit queue ``Q = max(0, theta b_max - B)``.

    Per frame it maximises ``V log(1 + P_T / p_ref) - Q E(P_T)`` with the frame energy
    bounded by ``E(P_T) = (P_T / eta + P_c) T_f`` (12). The maximiser is closed-form,
    ``P_T = V eta / (Q T_f) - p_ref``, clipped to the budget range; a battery at or
    above its target (Q = 0) gets the whole budget. (The LODCO construction with a
    concave utility standing in for the frame's EE.)
    """

    def __init__(self, env: Any, params: MIMOLyapunovParams | None = None) -> None:
        super().__init__(env)
        self.params = params or MIMOLyapunovParams()
        self.name = "lyapunov"

    def decision(self, decoded: dict) -> tuple[float, float]:
        p, cfg = self.params, self.config
        lo, hi = cfg.budget_range
        queue = max(0.0, p.theta * cfg.b_max - float(decoded["battery"]))
        if queue == 0.0:
            return p.omega, hi
        power = p.V * cfg.cell.eta / (queue * cfg.frame_duration) - p.power_ref
        return p.omega, float(np.clip(power / cfg.cell.P_max, lo, hi))

    def _act(self, obs: np.ndarray) -> np.ndarray:
        return self._decision_action(*self.decision(self.env.decode_observation(obs)))


def parse_mimo_spec(spec: str) -> tuple[str, str | None]:
    """``(kind, argument)`` of a spec; ValueError listing the valid specs otherwise."""
    text = spec.strip() if isinstance(spec, str) else ""
    kind, _, argument = text.partition(":")
    kind, argument = kind.strip().lower(), argument.strip()
    valid = ", ".join(MIMO_SPECS)
    if kind == "fixed-omega":
        if argument.lower() in _NAMED_OMEGA:
            return kind, argument.lower()
        try:
            value = float(argument)
        except ValueError:
            value = np.nan
        if not 0.0 < value < 1.0:
            raise ValueError(f"fixed-omega:{argument}: need lor, hor or a number in (0, 1)")
        return kind, argument
    if kind in ("equal-com", "equal-cs", "heuristic", "lyapunov", "random", "pretrained") and (
        not argument
    ):
        return kind, None
    if kind in ("ppo", "sac", "td3") and argument:
        return kind, argument
    raise ValueError(f"unknown MIMOISAC-v0 policy {spec!r}; valid: {valid}")


def make_mimo_policy(spec: str, env: Any) -> Policy:
    """Build the policy named by ``spec`` for a MIMOISAC-v0 env."""
    kind, argument = parse_mimo_spec(spec)
    if kind == "fixed-omega":
        omega = _NAMED_OMEGA.get(argument) or float(argument)
        return FixedOmegaPolicy(env, omega, name=f"fixed-omega:{argument}")
    if kind in ("equal-com", "equal-cs"):
        scheme = kind.replace("-", "_")
        return FixedOmegaPolicy(env, OMEGA_LOR, name=kind, scheme=scheme)
    if kind == "heuristic":
        return BatteryHeuristicPolicy(env)
    if kind == "lyapunov":
        return MIMOLyapunovPolicy(env)
    if kind == "random":
        return RandomPolicy(env)
    if kind == "pretrained":  # agents/pretrained/MIMOISAC-v0
        return pretrained_policy(env)
    return SB3Policy(env, kind, argument)
