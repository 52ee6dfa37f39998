import math

import numpy as np
import pytest

from isac_gym import ISCCConfig
from isac_gym.units import db_to_linear, dbm_to_watt, linear_to_db, watt_to_dbm


def test_paper_preset_is_table_one():
    c = ISCCConfig.paper()
    assert (c.K, c.M_a, c.M_ut, c.M_ur) == (2, 64, 64, 64)
    assert c.f_c == 28e9 and c.B == 20e6
    assert c.P_max == pytest.approx(0.01)  # 10 dBm
    assert c.noise == pytest.approx(10 ** (-85 / 10) * 1e-3)  # -85 dBm
    assert (c.Q, c.C_u, c.C_ap, c.xi_u, c.xi_ap, c.varpi, c.beta) == (
        1e6,
        1e9,
        10e9,
        1e-28,
        1e-28,
        1000.0,
        0.1,
    )
    assert c.gamma_s == 1.0 and c.tau == 0.4


def test_overrides_and_per_ue_broadcast():
    c = ISCCConfig.paper(tau=0.2, K=10, C_ap=20e9)
    assert c.K == 10 and c.C_ap == 20e9
    np.testing.assert_array_equal(c.per_ue("tau"), np.full(10, 0.2))
    het = ISCCConfig.paper(K=3, C_u=[1e9, 2e9, 3e9])
    np.testing.assert_array_equal(het.per_ue("C_u"), [1e9, 2e9, 3e9])
    assert het.replace(beta=2.0).beta == 2.0
    assert ISCCConfig.paper() == ISCCConfig.paper()  # value semantics, hashable
    assert hash(ISCCConfig.paper()) == hash(ISCCConfig.paper())


@pytest.mark.parametrize(
    "field, value",
    [
        ("K", 0),
        ("K", 2.5),
        ("K", True),
        ("M_a", 0),
        ("M_ut", -1),
        ("M_ur", 0),
        ("P_max", -0.01),
        ("P_max", 0.0),
        ("noise", float("nan")),
        ("B", float("inf")),
        ("C_ap", -1.0),
        ("f_c", 0.0),
        ("gamma_s", -1.0),
        ("xi_ap", float("nan")),
        ("Q", -1.0),
        ("tau", 0.0),
        ("C_u", float("nan")),
        ("beta", 0.0),
        ("varpi", [1.0]),
        ("xi_u", [1e-28, 1e-28, 1e-28]),
        ("tau", [0.4, float("inf")]),
        ("r_0", 0.0),
        ("sector_half_width", 4.0),
        ("n_nlos", -1),
        ("rcs", 0.0),
        ("h_a", -3.0),
        ("target_position", (1.0,)),
        ("ap_position", (0.0, float("nan"))),
        ("min_ue_ap_distance", 200.0),
        ("rician_factor", -1.0),
        ("pathloss_exponent", 0.0),
    ],
)
def test_invalid_field_raises_naming_it(field, value):
    with pytest.raises(ValueError, match=field):
        ISCCConfig.paper(**{field: value})


def test_unknown_override_is_rejected():
    with pytest.raises(ValueError, match="Pmax"):
        ISCCConfig.paper(Pmax=1.0)


def test_per_ue_rejects_global_field():
    with pytest.raises(ValueError, match="C_ap"):
        ISCCConfig.paper().per_ue("C_ap")


def test_units_round_trip():
    assert float(dbm_to_watt(10.0)) == pytest.approx(0.01)
    assert float(dbm_to_watt(-85.0)) == pytest.approx(3.16227766e-12)
    assert float(db_to_linear(20.0)) == pytest.approx(100.0)
    assert float(watt_to_dbm(0.001)) == pytest.approx(0.0)
    assert float(linear_to_db(1000.0)) == pytest.approx(30.0)
    assert math.isinf(float(linear_to_db(0.0)))
