"""Configuration of the mMIMO-OFDM ISAC base station of Nguyen et al. (2025).

All values are SI and linear (W, Hz, m, rad); decibel numbers appear only in
:meth:`MIMOISACConfig.paper`, converted through :mod:`isac_gym.units`. Table I values are
RECOVERED from the paper; the others are the ASSUMED defaults of section 6 of
``docs/mimo_model.md`` (the paper's copy lost them).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from isac_gym import validation
from isac_gym.units import SPEED_OF_LIGHT, dbm_to_watt

#: The two trade-off weights of the paper's figures: low and high priority of sensing
#: (LoR ASSUMED, HoR = 2e-3 RECOVERED). The crossover EE_c / EE_s is about 2e-4.
OMEGA_LOR = 1e-5
OMEGA_HOR = 2e-3

SENSING_PRECODERS = ("matched", "nullspace")


@dataclass(frozen=True)
class MIMOISACConfig:
    """Every physical parameter of one mMIMO-OFDM ISAC cell (model spec, sections 1 and 6).

    Construction validates every field and raises ``ValueError`` naming the field and its
    allowed range. ``sensing_precoder``: ``"matched"`` (the paper's reading,
    f_n = a_n / sqrt(N_t), eq. (9)) or ``"nullspace"`` (a_n projected off the users'
    channels: no leakage, g = eps = 0; a test variant, not in the paper).
    """

    # --- Table I (RECOVERED) and array / frame sizes (ASSUMED) ---------------------
    K: int = 6  #: single-antenna users
    N_x: int = 8  #: UPA columns (horizontal); N_t = N_r = N_x N_y
    N_y: int = 8  #: UPA rows (vertical)
    N: int = 16  #: subcarriers, BW / N each
    L: int = 64  #: OFDM symbols per frame (sensing snapshots)
    f_c: float = 2e9  #: carrier frequency [Hz]
    bandwidth: float = 10e6  #: total bandwidth BW [Hz]
    eta: float = 0.35  #: power-amplifier efficiency
    #: circuit power [W]: 25.6 dBm, Table I's "5.6 mW" read as a garbled 25.6 dBm (spec 6.1)
    P_c: float = 0.3630780547701014
    xi: float = 2.5118864315095823e-06  #: power per unit sum SE [W per bps/Hz] (-26 dBm)
    P_max: float = 1.0  #: transmit power budget, (26e) [W] (30 dBm)
    # --- constraints of (26) ---------------------------------------------------------
    R_th: float = 4.0  #: per-user SE floor, (26b) [bps/Hz]
    crb_max_theta: float = 1e-4  #: azimuth CRB ceiling eps_theta, (26c) [rad^2] (-40 dB)
    crb_max_phi: float = 1e-4  #: elevation CRB ceiling eps_phi, (26d) [rad^2] (-40 dB)
    # --- noise (ASSUMED: -174 dBm/Hz, noise figure 0 dB) ------------------------------
    noise_psd: float = 3.9810717055349565e-21  #: UE noise density [W/Hz]
    echo_noise_psd: float = 3.9810717055349565e-21  #: BS echo noise density [W/Hz]
    # --- geometry and propagation (ASSUMED; large-scale model RECOVERED) -------------
    #: users uniform (by area) in a disc around the BS [m]; 100 (was 250, then 150): the SE
    #: floors hold at the paper's lowest budget, 10 dBm (docs/mimo_model.md 6.1)
    cell_radius: float = 100.0
    min_distance: float = 35.0  #: least BS-user distance [m]
    pathloss_exponent: float = 3.2  #: nu of the log-distance path loss
    shadowing_std_db: float = 7.0  #: log-normal shadowing standard deviation [dB]
    target_azimuth: float = math.radians(30.0)  #: theta [rad]
    target_elevation: float = math.radians(10.0)  #: phi [rad]
    target_distance: float = 300.0  #: [m]
    rcs: float = 0.01  #: target radar cross-section [m^2]
    sensing_precoder: str = "matched"  #: see the class docstring

    def __post_init__(self) -> None:
        for name in ("K", "N_x", "N_y", "N", "L"):
            validation.integer(self, name)
        for name in (
            "f_c",
            "bandwidth",
            "P_max",
            "R_th",
            "crb_max_theta",
            "crb_max_phi",
            "noise_psd",
            "echo_noise_psd",
            "cell_radius",
            "min_distance",
            "pathloss_exponent",
            "target_distance",
            "rcs",
        ):
            validation.number(self, name, 0.0, low_open=True)
        validation.number(self, "eta", 0.0, 1.0, low_open=True)
        for name in ("P_c", "xi", "shadowing_std_db"):
            validation.number(self, name, 0.0)
        half_pi = math.pi / 2
        for name in ("target_azimuth", "target_elevation"):
            validation.number(self, name, -half_pi, half_pi)
        validation.choice(self, "sensing_precoder", SENSING_PRECODERS)
        if self.K > self.N_t:
            validation.fail(self, "K", f"<= N_t = {self.N_t} for zero-forcing", self.K)
        if self.min_distance >= self.cell_radius:
            validation.fail(
                self, "min_distance", f"< cell_radius = {self.cell_radius}", self.min_distance
            )

    @classmethod
    def paper(cls, **overrides: Any) -> MIMOISACConfig:
        """Table I of the paper plus the spec's ASSUMED defaults, with keyword overrides.

        Example: ``MIMOISACConfig.paper(K=4, N=8, R_th=6.0)``.
        """
        base = dict(
            f_c=2e9,
            bandwidth=10e6,
            eta=0.35,
            P_c=float(dbm_to_watt(25.6)),
            xi=float(dbm_to_watt(-26.0)),
            P_max=float(dbm_to_watt(30.0)),
            noise_psd=float(dbm_to_watt(-174.0)),
            echo_noise_psd=float(dbm_to_watt(-174.0)),
            crb_max_theta=1e-4,
            crb_max_phi=1e-4,
        )
        return validation.with_overrides(cls, base, overrides)

    def replace(self, **changes: Any) -> MIMOISACConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @property
    def N_t(self) -> int:
        """Transmit (= receive) antennas of the UPA."""
        return self.N_x * self.N_y

    @property
    def wavelength(self) -> float:
        return SPEED_OF_LIGHT / self.f_c

    @property
    def noise(self) -> float:
        """sigma^2: user noise power per subcarrier [W]."""
        return self.noise_psd * self.bandwidth / self.N

    @property
    def echo_noise(self) -> float:
        """sigma_s^2: echo noise power per subcarrier and receive antenna [W]."""
        return self.echo_noise_psd * self.bandwidth / self.N

    def subcarrier_frequencies(self) -> np.ndarray:
        """f_n = f_c + (BW / N) (n - (N + 1) / 2), n = 1..N (spec 2.1)."""
        n = np.arange(1, self.N + 1)
        return self.f_c + self.bandwidth / self.N * (n - (self.N + 1) / 2)
