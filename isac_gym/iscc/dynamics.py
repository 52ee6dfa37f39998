"""Slot-to-slot dynamics of the multi-slot ISCC system: batteries, harvesting, mobility,
AP background load.

The paper optimises one slot; its footnote 7 leaves the long-term choice of beta_k open.
These processes (see the README's section on the multi-slot environment) make that
choice matter. They are pure functions over arrays; randomness comes from the
``numpy.random.Generator`` passed in, so the environment decides which stream feeds which
process.
"""

from __future__ import annotations

import numpy as np

from isac_gym.iscc.config import ISCCConfig

# --- batteries -----------------------------------------------------------------------


def usable_energy(battery, *, b_min: float, leakage: float) -> np.ndarray:
    """Energy causality: the most a UE may spend this slot, ``(1 - leak) B - B_min``.

    Spending at most this keeps ``B(t+1) >= B_min`` whatever is harvested (harvested
    energy reaches the battery at the end of the slot and is not spent in it).
    """
    return np.maximum((1.0 - leakage) * np.asarray(battery, float) - b_min, 0.0)


def battery_update(
    battery, energy_used, harvested, *, b_max: float, leakage: float, charge_efficiency: float
) -> np.ndarray:
    """The battery update ``B(t+1) = min(B_max, (1 - leak) B(t) - E^u(t) + eta_c e(t))``."""
    level = (1.0 - leakage) * np.asarray(battery, float) - energy_used
    return np.minimum(b_max, level + charge_efficiency * np.asarray(harvested, float))


# --- energy harvesting ---------------------------------------------------------------


def switch_markov(state: np.ndarray, rng: np.random.Generator, mean_sojourn: float):
    """One step of symmetric two-state Markov chains (bool array), mean sojourn in slots."""
    return state ^ (rng.random(state.shape) < 1.0 / mean_sojourn)


def harvest_markov(on: np.ndarray, rng: np.random.Generator, *, quantum, rate_on, rate_off):
    """Markov-modulated Poisson harvesting ``e = delta * Poisson(lambda_{s})`` [J]."""
    return quantum * rng.poisson(np.where(on, rate_on, rate_off)).astype(float)


def harvest_uniform(num: int, rng: np.random.Generator, *, quantum, mean_rate):
    """i.i.d. harvesting ``e ~ U[0, 2 delta lambda]`` [J] with the same mean as Poisson."""
    return rng.uniform(0.0, 2.0 * quantum * mean_rate, num)


# --- mobility ------------------------------------------------------------------------


def in_cell(config: ISCCConfig, position: np.ndarray) -> np.ndarray:
    """Which (K, 2) positions lie in the sector and respect the minimum distances."""
    offset = position - np.asarray(config.ap_position)
    radius = np.hypot(offset[:, 0], offset[:, 1])
    angle = np.abs(np.arctan2(offset[:, 1], offset[:, 0]))
    to_target = position - np.asarray(config.target_position)
    to_target = np.hypot(to_target[:, 0], to_target[:, 1])
    return (
        (radius <= config.r_0)
        & (radius >= config.min_ue_ap_distance)
        & (angle <= config.sector_half_width)
        & (to_target >= config.min_ue_target_distance)
    )


def gauss_markov_step(
    config: ISCCConfig,
    position: np.ndarray,
    velocity: np.ndarray,
    rng: np.random.Generator,
    *,
    memory: float,
    speed: float,
    dt: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Markov mobility: ``v' = m v + sqrt(1 - m^2) s n``, ``p' = p + v' dt``.

    A UE whose step would leave the cell stays put and turns around (reflection), so
    positions stay valid for the channel model.
    """
    noise = rng.standard_normal(velocity.shape)
    velocity = memory * velocity + np.sqrt(1.0 - memory**2) * speed * noise
    moved = position + velocity * dt
    valid = in_cell(config, moved)
    position = np.where(valid[:, None], moved, position)
    velocity = np.where(valid[:, None], velocity, -velocity)
    return position, velocity


# --- AP background load ----------------------------------------------------------------


def reserved_capacity(backlog, *, C_ap: float, slot_duration: float, reserve_max: float):
    """CPU rate the AP reserves to clear its background backlog: ``min(r C^ap, Z / T)``."""
    return min(reserve_max * C_ap, float(backlog) / slot_duration)


def background_arrivals(high: bool, rng: np.random.Generator, *, capacity_cycles, load):
    """Background cycles arriving in one slot: mean ``load[high] * C^ap T``, Gamma(4)."""
    mean = load[int(high)] * capacity_cycles
    return float(mean * rng.gamma(4.0, 0.25)) if mean > 0 else 0.0


def backlog_update(backlog, arrivals, offloaded_cycles, *, capacity_cycles) -> float:
    """Fluid queue of the AP: ``Z' = max(0, Z + A + sum_k alpha_k varpi_k Q_k - C^ap T)``.

    The AP serves ``C^ap T`` cycles per slot; the offloaded tasks take their share
    first, the rest clears background work, so offloading today congests tomorrow.
    """
    return max(0.0, float(backlog) + arrivals + float(offloaded_cycles) - capacity_cycles)
