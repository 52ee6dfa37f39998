"""Steering vectors, geometry and channel sampling (eqs. (3), (5))."""

import numpy as np
import pytest

from isac_gym.iscc import (
    ISCCConfig,
    sample_snapshot,
    ula_steering,
    upa_steering,
    with_channel_error,
)
from isac_gym.iscc.scenario import pathloss_gain, radar_gain, sample_ue_positions


def test_ula_unit_modulus_phase_progression_and_gain():
    cos_axis = np.array([-0.7, 0.0, 0.3, 1.0])
    a = ula_steering(16, cos_axis)
    assert a.shape == (4, 16)
    np.testing.assert_allclose(np.abs(a), 1.0)
    np.testing.assert_allclose(
        a[:, 1:] / a[:, :-1], np.exp(1j * np.pi * cos_axis)[:, None] * np.ones(15)
    )
    np.testing.assert_allclose(np.abs(np.sum(a.conj() * a, axis=1)), 16.0)  # gain M
    # Directions one null apart (Delta cos = 2/M) are orthogonal.
    assert abs(np.vdot(ula_steering(16, 0.1), ula_steering(16, 0.1 + 2 / 16))) < 1e-9


def test_upa_is_kronecker_of_ulas():
    a = upa_steering(4, 3, azimuth=0.4, elevation=-0.2)
    assert a.shape == (12,)
    np.testing.assert_allclose(np.abs(a), 1.0)
    expected = np.kron(ula_steering(4, np.cos(-0.2) * np.sin(0.4)), ula_steering(3, np.sin(-0.2)))
    np.testing.assert_allclose(a, expected)
    assert abs(np.vdot(a, a)) == pytest.approx(12)


def test_same_seed_same_snapshot_different_seed_differs(paper_config):
    a = sample_snapshot(paper_config, np.random.default_rng(7))
    b = sample_snapshot(paper_config, np.random.default_rng(7))
    c = sample_snapshot(paper_config, np.random.default_rng(8))
    np.testing.assert_array_equal(a.H, b.H)
    np.testing.assert_array_equal(a.H_sense, b.H_sense)
    np.testing.assert_array_equal(a.ue_position, b.ue_position)
    assert not np.allclose(a.H, c.H)


def test_positions_respect_sector_and_minimum_distances():
    config = ISCCConfig.paper(K=400)
    snap = sample_snapshot(config, np.random.default_rng(1))
    r = np.linalg.norm(snap.ue_position, axis=1)
    angle = np.arctan2(snap.ue_position[:, 1], snap.ue_position[:, 0])
    assert np.all((r >= config.min_ue_ap_distance) & (r <= config.r_0))
    assert np.all(np.abs(angle) <= config.sector_half_width)
    assert np.all(snap.distance_target >= config.min_ue_target_distance)
    # uniform by area: about a quarter of the UEs within half the radius
    assert 0.15 < np.mean(r < config.r_0 / 2) < 0.35


def test_pure_los_channel_has_the_path_gain_and_array_gain():
    config = ISCCConfig.paper(n_nlos=0)
    snap = sample_snapshot(config, np.random.default_rng(2))
    gain = np.abs(np.einsum("ka,kab,kb->k", snap.ap_los.conj(), snap.H, snap.ue_los)) ** 2
    np.testing.assert_allclose(gain, snap.path_gain * (config.M_a * config.M_ut) ** 2)
    np.testing.assert_allclose(
        np.linalg.norm(snap.H, axis=(1, 2)) ** 2, snap.path_gain * config.M_a * config.M_ut
    )


def test_hand_computed_path_and_radar_gains():
    config = ISCCConfig.paper()
    lam = 299_792_458.0 / 28e9
    ge = 10**0.5  # 5 dBi
    assert pathloss_gain(config, 100.0) == pytest.approx(
        ge**2 * (lam / (4 * np.pi)) ** 2 / 100**2.1
    )
    # 61.4 dB free-space loss at 1 m for 28 GHz, 21 dB per decade
    assert -10 * np.log10(pathloss_gain(config, 10.0) / ge**2) == pytest.approx(61.4 + 21, abs=0.05)
    assert radar_gain(config, 50.0) == pytest.approx(
        ge**2 * lam**2 * 100 / ((4 * np.pi) ** 3 * 50**4)
    )


def test_sensing_channel_is_rank_one_eq5(paper_snapshot):
    s = paper_snapshot
    expected = s.rho[:, None, None] * s.sense_rx[:, :, None] * s.sense_tx.conj()[:, None, :]
    np.testing.assert_allclose(s.H_sense, expected)
    assert np.linalg.matrix_rank(s.H_sense[0]) == 1


def test_snapshot_is_read_only_and_replace_validates_shapes(paper_snapshot):
    with pytest.raises(ValueError):
        paper_snapshot.H[0, 0, 0] = 1.0
    assert paper_snapshot.replace(tau=0.2).tau.shape == (2,)


def test_bad_sampler_arguments(paper_config):
    with pytest.raises(ValueError, match="rng"):
        sample_snapshot(paper_config, 3)
    with pytest.raises(ValueError, match="energy_budget"):
        sample_snapshot(paper_config, np.random.default_rng(0), energy_budget=-1.0)
    with pytest.raises(ValueError, match="ue_position"):
        sample_snapshot(paper_config, np.random.default_rng(0), ue_position=np.zeros((3, 2)))


def test_channel_error_has_the_requested_spectral_norm(paper_snapshot):
    est = with_channel_error(paper_snapshot, 1e-6, np.random.default_rng(0))
    np.testing.assert_allclose(np.linalg.norm(paper_snapshot.H - est.H, ord=2, axis=(1, 2)), 1e-6)
    np.testing.assert_allclose(
        np.linalg.norm(paper_snapshot.H_sense - est.H_sense, ord=2, axis=(1, 2)), 1e-6
    )
    same = with_channel_error(paper_snapshot, 0.0, np.random.default_rng(0))
    np.testing.assert_allclose(same.H, paper_snapshot.H)


def test_snapshot_arrays_are_read_only_and_callers_arrays_stay_theirs():
    config = ISCCConfig.paper(K=3)
    positions = sample_ue_positions(config, np.random.default_rng(0), 3)
    snap = sample_snapshot(config, np.random.default_rng(1), ue_position=positions)
    assert positions.flags.writeable  # the caller's array is neither frozen nor aliased
    positions[0] = 0.0
    assert snap.ue_position[0, 0] != 0.0
    for name in ("H", "H_sense", "ue_position", "Q", "energy_budget"):
        with pytest.raises(ValueError):
            getattr(snap, name)[0] = 0  # read-only
    part = snap.select([0, 2])
    np.testing.assert_array_equal(part.H, snap.H[[0, 2]])
    assert not part.H.flags.writeable and part.replace(C_ap=1.0).H is part.H  # shared


def test_ula_inner_is_the_dirichlet_kernel_of_the_steering_vectors():
    from isac_gym.iscc.arrays import ula_inner

    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, 400), rng.uniform(-1, 1, 400)
    b[:5] = a[:5]  # equal: M
    b[5:10] = a[5:10] + 1e-9  # nearly equal: no cancellation
    a[10], b[10] = 1.0, -1.0  # grating lobe (theta = 2 pi): M again
    for M in (1, 8, 64):
        direct = np.einsum("nm,nm->n", ula_steering(M, a).conj(), ula_steering(M, b))
        np.testing.assert_allclose(ula_inner(M, a, b), direct, rtol=0, atol=1e-12 * M)
    assert ula_inner(64, 0.3, 0.3) == 64


# --- dense channels built on first read (DenseChannel) ----------------------------------


def _drawn(seed=3, K=4):
    return sample_snapshot(ISCCConfig.paper(K=K), np.random.default_rng(seed))


def test_drawn_slot_builds_its_dense_channels_only_when_read_eqs_3_and_5():
    snap = _drawn()
    assert snap.stored("H") is None and snap.stored("H_sense") is None
    assert (snap.M_a, snap.M_ut, snap.M_ur) == (64, 64, 64)  # known without them
    # eq. (3) summed path by path, eq. (5) as an outer product: independent of the builder
    comm = sum(
        snap.path_coeff[:, path, None, None]
        * snap.path_ap[:, path, :, None]
        * snap.path_ue[:, path, None, :].conj()
        for path in range(snap.path_coeff.shape[1])
    )
    sense = np.einsum("k,kr,kt->krt", snap.rho, snap.sense_rx, snap.sense_tx.conj())
    for name, expected in (("H", comm), ("H_sense", sense)):
        built = getattr(snap, name)
        assert built.shape == expected.shape and not built.flags.writeable
        np.testing.assert_allclose(built, expected, rtol=0, atol=1e-13 * np.abs(expected).max())
        assert getattr(snap, name) is built  # built once, then kept
        assert snap.stored(name) is built


def test_select_and_replace_keep_dense_channels_unbuilt_and_equal():
    snap, twin = _drawn(), _drawn()
    twin.H, twin.H_sense  # noqa: B018  (built before selecting)
    part, twin_part = snap.select([0, 2]), twin.select([0, 2])
    assert part.stored("H") is None and twin_part.stored("H") is not None
    np.testing.assert_array_equal(part.H, twin_part.H)  # the same numbers either way
    np.testing.assert_array_equal(part.H_sense, twin_part.H_sense)
    same_channels = snap.replace(tau=0.3, energy_budget=np.ones(4))
    assert same_channels.has_paths and same_channels.stored("H") is None
    # new sensing factors: the factors are dropped, the dense matrices kept as they were
    moved = _drawn().replace(rho=np.ones(4, complex))
    assert not moved.has_paths and moved.stored("H_sense") is not None
    np.testing.assert_array_equal(moved.H_sense, snap.H_sense)
    np.testing.assert_array_equal(moved.H, snap.H)


def test_a_snapshot_without_factors_needs_dense_channels():
    snap = _drawn()
    with pytest.raises(ValueError, match="H and H_sense"):
        snap.replace(path_coeff=None)
    import pickle

    copy = pickle.loads(pickle.dumps(snap))  # unbuilt survives a round trip (Ray, spawn)
    assert copy.stored("H") is None
    np.testing.assert_array_equal(copy.H, snap.H)


def test_replace_and_select_reject_unknown_fields_and_copy_callers_arrays():
    snap = _drawn()
    with pytest.raises(TypeError, match="bogus"):
        snap.replace(bogus=1.0)
    tau = np.full(4, 0.3)
    changed = snap.replace(tau=tau)
    tau[0] = 9.0  # the caller's array stays the caller's
    assert changed.tau[0] == 0.3 and snap.tau[0] != 0.3 and not changed.tau.flags.writeable
    part = changed.select([1, 3])
    assert part.K == 2 and part.tau.tolist() == [0.3, 0.3]
    assert part.path_ap.shape == (2, snap.path_ap.shape[1], 64) and part.stored("H") is None


def test_snapshot_from_channels_reusing_a_slots_constants_equals_building_them():
    import dataclasses

    from isac_gym.iscc.scenario import channels_from_draws, draw_fading, snapshot_from_channels

    config, rng = ISCCConfig.paper(K=3), np.random.default_rng(8)
    previous = sample_snapshot(config, rng)
    previous.H  # noqa: B018  (built: must not leak into the next slot)
    position, heading = previous.ue_position + 1.0, previous.ue_heading + 0.1
    channels = channels_from_draws(config, position, heading, draw_fading(config, rng, 3))
    built = snapshot_from_channels(config, position, heading, channels)
    reused = snapshot_from_channels(config, position, heading, channels, like=previous)
    assert reused.stored("H") is None
    for field in dataclasses.fields(built):
        np.testing.assert_array_equal(
            getattr(reused, field.name), getattr(built, field.name), err_msg=field.name
        )
