"""Unit conversions: the only place where decibels become linear SI values."""

from __future__ import annotations

import numpy as np

SPEED_OF_LIGHT = 299_792_458.0  # m/s


def db_to_linear(value_db):
    """Power ratio in dB -> linear ratio."""
    return 10.0 ** (np.asarray(value_db, dtype=float) / 10.0)


def linear_to_db(value):
    """Linear power ratio -> dB (``-inf`` for zero)."""
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(np.asarray(value, dtype=float))


def dbm_to_watt(value_dbm):
    """Power in dBm -> W."""
    return db_to_linear(value_dbm) * 1e-3


def watt_to_dbm(value_w):
    """Power in W -> dBm."""
    return linear_to_db(value_w) + 30.0
