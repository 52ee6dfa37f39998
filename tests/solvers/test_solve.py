"""optimizers.iscc.solve: the fast method and the baselines of Section VI."""

import numpy as np
import pytest

from isac_gym.demo import simple_allocation
from isac_gym.iscc import ISCCConfig, evaluate, sample_snapshot
from optimizers import ofdma_shares, solve, solve_batch

SEEDS = range(8)


def snaps(**overrides):
    config = ISCCConfig.paper(**overrides)
    return [sample_snapshot(config, np.random.default_rng(seed)) for seed in SEEDS]


@pytest.fixture(scope="module")
def default_snaps():
    return snaps()


def test_fast_is_feasible_and_beats_the_simple_allocation(default_snaps):
    feasible = []
    for snap in default_snaps:
        sol = solve(snap, 0.1, method="fast")
        feasible.append(sol.feasible)
        simple = evaluate(snap, simple_allocation(snap, 0.76), 0.1)
        if simple.feasible.all() and sol.feasible.all():
            assert sol.cost <= simple.cost * (1 + 1e-9)
        assert sol.info["wall_time_s"] > 0 and sol.info["method"] == "fast"
    assert np.mean(feasible) >= 0.9


@pytest.mark.parametrize("method, alpha", [("fl", 0.0), ("fo", 1.0), ("ho", 0.5)])
def test_fixed_offloading_baselines_keep_their_alpha(default_snaps, method, alpha):
    sol = solve(default_snaps[0], 0.1, method=method)
    np.testing.assert_array_equal(sol.allocation.alpha, alpha)


def test_full_local_fails_exactly_when_the_cpu_is_too_slow():
    # varpi Q / C_u = 1 s: FL is infeasible below tau = 1 s and feasible at 1 s.
    short = solve(snaps(tau=0.9)[0], 0.1, method="fl")
    assert not short.feasible.any()
    assert all("latency" in v or "cpu_ue" in v for v in short.evaluation.violations().values())
    assert solve(snaps(tau=1.0)[0], 0.1, method="fl").feasible.all()


def test_fo_and_ho_thresholds_of_fig2():
    assert not solve(snaps(tau=0.2)[0], 0.1, method="fo").feasible.any()  # t_proc = 0.2 s
    assert solve(snaps(tau=0.3)[0], 0.1, method="fo").feasible.all()
    assert not solve(snaps(tau=0.45)[0], 0.1, method="ho").feasible.any()
    assert solve(snaps(tau=0.5)[0], 0.1, method="ho").feasible.all()


def test_proposed_is_cheapest_where_baselines_are_feasible(default_snaps):
    for snap in default_snaps[:4]:
        proposed = solve(snap, 0.1, method="fast")
        if not proposed.feasible.all():
            continue
        for method in ("fo", "ctem", "ofdma"):
            other = solve(snap, 0.1, method=method)
            if other.feasible.all():
                assert proposed.cost <= other.cost * (1 + 1e-6), method


def test_ctem_equals_proposed_at_beta_one(default_snaps):
    snap = default_snaps[0]
    assert solve(snap, 1.0, method="ctem").cost == pytest.approx(
        solve(snap, 1.0, method="fast").cost, rel=1e-9
    )
    assert solve(snap, 0.1, method="ctem").cost > solve(snap, 0.1, method="fast").cost


def test_alpha_falls_with_beta_and_rises_as_cpu_shrinks():
    snap = snaps(tau=1.0)[0]
    alphas = [solve(snap, b, method="fast").allocation.alpha.mean() for b in (0.1, 1.0, 10.0)]
    assert alphas[0] > alphas[1] > alphas[2]
    slow = solve(snap.replace(C_u=0.5e9), 1.0, method="fast").allocation.alpha
    quick = solve(snap.replace(C_u=3e9), 1.0, method="fast").allocation.alpha
    assert np.all(slow > quick)


def test_ofdma_gives_the_worse_channel_more_band(default_snaps):
    snap = default_snaps[0]
    share = ofdma_shares(snap)
    assert share.sum() == pytest.approx(1.0)
    assert np.argmax(share) == np.argmin(snap.path_gain)
    sol = solve(snap, 0.1, method="ofdma")
    np.testing.assert_allclose(sol.allocation.bandwidth_share, share)


def test_infeasible_slot_is_reported_not_raised():
    sol = solve(snaps(tau=0.01)[0], 0.1, method="fast")
    assert not sol.feasible.any()
    for name in ("alpha", "f_u", "f_ap", "f", "u", "w", "w_tilde"):
        assert np.all(np.isfinite(getattr(sol.allocation, name)))
    assert not np.isnan(sol.cost)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(beta=0.0), "beta"),
        (dict(beta=np.nan), "beta"),
        (dict(beta=[1, 2, 3]), "beta"),
        (dict(beta=-1.0), "beta"),
        (dict(method="magic"), "method"),
    ],
)
def test_bad_arguments_raise(default_snaps, kwargs, name):
    args = dict(beta=0.1, method="fast") | kwargs
    with pytest.raises(ValueError, match=name):
        solve(default_snaps[0], **args)
    with pytest.raises(ValueError, match="snapshot"):
        solve("not a snapshot", 0.1)


def test_sca_admm_and_fast_agree_within_one_percent(default_snaps):
    for snap in default_snaps[:5]:
        admm = solve(snap, 0.1, method="sca_admm")
        fast = solve(snap, 0.1, method="fast")
        assert np.all(np.isfinite(admm.allocation.alpha))
        if admm.feasible.all() and fast.feasible.all():
            best = min(admm.cost, fast.cost)
            assert admm.cost <= 1.01 * best and fast.cost <= 1.01 * best
        trace = admm.info["objective_trace"]
        assert all(b <= a * (1 + 1e-9) for a, b in zip(trace, trace[1:], strict=False))
        again = solve(snap, 0.1, method="sca_admm", warm_start=admm)
        assert again.cost <= admm.cost * (1 + 1e-9)


def test_fast_and_sca_admm_within_one_percent_of_the_cvxpy_reference(default_snaps):
    snap = default_snaps[0]
    reference = solve(snap, 0.1, method="cvxpy")
    assert reference.feasible.all()
    for method in ("fast", "sca_admm"):
        sol = solve(snap, 0.1, method=method)
        assert sol.feasible.all() and sol.cost <= 1.01 * reference.cost, method


def test_gram_combiners_match_the_direct_max_sinr_solution(default_snaps):
    # the push-through identity of isac_gym.iscc.beams.gram_sinr against 64 x 64 solves
    from isac_gym.iscc import Allocation
    from isac_gym.iscc.beams import comm_combiners_and_sinr, sensing_combiners_and_sinr

    snap = default_snaps[1]
    rng = np.random.default_rng(5)
    K, M = snap.K, snap.M_ut
    f = 0.05 * (rng.standard_normal((K, M)) + 1j * rng.standard_normal((K, M)))
    u = 0.05 * (rng.standard_normal((K, M)) + 1j * rng.standard_normal((K, M)))
    for share in (None, np.array([0.3, 0.7])):
        w, sinr_c = comm_combiners_and_sinr(snap, f, u, share)
        wt, sinr_s = sensing_combiners_and_sinr(snap, f, u, share)
        zero = np.zeros(K)
        ev = evaluate(snap, Allocation(zero, zero, zero, f, u, w, wt, share), 0.1)
        np.testing.assert_allclose(sinr_c, ev.sinr_c, rtol=1e-9)
        np.testing.assert_allclose(sinr_s, ev.sinr_s, rtol=1e-9)
        if share is None:  # w_k ∝ R^{-1} h_k with R the full covariance
            h = np.concatenate([np.einsum("kab,kb->ka", snap.H, x) for x in (f, u)])
            R = h.T @ h.conj() + snap.noise * np.eye(snap.M_a)
            direct = np.linalg.solve(R, h[:K].T).T
            direct /= np.linalg.norm(direct, axis=1, keepdims=True)
            np.testing.assert_allclose(w, direct, atol=1e-9)


def test_right_singular_vectors_low_rank_and_fallback():
    from isac_gym.iscc.beams import right_singular

    rng = np.random.default_rng(2)
    low = rng.standard_normal((3, 20, 4)) @ rng.standard_normal((3, 4, 24)) + 0j  # rank 4
    full = rng.standard_normal((2, 20, 24)) + 1j * rng.standard_normal((2, 20, 24))
    for H, rank in ((low, 4), (full, 20)):
        V, keep = right_singular(H)
        assert np.all(keep.sum(axis=1) == rank)
        _, sv, vh = np.linalg.svd(H, full_matrices=False)
        for k in range(H.shape[0]):
            basis = V[k][:, keep[k]]
            np.testing.assert_allclose(basis.conj().T @ basis, np.eye(rank), atol=1e-9)
            # same row space, and the first column is the dominant right singular vector
            np.testing.assert_allclose(np.linalg.norm(H[k] @ basis, axis=0), sv[k, :rank])
            assert abs(abs(np.vdot(vh[k, 0].conj(), basis[:, 0])) - 1) < 1e-9
            rest = H[k] - (H[k] @ basis) @ basis.conj().T
            assert np.linalg.norm(rest) <= 1e-9 * np.linalg.norm(H[k])


# --- solver-quality regressions (docs/reproduction.md, "Optimizer bugs found") --------


def _figure_drop(figure, x_index, trial):
    """The snapshot and beta of one drop exactly as ``run_drop`` draws them (seed 0)."""
    from experiments.iscc_figures import FIGURES, drop_seed

    spec = FIGURES[figure]
    config = ISCCConfig.paper(**spec.overrides(spec.x_values[x_index]))
    snapshot_seed, _ = drop_seed(0, figure, x_index, trial).spawn(2)
    return sample_snapshot(config, np.random.default_rng(snapshot_seed)), config.per_ue("beta")


def _assert_not_worse_than_fast(snap, beta):
    proposed = solve(snap, beta, method="sca_admm")
    fast = solve(snap, beta, method="fast")
    assert not np.any(fast.feasible & ~proposed.feasible)
    if fast.feasible.all():
        assert proposed.cost <= fast.cost * (1 + 1e-6)


@pytest.mark.parametrize("overrides", [dict(tau=0.4, Q=1e4), dict(P_max=1.0)])
def test_sca_admm_from_the_paper_start_lowers_the_transmit_power(overrides):
    # Once, from the paper's start the ADMM kept the transmit power near P_max:
    # 5.65x the cost of fast at Q = 1e4 bit, 5 % above it at P_max = 30 dBm.
    snap = sample_snapshot(ISCCConfig.paper(**overrides), np.random.default_rng(0))
    proposed = solve(snap, 0.1, method="sca_admm")
    fast = solve(snap, 0.1, method="fast")
    assert fast.feasible.all() and proposed.feasible.all()
    assert proposed.cost <= fast.cost * (1 + 1e-6)
    assert np.all(proposed.allocation.power <= 2.0 * fast.allocation.power)


def test_sca_admm_never_worse_than_fast_on_paper_seeds():
    config = ISCCConfig.paper()
    for seed in range(20):
        _assert_not_worse_than_fast(sample_snapshot(config, np.random.default_rng(seed)), 0.1)


@pytest.mark.parametrize("trial", [2, 57])
@pytest.mark.parametrize("method", ["fast", "ctem", "ho"])
def test_a_sensing_blind_ue_does_not_starve_the_others(method, trial):
    # Once, on Fig. 5, K = 10: a UE that misses (17b) at P_max asked for nearly unbounded
    # AP cycles (no link left), the common scaling into C^ap failed every UE.
    snap, beta = _figure_drop(5, 8, trial)
    sol = solve(snap, beta, method=method)
    proposed = solve(snap, beta, method="sca_admm")
    blind = ~sol.evaluation.checks["sensing"]
    assert blind.any() and not proposed.feasible[blind].any()  # reported, not hidden
    assert np.all(sol.feasible == ~blind)  # every UE with its sensing met is feasible
    assert np.all(proposed.feasible[~blind])
    assert sol.evaluation.checks["power"].all()
    for value in (sol.cost, *sol.evaluation.latency, *sol.allocation.f_ap):
        assert not np.isnan(value)


@pytest.mark.parametrize("figure, x_index, trial", [(5, 8, 28), (8, 0, 9)])
def test_sca_admm_meets_sensing_wherever_fast_does(figure, x_index, trial):
    # Once, SCA-ADMM ended below gamma_th on a UE where fast meets (17b).
    snap, beta = _figure_drop(figure, x_index, trial)
    proposed = solve(snap, beta, method="sca_admm")
    fast = solve(snap, beta, method="fast")
    assert fast.feasible.all()
    assert proposed.feasible.all()
    assert proposed.cost <= fast.cost * (1 + 1e-6)
    # The ADMM on its own (the paper's start, no safeguard) is what missed it.
    raw = solve(snap, beta, method="sca_admm", start="paper", safeguard=False)
    assert not raw.evaluation.checks["sensing"].all()


@pytest.mark.parametrize("tau", [1e-3, 3e-3])
@pytest.mark.parametrize("method, alpha", [("fl", 0.0), ("fo", 1.0), ("ho", 0.5)])
def test_baselines_keep_alpha_pinned_in_extreme_slots(tau, method, alpha):
    # With tau = 1 ms or 3 ms no pinned share can be sent and computed in time: the
    # baseline reports its UEs infeasible at its own alpha instead of moving alpha.
    snap = sample_snapshot(ISCCConfig.paper(K=4), np.random.default_rng(7)).replace(tau=tau)
    for sol in (solve(snap, 0.1, method=method), solve_batch([snap], 0.1, method=method)[0]):
        np.testing.assert_array_equal(sol.allocation.alpha, alpha)
        assert not sol.feasible.any()
        assert np.isfinite(sol.cost) and np.isfinite(sol.allocation.f_ap).all()
        assert all("latency" in v for v in sol.evaluation.violations().values())
