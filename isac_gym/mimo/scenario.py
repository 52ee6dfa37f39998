"""One frame of the mMIMO-OFDM ISAC cell: users, channels and target in a ``MIMOSnapshot``.

Spec ``docs/mimo_model.md``, section 2:

* UPA steering vector of eq. (7), per subcarrier: ``a(theta, phi, f_n) = a_x kron a_y``,
  ``[a_x]_m = exp(j kappa_n m u_x)``, ``[a_y]_l = exp(j kappa_n l u_y)``, ``kappa_n = pi
  f_n / f_c`` (half-wavelength spacing at f_c), ``u_x = sin(theta) cos(phi)``, ``u_y =
  sin(phi)``; derivatives ``a_theta' = j d_theta * a``, ``a_phi' = j d_phi * a`` with
  ``d_theta = kappa m cos(theta) cos(phi)``, ``d_phi = kappa (l cos(phi) - m sin(theta)
  sin(phi))`` (element (m, l) at index ``m N_y + l``).
* Channels (2.2): ``h_{n,k} = sqrt(beta_k) h~_{n,k}``, ``h~ ~ CN(0, I)`` i.i.d. over n and
  k; ``beta_k[dB] = -20 log10(4 pi f_c / c) - 10 nu log10(d_k / 1 m) + z_k``, ``z_k ~
  N(0, sigma_sh^2)``; users uniform by area in the ring ``min_distance <= d <=
  cell_radius`` around the BS.
* Target (section 6): reflection coefficient with ``|alpha|^2 = lambda^2 sigma_rcs /
  ((4 pi)^3 d_t^4)`` (radar equation) and a uniform phase.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isac_gym.mimo.config import MIMOISACConfig


@dataclass(frozen=True, eq=False)
class MIMOSnapshot:
    """Everything one frame's optimizer and evaluator need, as plain read-only arrays.

    Shapes: N subcarriers, N_t = N_r antennas, K users.
    """

    # system constants (copied from the config so that a snapshot is self-contained)
    L: int  #: frame length (symbols)
    noise: float  #: sigma^2, user noise per subcarrier [W]
    echo_noise: float  #: sigma_s^2, echo noise per subcarrier and antenna [W]
    eta: float  #: power-amplifier efficiency
    P_c: float  #: circuit power [W]
    xi: float  #: power per unit sum SE [W per bps/Hz]
    P_max: float  #: transmit power budget [W]
    R_th: float | np.ndarray  #: per-user SE floor [bps/Hz]: one for all, or (K,)
    crb_max: np.ndarray  #: (2,) CRB ceilings (eps_theta, eps_phi) [rad^2]
    sensing_precoder: str  #: "matched" or "nullspace" (MIMOISACConfig)
    # target
    target_angles: np.ndarray  #: (2,) (theta, phi) [rad]
    alpha: complex  #: reflection coefficient of the echo model (5)
    # users and channels
    ue_position: np.ndarray  #: (K, 2) [m], BS at the origin
    large_scale_gain: np.ndarray  #: (K,) beta_k (linear)
    H: np.ndarray  #: (N, N_t, K): column k of H[n] is h_{n,k}
    # steering vector of the target per subcarrier and its phase derivatives, eq. (7)
    steering: np.ndarray  #: (N, N_t) a_n
    d_theta: np.ndarray  #: (N, N_t) real: da_n / dtheta = j d_theta * a_n
    d_phi: np.ndarray  #: (N, N_t) real: da_n / dphi = j d_phi * a_n

    @property
    def K(self) -> int:
        return self.H.shape[2]

    @property
    def N(self) -> int:
        return self.H.shape[0]

    @property
    def N_t(self) -> int:
        return self.H.shape[1]


def upa_steering(N_x: int, N_y: int, theta: float, phi: float, kappa: np.ndarray):
    """Eq. (7) and its derivatives: ``(a, d_theta, d_phi)``, each (len(kappa), N_x N_y).

    ``kappa`` (N,): phase slope per element, ``pi f_n / f_c`` for half-wavelength spacing.
    ``da/dtheta = 1j * d_theta * a`` and ``da/dphi = 1j * d_phi * a`` (module docstring).
    """
    kappa = np.asarray(kappa, dtype=float)[:, None]
    m = np.repeat(np.arange(N_x), N_y).astype(float)  # element (m, l) at index m N_y + l
    l = np.tile(np.arange(N_y), N_x).astype(float)  # noqa: E741 (the spec's symbol)
    u_x = np.sin(theta) * np.cos(phi)
    u_y = np.sin(phi)
    a = np.exp(1j * kappa * (m * u_x + l * u_y))
    d_theta = kappa * m * np.cos(theta) * np.cos(phi)
    d_phi = kappa * (l * np.cos(phi) - m * np.sin(theta) * np.sin(phi))
    return a, d_theta, d_phi


def sample_snapshot(config: MIMOISACConfig, rng: np.random.Generator) -> MIMOSnapshot:
    """Draw user positions, shadowing, small-scale fading and the target's phase."""
    K, N, N_t = config.K, config.N, config.N_t
    # Uniform by area in the ring: r^2 uniform between the squared radii.
    radius = np.sqrt(rng.uniform(config.min_distance**2, config.cell_radius**2, K))
    bearing = rng.uniform(-np.pi, np.pi, K)
    position = np.stack((radius * np.cos(bearing), radius * np.sin(bearing)), axis=1)
    gain_db = (
        -20.0 * np.log10(4.0 * np.pi / config.wavelength)
        - 10.0 * config.pathloss_exponent * np.log10(radius)
        + config.shadowing_std_db * rng.standard_normal(K)
    )
    fading = (rng.standard_normal((N, N_t, K)) + 1j * rng.standard_normal((N, N_t, K))) / np.sqrt(2)
    gain = 10.0 ** (gain_db / 10.0)
    H = np.sqrt(gain) * fading

    kappa = np.pi * config.subcarrier_frequencies() / config.f_c
    theta, phi = config.target_azimuth, config.target_elevation
    steering, d_theta, d_phi = upa_steering(config.N_x, config.N_y, theta, phi, kappa)
    magnitude = (
        config.wavelength * np.sqrt(config.rcs / (4.0 * np.pi) ** 3) / config.target_distance**2
    )
    alpha = complex(magnitude * np.exp(1j * rng.uniform(0.0, 2.0 * np.pi)))
    return MIMOSnapshot(
        L=config.L,
        noise=config.noise,
        echo_noise=config.echo_noise,
        eta=config.eta,
        P_c=config.P_c,
        xi=config.xi,
        P_max=config.P_max,
        R_th=config.R_th,
        crb_max=_frozen(np.array([config.crb_max_theta, config.crb_max_phi])),
        sensing_precoder=config.sensing_precoder,
        target_angles=_frozen(np.array([theta, phi])),
        alpha=alpha,
        ue_position=_frozen(position),
        large_scale_gain=_frozen(gain),
        H=_frozen(H),
        steering=_frozen(steering),
        d_theta=_frozen(d_theta),
        d_phi=_frozen(d_phi),
    )


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array
