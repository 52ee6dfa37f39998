"""Frame-to-frame dynamics of the mMIMO-OFDM ISAC cell: users, fading and the target.

The paper optimises one frame. These processes make a sequence of frames, so that a
battery-powered base station has to plan its energy (``isac_gym/MIMOISAC-v0``). They are
pure functions over arrays; randomness comes from the generator passed in.

* Users move by Gauss-Markov mobility inside the ring ``min_distance <= d <=
  cell_radius`` around the BS (a step that would leave it is reflected).
* The large-scale gain follows the log-distance law of the snapshot model
  (``beta_k ~ d_k^-nu`` with the user's shadowing kept for the episode), so
  ``beta_k(t) = beta_k(0) (d_k(0) / d_k(t))^nu``.
* Small-scale fading is a first-order Gauss-Markov process per entry,
  ``h~(t+1) = rho h~(t) + sqrt(1 - rho^2) w``, ``w ~ CN(0, 1)``: it keeps the CN(0, 1)
  marginal of the snapshot model (rho = 0 is block fading).
* The target's azimuth drifts with a Gauss-Markov angular rate and is reflected at
  ``+-max_azimuth``; its elevation stays put (a target tracked along a road).
"""

from __future__ import annotations

import numpy as np


def ring_gauss_markov_step(
    position: np.ndarray,
    velocity: np.ndarray,
    rng: np.random.Generator,
    *,
    inner: float,
    outer: float,
    memory: float,
    speed: float,
    dt: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Markov mobility ``v' = m v + sqrt(1 - m^2) s n``, ``p' = p + v' dt`` in a ring.

    Positions (K, 2) are relative to the BS. A user whose step would leave the ring
    stays put and turns around, so the channel model stays valid.
    """
    noise = rng.standard_normal(velocity.shape)
    velocity = memory * velocity + np.sqrt(1.0 - memory**2) * speed * noise
    moved = position + velocity * dt
    radius = np.hypot(moved[:, 0], moved[:, 1])
    valid = (radius >= inner) & (radius <= outer)
    return np.where(valid[:, None], moved, position), np.where(valid[:, None], velocity, -velocity)


def distance_gain(gain_start: np.ndarray, distance_start, distance, exponent: float):
    """``beta_k(t) = beta_k(0) (d_k(0) / d_k(t))^nu``: the log-distance law with the
    episode's shadowing (spec 2.2: ``beta_k[dB] = C - 10 nu log10 d_k + z_k``)."""
    return gain_start * (np.asarray(distance_start) / np.asarray(distance)) ** exponent


def fading_step(fading: np.ndarray, rng: np.random.Generator, correlation: float) -> np.ndarray:
    """``h~' = rho h~ + sqrt(1 - rho^2) w``, ``w ~ CN(0, 1)`` entrywise (keeps CN(0, 1))."""
    innovation = rng.standard_normal(fading.shape) + 1j * rng.standard_normal(fading.shape)
    return correlation * fading + np.sqrt((1.0 - correlation**2) / 2.0) * innovation


def target_step(
    azimuth: float,
    rate: float,
    rng: np.random.Generator,
    *,
    memory: float,
    rate_scale: float,
    max_azimuth: float,
) -> tuple[float, float]:
    """Azimuth drift ``w' = m w + sqrt(1 - m^2) s n``, ``theta' = theta + w'`` [rad per
    frame], reflected at ``+-max_azimuth``."""
    rate = memory * rate + np.sqrt(1.0 - memory**2) * rate_scale * float(rng.standard_normal())
    azimuth = azimuth + rate
    if abs(azimuth) > max_azimuth:
        azimuth = float(np.sign(azimuth) * 2.0 * max_azimuth - azimuth)
        rate = -rate
    return float(azimuth), float(rate)
