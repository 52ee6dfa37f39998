"""Array responses: uniform linear (ULA) and uniform planar (UPA) steering vectors.

Entries have unit modulus, so ``||a||^2 = M`` and a matched beam has array gain M.
Angles enter through direction cosines: for a ULA whose axis is the unit vector e and
a direction d, ``cos_axis = e . d`` (= sin(psi) with psi measured from broadside).
"""

from __future__ import annotations

import numpy as np


def ula_steering(num_antennas: int, cos_axis, spacing: float = 0.5) -> np.ndarray:
    """ULA response ``a_m = exp(j 2 pi spacing m cos_axis)``, m = 0..M-1.

    ``cos_axis`` may be an array of any shape S; the result has shape S + (M,).
    ``spacing`` is the element spacing in wavelengths (half-wavelength by default).
    """
    cos_axis = np.asarray(cos_axis, dtype=float)
    m = np.arange(num_antennas)
    return np.exp(2j * np.pi * spacing * cos_axis[..., None] * m)


def upa_steering(num_y: int, num_z: int, azimuth, elevation, spacing: float = 0.5) -> np.ndarray:
    """UPA (y-z plane, broadside along x) response, ``a_y(phi, theta) kron a_z(theta)``.

    Azimuth ``phi`` is measured in the x-y plane from the x axis, elevation ``theta``
    from the horizontal plane. The result has shape S + (num_y * num_z,).
    """
    azimuth = np.asarray(azimuth, dtype=float)
    elevation = np.asarray(elevation, dtype=float)
    a_y = ula_steering(num_y, np.cos(elevation) * np.sin(azimuth), spacing)
    a_z = ula_steering(num_z, np.sin(elevation), spacing)
    return (a_y[..., :, None] * a_z[..., None, :]).reshape(*a_y.shape[:-1], num_y * num_z)


def ula_inner(num_antennas: int, cos_a, cos_b, spacing: float = 0.5) -> np.ndarray:
    """``a(cos_a)^H a(cos_b)`` of :func:`ula_steering` in closed form (Dirichlet kernel).

    ``sum_m e^{j m theta} = e^{j (M-1) theta / 2} sin(M theta / 2) / sin(theta / 2)``,
    ``theta = 2 pi spacing (cos_b - cos_a)``; accurate also for nearly equal cosines
    (no cancellation), and M where ``sin(theta / 2)`` vanishes. Arrays broadcast.
    """
    half = np.pi * spacing * (np.asarray(cos_b, float) - np.asarray(cos_a, float))  # theta/2
    half = np.asarray(half)
    denominator = np.sin(half)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.asarray(np.sin(num_antennas * half) / denominator)
    degenerate = np.abs(denominator) < 1e-12  # limit M cos(M x) / cos(x), x -> k pi
    if degenerate.any():
        edge = half[degenerate]
        ratio[degenerate] = num_antennas * np.cos(num_antennas * edge) / np.cos(edge)
    return np.exp(1j * (num_antennas - 1) * half) * ratio
