"""``isac_gym/MIMOISAC-v0``: a battery-powered mMIMO-OFDM ISAC base station over frames.

The physics lives in :mod:`isac_gym.mimo` (one frame) and :mod:`isac_gym.mimo.dynamics`
(frame to frame); the per-frame optimiser is ``optimizers.mimo.solve_mimo``. This module
orchestrates them and maps them to Gymnasium spaces.
"""

from __future__ import annotations

import dataclasses
from time import perf_counter
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from isac_gym.envs.iscc import WallTime
from isac_gym.envs.mimo_config import ORACLE_DEFAULTS, MIMOEnvConfig, make_mimo_config
from isac_gym.iscc import dynamics as battery_dynamics
from isac_gym.mimo import (
    MIMOAllocation,
    MIMOSnapshot,
    dynamics,
    evaluate,
    sample_snapshot,
    stream_constants,
    transmit_power_closed_form,
)
from isac_gym.mimo.scenario import upa_steering

#: one seed each; "demand" seeds the users' own streams (``_start_demand_chains``)
_STREAMS = ("init", "mobility", "fading", "target", "harvest", "demand", "sensing")
#: Bound on the sum SE used to keep the xi R term of (12) within the battery [bps/Hz/user].
_SE_BOUND = 40.0


class MIMOISACEnv(gym.Env):
    """A downlink mMIMO-OFDM ISAC base station on a battery, frame after frame.

    ## Description
    One step is one frame of the base station of Nguyen et al. (2025): zero-forcing
    streams to K users share their power with a sensing beam towards a target
    (precoders (8)-(10)); the frame's weighted energy efficiency (26a),
    ``(1 - omega) EE_c + omega EE_s``, is maximised by Dinkelbach + SCA
    (``optimizers.mimo.solve_mimo``) under the users' rate floors (26b), the CRB
    ceilings (26c)-(26d) and the transmit power budget (26e). The agent chooses the
    trade-off weight omega and the frame's power budget; a battery with solar-like
    harvesting (and, optionally, the grid) pays for the frame's energy ``P T_f``, with P
    the total power (12). Users move, their fading evolves, each user's rate demand is
    bursty (its own two-state chain, below), and the target drifts (a tracking scenario).

    Rate demands: user k's floor in (26b) is ``R_th,k(t) = rate_demand[s_k(t)]`` with
    ``s_k`` a symmetric two-state (low 0 / high 1) Markov chain,
    ``P(s_k(t+1) != s_k(t)) = 1 / demand_sojourn`` from either state (mean sojourn
    ``demand_sojourn`` frames) and ``s_k(0) ~ Bernoulli(1/2)``, its stationary law. The K
    chains are independent: user k draws from its own child of the env's ``demand``
    stream, so its demands depend only on the reset seed and k (not on the actions, the
    other users or K), and the other exogenous draws do not depend on the demands.

    ## Action Space
    ``Box(-1, 1, (2,), float32)``, clipped; NaN raises ``ValueError``.
    ``log10 omega = lo + (a_0 + 1)(hi - lo) / 2`` with ``(lo, hi) = log10_omega_range``
    (default -6..-2), and the transmit-power budget ``P_max' = P_max (u_lo + (a_1 + 1)
    (u_hi - u_lo) / 2)`` with ``(u_lo, u_hi) = budget_range`` (default 0.05..1). The
    budget is further capped so that the frame's energy fits the usable battery (unless
    ``grid_connected``); a battery that cannot power the circuit leaves the frame silent.

    ## Observation Space
    ``Box(-1, 1, (2 K + 7,), float32)``, each feature mapped affinely to [-1, 1] and
    clipped; ``decode_observation`` gives physical units, ``observation_index`` the
    slices: ``battery`` B [0, b_max] J; ``harvest`` (the last frame's) [0, 2 P_on T_f] J;
    ``gain`` 10 log10 beta_k of each user (K) [dB, the cell's range +-2 shadowing std];
    ``demand`` R_th,k of the frame for each user (K) [0, rate_demand hi] bps/Hz (the low
    level maps to ``2 lo / hi - 1``, the high one to 1); ``azimuth`` and ``elevation``,
    the target-angle estimate [rad]; ``crb_azimuth`` and ``crb_elevation``, log10 of the
    last frame's CRBs [-9, 0]; ``frame`` t / horizon.

    The angle estimate is the true angle plus Gaussian noise whose variance is the last
    frame's CRB (an efficient estimator); the oracle itself knows the angles, as in the
    paper.

    ## Rewards
    ``r = (1 - w_s) EE_c / EE_c,ref + w_s EE_s / EE_s,ref - rate_penalty * misses
    - crb_penalty * crb_misses - outage_penalty * outage - grid_price * E_grid / e_ref``
    with the operator's fixed sensing weight ``w_s = sensing_weight`` (never the action's
    omega): delivered spectral efficiency and sensing quality (1/CRB) per unit of power,
    minus the users below their own rate demand R_th,k (``misses`` counts them), the
    CRB ceilings missed, a frame ending with ``B < b_min + outage_margin``, and the
    energy bought from the grid. The components are in ``info["rewards"]``.

    ## Starting State
    ``B(0) ~ U[b_init]``; users uniform by area in the ring, at rest; fading and harvest
    state drawn, each user's demand state ~ Bernoulli(1/2); the target at
    ``cell.target_azimuth``.

    ## Episode End
    Truncation after ``horizon`` frames (default 200); no termination.

    ## Arguments
    ``gymnasium.make("isac_gym/MIMOISAC-v0", preset="default", render_mode=None,
    **config)``: ``preset`` is ``"default"`` (8 x 4 UPA, K = 3, N = 8: the size meant
    for training) or ``"paper"`` (the paper's 8 x 8 UPA, K = 6, N = 16); config
    keys are fields of :class:`isac_gym.envs.mimo_config.MIMOEnvConfig` or of
    :class:`isac_gym.mimo.MIMOISACConfig`.

    The oracle is ``solve_mimo(frame, omega, scheme, method="fast", warm_start=...)``:
    ``solver_options`` overrides its options (``method``, ``tol``, ``max_iterations``,
    ``phase1_rounds``, ``margin``), and with ``warm_start`` (default on) each frame
    starts from the last feasible frame's solution scaled onto its budget, used if it
    is feasible for the new frame (else the solver's cold starts run). A frame the
    oracle finds infeasible transmits its start: that warm start, else the equal split
    at half the budget (the oracle's own best-effort point depends on how its search
    failed; a budget below the least power the CRB ceilings need is reported without a
    search, ``optimizers.mimo.certificate``).
    ``gymnasium.make_vec(...,
    vectorization_mode="vector_entry_point")`` gives
    :class:`isac_gym.envs.mimo_vector.MIMOVectorEnv` (the oracles run in a loop).

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        preset: str | MIMOEnvConfig = "default",
        render_mode: str | None = None,
        **config: Any,
    ) -> None:
        self.config = make_mimo_config(preset, **config)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        self.render_mode = render_mode
        K = self.K = self.config.cell.K
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        names = ("battery", "harvest", "gain", "demand", "azimuth", "elevation")
        sizes = (1, 1, K, K, 1, 1, 1, 1, 1)
        names += ("crb_azimuth", "crb_elevation", "frame")
        edges = np.cumsum((0,) + sizes)
        self.observation_space = spaces.Box(-1.0, 1.0, (int(edges[-1]),), np.float32)
        self.observation_index = {
            name: (slice(start, stop) if stop - start > 1 else int(start))
            for name, start, stop in zip(names, edges[:-1], edges[1:], strict=True)
        }
        self._scale = self._feature_ranges()
        # the same ranges as vectors over the observation entries (one affine map per step)
        ranges = np.empty((2, int(edges[-1])))
        for name, index in self.observation_index.items():
            ranges[0, index], ranges[1, index] = self._scale[name]
        self._obs_low, self._obs_span = ranges[0], ranges[1] - ranges[0]
        self._oracle_options = {**ORACLE_DEFAULTS, **self.config.solver_options}
        self._t = 0

    # --- action and observation maps -------------------------------------------------

    def action_to_decision(self, action) -> tuple[float, float]:
        """(omega, budget fraction of P_max) for an action in [-1, 1]^2 (clipped)."""
        a = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
        (lo, hi), (u_lo, u_hi) = self.config.log10_omega_range, self.config.budget_range
        omega = 10.0 ** (lo + (a[0] + 1.0) * (hi - lo) / 2.0)
        return float(omega), float(u_lo + (a[1] + 1.0) * (u_hi - u_lo) / 2.0)

    def decision_to_action(self, omega: float, fraction: float) -> np.ndarray:
        """The action giving (omega, budget fraction), clipped to the representable range."""
        (lo, hi), (u_lo, u_hi) = self.config.log10_omega_range, self.config.budget_range
        a0 = 0.0 if hi == lo else 2.0 * (np.log10(omega) - lo) / (hi - lo) - 1.0
        a1 = 0.0 if u_hi == u_lo else 2.0 * (fraction - u_lo) / (u_hi - u_lo) - 1.0
        return np.clip(np.array([a0, a1]), -1.0, 1.0).astype(np.float32)

    def _feature_ranges(self) -> dict[str, tuple[float, float]]:
        cfg, cell = self.config, self.config.cell
        reference = -20.0 * np.log10(4.0 * np.pi / cell.wavelength)
        spread = 2.0 * cell.shadowing_std_db
        edge = reference - 10.0 * cell.pathloss_exponent * np.log10(cell.cell_radius) - spread
        near = reference - 10.0 * cell.pathloss_exponent * np.log10(cell.min_distance) + spread
        return {
            "battery": (0.0, cfg.b_max),
            "harvest": (0.0, max(2.0 * cfg.harvest_power[1] * cfg.frame_duration, 1e-12)),
            "gain": (float(edge), float(near)),
            "demand": (0.0, cfg.rate_demand[1]),
            "azimuth": (-cfg.max_azimuth, cfg.max_azimuth),
            "elevation": (-np.pi / 2, np.pi / 2),
            "crb_azimuth": (-9.0, 0.0),
            "crb_elevation": (-9.0, 0.0),
            "frame": (0.0, float(cfg.horizon)),
        }

    def _observation(self) -> np.ndarray:
        log_crb = np.log10(np.clip(self._crb, 1e-300, np.inf))
        raw = {
            "battery": self._battery,
            "harvest": self._last_harvest,
            "gain": 10.0 * np.log10(self._gain),
            "demand": self._demand,
            "azimuth": self._estimate[0],
            "elevation": self._estimate[1],
            "crb_azimuth": log_crb[0],
            "crb_elevation": log_crb[1],
            "frame": self._t,
        }
        values = np.hstack([raw[name] for name in self.observation_index])
        obs = 2.0 * (values - self._obs_low) / self._obs_span - 1.0
        return np.clip(np.nan_to_num(obs, nan=1.0), -1.0, 1.0).astype(np.float32)

    def decode_observation(self, obs) -> dict[str, np.ndarray]:
        """Physical values of an observation (up to the clipping); CRBs in rad^2 and the
        frame as t / horizon; ``demand`` is each user's R_th,k (K,). A batch (..., 2 K + 7)
        gives arrays with the batch shape."""
        obs = np.asarray(obs, dtype=float)
        out = {}
        for name, index in self.observation_index.items():
            lo, hi = self._scale[name]
            out[name] = lo + (obs[..., index] + 1.0) * (hi - lo) / 2.0
        out["crb_azimuth"], out["crb_elevation"] = (
            10.0 ** out["crb_azimuth"],
            10.0 ** out["crb_elevation"],
        )
        out["frame"] = out["frame"] / self.config.horizon
        return out

    # --- episode ------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        cfg = self.config
        entropy = int(self.np_random.integers(2**63))
        children = np.random.SeedSequence(entropy).spawn(len(_STREAMS))
        self._rng = {
            name: np.random.default_rng(s) for name, s in zip(_STREAMS, children, strict=True)
        }
        init = self._rng["init"]
        self._template = sample_snapshot(cfg.cell, init)
        self._position = np.array(self._template.ue_position)
        self._distance_start = np.hypot(self._position[:, 0], self._position[:, 1])
        self._gain_start = np.array(self._template.large_scale_gain)
        self._gain = self._gain_start.copy()
        self._fading = self._template.H / np.sqrt(self._gain_start)
        self._velocity = np.zeros_like(self._position)
        self._azimuth, self._azimuth_rate = cfg.cell.target_azimuth, 0.0
        self._battery = float(init.uniform(*cfg.b_init))
        self._battery_start = self._battery
        self._harvest_on = bool(init.random() < 0.5)
        self._start_demand_chains(children[_STREAMS.index("demand")])
        self._last_harvest = 0.0
        self._crb = np.array([cfg.cell.crb_max_theta, cfg.cell.crb_max_phi])
        self._estimate = np.array([self._azimuth, cfg.cell.target_elevation])
        self._t = 0
        self._last: dict[str, Any] = {}
        self._warm: MIMOAllocation | None = None  # the last feasible frame's solution
        self._draw_frame()
        return self._observation(), {"battery": self._battery}

    def _start_demand_chains(self, seed: np.random.SeedSequence) -> None:
        """One stream per user, spawned from ``seed``, the ``demand`` stream's seed (child k
        depends on the reset seed and k only), and ``s_k(0) ~ Bernoulli(1/2)``, the
        stationary law of the symmetric chain."""
        self._demand_rng = [np.random.default_rng(child) for child in seed.spawn(self.K)]
        self._demand_high = np.array([rng.random() < 0.5 for rng in self._demand_rng])

    def _switch_demands(self) -> None:
        """One step of each user's symmetric chain (``battery_dynamics.switch_markov``),
        drawn from user k's own stream: K independent chains, whatever the actions."""
        sojourn = self.config.demand_sojourn
        self._demand_high = np.array([
            bool(battery_dynamics.switch_markov(np.array(high), rng, sojourn))
            for high, rng in zip(self._demand_high, self._demand_rng, strict=True)
        ])  # fmt: skip

    def _draw_frame(self) -> None:
        """Exogenous draws of the current frame: harvest, the users' demands
        ``R_th,k = rate_demand[s_k]`` and the reflection phase."""
        cfg = self.config
        power = cfg.harvest_power[int(self._harvest_on)]
        self._harvest = float(power * cfg.frame_duration * self._rng["harvest"].uniform(0.5, 1.5))
        self._demand = np.asarray(cfg.rate_demand, dtype=float)[self._demand_high.astype(int)]
        self._phase = float(self._rng["target"].uniform(0.0, 2.0 * np.pi))

    def step(self, action):
        omega, request = self.plan_frame(action)
        return self.finish_step(omega, request, *self.solve_frame(omega, request))

    def plan_frame(self, action) -> tuple[float, dict[str, Any]]:
        """The first part of :meth:`step`: (omega, the frame's oracle request: budget,
        snapshot and warm start; no snapshot for a silent frame)."""
        if self._t >= self.config.horizon or not hasattr(self, "_rng"):
            raise RuntimeError("call reset() before step()")
        omega, fraction = self.action_to_decision(self._checked(action))
        budget = self.transmit_budget(fraction)
        if budget <= 0.0:  # the battery cannot power the frame
            return omega, dict(budget=budget, snapshot=None, warm_start=None, constants=None)
        snapshot = self.frame_snapshot(budget)
        constants = stream_constants(snapshot)  # the precoders: computed once per frame
        warm_start = self._warm_start(snapshot, constants)
        return omega, dict(
            budget=budget, snapshot=snapshot, warm_start=warm_start, constants=constants
        )

    def solve_frame(self, omega: float, request: dict[str, Any]):
        """The oracle on a planned frame: (solution or None if silent, seconds)."""
        from optimizers.mimo import solve_mimo  # the solver loads on the first step

        if request["snapshot"] is None:
            return None, 0.0
        clock = perf_counter()
        solution = solve_mimo(
            request["snapshot"],
            omega,
            self.config.scheme,
            warm_start=request["warm_start"],
            constants=request["constants"],
            **self._oracle_options,
        )
        return solution, perf_counter() - clock

    def finish_step(self, omega: float, request: dict[str, Any], solution, seconds: float):
        """The rest of :meth:`step` once the frame is solved: energy, reward, next frame."""
        if solution is None:
            outcome = self._silent_frame(request["budget"])
        else:
            outcome = self._frame_outcome(request, solution, omega, seconds)
        battery_before = self._battery
        self._settle_energy(outcome)
        rewards = self._rewards(outcome)
        info = self._info(outcome, rewards, omega, battery_before)
        self._t += 1
        truncated = self._t >= self.config.horizon  # the one place an episode ends
        self._observe_target(outcome["crb"])
        if not truncated:
            self._advance()
        return self._observation(), float(sum(rewards.values())), False, bool(truncated), info

    def _checked(self, action) -> np.ndarray:
        action = np.asarray(action, dtype=float)
        if action.shape != (2,):
            raise ValueError(f"action must have shape (2,), got {action.shape}")
        if np.isnan(action).any():
            raise ValueError(f"action contains NaN: {action}")
        return action

    # --- one frame ----------------------------------------------------------------------------

    def frame_snapshot(self, budget: float) -> MIMOSnapshot:
        """The current frame as the oracle sees it, with transmit budget ``budget`` [W]."""
        cell = self.config.cell
        kappa = np.pi * cell.subcarrier_frequencies() / cell.f_c
        steering, d_theta, d_phi = upa_steering(
            cell.N_x, cell.N_y, self._azimuth, cell.target_elevation, kappa
        )
        magnitude = abs(self._template.alpha)
        return dataclasses.replace(
            self._template,
            P_max=budget,
            R_th=self._demand.copy(),
            target_angles=np.array([self._azimuth, cell.target_elevation]),
            alpha=complex(magnitude * np.exp(1j * self._phase)),
            ue_position=self._position.copy(),
            large_scale_gain=self._gain.copy(),
            H=np.sqrt(self._gain) * self._fading,
            steering=steering,
            d_theta=d_theta,
            d_phi=d_phi,
        )

    def transmit_budget(self, fraction: float) -> float:
        """P_T budget [W]: the agent's fraction of P_max, capped by the usable battery
        (``P T_f <= (1 - leak) B - b_min`` with P from (12)) unless grid-connected."""
        cfg, cell = self.config, self.config.cell
        budget = fraction * cell.P_max
        if cfg.grid_connected:
            return budget
        usable = battery_dynamics.usable_energy(self._battery, b_min=cfg.b_min, leakage=cfg.leakage)
        spare = float(usable) / cfg.frame_duration - cell.P_c - cell.xi * _SE_BOUND * cell.K
        return float(min(budget, cell.eta * spare))

    def _frame_outcome(self, request, solution, omega: float, seconds: float) -> dict[str, Any]:
        """The solved frame: its true-model evaluation within the budget, energy, checks."""
        snapshot = request["snapshot"]
        allocation, evaluation = solution.allocation, solution.evaluation
        if solution.feasible:
            self._warm = allocation
        else:  # the frame's start, whatever the oracle's best-effort point was
            allocation = _fallback(snapshot, request["warm_start"], request["constants"])
            if allocation is not solution.allocation:
                evaluation = evaluate(snapshot, allocation, omega, request["constants"])
        evaluation = _within_budget(snapshot, allocation, evaluation, omega, request["constants"])
        return dict(
            evaluation=evaluation,
            budget=request["budget"],
            status=solution.info.get("status", ""),
            iterations=int(solution.info.get("iterations") or 0),
            time=seconds,
            transmit_power=evaluation.transmit_power,
            energy=evaluation.total_power * self.config.frame_duration,
            se=evaluation.se,
            crb=evaluation.crb,
            rate_met=evaluation.checks["se"].copy(),
            crb_met=np.array([evaluation.checks["crb_theta"], evaluation.checks["crb_phi"]]),
        )

    def _warm_start(self, snapshot: MIMOSnapshot, constants) -> MIMOAllocation | None:
        """The last feasible frame's allocation, scaled (P_T of (11) is quadratic in the
        amplitudes) to within 99.9 % of this frame's budget; ``solve_mimo`` uses it as the
        only start if it is feasible for this frame, else runs its cold starts."""
        if not self.config.warm_start or self._warm is None:
            return None
        power = transmit_power_closed_form(constants, self._warm)
        scale = min(1.0, np.sqrt(0.999 * snapshot.P_max / power)) if power > 0 else 1.0
        return MIMOAllocation(a=self._warm.a * scale, b=self._warm.b * scale)

    def _silent_frame(self, budget: float) -> dict[str, Any]:
        K = self.K
        return dict(
            evaluation=None,
            budget=max(budget, 0.0),
            status="silent",
            iterations=0,
            time=0.0,
            transmit_power=0.0,
            energy=0.0,
            se=np.zeros(K),
            crb=np.full(2, np.inf),
            rate_met=np.zeros(K, bool),
            crb_met=np.zeros(2, bool),
        )

    def _settle_energy(self, outcome: dict[str, Any]) -> None:
        """Battery pays the frame (grid the rest, if connected); harvest arrives at its end."""
        cfg = self.config
        usable = float(
            battery_dynamics.usable_energy(self._battery, b_min=cfg.b_min, leakage=cfg.leakage)
        )
        from_battery = min(outcome["energy"], usable)
        outcome["energy_grid"] = outcome["energy"] - from_battery
        self._battery = float(
            battery_dynamics.battery_update(
                self._battery,
                from_battery,
                self._harvest,
                b_max=cfg.b_max,
                leakage=cfg.leakage,
                charge_efficiency=cfg.charge_efficiency,
            )
        )
        outcome["outage"] = self._battery < cfg.b_min + cfg.outage_margin

    def _rewards(self, outcome: dict[str, Any]) -> dict[str, float]:
        cfg, evaluation = self.config, outcome["evaluation"]
        comm = sense = 0.0
        if evaluation is not None:
            comm = (1.0 - cfg.sensing_weight) * evaluation.ee_comm / cfg.ee_comm_ref
            sense = cfg.sensing_weight * evaluation.ee_sense / cfg.ee_sense_ref
        return {
            "comm": float(comm),
            "sense": float(sense),
            "rate_miss": -cfg.rate_penalty * float(np.sum(~outcome["rate_met"])),
            "crb_miss": -cfg.crb_penalty * float(np.sum(~outcome["crb_met"])),
            "outage": -cfg.outage_penalty * float(outcome["outage"]),
            "grid": -cfg.grid_price * outcome["energy_grid"] / cfg.e_ref,
        }

    def _info(self, outcome, rewards, omega, battery_before) -> dict[str, Any]:
        evaluation = outcome["evaluation"]
        ee = (evaluation.ee_comm, evaluation.ee_sense) if evaluation is not None else (0.0, 0.0)
        info = {
            "rewards": rewards,
            "omega": omega,
            "budget": outcome["budget"],
            "transmit_power": outcome["transmit_power"],
            "energy": outcome["energy"],
            "energy_grid": outcome["energy_grid"],
            "ee_comm": float(ee[0]),
            "ee_sense": float(ee[1]),
            "se": outcome["se"],
            "crb": outcome["crb"],
            "rate_demand": self._demand.copy(),
            "rate_met": outcome["rate_met"],
            "crb_met": outcome["crb_met"],
            "outage": bool(outcome["outage"]),
            "battery_before": battery_before,
            "battery": self._battery,
            "harvest": self._harvest,
            "status": outcome["status"],
            "oracle_time_s": WallTime(outcome["time"]),
            "oracle_iterations": outcome["iterations"],
        }
        self._last = info
        return info

    def _observe_target(self, crb: np.ndarray) -> None:
        """The angle estimate after the frame: truth plus N(0, CRB) (kept if silent)."""
        noise = self._rng["sensing"].standard_normal(2)  # drawn every frame: action-free
        self._crb = np.asarray(crb, dtype=float)
        if np.all(np.isfinite(self._crb)):
            truth = np.array([self._azimuth, self.config.cell.target_elevation])
            self._estimate = truth + np.sqrt(self._crb) * noise

    def _advance(self) -> None:
        """Move the exogenous processes to the next frame (independent of the actions)."""
        cfg, rng = self.config, self._rng
        self._last_harvest = self._harvest
        self._harvest_on = bool(
            battery_dynamics.switch_markov(
                np.array(self._harvest_on), rng["harvest"], cfg.harvest_sojourn
            )
        )
        self._switch_demands()
        self._position, self._velocity = dynamics.ring_gauss_markov_step(
            self._position,
            self._velocity,
            rng["mobility"],
            inner=cfg.cell.min_distance,
            outer=cfg.cell.cell_radius,
            memory=cfg.mobility_memory,
            speed=cfg.ue_speed,
            dt=cfg.frame_duration,
        )
        distance = np.hypot(self._position[:, 0], self._position[:, 1])
        self._gain = dynamics.distance_gain(
            self._gain_start, self._distance_start, distance, cfg.cell.pathloss_exponent
        )
        self._fading = dynamics.fading_step(self._fading, rng["fading"], cfg.fading_correlation)
        self._azimuth, self._azimuth_rate = dynamics.target_step(
            self._azimuth,
            self._azimuth_rate,
            rng["target"],
            memory=cfg.target_memory,
            rate_scale=cfg.target_rate_scale,
            max_azimuth=cfg.max_azimuth,
        )
        self._draw_frame()

    # --- rendering ----------------------------------------------------------------------------

    def render(self):
        from isac_gym.envs.mimo_rendering import render_mimo
        from isac_gym.envs.rendering import checked_render

        return checked_render(self, render_mimo)


def _fallback(snapshot, warm_start, constants) -> MIMOAllocation:
    """What an infeasible frame transmits: its warm start (the last feasible frame's
    allocation, scaled onto this budget), else the equal split at half the budget; the
    points ``solve_mimo`` itself returns for a frame it certifies infeasible."""
    from optimizers.mimo.dinkelbach import infeasible_point  # loaded with the oracle

    return infeasible_point(snapshot, constants, warm_start)


def _within_budget(snapshot, allocation: MIMOAllocation, evaluation, omega: float, constants):
    """The oracle's point, scaled down onto the budget if a best-effort (infeasible) point
    exceeds it; the true model judges the result either way."""
    excess = evaluation.transmit_power / snapshot.P_max
    if excess <= 1.0 + 1e-9:
        return evaluation
    scale = 1.0 / np.sqrt(excess)
    scaled = MIMOAllocation(a=allocation.a * scale, b=allocation.b * scale)
    return evaluate(snapshot, scaled, omega, constants)
