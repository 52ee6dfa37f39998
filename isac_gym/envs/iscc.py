"""``isac_gym/ISCC-v0``: the multi-slot ISCC system with batteries, harvesting and AP load.

The physics lives in :mod:`isac_gym.iscc` (one slot) and :mod:`isac_gym.iscc.dynamics`
(slot to slot); the per-slot optimiser in :mod:`optimizers`. This module only
orchestrates them and maps them to Gymnasium spaces.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from isac_gym.envs.allocation import (
    DROP_CAUSES,
    UNDIAGNOSED,
    UNDIAGNOSED_CODE,
    SlotProblem,
    allocation_rounds,
    run_rounds,
    solve_each,
)
from isac_gym.envs.config import ISCCEnvConfig, make_config
from isac_gym.iscc import dynamics
from isac_gym.iscc.model import ENERGY_ATOL, FEASIBILITY_RTOL
from isac_gym.iscc.scenario import (
    Snapshot,
    channels_from_draws,
    draw_fading,
    pathloss_gain,
    sample_ue_positions,
    snapshot_from_channels,
)

#: Per-UE observation features, in order; then the global ``backlog`` and ``slot``.
UE_FEATURES = ("battery", "harvest", "task_size", "deadline", "cpu", "channel")
_STREAMS = ("init", "task", "harvest", "mobility", "fading", "load")


class WallTime(float):
    """A wall-clock duration [s] in ``info``: any two compare equal.

    Timings describe the machine, not the environment, so seeded-determinism checks
    (Gymnasium's ``check_env`` compares step infos) must not see them differ. Against
    a plain number it compares by value.
    """

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WallTime) or float(self) == other

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # equality is not by value, so no hash


class ISCCEnv(gym.Env):
    """K battery-powered UEs sense a target and offload computation to an edge AP.

    ## Description
    One step is one scheduling slot of the ISCC system of Dong et al. (2026). Each UE
    may have a task (Q_k bits, deadline tau_k); it senses the common target and
    offloads a fraction alpha_k of the task to the AP (eqs. (2)-(17) of the paper).
    The paper optimises one slot for given energy weights beta_k; its footnote 7 leaves
    their long-term choice open. Here batteries, energy harvesting, UE mobility and a
    congested AP make that choice matter: spending UE energy now may cost a dropped
    task later, offloading now congests the AP later.

    Per slot, the optimiser (``oracle``: ``optimizers.iscc.solve`` with ``sca_admm`` or
    ``fast``) minimises ``sum_k w_ue E_k^u + beta_k E_k^ap`` under the paper's sensing,
    latency, CPU and power constraints, plus the energy budget ``E_k^u <= budget_k`` (see
    Battery reserve and outage) and the AP capacity left by background load,
    ``sum_k f_k^ap <= C^ap - f_res(Z)``. If the oracle's allocation fails a UE, the slot
    is retried with the minimum-UE-energy allocation (``fast``, beta -> 0 for the failing
    UEs); UEs that still fail drop their task (they stay silent; no energy spent) and
    the rest is re-solved. Drops are counted by cause: ``battery`` (an unlimited battery
    would serve the task), ``ap_capacity`` (the link delivers in time but AP processing
    does not), ``deadline`` (link, sensing or local-CPU limits) and, in ``beta_budget``
    mode, ``budget`` (the battery's full usable energy would serve it, the agent's budget
    does not). Finding the cause takes two (``beta_budget``: three) more solves per
    failing round; with ``diagnose_drops=False`` (training) they are skipped
    and drops are counted as ``undiagnosed`` (the trajectory is the same). The slot's
    rounds of oracle calls are :func:`isac_gym.envs.allocation.allocation_rounds`,
    shared with the native vector env (``gymnasium.make_vec``), which solves the rounds
    of N envs with one ``optimizers.solve_batch`` call.

    Dynamics (:mod:`isac_gym.iscc.dynamics`): battery
    ``B(t+1) = min(B_max, (1 - leak) B(t) - E^u(t) + eta_c e(t))`` with harvest ``e(t)``
    arriving at the end of the slot; harvesting ``e = delta Poisson(lambda_s)`` with an
    on/off Markov state (or i.i.d. uniform); Gauss-Markov mobility and block fading
    (a fresh channel draw each slot); AP backlog
    ``Z(t+1) = max(0, Z + A + sum_k alpha_k varpi_k Q_k - C^ap T)`` with Markov-switching
    background arrivals A and reserve ``f_res(Z) = min(r C^ap, Z / T)``.

    Battery reserve and outage: below ``b_min`` lies the hard reserve (never spent:
    energy causality); a UE ending a slot below ``b_out = b_min + outage_margin`` is in
    outage (Rewards). The oracle alone never causes an outage: in ``beta`` and
    ``allocation`` modes its budget is the energy above the outage threshold,
    ``budget_k = max(0, (1 - leak) B_k - b_out)``, so with the harvest arriving after the
    slot ``B_k(t+1) >= b_out`` whenever ``B_k(t)`` allowed it. In ``beta_budget`` mode the
    agent sets the budget as a fraction of the energy above ``b_min``,
    ``budget_k = f_k max(0, (1 - leak) B_k - b_min)``: a fraction up to
    ``((1 - leak) B_k - b_out) / ((1 - leak) B_k - b_min)`` stays out of outage, a larger
    one dips into the margin ``[b_min, b_out)`` and pays the outage penalty. So whether
    to spend into the reserve (e.g. to save a task worth ``drop_penalty``) is the agent's
    decision, not an accident of the two constants; ``b_min`` stays the physical floor
    in every mode. The oracle solves under the budget less its feasibility tolerance
    (``budget / (1 + 1e-6) - 1e-12``, ``info["energy_budget"]``), so ``E_k^u <= budget_k``
    holds exactly and float rounding never ends a slot a hair below ``b_out``. (Before
    ``beta_budget`` existed the oracle's floor was ``b_min``, so it could spend into
    outage by itself.)

    All exogenous randomness (tasks, harvesting, mobility, fading, background load) is
    drawn from streams seeded at ``reset`` and independent of the actions: the same
    seed gives every policy, in either action mode, the same tasks, harvests and
    channels (common random numbers).

    ## Action Space
    ``Box(-1, 1, (K,), float32)`` (``beta_budget``: ``(2K,)``); out-of-range values are
    clipped, NaN raises ``ValueError``.

    * ``action_mode="beta"`` (default): ``log10 beta_k = lo + (a_k + 1)(hi - lo) / 2``
      with ``(lo, hi) = log10_beta_range`` (default -2..2, so a = 0 is beta = 1, CTEM).
    * ``action_mode="allocation"``: ``alpha_k = (a_k + 1) / 2``; the environment
      completes the slot with the minimal feasible CPU frequencies and the ``fast``
      beams (``optimizers.iscc.solve(..., method="fast", alpha_fixed=alpha)``). There is no
      fallback: a UE whose alpha cannot meet its constraints drops its task.
    * ``action_mode="beta_budget"``: ``a[:K]`` gives beta_k as in ``beta`` mode,
      ``a[K:]`` the fraction ``f_k = (a_{K+k} + 1) / 2`` of the energy above ``b_min``
      that UE k may spend (``budget_k = f_k ((1 - leak) B_k - b_min)^+``; a = -1 spends
      nothing, a = 1 all but the hard reserve): the per-slot energy budget of LODCO-style
      offloading. The oracle and its fallback solve under that budget.

    ## Observation Space
    ``Box(-1, 1, (6K + 2,), float32)``; features are mapped affinely to [-1, 1] and
    clipped. ``observation_index`` names the slices, ``decode_observation`` inverts the
    map to physical units.

    | index | feature | physical range mapped to [-1, 1] |
    |---|---|---|
    | 0..K-1 | ``battery``: B_k(t) | [0, b_max] J |
    | K..2K-1 | ``harvest``: e_k(t-1), the last harvest | [0, 2 delta lambda_on] J |
    | 2K..3K-1 | ``task_size``: Q_k(t), 0 without task | [0, task_bits[1]] bit |
    | 3K..4K-1 | ``deadline``: tau_k(t) | [0, slot_duration] s |
    | 4K..5K-1 | ``cpu``: C_k^u | [0, cpu_capacity[1]] cycle/s |
    | 5K..6K-1 | ``channel``: 10 log10 g_k, the UE-AP path gain | gains at the cell edges |
    | 6K | ``backlog``: Z(t) / (C^ap T) | [0, 2] |
    | 6K+1 | ``slot``: t / horizon | [0, 1] |

    ## Rewards
    ``r = -(sum_k E_k^u + mu sum_k E_k^ap) / e_ref - drop_penalty * drops
    - outage_penalty * outages (+ terminal)``, with ``mu`` the operator's fixed AP-energy
    price (never the action's beta); an outage is a UE ending the slot with
    ``B_k < b_out = b_min + outage_margin``. At truncation the terminal term
    ``-terminal_battery_price * sum_k max(0, B_k(0) - B_k(T)) / e_ref`` charges the
    battery drained over the episode. The components are in ``info["rewards"]``.

    ## Starting State
    ``B_k(0) ~ U[b_init]``, ``C_k^u ~ U[cpu_capacity]`` (fixed for the episode), UEs
    uniform in the sector at rest, harvest and load states uniform, empty backlog.

    ## Episode End
    Truncation after ``horizon`` slots (default 500); no termination.

    ## Arguments
    ``gymnasium.make("isac_gym/ISCC-v0", preset="default", render_mode=None, **config)``:
    ``preset`` is ``"default"`` (K = 4, heterogeneous deadlines and CPUs, background
    load) or ``"paper"`` (the paper's single-slot defaults: K = 2, tau = 0.4 s,
    C^u = 1 GHz, no background load); ``config`` keys are fields of
    :class:`isac_gym.envs.config.ISCCEnvConfig` or physical fields of
    :class:`isac_gym.iscc.ISCCConfig` (e.g. ``K=6``, ``oracle="fast"``,
    ``action_mode="allocation"``, ``horizon=200``). ``render_mode="rgb_array"`` draws
    the sector, batteries and offloading fractions.

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        preset: str | ISCCEnvConfig = "default",
        render_mode: str | None = None,
        **config: Any,
    ) -> None:
        self.config = make_config(preset, **config)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
        self.render_mode = render_mode
        K = self.K = self.config.K
        self._action_size = 2 * K if self.config.action_mode == "beta_budget" else K
        self.action_space = spaces.Box(-1.0, 1.0, (self._action_size,), np.float32)
        self.observation_space = spaces.Box(-1.0, 1.0, (6 * K + 2,), np.float32)
        self.observation_index: dict[str, slice | int] = {
            name: slice(i * K, (i + 1) * K) for i, name in enumerate(UE_FEATURES)
        }
        self.observation_index.update(backlog=6 * K, slot=6 * K + 1)
        self._scale = self._feature_ranges()
        # the same ranges as vectors over the observation entries (one affine map per step)
        ranges = np.empty((2, 6 * K + 2))
        for name, index in self.observation_index.items():
            ranges[0, index], ranges[1, index] = self._scale[name]
        self._obs_low, self._obs_span = ranges[0], ranges[1] - ranges[0]
        self._t = 0
        self._last: dict[str, Any] = {}

    # --- action and observation maps -------------------------------------------------

    def action_to_beta(self, action) -> np.ndarray:
        """beta_k for actions in [-1, 1] (clipped); see Action Space."""
        lo, hi = self.config.log10_beta_range
        a = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
        return 10.0 ** (lo + (a + 1.0) * (hi - lo) / 2.0)

    def beta_to_action(self, beta) -> np.ndarray:
        """The action giving beta_k (clipped to the representable range)."""
        lo, hi = self.config.log10_beta_range
        if hi == lo:
            return np.zeros(np.shape(beta), np.float32)
        action = 2.0 * (np.log10(np.asarray(beta, dtype=float)) - lo) / (hi - lo) - 1.0
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    @staticmethod
    def action_to_fraction(action) -> np.ndarray:
        """beta_budget mode: the budget fraction ``f = (a + 1) / 2`` of ``a`` (clipped)."""
        return (np.clip(np.asarray(action, dtype=float), -1.0, 1.0) + 1.0) / 2.0

    @staticmethod
    def fraction_to_action(fraction) -> np.ndarray:
        """The action giving the budget fraction ``fraction`` (clipped to [0, 1])."""
        fraction = np.clip(np.asarray(fraction, dtype=float), 0.0, 1.0)
        return (2.0 * fraction - 1.0).astype(np.float32)

    def _feature_ranges(self) -> dict[str, tuple[float, float]]:
        cfg, cell = self.config, self.config.cell
        dh2 = (cell.h_a - cell.h_u) ** 2
        near, far = np.sqrt(cell.min_ue_ap_distance**2 + dh2), np.sqrt(cell.r_0**2 + dh2)
        gain_db = 10.0 * np.log10(pathloss_gain(cell, np.array([far, near])))
        return {
            "battery": (0.0, cfg.b_max),
            "harvest": (0.0, max(2.0 * cfg.harvest_quantum * cfg.harvest_rate_on, 1e-12)),
            "task_size": (0.0, cfg.task_bits[1]),
            "deadline": (0.0, cfg.slot_duration),
            "cpu": (0.0, cfg.cpu_capacity[1]),
            "channel": (float(gain_db[0]), float(gain_db[1])),
            "backlog": (0.0, 2.0 * cell.C_ap * cfg.slot_duration),
            "slot": (0.0, float(cfg.horizon)),
        }

    def _observation(self) -> np.ndarray:
        s = self._snapshot
        raw = {
            "battery": self._battery,
            "harvest": self._last_harvest,
            "task_size": np.where(self._task, self._tasks["Q"], 0.0),
            "deadline": self._tasks["tau"],
            "cpu": self._cpu,
            "channel": 10.0 * np.log10(s.path_gain),
            "backlog": self._backlog,
            "slot": self._t,
        }
        values = np.hstack([raw[name] for name in self.observation_index])  # in index order
        obs = 2.0 * (values - self._obs_low) / self._obs_span - 1.0
        return np.clip(obs, -1.0, 1.0).astype(np.float32)

    def decode_observation(self, obs) -> dict[str, np.ndarray]:
        """Physical values of an observation (up to the clipping to [-1, 1]).

        Keys: the features of Observation Space in their units, plus ``ap_reserved``
        (the fraction of C^ap the backlog reserves). Per-UE features are (K,) arrays,
        global ones floats; a batch (..., 6K+2) gives arrays with the batch shape.
        """
        obs = np.asarray(obs, dtype=float)
        out = {}
        for name, index in self.observation_index.items():
            lo, hi = self._scale[name]
            out[name] = lo + (obs[..., index] + 1.0) * (hi - lo) / 2.0
        out["slot"] = out["slot"] / self.config.horizon
        C_ap, T = self.config.cell.C_ap, self.config.slot_duration
        out["ap_reserved"] = np.minimum(self.config.reserve_max, out["backlog"] / (C_ap * T))
        return out

    # --- episode ------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        cfg, K = self.config, self.K
        entropy = int(self.np_random.integers(2**63))
        children = np.random.SeedSequence(entropy).spawn(len(_STREAMS))
        streams = zip(_STREAMS, children, strict=True)
        self._rng = {name: np.random.default_rng(seq) for name, seq in streams}
        init = self._rng["init"]
        self._battery = init.uniform(*cfg.b_init, K)
        self._battery_start = self._battery.copy()
        self._cpu = init.uniform(*cfg.cpu_capacity, K)
        self._position = sample_ue_positions(cfg.cell, init, K)
        self._heading = init.uniform(0.0, 2.0 * np.pi, K)
        self._velocity = np.zeros((K, 2))
        self._harvest_on = init.random(K) < 0.5
        self._load_high = bool(init.random() < 0.5)
        self._backlog = 0.0
        self._last_harvest = np.zeros(K)
        self._t = 0
        self._last = {}
        self._draw_slot()
        return self._observation(), {"battery": self._battery.copy(), "task": self._task.copy()}

    def _draw_slot(self, channels: bool = True) -> None:
        """Exogenous draws of the current slot: tasks, fading, harvest, arrivals; then the
        slot's channels (``channels=False``: left to the caller, :meth:`_place_channels`,
        as the vector env does for all its envs at once)."""
        cfg, K, rng = self.config, self.K, self._rng
        self._task = rng["task"].random(K) < cfg.task_probability
        Q = rng["task"].uniform(*cfg.task_bits, K)
        tau = rng["task"].uniform(*cfg.deadline, K)
        self._fading = draw_fading(cfg.cell, rng["fading"], K)
        self._tasks = dict(Q=Q, tau=tau, C_u=self._cpu)
        if cfg.harvest_process == "markov":
            self._harvest = dynamics.harvest_markov(
                self._harvest_on,
                rng["harvest"],
                quantum=cfg.harvest_quantum,
                rate_on=cfg.harvest_rate_on,
                rate_off=cfg.harvest_rate_off,
            )
        else:
            mean_rate = (cfg.harvest_rate_on + cfg.harvest_rate_off) / 2.0
            self._harvest = dynamics.harvest_uniform(
                K, rng["harvest"], quantum=cfg.harvest_quantum, mean_rate=mean_rate
            )
        self._arrivals = dynamics.background_arrivals(
            self._load_high,
            rng["load"],
            capacity_cycles=self._capacity_cycles,
            load=cfg.background_load,
        )
        if channels:
            fields = channels_from_draws(cfg.cell, self._position, self._heading, self._fading)
            self._place_channels(fields)

    def _place_channels(self, channels: dict[str, np.ndarray]) -> None:
        """The slot's snapshot from its channel fields (``channels_from_draws``); the
        constants are the previous slot's (the same config)."""
        self._snapshot = snapshot_from_channels(
            self.config.cell,
            self._position,
            self._heading,
            channels,
            like=self.__dict__.get("_snapshot"),
        )

    @property
    def _capacity_cycles(self) -> float:
        return self.config.cell.C_ap * self.config.slot_duration

    def step(self, action):
        problem, reserve = self._slot_problem(self._checked_action(action))
        (outcome,) = run_rounds([allocation_rounds(problem)], solve_each)
        return self._finish_step(problem, reserve, outcome)

    # --- the step's hooks (shared with ISCCVectorEnv) --------------------------------------

    def _checked_action(self, action) -> np.ndarray:
        if self._t >= self.config.horizon or not hasattr(self, "_rng"):
            raise RuntimeError(
                "call reset() before step()"
                + (" (the episode has ended)" if hasattr(self, "_rng") else "")
            )
        action = np.asarray(action, dtype=float)
        if action.shape != (self._action_size,):
            raise ValueError(
                f"action must have shape ({self._action_size},) in action_mode "
                f"{self.config.action_mode!r}, got {action.shape}"
            )
        if np.isnan(action).any():
            raise ValueError(f"action contains NaN: {action}")
        return np.clip(action, -1.0, 1.0)

    def _slot_problem(self, action: np.ndarray) -> tuple[SlotProblem, float]:
        """The slot the oracle solves: the energy budgets (see Battery reserve and outage)
        and C^ap less the reserve."""
        cfg, K = self.config, self.K
        beta, alpha_fixed, full_budget = self.action_to_beta(action[:K]), None, None
        if cfg.action_mode == "allocation":
            beta, alpha_fixed = np.full(K, cfg.mu), (action + 1.0) / 2.0
        if cfg.action_mode == "beta_budget":
            full_budget = dynamics.usable_energy(
                self._battery, b_min=cfg.b_min, leakage=cfg.leakage
            )
            budget = self.action_to_fraction(action[K:]) * full_budget
        else:
            budget = dynamics.usable_energy(
                self._battery, b_min=cfg.outage_threshold, leakage=cfg.leakage
            )
        # the oracle's energy check allows E <= budget (1 + rtol) + atol: solve under a
        # budget that much smaller, so that E^u <= budget holds exactly
        budget = np.maximum(budget / (1.0 + FEASIBILITY_RTOL) - ENERGY_ATOL, 0.0)
        reserve = dynamics.reserved_capacity(
            self._backlog,
            C_ap=cfg.cell.C_ap,
            slot_duration=cfg.slot_duration,
            reserve_max=cfg.reserve_max,
        )
        slot = self._snapshot.replace(
            energy_budget=budget, C_ap=cfg.cell.C_ap - reserve, **self._tasks
        )
        problem = SlotProblem(
            slot=slot,
            task=self._task,
            beta=beta,
            alpha_fixed=alpha_fixed,
            oracle=cfg.oracle,
            weight_ue=np.full(self.K, cfg.ue_energy_weight),
            full_capacity=cfg.cell.C_ap,
            diagnose=cfg.diagnose_drops,
            regret_mu=cfg.mu if cfg.compute_regret else None,
            full_budget=full_budget,
        )
        return problem, reserve

    def _finish_step(self, problem: SlotProblem, reserve: float, outcome: dict[str, Any]):
        """Apply the slot's allocation: dynamics, reward, info, the next slot's draws."""
        reward, truncated, info = self._settle_step(problem, reserve, outcome)
        return self._observation(), reward, False, truncated, info

    def _settle_step(self, problem, reserve, outcome, channels: bool = True):
        """``(reward, truncated, info)`` of the slot; the next slot drawn (its channels
        only with ``channels``, see :meth:`_draw_slot`)."""
        transition = self._transition(problem.slot, outcome)
        self._t += 1
        truncated = self._t >= self.config.horizon  # the one place an episode ends
        rewards = self._reward(outcome, transition, truncated)
        info = self._info(problem, reserve, outcome, transition, rewards)
        self._last = {"alpha": outcome["alpha"], "success": outcome["success"]}
        if not truncated:
            self._advance(channels)
        return float(sum(rewards.values())), bool(truncated), info

    def _transition(self, slot: Snapshot, outcome: dict[str, Any]) -> dict[str, Any]:
        """Battery and AP backlog updates; outages and drop counts of the slot."""
        cfg = self.config
        battery_before = self._battery
        self._battery = dynamics.battery_update(
            battery_before,
            outcome["energy_ue"],
            self._harvest,
            b_max=cfg.b_max,
            leakage=cfg.leakage,
            charge_efficiency=cfg.charge_efficiency,
        )
        offloaded = float((outcome["alpha"] * slot.varpi * slot.Q).sum())
        self._backlog = dynamics.backlog_update(
            self._backlog, self._arrivals, offloaded, capacity_cycles=self._capacity_cycles
        )
        causes = DROP_CAUSES if cfg.diagnose_drops else (UNDIAGNOSED,)
        first_code = 1 if cfg.diagnose_drops else UNDIAGNOSED_CODE
        counts = np.bincount(outcome["cause"], minlength=UNDIAGNOSED_CODE + 1)
        return {
            "battery_before": battery_before,
            "outage": self._battery < cfg.outage_threshold,
            "drops": {cause: int(counts[first_code + i]) for i, cause in enumerate(causes)},
        }

    def _reward(self, outcome, transition, truncated: bool) -> dict[str, float]:
        """The reward's components (see Rewards)."""
        cfg = self.config
        weighted = float(outcome["energy_ue"].sum() + cfg.mu * outcome["energy_ap"].sum())
        rewards = {
            "energy": -weighted / cfg.e_ref,
            "drop": -cfg.drop_penalty * sum(transition["drops"].values()),
            "outage": -cfg.outage_penalty * float(transition["outage"].sum()),
            "terminal": 0.0,
        }
        if truncated:
            drained = np.maximum(self._battery_start - self._battery, 0.0)
            rewards["terminal"] = -cfg.terminal_battery_price * float(np.sum(drained)) / cfg.e_ref
        return rewards

    def _info(self, problem, reserve, outcome, transition, rewards) -> dict[str, Any]:
        cfg = self.config
        energy_ue, energy_ap = outcome["energy_ue"], outcome["energy_ap"]
        info = {
            "rewards": rewards,
            "energy_ue": energy_ue,
            "energy_ap": energy_ap,
            "energy_cost": float(energy_ue.sum() + energy_ap.sum()),
            "weighted_cost": float(energy_ue.sum() + cfg.mu * energy_ap.sum()),
            "alpha": outcome["alpha"],
            "beta": problem.beta,
            "energy_budget": problem.slot.energy_budget.copy(),
            "task": self._task.copy(),
            "success": outcome["success"],
            "drops": transition["drops"],
            "drop_cause": outcome["cause"],
            "outage": transition["outage"],
            "battery_before": transition["battery_before"],
            "battery": self._battery.copy(),
            "harvest": self._harvest.copy(),
            "backlog": self._backlog,
            "ap_reserved": reserve / cfg.cell.C_ap,
            "oracle_time_s": WallTime(outcome["time"]),
            "oracle_iterations": outcome["iterations"],
        }
        if "regret_cost" in outcome:
            info["oracle_weighted_cost"] = outcome["regret_cost"]
        return info

    def _advance(self, channels: bool = True) -> None:
        """Advance the exogenous processes to the next slot and draw it."""
        cfg, rng = self.config, self._rng
        self._last_harvest = self._harvest
        self._harvest_on = dynamics.switch_markov(
            self._harvest_on, rng["harvest"], cfg.harvest_sojourn
        )
        self._load_high = bool(
            dynamics.switch_markov(np.array(self._load_high), rng["load"], cfg.load_sojourn)
        )
        self._position, self._velocity = dynamics.gauss_markov_step(
            cfg.cell,
            self._position,
            self._velocity,
            rng["mobility"],
            memory=cfg.mobility_memory,
            speed=cfg.ue_speed,
            dt=cfg.slot_duration,
        )
        self._draw_slot(channels)

    # --- rendering -------------------------------------------------------------------------

    def render(self):
        from isac_gym.envs.rendering import checked_render, render_iscc

        return checked_render(self, render_iscc)
