"""Unit tests of the slot-to-slot dynamics (isac_gym/iscc/dynamics.py), hand-computed."""

import numpy as np
import pytest

from isac_gym.iscc import ISCCConfig
from isac_gym.iscc import dynamics as dyn


def test_usable_energy_keeps_b_min_after_leakage_and_is_never_negative():
    # (1 - 0.1) * [1, 0.5, 0.1] - 0.2 = [0.7, 0.25, -0.11] -> [0.7, 0.25, 0]
    usable = dyn.usable_energy([1.0, 0.5, 0.1], b_min=0.2, leakage=0.1)
    np.testing.assert_allclose(usable, [0.7, 0.25, 0.0], rtol=1e-15, atol=1e-16)


def test_battery_update_below_and_at_the_cap():
    kwargs = dict(b_max=1.0, leakage=0.1, charge_efficiency=0.5)
    # below the cap: 0.9 * 0.5 - 0.1 + 0.5 * 0.2 = 0.45
    assert dyn.battery_update([0.5], [0.1], [0.2], **kwargs)[0] == pytest.approx(0.45, 1e-15)
    # full battery, large harvest: 0.9 - 0 + 0.5 * 4 = 2.9 is capped at b_max
    assert dyn.battery_update([1.0], [0.0], [4.0], **kwargs)[0] == 1.0
    # exactly reaching the cap (0.9 - 0.1 + 0.5 * 0.4 = 1.0) and one step below it
    assert dyn.battery_update([1.0], [0.1], [0.4], **kwargs)[0] == pytest.approx(1.0, 1e-15)
    assert dyn.battery_update([1.0], [0.2], [0.4], **kwargs)[0] == pytest.approx(0.9, 1e-15)


def test_backlog_update_counts_offloaded_cycles_and_floors_at_zero():
    # Z' = max(0, Z + A + offloaded - C^ap T)
    assert dyn.backlog_update(5.0, 2.0, 3.0, capacity_cycles=4.0) == 6.0
    assert dyn.backlog_update(0.0, 0.0, 7.0, capacity_cycles=4.0) == 3.0  # offloading alone
    assert dyn.backlog_update(1.0, 1.0, 1.0, capacity_cycles=4.0) == 0.0  # -1 -> 0
    assert dyn.backlog_update(1.0, 1.0, 2.5, capacity_cycles=4.0) == 0.5  # +0.5 stays
    assert dyn.backlog_update(1.0, 1.0, 2.0, capacity_cycles=4.0) == 0.0  # exactly 0


def test_reserved_capacity_is_the_smaller_of_cap_and_backlog_rate():
    # min(r C^ap, Z / T): Z / T = 3 below 0.5 * 10 = 5; 12 / 2 = 6 above it
    assert dyn.reserved_capacity(6.0, C_ap=10.0, slot_duration=2.0, reserve_max=0.5) == 3.0
    assert dyn.reserved_capacity(12.0, C_ap=10.0, slot_duration=2.0, reserve_max=0.5) == 5.0
    assert dyn.reserved_capacity(0.0, C_ap=10.0, slot_duration=2.0, reserve_max=0.5) == 0.0


class FixedDraws:
    """A stand-in Generator that returns prescribed draws (the maps are what is tested)."""

    def __init__(self, random=None, poisson_mean=None, gamma=None, normal=None):
        self._random, self._gamma, self._normal = random, gamma, normal

    def random(self, shape=None):
        return np.asarray(self._random, float)

    def poisson(self, lam):
        return np.asarray(lam, float) * 2.0  # "draws" twice the mean: shows which rate

    def gamma(self, shape, scale):
        assert (shape, scale) == (4.0, 0.25)  # mean 1
        return self._gamma

    def standard_normal(self, shape):
        return np.asarray(self._normal, float)

    def uniform(self, low, high, num):
        return np.full(num, (low + high) / 2.0)


def test_switch_markov_flips_with_probability_one_over_sojourn():
    state = np.array([True, True, False, False])
    draws = FixedDraws(random=[0.24, 0.26, 0.24, 0.26])  # 1 / 4 = 0.25
    np.testing.assert_array_equal(dyn.switch_markov(state, draws, 4.0), [False, True, True, False])


def test_harvest_uses_the_rate_of_the_state_and_the_quantum():
    draws = FixedDraws()
    e = dyn.harvest_markov(np.array([True, False]), draws, quantum=0.5, rate_on=3, rate_off=1)
    np.testing.assert_allclose(e, [0.5 * 6.0, 0.5 * 2.0])
    u = dyn.harvest_uniform(2, draws, quantum=0.5, mean_rate=3.0)
    np.testing.assert_allclose(u, [1.5, 1.5])  # midpoint of U[0, 2 * 0.5 * 3] = the mean


def test_harvest_uniform_has_the_poisson_mean():
    rng = np.random.default_rng(0)
    e = dyn.harvest_uniform(200_000, rng, quantum=0.5, mean_rate=3.0)
    assert e.min() >= 0 and e.max() <= 3.0
    assert e.mean() == pytest.approx(1.5, rel=0.01)  # std of the mean 0.87 / 447 = 0.13 %


def test_background_arrivals_mean_by_load_state():
    draws = FixedDraws(gamma=1.5)
    load = (0.2, 0.7)
    assert dyn.background_arrivals(False, draws, capacity_cycles=10.0, load=load) == 3.0
    assert dyn.background_arrivals(True, draws, capacity_cycles=10.0, load=load) == 10.5
    assert dyn.background_arrivals(True, draws, capacity_cycles=10.0, load=(0.2, 0.0)) == 0.0


def test_gauss_markov_step_moves_inside_and_reflects_at_the_border():
    cfg = ISCCConfig.paper(K=2)
    ap = np.asarray(cfg.ap_position, float)
    # UE 0 well inside the sector on its axis; UE 1 just inside the outer radius
    inside = ap + np.array([0.3 * cfg.r_0, 0.0])  # the target is at 0.5 r_0
    edge = ap + np.array([cfg.r_0 - 0.1, 0.0])
    assert dyn.in_cell(cfg, np.array([inside, edge])).all()
    position = np.array([inside, edge])
    velocity = np.array([[0.0, 1.0], [1.0, 0.0]])
    draws = FixedDraws(normal=np.zeros((2, 2)))
    # v' = m v + sqrt(1 - m^2) s n = 0.6 v (n = 0); p' = p + v' dt
    new_pos, new_vel = dyn.gauss_markov_step(
        cfg, position, velocity, draws, memory=0.6, speed=1.0, dt=1.0
    )
    np.testing.assert_allclose(new_pos[0], inside + [0.0, 0.6])
    np.testing.assert_allclose(new_vel[0], [0.0, 0.6])
    np.testing.assert_allclose(new_pos[1], edge)  # 0.6 m outward leaves the cell: stays
    np.testing.assert_allclose(new_vel[1], [-0.6, 0.0])  # and turns around
    # the noise term: sqrt(1 - 0.36) * 2 * n = 1.6 n
    draws = FixedDraws(normal=[[1.0, 0.0], [0.0, 0.0]])
    _, vel = dyn.gauss_markov_step(cfg, position, velocity, draws, memory=0.6, speed=2.0, dt=1.0)
    np.testing.assert_allclose(vel[0], [1.6, 0.6])


def test_in_cell_limits():
    cfg = ISCCConfig.paper(K=1)
    ap = np.asarray(cfg.ap_position, float)
    radial = np.array([1.0, 0.0])
    too_close = ap + (0.5 * cfg.min_ue_ap_distance) * radial
    too_far = ap + (cfg.r_0 + 0.1) * radial
    angle = cfg.sector_half_width + 0.01
    outside_sector = ap + 0.5 * cfg.r_0 * np.array([np.cos(angle), np.sin(angle)])
    at_target = np.asarray(cfg.target_position, float)
    for point in (too_close, too_far, outside_sector, at_target):
        assert not dyn.in_cell(cfg, point[None, :])[0], point


def test_in_cell_boundaries_are_inside():
    # AP off the origin (so the offset's sign matters), a 45 degree sector
    cfg = ISCCConfig.paper(
        K=1, ap_position=(5.0, 0.0), target_position=(55.0, 0.0), sector_half_width=np.pi / 4
    )
    ap = np.array([5.0, 0.0])
    on_bounds = {
        "outer radius": ap + [cfg.r_0, 0.0],  # radius exactly r_0
        "inner radius": ap + [cfg.min_ue_ap_distance, 0.0],
        "sector edge": ap + [30.0, 30.0],  # arctan2(30, 30) == pi / 4 exactly
        "target distance": np.array([55.0 - cfg.min_ue_target_distance, 0.0]),
    }
    for name, point in on_bounds.items():
        assert dyn.in_cell(cfg, point[None, :])[0], name
    outside = {
        "outer radius": ap + [np.nextafter(cfg.r_0, np.inf), 0.0],
        "inner radius": ap + [np.nextafter(cfg.min_ue_ap_distance, 0.0), 0.0],
        "sector edge": ap + [30.0, np.nextafter(30.0, np.inf)],
        "target distance": np.array([np.nextafter(50.0, np.inf), 0.0]),
    }
    for name, point in outside.items():
        assert not dyn.in_cell(cfg, point[None, :])[0], name


def test_switch_markov_at_exactly_one_over_sojourn_does_not_flip():
    draws = FixedDraws(random=[0.25])
    assert dyn.switch_markov(np.array([True]), draws, 4.0)[0]


def test_random_draws_are_per_ue_and_consumed_only_when_needed():
    # the maps reproduced by hand from a twin generator: one draw per UE (and axis)
    state = np.array([True, False, True, False, True, False])
    rng, twin = np.random.default_rng(5), np.random.default_rng(5)
    expected = state ^ (twin.random(6) < 0.5)
    np.testing.assert_array_equal(dyn.switch_markov(state, rng, 2.0), expected)
    cfg = ISCCConfig.paper(K=3)
    position = np.asarray(cfg.ap_position) + np.array([[30.0, 0.0], [30.0, 5.0], [30.0, -5.0]])
    velocity = np.zeros((3, 2))
    new_pos, new_vel = dyn.gauss_markov_step(
        cfg, position, velocity, rng, memory=0.0, speed=0.5, dt=2.0
    )
    noise = twin.standard_normal((3, 2))
    np.testing.assert_allclose(new_vel, 0.5 * noise, rtol=1e-15)
    np.testing.assert_allclose(new_pos, position + 2.0 * 0.5 * noise, rtol=1e-15)  # p + v dt
    # a zero background load draws nothing: the stream stays aligned
    assert dyn.background_arrivals(True, rng, capacity_cycles=10.0, load=(0.2, 0.0)) == 0.0
    assert rng.random() == twin.random()


def test_background_arrivals_below_one_cycle_mean():
    draws = FixedDraws(gamma=1.5)  # mean 0.5 * 1 = 0.5 cycles, still drawn
    assert dyn.background_arrivals(True, draws, capacity_cycles=1.0, load=(0.0, 0.5)) == 0.75
