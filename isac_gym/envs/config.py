"""One validated configuration of the multi-slot ISCC environment, with presets.

``make_config(preset, **overrides)`` merges strictly (HighwayEnv style): a key is either
a field of :class:`ISCCEnvConfig` or a physical field of
:class:`isac_gym.iscc.ISCCConfig` (``K``, ``C_ap``, ``P_max``, ...); anything else is an
error that names it. Task size, deadline and UE CPU capacity are drawn by the
environment, so they are set here (``task_bits``, ``deadline``, ``cpu_capacity``), not
through ``ISCCConfig``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from isac_gym import validation
from isac_gym.iscc import ISCCConfig

ACTION_MODES = ("beta", "allocation", "beta_budget")
ORACLES = ("sca_admm", "fast")
HARVEST_PROCESSES = ("markov", "uniform")
#: ISCCConfig fields the environment draws itself (use the env fields instead).
_DRAWN_BY_ENV = {"Q": "task_bits", "tau": "deadline", "C_u": "cpu_capacity", "beta": "action"}
#: fields in (0, inf)
_POSITIVE = ("slot_duration", "e_ref", "b_max", "harvest_quantum", "mu", "ue_energy_weight")
#: fields in [0, inf)
_NON_NEGATIVE = (
    "drop_penalty",
    "outage_penalty",
    "terminal_battery_price",
    "ue_speed",
    "harvest_rate_on",
    "harvest_rate_off",
    "outage_margin",
)


@dataclass(frozen=True)
class ISCCEnvConfig:
    """Every parameter of ``isac_gym/ISCC-v0``; units SI (J, s, cycle/s, bit, m)."""

    cell: ISCCConfig = field(default_factory=lambda: ISCCConfig.paper(K=4))  #: physics
    #: "beta" (oracle allocates), "allocation" (alpha_k) or "beta_budget" (beta_k and a
    #: per-UE energy budget; see ISCCEnv)
    action_mode: str = "beta"
    oracle: str = "sca_admm"  #: per-slot solver method: "sca_admm" or "fast"
    horizon: int = 500  #: slots per episode (truncation)
    slot_duration: float = 1.0  #: T [s], >= every deadline
    # --- objective ---------------------------------------------------------------
    mu: float = 0.1  #: the operator's fixed AP-energy price in the reward
    e_ref: float = 0.1  #: energy scale of the reward [J]
    drop_penalty: float = 2.0  #: reward penalty per dropped task
    outage_penalty: float = 1.0  #: reward penalty per UE-slot in battery outage
    terminal_battery_price: float = 1.0  #: price of battery drained over the episode
    ue_energy_weight: float = 1.0  #: oracle weight w_ue on E^u (AP weight: beta_k)
    log10_beta_range: tuple[float, float] = (-2.0, 2.0)  #: action -1..1 -> log10 beta
    compute_regret: bool = False  #: allocation mode: also solve with the oracle at mu
    #: find each drop's cause (two extra solves per failing slot); off: ``undiagnosed``
    diagnose_drops: bool = True
    # --- batteries ---------------------------------------------------------------
    b_max: float = 1.0  #: battery capacity [J]
    b_min: float = 0.05  #: hard reserve, never spent (energy causality) [J]
    b_init: tuple[float, float] = (0.3, 0.6)  #: B_k(0) ~ U[lo, hi] [J]
    charge_efficiency: float = 0.9  #: eta_c
    leakage: float = 1e-3  #: fraction of the charge lost per slot
    #: outage when B_k < b_min + margin [J]; the oracle alone never spends below this
    #: threshold (beta, allocation modes); only a beta_budget action may (see ISCCEnv)
    outage_margin: float = 0.02
    # --- harvesting ---------------------------------------------------------------
    harvest_process: str = "markov"  #: "markov" (on/off Poisson) or "uniform" (i.i.d.)
    #: delta [J]. With lambda_on/off it harvests ~4.2 mJ per UE-slot, about what the myopic
    #: beta = mu spends: batteries then run down in "off" periods and tasks drop, so the
    #: long-horizon choice of beta matters (with delta = 1 mJ batteries stay full).
    harvest_quantum: float = 0.3e-3
    harvest_rate_on: float = 25.0  #: lambda_on [quanta/slot]
    harvest_rate_off: float = 3.0  #: lambda_off [quanta/slot]
    harvest_sojourn: float = 50.0  #: mean slots in a harvesting state
    # --- tasks and devices ------------------------------------------------------------
    task_probability: float = 0.9  #: P(a UE has a task in a slot)
    task_bits: tuple[float, float] = (1e6, 1e6)  #: Q_k ~ U[lo, hi] [bit]
    deadline: tuple[float, float] = (0.6, 1.0)  #: tau_k ~ U[lo, hi] [s]
    cpu_capacity: tuple[float, float] = (0.8e9, 1.2e9)  #: C_k^u ~ U[lo, hi] per episode
    # --- mobility -----------------------------------------------------------------------
    ue_speed: float = 1.0  #: Gauss-Markov velocity scale per axis [m/s]
    mobility_memory: float = 0.9  #: Gauss-Markov memory m in [0, 1)
    # --- AP background load -------------------------------------------------------------
    background_load: tuple[float, float] = (0.3, 0.8)  #: mean arrivals / (C^ap T), low/high
    load_sojourn: float = 100.0  #: mean slots in a load state
    reserve_max: float = 0.8  #: most of C^ap the background backlog may reserve

    def __post_init__(self) -> None:
        if not isinstance(self.cell, ISCCConfig):
            validation.fail(self, "cell", "an ISCCConfig", self.cell)
        validation.choice(self, "action_mode", ACTION_MODES)
        validation.choice(self, "oracle", ORACLES)
        validation.choice(self, "harvest_process", HARVEST_PROCESSES)
        for name in ("compute_regret", "diagnose_drops"):
            if not isinstance(getattr(self, name), bool):
                validation.fail(self, name, "a bool", getattr(self, name))
        validation.integer(self, "horizon", low=1)
        for name in _POSITIVE:
            validation.number(self, name, low=0.0, low_open=True)
        for name in ("harvest_sojourn", "load_sojourn"):
            validation.number(self, name, low=1.0)
        for name in _NON_NEGATIVE:
            validation.number(self, name, low=0.0)
        for name in ("charge_efficiency", "task_probability", "reserve_max"):
            validation.number(self, name, low=0.0, high=1.0)
        for name in ("leakage", "mobility_memory"):
            validation.number(self, name, low=0.0, high=1.0, high_open=True)
        validation.number(self, "b_min", low=0.0, high=self.b_max, high_open=True)
        validation.interval(self, "b_init", self.b_min, self.b_max)
        validation.interval(self, "task_bits", 0.0, math.inf, low_open=True)
        validation.interval(self, "deadline", 0.0, self.slot_duration, low_open=True)
        validation.interval(self, "cpu_capacity", 0.0, math.inf, low_open=True)
        validation.interval(self, "background_load", 0.0, math.inf)
        validation.interval(self, "log10_beta_range", -6.0, 6.0)

    @property
    def K(self) -> int:
        return self.cell.K

    @property
    def outage_threshold(self) -> float:
        """``b_min + outage_margin`` [J]: a UE ending a slot below it is in outage."""
        return self.b_min + self.outage_margin

    def replace(self, **changes: Any) -> ISCCEnvConfig:
        return make_config(self, **changes)


def _paper_preset() -> dict[str, Any]:
    """The paper's single-slot defaults (Table I, tau = 0.4 s, K = 2) inside the env."""
    return dict(
        cell=ISCCConfig.paper(K=2),
        task_probability=1.0,
        task_bits=(1e6, 1e6),
        deadline=(0.4, 0.4),
        cpu_capacity=(1e9, 1e9),
        background_load=(0.0, 0.0),
    )


#: name -> overrides of the defaults of ISCCEnvConfig
PRESETS = {"default": dict, "paper": _paper_preset}


def make_config(preset: str | ISCCEnvConfig = "default", **overrides: Any) -> ISCCEnvConfig:
    """A validated config: a preset (or a config) plus flat keyword overrides.

    Keys may name env fields or physical ``ISCCConfig`` fields (e.g. ``K=6``,
    ``C_ap=20e9``); tuples may be given as lists (JSON). Unknown keys raise
    ``ValueError`` listing the valid ones.
    """
    return merge_config(
        ISCCEnvConfig, ISCCConfig, PRESETS, preset, overrides, env_id="ISCC-v0", drawn=_DRAWN_BY_ENV
    )


def merge_config(env_cls, cell_cls, presets, preset, overrides, *, env_id, drawn):
    """``env_cls`` from a preset name (or an ``env_cls`` instance) and flat overrides.

    Shared by every environment config (HighwayEnv-style strict merging): a key is a
    field of ``env_cls`` or of its physics config ``cell_cls`` (merged into ``cell``);
    lists become tuples (JSON); a key the environment draws itself (``drawn``: key ->
    the env field to set instead) or an unknown key raises ``ValueError`` naming it.
    """
    fields = dataclasses.fields(env_cls)
    if isinstance(preset, env_cls):
        base = {f.name: getattr(preset, f.name) for f in fields}
    elif preset in presets:
        base = {f.name: _default(f) for f in fields}
        base.update(presets[preset]())
    else:
        raise ValueError(f"preset must be one of {sorted(presets)}, got {preset!r}")
    env_fields = {f.name for f in fields}
    cell_fields = {f.name for f in dataclasses.fields(cell_cls)}
    cell_changes = {}
    for key, value in overrides.items():
        value = tuple(value) if isinstance(value, list) else value
        if key in drawn:
            raise ValueError(f"{key!r} is drawn by the environment; set {drawn[key]!r}")
        if key in env_fields:
            base[key] = value
        elif key in cell_fields:
            cell_changes[key] = value
        else:
            raise ValueError(
                f"unknown {env_id} config key {key!r}; valid keys: env fields "
                f"{sorted(env_fields - {'cell'})} or {cell_cls.__name__} fields "
                f"{sorted(cell_fields - set(drawn))}"
            )
    if cell_changes:
        base["cell"] = base["cell"].replace(**cell_changes)
    return env_cls(**base)


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
