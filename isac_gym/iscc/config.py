"""Configuration of the ISCC system of Dong et al. (2026): Table I plus the open constants.

All values are SI and linear (W, Hz, s, J, m, rad). Decibel numbers appear only in
:meth:`ISCCConfig.paper`, converted through :mod:`isac_gym.units`. Why each open
constant has its value is written down in ``docs/model.md``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from isac_gym import validation
from isac_gym.units import SPEED_OF_LIGHT, db_to_linear, dbm_to_watt

PerUE = float | tuple[float, ...]

#: Fields that hold one value per UE (a scalar is broadcast to all K UEs).
PER_UE_FIELDS = ("Q", "tau", "C_u", "xi_u", "varpi", "beta")


@dataclass(frozen=True)
class ISCCConfig:
    """Every physical parameter of one ISCC cell (paper Table I + documented choices).

    Per-UE fields (``Q, tau, C_u, xi_u, varpi, beta``) accept a scalar or a length-K
    sequence; use :meth:`per_ue` to get them as a ``(K,)`` array. Construction validates
    every field and raises ``ValueError`` naming the field and its allowed range.
    """

    # --- Table I -----------------------------------------------------------------
    K: int = 2  #: number of UEs
    M_a: int = 64  #: AP receive antennas (ULA)
    M_ut: int = 64  #: UE transmit antennas M_u^t (ULA)
    M_ur: int = 64  #: UE receive antennas M_u^r (ULA)
    f_c: float = 28e9  #: carrier frequency [Hz]
    B: float = 20e6  #: bandwidth shared by all UEs, eq. (9) [Hz]
    P_max: float = 0.01  #: per-UE transmit power budget, eq. (2) [W] (10 dBm)
    noise: float = 3.1622776601683794e-12  #: sigma_1^2 = sigma_2^2 [W] (-85 dBm)
    Q: PerUE = 1e6  #: task size Q_k [bit]
    tau: PerUE = 0.4  #: latency budget tau_k^th [s] (the paper's default point)
    C_u: PerUE = 1e9  #: UE CPU capacity C_k^u [cycle/s]
    C_ap: float = 10e9  #: AP CPU capacity C^ap [cycle/s]
    xi_u: PerUE = 1e-28  #: UE effective capacitance xi_k^u
    xi_ap: float = 1e-28  #: AP effective capacitance xi^ap
    varpi: PerUE = 1000.0  #: CPU cycles per bit varpi_k
    beta: PerUE = 0.1  #: energy cost ratio beta_k, eq. (17a)
    gamma_s: float = 1.0  #: sensing SINR threshold gamma_th^s (linear; 0 dB)
    # --- geometry (open in the paper; see docs/model.md) ---------------------------
    r_0: float = 100.0  #: sector radius [m]
    sector_half_width: float = math.pi / 3  #: half opening angle of the sector [rad]
    h_a: float = 10.0  #: AP height [m]
    h_u: float = 1.5  #: UE and target height [m]
    ap_position: tuple[float, float] = (0.0, 0.0)  #: AP at the sector apex [m]
    target_position: tuple[float, float] = (50.0, 0.0)  #: common target [m]
    min_ue_ap_distance: float = 10.0  #: UEs are drawn at least this far from the AP [m]
    min_ue_target_distance: float = 5.0  #: and at least this far from the target [m]
    # --- propagation ---------------------------------------------------------------
    pathloss_exponent: float = 2.1  #: log-distance exponent (3GPP UMi-SC LoS: 2.1)
    rician_factor: float = 10.0  #: LoS-to-NLoS power ratio of H_k (linear; 10 dB)
    n_nlos: int = 3  #: NLoS paths of H_k
    element_gain: float = 3.1622776601683795  #: antenna element gain (linear; 5 dBi)
    rcs: float = 100.0  #: target radar cross-section [m^2] (20 dBsm)

    def __post_init__(self) -> None:
        for name in ("K", "M_a", "M_ut", "M_ur"):
            validation.integer(self, name)
        validation.integer(self, "n_nlos", low=0)
        for name in (
            "f_c",
            "B",
            "P_max",
            "noise",
            "C_ap",
            "xi_ap",
            "gamma_s",
            "r_0",
            "h_a",
            "element_gain",
            "rcs",
            "pathloss_exponent",
        ):
            validation.number(self, name, 0.0, low_open=True)
        for name in ("h_u", "min_ue_ap_distance", "min_ue_target_distance", "rician_factor"):
            validation.number(self, name, 0.0)
        validation.number(self, "sector_half_width", 0.0, math.pi, low_open=True)
        if self.min_ue_ap_distance >= self.r_0:
            raise ValueError(
                "ISCCConfig.min_ue_ap_distance must be smaller than r_0 "
                f"({self.min_ue_ap_distance!r} >= {self.r_0!r})"
            )
        for name in ("ap_position", "target_position"):
            _check_point(self, name)
        for name in PER_UE_FIELDS:
            _check_per_ue(self, name)

    @classmethod
    def paper(cls, **overrides: Any) -> ISCCConfig:
        """Table I of the paper (tau = 0.4 s), with keyword overrides in SI units.

        Example: ``ISCCConfig.paper(tau=0.2, K=10, C_ap=20e9)``.
        """
        base = dict(
            K=2,
            M_a=64,
            M_ut=64,
            M_ur=64,
            f_c=28e9,
            B=20e6,
            P_max=float(dbm_to_watt(10.0)),
            noise=float(dbm_to_watt(-85.0)),
            Q=1e6,
            tau=0.4,
            C_u=1e9,
            C_ap=10e9,
            xi_u=1e-28,
            xi_ap=1e-28,
            varpi=1000.0,
            beta=0.1,
            gamma_s=float(db_to_linear(0.0)),
            rician_factor=float(db_to_linear(10.0)),
            element_gain=float(db_to_linear(5.0)),
            rcs=float(db_to_linear(20.0)),
        )
        return validation.with_overrides(cls, base, overrides)

    def replace(self, **changes: Any) -> ISCCConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def per_ue(self, name: str) -> np.ndarray:
        """A per-UE field as a fresh ``(K,)`` float array."""
        if name not in PER_UE_FIELDS:
            raise ValueError(f"{name!r} is not a per-UE field; per-UE fields: {PER_UE_FIELDS}")
        value = getattr(self, name)
        if np.ndim(value) == 0:
            return np.full(self.K, value, dtype=float)
        return np.broadcast_to(np.asarray(value, dtype=float), (self.K,)).copy()

    @property
    def wavelength(self) -> float:
        """Carrier wavelength [m]."""
        return SPEED_OF_LIGHT / self.f_c


def _fail(name: str, allowed: str, value: Any) -> None:
    validation.fail(ISCCConfig, name, allowed, value)


def _as_finite_float(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        _fail(name, "a real number", value)
    if not math.isfinite(number):
        _fail(name, "finite", value)
    return number


def _check_point(cfg: ISCCConfig, name: str) -> None:
    value = getattr(cfg, name)
    if not isinstance(value, Sequence | np.ndarray) or len(value) != 2:
        _fail(name, "an (x, y) pair in metres", value)
    point = tuple(_as_finite_float(name, v) for v in value)
    object.__setattr__(cfg, name, point)


def _check_per_ue(cfg: ISCCConfig, name: str) -> None:
    value = getattr(cfg, name)
    if np.ndim(value) == 0:
        number = _as_finite_float(name, value)
        if number <= 0.0:
            _fail(name, "> 0 and finite", value)
        object.__setattr__(cfg, name, number)
        return
    values = np.asarray(value, dtype=float).ravel() if np.ndim(value) == 1 else None
    if values is None or values.size != cfg.K:
        _fail(name, f"a scalar or a length-K (K={cfg.K}) sequence", value)
    if not np.all(np.isfinite(values)) or np.any(values <= 0.0):
        _fail(name, "> 0 and finite for every UE", value)
    object.__setattr__(cfg, name, tuple(float(v) for v in values))
