"""The mMIMO-OFDM ISAC true model (spec ``mimo_isac_model.md``, sections 2, 3 and 7).

Every check recomputes the quantity another way: steering derivatives by finite
differences, ZF by projection, the transmit power from the explicit W_n P_n W_n^H and by
Monte Carlo, the SINR from literal received signals, the FIM from finite differences of
the echo mean.
"""

import dataclasses

import numpy as np
import pytest

from isac_gym.mimo import (
    MIMOAllocation,
    MIMOISACConfig,
    crb_from_fim,
    crb_theorem1,
    evaluate,
    fisher_information,
    sample_snapshot,
    sinr_terms,
    stream_constants,
    streams,
    transmit_power_closed_form,
    upa_steering,
)

SMALL = dict(N_x=4, N_y=4, K=3, N=4)


def small_case(seed=0, **overrides):
    """A 4x4 UPA, K = 3, N = 4 drop with its constants and a random allocation near P_max."""
    config = MIMOISACConfig.paper(**{**SMALL, **overrides})
    snapshot = sample_snapshot(config, np.random.default_rng(seed))
    constants = stream_constants(snapshot)
    rng = np.random.default_rng(1000 + seed)
    p = rng.uniform(0.2, 1.0, (snapshot.N, snapshot.K)) * snapshot.P_max / (snapshot.N * snapshot.K)
    allocation = MIMOAllocation.from_power(p, rng.uniform(0.2, 0.8, p.shape))
    return config, snapshot, constants, allocation


def cgauss(rng, *shape):
    """Unit-power circularly symmetric complex Gaussian samples."""
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2.0)


def kappas(config):
    return np.pi * config.subcarrier_frequencies() / config.f_c


def equal_split(snapshot, constants, power):
    """a = b on every stream, scaled so that P_T = power."""
    a = np.ones((snapshot.N, snapshot.K))
    unit = np.sum(2.0 + 2.0 * constants.eps)  # P_T of a = b = 1, eq. (11)
    a = a * np.sqrt(power / unit)
    return MIMOAllocation(a=a, b=a)


def scaled(allocation, factor):
    """The allocation with every stream power multiplied by ``factor``."""
    root = np.sqrt(factor)
    return MIMOAllocation(a=allocation.a * root, b=allocation.b * root)


# --- configuration and scenario ---------------------------------------------------------


def test_paper_defaults():
    config = MIMOISACConfig.paper()
    assert (config.K, config.N_t, config.N, config.L) == (6, 64, 16, 64)
    assert config.P_max == pytest.approx(1.0)  # 30 dBm
    assert config.xi == pytest.approx(2.5119e-6, rel=1e-4, abs=0)  # -26 dBm
    assert config.noise == pytest.approx(10 ** (-20.4) * 1e7 / 16, rel=1e-12, abs=0)  # -174 dBm/Hz
    f_n = config.subcarrier_frequencies()
    np.testing.assert_allclose(np.diff(f_n), config.bandwidth / config.N)
    assert f_n.mean() == pytest.approx(config.f_c)


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(N_x=2, N_y=2, K=5), "MIMOISACConfig.K"),
        (dict(P_max=-1.0), "MIMOISACConfig.P_max"),
        (dict(eta=1.5), "MIMOISACConfig.eta"),
        (dict(sensing_precoder="mmse"), "MIMOISACConfig.sensing_precoder"),
        (dict(target_azimuth=np.pi / 2 + 1e-3), "MIMOISACConfig.target_azimuth"),
        (dict(target_elevation=-2.0), "MIMOISACConfig.target_elevation"),
        (dict(L=2.5), "MIMOISACConfig.L"),
        (dict(bogus_field=1), "bogus_field"),
    ],
)
def test_bad_config_raises_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        MIMOISACConfig.paper(**overrides)


def test_config_boundaries_are_accepted():
    config = MIMOISACConfig.paper(eta=1.0, target_azimuth=np.pi / 2, N_x=2, N_y=2, K=4)
    assert config.K == config.N_t == 4


def test_upa_steering_is_the_kron_of_the_axis_vectors():
    theta, phi, kappa = 0.7, -0.3, np.array([2.9, 3.3])
    a, _, _ = upa_steering(3, 5, theta, phi, kappa)
    for n, kap in enumerate(kappa):
        ax = np.exp(1j * kap * np.arange(3) * np.sin(theta) * np.cos(phi))
        ay = np.exp(1j * kap * np.arange(5) * np.sin(phi))
        np.testing.assert_allclose(a[n], np.kron(ax, ay), rtol=0, atol=1e-13)


@pytest.mark.parametrize("theta, phi", [(np.radians(30), np.radians(10)), (-0.9, 0.6)])
def test_steering_derivatives_match_central_differences(theta, phi):
    config = MIMOISACConfig.paper()
    kappa = kappas(config)[[0, -1]]  # the two edge subcarriers
    a, d_theta, d_phi = upa_steering(8, 8, theta, phi, kappa)
    h = 1e-6
    for derivative, plus, minus in (
        (1j * d_theta * a, (theta + h, phi), (theta - h, phi)),
        (1j * d_phi * a, (theta, phi + h), (theta, phi - h)),
    ):
        fd = (upa_steering(8, 8, *plus, kappa)[0] - upa_steering(8, 8, *minus, kappa)[0]) / (2 * h)
        for n in range(2):
            error = np.linalg.norm(fd[n] - derivative[n]) / np.linalg.norm(derivative[n])
            assert error < 1e-7


def test_snapshot_is_deterministic_per_seed_and_read_only():
    config = MIMOISACConfig.paper(**SMALL)
    one, two = (sample_snapshot(config, np.random.default_rng(7)) for _ in range(2))
    other = sample_snapshot(config, np.random.default_rng(8))
    arrays = [
        f.name for f in dataclasses.fields(one) if isinstance(getattr(one, f.name), np.ndarray)
    ]
    assert {"H", "steering", "d_theta", "d_phi", "ue_position", "large_scale_gain"} <= set(arrays)
    for name in arrays:
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))
        assert not getattr(one, name).flags.writeable, name
    assert one.alpha == two.alpha
    assert not np.allclose(one.H, other.H)
    assert not np.allclose(one.ue_position, other.ue_position)
    assert one.alpha != other.alpha
    with pytest.raises(ValueError):
        one.H[0, 0, 0] = 0.0


def test_snapshot_target_and_channel_statistics():
    config = MIMOISACConfig.paper()
    snapshot = sample_snapshot(config, np.random.default_rng(3))
    a, _, _ = upa_steering(8, 8, config.target_azimuth, config.target_elevation, kappas(config))
    np.testing.assert_allclose(snapshot.steering, a, rtol=0, atol=1e-14)
    # radar equation, spec section 6: |alpha|^2 ~ 1.4e-17
    assert abs(snapshot.alpha) ** 2 == pytest.approx(
        config.wavelength**2 * config.rcs / ((4 * np.pi) ** 3 * config.target_distance**4),
        rel=1e-12,
        abs=0,
    )
    assert abs(snapshot.alpha) ** 2 == pytest.approx(1.4e-17, rel=0.05, abs=0)
    distance = np.linalg.norm(snapshot.ue_position, axis=1)
    assert np.all((distance >= config.min_distance) & (distance <= config.cell_radius))
    # h~ ~ CN(0, I): E|h_{n,k,m}|^2 = beta_k
    normalised = np.abs(snapshot.H) ** 2 / snapshot.large_scale_gain
    assert normalised.mean() == pytest.approx(1.0, rel=0.05)


# --- precoders (Lemma 1) -----------------------------------------------------------------


def test_zero_forcing_precoder():
    _, snapshot, constants, _ = small_case(seed=1)
    W, zeta = constants.W, constants.zeta
    np.testing.assert_allclose(np.linalg.norm(W, axis=1), 1.0, rtol=1e-13)
    for n in range(snapshot.N):
        H = snapshot.H[n]
        gains = H.conj().T @ W[n]  # [j, k] = h_j^H w_k
        leakage = np.abs(gains) / zeta[n][None, :]
        assert np.all(leakage[~np.eye(snapshot.K, dtype=bool)] < 1e-12)
        np.testing.assert_allclose(np.diag(gains), zeta[n], rtol=1e-12)
        assert np.all(zeta[n] > 0)
        for k in range(snapshot.K):
            # normalised ZF = projection of h_k off the other users' channels
            others = np.delete(H, k, axis=1)
            q, _ = np.linalg.qr(others)
            residual = H[:, k] - q @ (q.conj().T @ H[:, k])
            assert zeta[n, k] == pytest.approx(np.linalg.norm(residual), rel=1e-12, abs=0)
            np.testing.assert_allclose(W[n, :, k], residual / np.linalg.norm(residual), atol=1e-12)


def test_matched_sensing_precoder_and_stream_constants():
    _, snapshot, constants, _ = small_case(seed=2)
    np.testing.assert_allclose(constants.f, snapshot.steering / np.sqrt(snapshot.N_t))
    for n in range(snapshot.N):
        for k in range(snapshot.K):
            h, w, f = snapshot.H[n, :, k], constants.W[n, :, k], constants.f[n]
            assert constants.g[n, k] == pytest.approx(np.vdot(h, f), rel=1e-12, abs=0)
            assert constants.eps[n, k] == pytest.approx(np.vdot(w, f).real, rel=1e-12, abs=0)
    assert np.max(np.abs(constants.eps)) > 0.05  # the cross term of (11) matters


def test_sensing_leakage_is_about_one_over_nt_minus_k_plus_one():
    """E|g|^2 = beta, E zeta^2 = beta (N_t - K + 1) (spec 3.3), over five paper drops."""
    config = MIMOISACConfig.paper()
    g2, z2 = [], []
    for seed in range(5):
        snapshot = sample_snapshot(config, np.random.default_rng(seed))
        constants = stream_constants(snapshot)
        g2.append(np.abs(constants.g) ** 2 / snapshot.large_scale_gain)
        z2.append(constants.zeta**2 / snapshot.large_scale_gain)
    assert np.mean(g2) == pytest.approx(1.0, rel=0.15)
    assert np.mean(z2) == pytest.approx(config.N_t - config.K + 1, rel=0.05)


def test_nullspace_sensing_precoder_removes_leakage():
    _, snapshot, constants, allocation = small_case(seed=3, sensing_precoder="nullspace")
    h_norm = np.linalg.norm(snapshot.H, axis=1)  # (N, K), |g| <= ||h|| for unit f
    np.testing.assert_allclose(np.linalg.norm(constants.f, axis=1), 1.0, rtol=1e-13)
    assert np.all(np.abs(constants.g) / h_norm < 1e-10)
    assert np.all(np.abs(constants.eps) < 1e-10)
    # f still points at the target: positive echo gain
    assert np.all(np.abs(np.sum(snapshot.steering.conj() * constants.f, axis=1)) > 0.1)
    ev = evaluate(snapshot, allocation, 0.5, constants)
    expected = allocation.a**2 * constants.zeta**2 / snapshot.noise
    np.testing.assert_allclose(ev.sinr, expected, rtol=1e-9)
    assert ev.transmit_power == pytest.approx(np.sum(allocation.power), rel=1e-12)
    _, psi = sinr_terms(constants, allocation, snapshot.noise)
    np.testing.assert_allclose(psi, snapshot.noise, rtol=1e-9)


# --- transmit power (Lemma 2) ------------------------------------------------------------


def explicit_precoders(constants, allocation):
    """W_n = [v_{n,1..K}], v = sqrt(rho_c) w + sqrt(rho_s) f, and P_n = diag(p), eq. (1)-(2)."""
    p, rho_c = allocation.power, allocation.rho_c
    W = (
        np.sqrt(rho_c)[:, None, :] * constants.W
        + np.sqrt(1.0 - rho_c)[:, None, :] * constants.f[:, :, None]
    )
    return W, p


def test_transmit_power_lemma2():
    _, snapshot, constants, allocation = small_case(seed=4)
    W, p = explicit_precoders(constants, allocation)
    explicit = sum(np.trace(W[n] @ np.diag(p[n]) @ W[n].conj().T).real for n in range(snapshot.N))
    assert transmit_power_closed_form(constants, allocation) == pytest.approx(explicit, rel=1e-12)
    assert evaluate(snapshot, allocation, 0.5, constants).transmit_power == pytest.approx(
        explicit, rel=1e-12
    )
    cross = np.sum(2 * constants.eps * allocation.a * allocation.b)
    assert abs(cross) > 0.03 * explicit  # so the Monte Carlo below can see a missing term

    rng = np.random.default_rng(99)
    draws = 40_000
    energy = 0.0
    for n in range(snapshot.N):
        x = W[n] @ (np.sqrt(p[n])[:, None] * cgauss(rng, snapshot.K, draws))  # (2)
        energy += np.mean(np.sum(np.abs(x) ** 2, axis=0))
    assert energy == pytest.approx(explicit, rel=0.01)
    assert not energy == pytest.approx(np.sum(p), rel=0.01)


def test_from_power_round_trip():
    rng = np.random.default_rng(5)
    p, rho_c = rng.uniform(0.1, 1.0, (4, 3)), rng.uniform(0.0, 1.0, (4, 3))
    allocation = MIMOAllocation.from_power(p, rho_c)
    np.testing.assert_allclose(allocation.power, p, rtol=1e-13)
    np.testing.assert_allclose(allocation.rho_c, rho_c, rtol=1e-12, atol=1e-15)


# --- SINR and SE -------------------------------------------------------------------------


def test_sinr_closed_form_matches_received_signals():
    _, snapshot, constants, allocation = small_case(seed=5)
    ev = evaluate(snapshot, allocation, 0.5, constants)
    chi, psi = sinr_terms(constants, allocation, snapshot.noise)
    np.testing.assert_allclose(np.abs(chi) ** 2 / psi, ev.sinr, rtol=1e-10)

    # y_k = h_k^H sum_j s_j sym_j + noise, with the ZF built here from a pseudo-inverse
    brute = np.zeros((snapshot.N, snapshot.K))
    leak = np.zeros_like(brute)
    for n in range(snapshot.N):
        H = snapshot.H[n]
        zf = np.linalg.pinv(H.conj().T)  # columns H (H^H H)^{-1} e_k
        zf = zf / np.linalg.norm(zf, axis=0)
        f = snapshot.steering[n] / np.sqrt(snapshot.N_t)
        s = [allocation.a[n, j] * zf[:, j] + allocation.b[n, j] * f for j in range(snapshot.K)]
        for k in range(snapshot.K):
            signal = abs(np.vdot(H[:, k], s[k])) ** 2
            interference = sum(
                abs(np.vdot(H[:, k], s[j])) ** 2 for j in range(snapshot.K) if j != k
            )
            brute[n, k] = signal / (interference + snapshot.noise)
            leak[n, k] = interference
    np.testing.assert_allclose(ev.sinr, brute, rtol=1e-9)
    assert np.median(leak) > 10 * snapshot.noise  # the sensing-beam leakage is exercised
    np.testing.assert_allclose(ev.se, np.log2(1.0 + brute).mean(axis=0), rtol=1e-9)  # (16)
    assert ev.sum_se == pytest.approx(np.sum(ev.se))


def test_energy_efficiencies():
    _, snapshot, constants, allocation = small_case(seed=6)
    omega = 0.3
    ev = evaluate(snapshot, allocation, omega, constants)
    P = ev.transmit_power / snapshot.eta + snapshot.P_c + snapshot.xi * ev.sum_se  # (12)
    assert ev.total_power == pytest.approx(P, rel=1e-12)
    assert ev.ee_comm == pytest.approx(ev.sum_se / P, rel=1e-12)  # (14)
    assert ev.ee_sense == pytest.approx((1 / ev.crb[0] + 1 / ev.crb[1]) / P, rel=1e-12)  # (17)
    assert ev.ee == pytest.approx((1 - omega) * ev.ee_comm + omega * ev.ee_sense, rel=1e-12)


# --- CRB (Theorem 1) ---------------------------------------------------------------------


def fd_fim(config, snapshot, X, h=1e-6):
    """FIM of (theta, phi, Re alpha, Im alpha) from central differences of the echo mean.

    mu_n(xi) = alpha G_n(theta, phi) X_n, G_n = a_n a_n^H; F_ij = (2 / sigma_s^2) sum_n Re
    tr(dmu_i^H dmu_j). ``X`` (N, N_t, columns).
    """
    theta, phi = snapshot.target_angles
    kappa = kappas(config)

    def mu(th, ph, alpha):
        a = upa_steering(config.N_x, config.N_y, th, ph, kappa)[0]
        return alpha * a[:, :, None] * np.einsum("nm,nmt->nt", a.conj(), X)[:, None, :]

    alpha = snapshot.alpha
    D = [
        (mu(theta + h, phi, alpha) - mu(theta - h, phi, alpha)) / (2 * h),
        (mu(theta, phi + h, alpha) - mu(theta, phi - h, alpha)) / (2 * h),
        mu(theta, phi, 1.0),
        mu(theta, phi, 1j),
    ]
    F = np.array([[np.sum(Di.conj() * Dj).real for Dj in D] for Di in D])
    return 2.0 / snapshot.echo_noise * F


def schur_crb(F):
    """[F^-1]_11, [F^-1]_22 through the Schur complement of the alpha block."""
    J = F[:2, :2] - F[:2, 2:] @ np.linalg.solve(F[2:, 2:], F[2:, :2])
    return np.diag(np.linalg.inv(J))


def test_crb_theorem1_matches_finite_difference_fim_of_a_frame():
    config, snapshot, constants, allocation = small_case(seed=7)
    s = streams(constants, allocation)
    symbols = cgauss(np.random.default_rng(7), snapshot.N, snapshot.K, config.L)
    X = s @ symbols  # X_n = W_n P_n^{1/2} S_n, (4)
    F = fd_fim(config, snapshot, X)
    reference = schur_crb(F)
    sample = crb_theorem1(snapshot, X / np.sqrt(config.L))  # R_n = X_n X_n^H / L
    np.testing.assert_allclose(sample, reference, rtol=1e-6)
    np.testing.assert_allclose(crb_from_fim(F), reference, rtol=1e-6)
    # the large-L covariance W P W^H gives a different (nearby) CRB: the test sees R_n
    expected = crb_theorem1(snapshot, s)
    assert np.all(np.abs(expected / reference - 1) > 1e-4)
    assert np.all(np.abs(expected / reference - 1) < 0.3)


def test_per_stream_fim_matches_finite_differences_entrywise():
    config, snapshot, constants, allocation = small_case(seed=8)
    s = streams(constants, allocation)
    F_fd = fd_fim(config, snapshot, np.sqrt(config.L) * s)  # X X^H / L = sum_k s s^H
    F = fisher_information(constants, allocation)
    scale = np.sqrt(np.outer(np.diag(F_fd), np.diag(F_fd)))
    assert np.max(np.abs(F - F_fd) / scale) < 1e-7
    np.testing.assert_allclose(F, F.T, rtol=0, atol=1e-12 * scale.max())
    # alpha block is c I_2 (spec 3.4)
    assert abs(F[2, 3]) / F[2, 2] < 1e-9
    assert abs(F[2, 2] - F[3, 3]) / F[2, 2] < 1e-9
    np.testing.assert_allclose(crb_from_fim(F), crb_theorem1(snapshot, s), rtol=1e-9)
    np.testing.assert_allclose(
        evaluate(snapshot, allocation, 0.5, constants).crb, crb_theorem1(snapshot, s), rtol=1e-12
    )


@pytest.mark.parametrize("precoder", ["matched", "nullspace"])
def test_crb_scales_inversely_with_power(precoder):
    _, snapshot, constants, allocation = small_case(seed=9, sensing_precoder=precoder)
    one = evaluate(snapshot, allocation, 0.5, constants).crb
    two = evaluate(snapshot, scaled(allocation, 2.0), 0.5, constants).crb
    np.testing.assert_allclose(two, one / 2, rtol=1e-10)
    F1 = fisher_information(constants, allocation)
    F2 = fisher_information(constants, scaled(allocation, 2.0))
    np.testing.assert_allclose(F2, 2 * F1, rtol=1e-12)


@pytest.mark.parametrize("c", [0.4, 2.0, -1.3])
def test_crb_invariant_to_array_phase_reference(c):
    _, snapshot, constants, allocation = small_case(seed=10)
    s = streams(constants, allocation)
    rotated = dataclasses.replace(snapshot, steering=snapshot.steering * np.exp(1j * c))
    np.testing.assert_allclose(crb_theorem1(rotated, s), crb_theorem1(snapshot, s), rtol=1e-9)
    # the matched sensing precoder itself does depend on the reference (spec 2.4)
    assert not np.allclose(stream_constants(rotated).eps, constants.eps)


def test_silent_transmitter_has_infinite_crb():
    _, snapshot, constants, _ = small_case(seed=11)
    zero = np.zeros((snapshot.N, snapshot.K))
    ev = evaluate(snapshot, MIMOAllocation(zero, zero), 0.5, constants)
    assert np.all(np.isinf(ev.crb))
    assert ev.transmit_power == 0.0 and ev.sum_se == 0.0
    assert np.all(np.isinf(crb_from_fim(fisher_information(constants, MIMOAllocation(zero, zero)))))


# --- calibration at the paper defaults (spec section 6) -------------------------------


def test_calibration_equal_split_at_paper_defaults():
    config = MIMOISACConfig.paper()
    rate, crb_theta, ee_c, ee_s = [], [], [], []
    for seed in range(20):
        snapshot = sample_snapshot(config, np.random.default_rng(seed))
        constants = stream_constants(snapshot)
        allocation = equal_split(snapshot, constants, snapshot.P_max)
        ev = evaluate(snapshot, allocation, 0.0, constants)
        assert ev.transmit_power == pytest.approx(snapshot.P_max, rel=1e-12)
        rate.append(ev.se.mean())
        crb_theta.append(ev.crb[0])
        ee_c.append(ev.ee_comm)
        ee_s.append(ev.ee_sense)
    assert 3.8 <= np.median(rate) <= 5.0  # spec: 4.4
    assert 1e-5 <= np.median(crb_theta) <= 3e-5  # spec: 1.8e-5
    assert 6 <= np.median(ee_c) <= 12  # spec: 9
    assert 3e4 <= np.median(ee_s) <= 6e4  # spec: 4.6e4


# --- allocation validation and feasibility ----------------------------------------------


@pytest.mark.parametrize(
    "field, change",
    [
        ("a", lambda a: a[:, :-1]),
        ("b", lambda b: b[None]),
        ("a", lambda a: np.where(np.arange(a.size).reshape(a.shape) == 3, -1e-3, a)),
        ("b", lambda b: np.where(np.arange(b.size).reshape(b.shape) == 0, np.nan, b)),
        ("a", lambda a: a + np.inf),
    ],
)
def test_bad_allocation_raises_naming_the_field(field, change):
    _, snapshot, constants, allocation = small_case(seed=12)
    values = {"a": allocation.a, "b": allocation.b}
    values[field] = change(values[field])
    with pytest.raises(ValueError, match=rf"MIMOAllocation\.{field}\b"):
        evaluate(snapshot, MIMOAllocation(**values), 0.5, constants)


@pytest.mark.parametrize("omega", [-0.1, 1.5, np.nan, "x"])
def test_bad_omega_raises(omega):
    _, snapshot, constants, allocation = small_case(seed=12)
    with pytest.raises(ValueError, match="omega"):
        evaluate(snapshot, allocation, omega, constants)


def test_power_check_at_the_budget():
    _, snapshot, constants, _ = small_case(seed=13)
    above = evaluate(snapshot, equal_split(snapshot, constants, snapshot.P_max * 1.001), 0.5)
    assert above.transmit_power == pytest.approx(snapshot.P_max * 1.001, rel=1e-12)
    assert not above.checks["power"] and "power" in above.violations() and not above.feasible
    below = evaluate(snapshot, equal_split(snapshot, constants, snapshot.P_max * 0.999), 0.5)
    assert below.checks["power"] and "power" not in below.violations()


def test_tiny_power_fails_se_and_crb_checks():
    _, snapshot, constants, _ = small_case(seed=14)
    ev = evaluate(snapshot, equal_split(snapshot, constants, 1e-9), 0.5, constants)
    assert ev.checks["se"].shape == (snapshot.K,) and not np.any(ev.checks["se"])
    assert ev.violations() == ["se", "crb_theta", "crb_phi"]
    assert not ev.feasible
    assert np.all(ev.crb > snapshot.crb_max)
