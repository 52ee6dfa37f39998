"""Batched SCA-ADMM (``solve_sca_admm_batch``) equals the per-slot ``solve(method="sca_admm")``."""

import numpy as np
import pytest

from isac_gym.iscc import ISCCConfig, sample_snapshot
from optimizers.iscc import solve
from optimizers.iscc.sca_admm import _quartic_root, solve_sca_admm_batch

K = 3
ITERATION_KEYS = ("outer_iterations", "inner_iterations", "converged", "polished", "candidate")


@pytest.fixture(scope="module")
def slots():
    """Mixed slots: plain, binding energy budgets, binding AP capacity, a tiny tau.

    Per-UE weights beta span 1e-2..1e2. Returns ``(snapshots, betas, free)`` where
    ``free`` are the solutions of the unconstrained slots (used as warm starts).
    """
    cfg = ISCCConfig.paper(K=K)
    snapshots, betas, free = [], [], []
    for kind, seed in enumerate((11, 1, 2, 3)):  # seed 11's inner ADMM stops early
        snap = sample_snapshot(cfg, np.random.default_rng(seed))
        beta = 10 ** np.random.default_rng(100 + seed).uniform(-2, 2, K)
        unconstrained = solve(snap, beta, method="sca_admm")
        if kind == 1:  # every UE's battery below its unconstrained energy
            snap = snap.replace(energy_budget=0.9 * unconstrained.evaluation.energy_ue)
        elif kind == 2:  # the AP below its unconstrained load
            snap = snap.replace(C_ap=0.6 * float(unconstrained.allocation.f_ap.sum()))
        elif kind == 3:  # UE 0 cannot meet its deadline
            snap = snap.replace(tau=np.r_[1e-3, snap.tau[1:]])
        snapshots.append(snap)
        betas.append(beta)
        free.append(unconstrained)
    return snapshots, np.array(betas), free


def assert_same(batch, singles):
    for mine, reference in zip(batch, singles, strict=True):
        assert mine.cost == pytest.approx(reference.cost, rel=1e-9)
        assert np.array_equal(mine.feasible, reference.feasible)  # the same UEs served
        assert mine.info.keys() == reference.info.keys()
        for key in ITERATION_KEYS:
            assert mine.info[key] == reference.info[key], key
        assert np.allclose(mine.allocation.alpha, reference.allocation.alpha, rtol=1e-9)


def assert_binding(batch, snapshots):
    """The mixed batch holds what it is meant to test: slots that bind and one that fails."""
    assert np.allclose(batch[1].evaluation.energy_ue, snapshots[1].energy_budget, rtol=1e-6)
    assert batch[2].allocation.f_ap.sum() == pytest.approx(snapshots[2].C_ap, rel=1e-6)
    assert not batch[3].feasible[0] and batch[3].feasible[1:].all()


# The AP-binding and tiny-tau slots bisect the AP multiplier in every inner iteration:
# four inner iterations keep these tests short (any options give batch == single).
@pytest.mark.parametrize(
    "options",
    [{"max_inner": 4}, {"max_inner": 4, "polish": False, "safeguard": False}],
    ids=["default", "raw"],
)
def test_mixed_batch_equals_single(slots, options):
    snapshots, betas, _ = slots
    batch = solve_sca_admm_batch(snapshots, betas, **options)
    singles = [
        solve(s, b, method="sca_admm", **options) for s, b in zip(snapshots, betas, strict=True)
    ]
    assert_same(batch, singles)
    if "polish" not in options:
        assert_binding(batch, snapshots)


@pytest.mark.slow
@pytest.mark.parametrize("options", [{}, {"start": "paper"}], ids=["default", "paper"])
def test_mixed_batch_equals_single_with_default_iterations(slots, options):
    snapshots, betas, _ = slots
    batch = solve_sca_admm_batch(snapshots, betas, **options)
    singles = [
        solve(s, b, method="sca_admm", **options) for s, b in zip(snapshots, betas, strict=True)
    ]
    assert_same(batch, singles)
    assert_binding(batch, snapshots)
    assert len({s.info["inner_iterations"] for s in batch}) > 1  # a slot stopped early


def test_slots_that_stop_early_are_frozen(slots):
    """A slot whose inner ADMM stops early, one that starts from a solution (one outer
    iteration) and one from the paper start (two) in one batch."""
    snapshots, betas, free = slots
    warm = [None, free[1]]
    batch = solve_sca_admm_batch(snapshots[:2], betas[:2], start="paper", warm_start=warm)
    singles = [
        solve(s, b, method="sca_admm", start="paper", warm_start=w)
        for s, b, w in zip(snapshots[:2], betas[:2], warm, strict=True)
    ]
    assert_same(batch, singles)
    counts = [(s.info["outer_iterations"], s.info["inner_iterations"]) for s in batch]
    assert counts[0][0] > counts[1][0]  # the warm slot was frozen after its SCA converged
    assert counts[0][1] < 15 * counts[0][0]  # the inner ADMM stopped early in slot 0


def test_per_slot_weights_and_beta_shapes(slots):
    snapshots, betas, _ = slots
    weights = np.random.default_rng(3).uniform(0.5, 3.0, betas.shape)
    batch = solve_sca_admm_batch(snapshots[:2], betas[:2], weight_ue=weights[:2])
    singles = [
        solve(s, b, method="sca_admm", weight_ue=w)
        for s, b, w in zip(snapshots[:2], betas[:2], weights[:2], strict=True)
    ]
    assert_same(batch, singles)
    shared = solve_sca_admm_batch(snapshots[:2], betas[0])
    assert_same(shared, [solve(s, betas[0], method="sca_admm") for s in snapshots[:2]])
    scalar = solve_sca_admm_batch(snapshots[:2], 0.5)
    assert [s.cost for s in scalar] == [
        s.cost for s in solve_sca_admm_batch(snapshots[:2], [[0.5] * K] * 2)
    ]
    assert all(s.info["method"] == "sca_admm" for s in scalar)


@pytest.mark.parametrize("betas", [np.ones((3, K)), np.ones(K + 1), 0.0, np.full((2, K), np.nan)])
def test_bad_betas_raise_naming_beta(slots, betas):
    with pytest.raises(ValueError, match="beta"):
        solve_sca_admm_batch(slots[0][:2], betas)


def test_mixed_batches_raise(slots):
    other = sample_snapshot(ISCCConfig.paper(K=K + 1), np.random.default_rng(0))
    with pytest.raises(ValueError, match="snapshots"):
        solve_sca_admm_batch([slots[0][0], other], 1.0)
    with pytest.raises(ValueError, match="snapshots"):
        solve_sca_admm_batch([], 1.0)
    with pytest.raises(ValueError, match="warm_start"):
        solve_sca_admm_batch(slots[0][:2], 1.0, warm_start=[None])


def test_quartic_rows_converge_independently():
    """Rows (slots) of the vectorised root equal the one-row (Python float) path."""
    rng = np.random.default_rng(4)
    a = rng.uniform(0.1, 10, (6, 4))
    b = rng.normal(0, 5, (6, 4))
    c = rng.uniform(0.0, 10, (6, 4)) * (rng.uniform(size=(6, 4)) > 0.2)  # some trivial
    mu = rng.uniform(0, 3, (6, 1))
    x0 = rng.uniform(0, 5, (6, 4))
    rows = _quartic_root(a, b, c, mu, x0=x0)
    for row in range(6):
        single = _quartic_root(a[row], b[row], c[row], mu[row], x0=x0[row])
        assert np.allclose(rows[row], single, rtol=1e-14, atol=0)
