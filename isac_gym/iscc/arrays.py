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
