"""One validated configuration of ``isac_gym/MIMOISAC-v0``, with presets.

``make_mimo_config(preset, **overrides)`` merges strictly, as the ISCC environment's
config does: a key is a field of :class:`MIMOEnvConfig` or a physical field of
:class:`isac_gym.mimo.MIMOISACConfig` (``K``, ``N_x``, ``P_max``, ...); anything else is an
error that names it. ``R_th`` is drawn by the environment per user and frame (set
``rate_demand`` and ``demand_sojourn``), and ``target_azimuth`` is only the starting
azimuth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from isac_gym import validation
from isac_gym.envs.config import merge_config
from isac_gym.mimo import MIMOISACConfig

SCHEMES = ("proposed", "equal_com", "equal_cs")  #: the oracle's scheme (optimizers.mimo)
#: keyword options of ``optimizers.mimo.solve_mimo`` a config may set (the env owns the
#: start points: ``start`` and ``warm_start`` are not among them)
ORACLE_OPTIONS = ("method", "tol", "max_iterations", "phase1_rounds", "margin")
#: the options every frame's solve starts from; ``solver_options`` overrides them
ORACLE_DEFAULTS = {"method": "fast"}
_DRAWN_BY_ENV = {"R_th": "rate_demand"}


def _default_cell() -> MIMOISACConfig:
    """A cell whose Dinkelbach oracle keeps training practical: an 8 x 4 UPA, K = 3,
    N = 8 subcarriers, users within 150 m; CRB ceilings 1e-3 rad^2; the circuit power
    5.6 mW of the table as copied (the env's calibration, its tables and shipped agent
    predate the paper preset's 25.6 dBm reading)."""
    return MIMOISACConfig.paper(
        N_x=8, N_y=4, K=3, N=8, cell_radius=150.0, crb_max_theta=1e-3, crb_max_phi=1e-3,
        P_c=5.6e-3,
    )  # fmt: skip


@dataclass(frozen=True)
class MIMOEnvConfig:
    """Every parameter of ``isac_gym/MIMOISAC-v0``; units SI (J, W, s, rad, bps/Hz)."""

    cell: MIMOISACConfig = field(default_factory=_default_cell)  #: physics of one frame
    scheme: str = "proposed"  #: the oracle: "proposed", "equal_com" or "equal_cs"
    solver_options: dict = field(default_factory=dict)  #: over ORACLE_DEFAULTS (ORACLE_OPTIONS)
    warm_start: bool = True  #: start each frame's oracle from the last frame's solution
    horizon: int = 200  #: frames per episode (truncation)
    frame_duration: float = 0.01  #: T_f [s]: a frame's energy is P (12) times T_f
    # --- action maps ---------------------------------------------------------------------
    log10_omega_range: tuple[float, float] = (-6.0, -2.0)  #: action[0] -1..1 -> log10 omega
    budget_range: tuple[float, float] = (0.05, 1.0)  #: action[1] -1..1 -> P_T budget / P_max
    # --- objective -----------------------------------------------------------------------
    sensing_weight: float = 0.5  #: the operator's fixed weight of sensing EE in the reward
    ee_comm_ref: float = 10.0  #: EE_c scale of the reward [bps/Hz/W]
    ee_sense_ref: float = 1e4  #: EE_s scale of the reward [1/(rad^2 W)]
    rate_penalty: float = 1.0  #: per user and frame below its rate demand
    #: per CRB ceiling (azimuth, elevation) missed in a frame: above the per-watt gain of a
    #: frame starved below the ceilings' least power (BENCHMARKS.md, MIMOISAC-v0 policies)
    crb_penalty: float = 5.0
    outage_penalty: float = 2.0  #: per frame ending in battery outage
    grid_connected: bool = False  #: buy the energy the battery lacks from the grid
    grid_price: float = 1.0  #: reward price of grid energy per e_ref
    e_ref: float = 0.01  #: energy scale of the grid price [J]
    # --- battery -------------------------------------------------------------------------
    b_max: float = 2.0  #: battery capacity [J]
    b_min: float = 0.1  #: reserve never spent [J]
    b_init: tuple[float, float] = (1.0, 2.0)  #: B(0) ~ U[lo, hi] [J]
    charge_efficiency: float = 0.9  #: eta_c
    leakage: float = 0.0  #: fraction of the charge lost per frame
    outage_margin: float = 0.05  #: outage when B < b_min + margin [J]
    # --- harvesting (solar-like on/off) ----------------------------------------------------
    harvest_power: tuple[float, float] = (0.05, 2.0)  #: mean harvested power off / on [W]
    harvest_sojourn: float = 50.0  #: mean frames in a harvesting state
    # --- users ---------------------------------------------------------------------------
    rate_demand: tuple[float, float] = (2.0, 4.0)  #: R_th,k low / high [bps/Hz]
    #: mean frames a user stays in a demand state: each user's chain switches with
    #: probability 1 / demand_sojourn per frame (the env's docstring)
    demand_sojourn: float = 20.0
    ue_speed: float = 1.5  #: Gauss-Markov velocity scale per axis [m/s]
    mobility_memory: float = 0.9  #: Gauss-Markov memory in [0, 1)
    fading_correlation: float = 0.9  #: rho of the small-scale fading, [0, 1)
    # --- target --------------------------------------------------------------------------
    target_rate_scale: float = 2e-3  #: azimuth-rate scale [rad per frame]
    target_memory: float = 0.95  #: Gauss-Markov memory of the azimuth rate
    max_azimuth: float = math.radians(60.0)  #: the target stays within +-max_azimuth

    def __post_init__(self) -> None:
        if not isinstance(self.cell, MIMOISACConfig):
            validation.fail(self, "cell", "a MIMOISACConfig", self.cell)
        validation.choice(self, "scheme", SCHEMES)
        unknown = set(self.solver_options) if isinstance(self.solver_options, dict) else None
        if unknown is None or unknown - set(ORACLE_OPTIONS):
            expected = f"a dict with keys among {ORACLE_OPTIONS}"
            validation.fail(self, "solver_options", expected, self.solver_options)
        validation.integer(self, "horizon")
        for name in ("grid_connected", "warm_start"):
            if not isinstance(getattr(self, name), bool):
                validation.fail(self, name, "a bool", getattr(self, name))
        for name in ("frame_duration", "ee_comm_ref", "ee_sense_ref", "e_ref", "b_max"):
            validation.number(self, name, 0.0, low_open=True)
        for name in ("rate_penalty", "crb_penalty", "outage_penalty", "grid_price", "b_min"):
            validation.number(self, name, 0.0)
        for name in ("harvest_sojourn", "demand_sojourn"):
            validation.number(self, name, 1.0)
        for name in ("ue_speed", "target_rate_scale", "outage_margin"):
            validation.number(self, name, 0.0)
        validation.number(self, "sensing_weight", 0.0, 1.0)
        validation.number(self, "charge_efficiency", 0.0, 1.0, low_open=True)
        validation.number(self, "leakage", 0.0, 1.0, high_open=True)
        for name in ("mobility_memory", "fading_correlation", "target_memory"):
            validation.number(self, name, 0.0, 1.0, high_open=True)
        validation.number(self, "max_azimuth", 0.0, math.pi / 2, low_open=True, high_open=True)
        validation.interval(self, "log10_omega_range", -12.0, 0.0)
        validation.interval(self, "budget_range", 0.0, 1.0, low_open=True)
        validation.interval(self, "b_init", self.b_min, self.b_max)
        validation.interval(self, "harvest_power", 0.0, math.inf)
        validation.interval(self, "rate_demand", 0.0, math.inf, low_open=True)
        if abs(self.cell.target_azimuth) > self.max_azimuth:
            validation.fail(self, "max_azimuth", ">= |cell.target_azimuth|", self.max_azimuth)


def _paper() -> dict[str, Any]:
    """The paper's cell (8 x 8 UPA, K = 6, N = 16, the 100 m and 25.6 dBm of its preset);
    its oracle takes about 0.1 s a frame."""
    return dict(cell=MIMOISACConfig.paper(), b_max=10.0, b_init=(5.0, 10.0))


PRESETS = {"default": dict, "paper": _paper}


def make_mimo_config(preset: str | MIMOEnvConfig = "default", **overrides: Any) -> MIMOEnvConfig:
    """A validated config from a preset name (or a config) and keyword overrides."""
    return merge_config(
        MIMOEnvConfig,
        MIMOISACConfig,
        PRESETS,
        preset,
        overrides,
        env_id="MIMOISAC-v0",
        drawn=_DRAWN_BY_ENV,
    )
