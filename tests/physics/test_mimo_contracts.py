"""Contracts of ``isac_gym.iscc``'s sibling ``isac_gym.mimo.model`` that mutation testing
found open (docs/testing.md): the checks of (26b)-(26e) are inclusive to the last bit and
read their own bound, the CRB of a singular or badly scaled FIM, and omega = 1."""

import dataclasses
import warnings

import numpy as np
import pytest

from isac_gym.mimo import (
    MIMOAllocation,
    MIMOISACConfig,
    crb_from_fim,
    crb_theorem1,
    evaluate,
    sample_snapshot,
    stream_constants,
    streams,
)
from isac_gym.mimo.model import FEASIBILITY_RTOL, check_omega

TOL = 1.0 + FEASIBILITY_RTOL


def small_case():
    config = MIMOISACConfig.paper(N_x=4, N_y=4, K=3, N=4)
    snapshot = sample_snapshot(config, np.random.default_rng(0))
    constants = stream_constants(snapshot)
    p = np.full((snapshot.N, snapshot.K), snapshot.P_max / (2 * snapshot.N * snapshot.K))
    return snapshot, constants, MIMOAllocation.from_power(p, np.full(p.shape, 0.6))


def on_bound(value: float) -> float:
    """A float b with b * TOL == value exactly (found by stepping ulps)."""
    for direction in (np.inf, -np.inf):
        bound = value / TOL
        for _ in range(200):
            if bound * TOL == value:
                return bound
            bound = np.nextafter(bound, direction)
    raise AssertionError("no bound hits the value exactly")


def test_omega_closed_interval():
    assert check_omega(1.0) == 1.0 and check_omega(0.0) == 0.0
    for bad in (np.nextafter(1.0, 2.0), -1e-300, np.nan, "x"):
        with pytest.raises(ValueError, match="omega"):
            check_omega(bad)


def test_checks_are_inclusive_and_read_their_own_bound():
    snapshot, constants, allocation = small_case()
    ev = evaluate(snapshot, allocation, 0.5, constants)
    assert ev.omega == 0.5
    assert ev.crb[0] != ev.crb[1]  # the theta and phi checks cannot be swapped unseen
    se_min = float(ev.se.min())
    crb_max = np.array([on_bound(ev.crb[0]), on_bound(ev.crb[1])])
    exact = dataclasses.replace(
        snapshot, R_th=se_min * TOL, crb_max=crb_max, P_max=on_bound(ev.transmit_power)
    )
    tight = evaluate(exact, allocation, 0.5, constants)
    assert tight.feasible is True and all(np.all(v) for v in tight.checks.values())
    one_ulp = {
        "se": dict(R_th=np.nextafter(se_min * TOL, np.inf)),
        "crb_theta": dict(crb_max=np.array([np.nextafter(crb_max[0], 0), crb_max[1]])),
        "crb_phi": dict(crb_max=np.array([crb_max[0], np.nextafter(crb_max[1], 0)])),
        "power": dict(P_max=np.nextafter(exact.P_max, 0)),
    }
    for name, change in one_ulp.items():
        ev = evaluate(dataclasses.replace(exact, **change), allocation, 0.5, constants)
        failing = [k for k, v in ev.checks.items() if not np.all(v)]
        assert failing == [name] and ev.feasible is False, name


def test_crb_from_fim_by_hand():
    F = np.diag([0.5, 0.25, 2.0, 3.0])  # diagonal below 1: [F^-1]_11 = 2, [F^-1]_22 = 4
    np.testing.assert_allclose(crb_from_fim(F), [2.0, 4.0], rtol=1e-15)
    F = np.eye(4)
    F[:2, :2] = [[2.0, 1.0], [1.0, 2.0]]  # inverse 1/3 [[2, -1], [-1, 2]]
    np.testing.assert_allclose(crb_from_fim(F), [2 / 3, 2 / 3], rtol=1e-14)


@pytest.mark.parametrize(
    "F",
    [
        np.diag([0.0, 1.0, 1.0, 1.0]),  # a zero diagonal: no information on theta
        np.block([[np.ones((2, 2)), np.zeros((2, 2))], [np.zeros((2, 2)), np.eye(2)]]),
        np.eye(4) + 2.0 * (np.eye(4, k=1) + np.eye(4, k=-1)),  # indefinite: CRB < 0
    ],
)
def test_crb_from_fim_singular_or_indefinite_is_inf_silently(F):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        crb = crb_from_fim(F)
    assert crb.shape == (2,) and crb.dtype == float and np.all(crb == np.inf)


def test_crb_theorem1_scales_as_one_over_power_and_is_inf_without_signal():
    snapshot, constants, allocation = small_case()
    s = streams(constants, allocation)
    reference = crb_theorem1(snapshot, s)
    # CRB ~ 1 / power (limiting case): scaling the streams by 1e-4 multiplies it by 1e8,
    # with T_aa and det(J) far below 1
    np.testing.assert_allclose(crb_theorem1(snapshot, 1e-4 * s), 1e8 * reference, rtol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        silent = crb_theorem1(snapshot, np.zeros_like(s))
    assert silent.shape == (2,) and silent.dtype == float and np.all(silent == np.inf)
