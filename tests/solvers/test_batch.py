"""solve_batch: many slots at once, equal to solve() slot by slot; factored channels."""

import numpy as np
import pytest

from isac_gym.iscc import ISCCConfig, sample_snapshot
from isac_gym.iscc.beams import (
    channel_product,
    directions_from_channels,
    directions_from_paths,
    sensing_product,
)
from isac_gym.iscc.scenario import with_channel_error
from optimizers import solve, solve_batch
from optimizers.iscc import batch as batch_module

K = 4
BATCHED = ("fast", "fl", "fo", "ho", "ctem", "ofdma")


def _draw(seed, **overrides):
    return sample_snapshot(ISCCConfig.paper(K=K, **overrides), np.random.default_rng(seed))


def _hard_slots(betas):
    """Slots that exercise every per-slot branch, as the env hands them to the oracle."""
    slots = [_draw(seed) for seed in range(3)]
    # an AP capacity that binds (the price search): 90 % of what the AP would carry
    for seed in (3, 4):
        load = solve(_draw(seed), betas[seed], method="fast").allocation.f_ap.sum()
        slots.append(_draw(seed).replace(C_ap=0.9 * load))
    slots.append(_draw(3, C_ap=3e9, tau=0.5))  # least demands overload: UEs given up
    # energy budgets that bind (the budget interval), one of them empty
    budget = solve(_draw(5), 0.1, method="fast").evaluation.energy_ue
    slots.append(_draw(5).replace(energy_budget=budget * np.array([0.5, 0.8, 1e-6, np.inf])))
    # infeasible UEs: tiny deadlines for some
    slots.append(_draw(6).replace(tau=np.array([1e-3, 0.4, 3e-3, 0.9])))
    slots.append(_draw(7, P_max=1e-4))  # sensing power capped: the retry along a_t
    slots.append(_draw(4).replace(C_ap=2e8, tau=np.array([0.5, 0.6, 0.7, 0.8])))  # none fit
    slots.append(_target_on_a_path(_draw(8)))
    return slots


def _target_on_a_path(snap):
    """UE 0's target direction a_t is one of its channel's paths: u_dir (a_t with H's row
    space projected out) has no echo, so (17b) needs the retry along a_t itself."""
    path_ue, cos_ue = np.array(snap.path_ue), np.array(snap.path_cos_ue)
    path_ue[0, 1], cos_ue[0, 1] = snap.sense_tx[0], snap.sense_cos[0]
    H = np.einsum("kl,kla,klu->kau", snap.path_coeff, snap.path_ap, path_ue.conj())
    return snap.replace(H=H, path_coeff=snap.path_coeff, path_ue=path_ue, path_cos_ue=cos_ue)


@pytest.fixture(scope="module")
def betas():
    rng = np.random.default_rng(11)
    betas = 10.0 ** rng.uniform(-2.0, 2.0, (11, K))  # per UE, 1e-2..1e2
    betas[4] = [0.02, 0.05, 0.2, 0.01]  # cheap AP: every UE offloads above its least
    return betas


@pytest.fixture(scope="module")
def hard_slots(betas):
    return _hard_slots(betas)


def _assert_same(batch, singles):
    assert len(batch) == len(singles)
    for mine, theirs in zip(batch, singles, strict=True):
        assert mine.cost == pytest.approx(theirs.cost, rel=1e-9)
        np.testing.assert_array_equal(mine.feasible, theirs.feasible)
        assert mine.info.keys() == theirs.info.keys()
        np.testing.assert_allclose(mine.allocation.alpha, theirs.allocation.alpha, atol=1e-9)


@pytest.mark.parametrize("method", BATCHED)
def test_batch_equals_single_on_mixed_hard_slots(hard_slots, betas, method):
    weight = np.linspace(0.5, 2.0, K)
    batch = solve_batch(hard_slots, betas, method=method, weight_ue=weight)
    singles = [
        solve(s, b, method=method, weight_ue=weight) for s, b in zip(hard_slots, betas, strict=True)
    ]
    _assert_same(batch, singles)
    # slots in another order and alone give the same answers (no mask leaks across slots)
    order = np.arange(len(hard_slots))[::-1]
    _assert_same(solve_batch([hard_slots[i] for i in order], betas[order], method=method,
                             weight_ue=weight), [singles[i] for i in order])  # fmt: skip


def test_the_hard_slots_exercise_every_branch(hard_slots, betas):
    singles = [solve(s, b, method="fast") for s, b in zip(hard_slots, betas, strict=True)]
    prices = np.array([s.info["ap_price"] for s in singles])
    np.testing.assert_array_equal(prices > 0, [False] * 3 + [True] * 2 + [False] * 6)
    assert all(s.feasible.all() for s in singles[:5])
    assert not singles[5].feasible.all() and singles[5].feasible.any()  # UEs given up
    battery = singles[6].evaluation
    budget = hard_slots[6].energy_budget
    assert np.isclose(battery.energy_ue[0], budget[0], rtol=1e-6)  # the budget binds
    assert not battery.feasible[2]  # empty budget interval
    np.testing.assert_array_equal(singles[7].feasible, [False, True, False, True])
    assert (singles[8].info["sensing_power"] >= 0.99 * hard_slots[8].P_max).sum() == 2
    assert not singles[9].feasible.any()
    assert singles[10].feasible.all()  # UE 0 meets (17b) only along a_t (the retry)
    assert singles[10].info["sensing_power"][0] < 0.01 * hard_slots[10].P_max


def test_dense_and_factored_slots_mix(hard_slots):
    # An estimate (with_channel_error) has no path factors: the batch then uses dense
    # products for all; every slot still matches its own solve to round-off.
    estimate = with_channel_error(hard_slots[0], 1e-7, np.random.default_rng(0))
    slots = [estimate, *hard_slots[:3]]
    _assert_same(solve_batch(slots, 0.3), [solve(s, 0.3, method="fast") for s in slots])
    # so do slots whose channels have different path counts
    slots = [_draw(9, n_nlos=1), *hard_slots[:2]]
    _assert_same(solve_batch(slots, 0.3), [solve(s, 0.3, method="fast") for s in slots])


def test_beta_and_option_shapes(hard_slots):
    slots = hard_slots[:2]
    row = np.array([0.1, 1.0, 10.0, 0.5])
    by_row = solve_batch(slots, np.stack([row, row]))
    _assert_same(solve_batch(slots, row), by_row)
    with pytest.raises(ValueError, match=r"beta must be a scalar, \(4,\) or \(2, 4\)"):
        solve_batch(slots, np.ones((3, K)))
    with pytest.raises(ValueError, match="beta must be finite and > 0"):
        solve_batch(slots, np.array([[1.0, 1, 1, 1], [1, 1, 0, 1]]))
    with pytest.raises(ValueError, match="weight_ue"):
        solve_batch(slots, 0.1, weight_ue=np.ones((3, K)))
    with pytest.raises(ValueError, match="method"):
        solve_batch(slots, 0.1, method="nope")
    with pytest.raises(TypeError, match="nope"):
        solve_batch(slots, 0.1, nope=1)
    with pytest.raises(ValueError, match=r"warm_start must be one per slot \(2\), got 1"):
        solve_batch(slots, 0.1, method="cvxpy", warm_start=[None])


def test_mixed_k_raises_naming_it():
    slots = [_draw(0), sample_snapshot(ISCCConfig.paper(K=3), np.random.default_rng(1))]
    with pytest.raises(ValueError, match=r"equal K .*snapshot 1 has \(3,"):
        solve_batch(slots, 0.1)
    with pytest.raises(ValueError, match="non-empty sequence of Snapshot"):
        solve_batch([], 0.1)


#: UEs kept of each hard slot for the mixed-K batches: every K' from 1 to 4, in every
#: position; slot 9 (none fit) keeps 2 UEs that both fail, slot 7 its 2 with tiny
#: deadlines, slot 8 its 2 whose sensing power stays capped (the retry does not help)
KEPT = [[1, 1, 0, 1], [0, 1, 0, 0], [1, 1, 1, 1], [0, 0, 1, 1], [1, 0, 1, 0], [1, 1, 1, 0],
        [1, 1, 1, 0], [1, 0, 1, 0], [0, 1, 1, 1], [1, 1, 0, 0], [1, 0, 1, 1]]  # fmt: skip


@pytest.mark.parametrize("method", BATCHED)
def test_mixed_k_batch_equals_single_on_selected_hard_slots(hard_slots, betas, method):
    # The env's slots after drops: K' = 1..4 in one batch, padded to 4 with silent UEs.
    kept = np.array(KEPT, dtype=bool)
    slots = [slot.select(mask) for slot, mask in zip(hard_slots, kept, strict=True)]
    slot_betas = [beta[mask] for beta, mask in zip(betas, kept, strict=True)]
    weights = [np.linspace(0.5, 2.0, K)[mask] for mask in kept]
    singles = [
        solve(s, b, method=method, weight_ue=w)
        for s, b, w in zip(slots, slot_betas, weights, strict=True)
    ]
    assert not singles[9].feasible.any() and not singles[7].feasible.any()  # all infeasible
    batch = solve_batch(slots, slot_betas, method=method, mixed_k=True, weight_ue=weights)
    _assert_same(batch, singles)
    for mine, theirs in zip(batch, singles, strict=True):
        assert mine.allocation.f.shape == theirs.allocation.f.shape
        np.testing.assert_allclose(mine.evaluation.energy_ue, theirs.evaluation.energy_ue,
                                   rtol=1e-9, atol=1e-300)  # fmt: skip
        for key in ("sensing_power", "comm_power"):  # the same Yates start and rounds
            np.testing.assert_allclose(mine.info[key], theirs.info[key], rtol=1e-9, err_msg=key)
    # in another order, and with a 1-UE slot in a batch of 4-UE slots (3 padded UEs)
    order = np.arange(len(slots))[::-1]
    _assert_same(solve_batch([slots[i] for i in order], [slot_betas[i] for i in order],
                             method=method, mixed_k=True, weight_ue=[weights[i] for i in order]),
                 [singles[i] for i in order])  # fmt: skip
    pair = [hard_slots[0], slots[1]]
    alone = solve(pair[1], 0.3, method=method)
    _assert_same(solve_batch(pair, 0.3, method=method, mixed_k=True)[1:], [alone])


def test_padded_ues_stay_out_of_the_sensing_powers(monkeypatch):
    # Padded UEs have no echo: the least sensing powers of the others are those of their
    # slot alone, and a padded UE's equation in the Yates start is p = p0 (P_max), not a
    # division by its round-off "own" gain (~1e-16: a start of ~1e27, or a singular system).
    from optimizers.iscc import fast

    slots = fast.SlotBatch([_draw(seed) for seed in range(4)])
    echoes = slots.sense(slots.directions()[1][..., None])[..., 0]
    absent = np.arange(K) >= np.array([[1], [2], [3], [2]])
    starts = []
    fixed = fast._fixed_receiver_powers
    monkeypatch.setattr(
        fast, "_fixed_receiver_powers", lambda *a: starts.append(fixed(*a)) or starts[-1]
    )
    limits = (slots.noise, slots.P_max, slots.gamma_s)
    padded = fast._sensing_powers(np.where(absent[..., None], 0, echoes), np.arange(K), *limits,
                                  absent=absent)  # fmt: skip
    np.testing.assert_array_equal(
        starts[0][absent], np.broadcast_to(slots.P_max, absent.shape)[absent]
    )
    np.testing.assert_array_equal(
        padded[absent], np.broadcast_to(slots.P_max, absent.shape)[absent]
    )
    for b, k in enumerate((~absent).sum(axis=1)):
        alone = fast._sensing_powers(
            echoes[b : b + 1, :k], np.arange(k), *(x[b : b + 1] for x in limits)
        )
        np.testing.assert_allclose(padded[b, :k], alone[0], rtol=1e-12)


def test_mixed_k_arguments(hard_slots):
    slots = [hard_slots[0], hard_slots[1].select([0, 2])]
    with pytest.raises(ValueError, match=r"snapshot 1 has K = 0, not in 1..4"):
        solve_batch([slots[0], hard_slots[1].select(np.zeros(K, bool))], 0.1, mixed_k=True)
    with pytest.raises(ValueError, match="beta must be one value per slot"):
        solve_batch(slots, [0.1], mixed_k=True)
    with pytest.raises(ValueError, match="mixed_k needs a batched method"):
        solve_batch(slots, 0.1, method="cvxpy", mixed_k=True)
    with pytest.raises(ValueError, match="weight_ue must be finite and > 0"):
        solve_batch(slots, 0.1, mixed_k=True, weight_ue=[1.0, np.array([1.0, 0.0])])
    with pytest.raises(ValueError, match=r"equal array sizes .*snapshot 1 has \(16,"):
        solve_batch([slots[0], _draw(0, M_a=16)], 0.1, mixed_k=True)


def test_sca_admm_uses_its_batch_solver_when_there_is_one(monkeypatch, hard_slots):
    from optimizers.iscc import sca_admm

    seen = []
    monkeypatch.setattr(
        sca_admm, "solve_sca_admm_batch", lambda s, b, **o: seen.append((len(s), b.shape)),
        raising=False,
    )  # fmt: skip
    solve_batch(hard_slots[:2], 0.1, method="sca_admm")
    assert seen == [(2, (2, K))]
    monkeypatch.delattr(sca_admm, "solve_sca_admm_batch")
    looped = solve_batch(hard_slots[:1], 0.1, method="sca_admm")
    _assert_same(looped, [solve(hard_slots[0], 0.1, method="sca_admm")])


def test_the_loop_methods_loop(monkeypatch, hard_slots):
    calls = []

    def fake(snapshot, beta, method, warm_start, **options):
        calls.append((method, warm_start))

    monkeypatch.setattr(batch_module, "solve", fake)
    solve_batch(hard_slots[:3], 0.1, method="cvxpy")
    assert calls == [("cvxpy", None)] * 3
    solve_batch(hard_slots[:2], 0.1, method="cvxpy", warm_start=["a", "b"])
    assert calls[3:] == [("cvxpy", "a"), ("cvxpy", "b")]


# --- factored channels ------------------------------------------------------------------


def test_same_seed_same_draws_as_before_factors():
    # Values of the sampler before the snapshot kept its path factors (commit 96adab0).
    snap = _draw(7)
    assert snap.H[1, 2, 3] == pytest.approx(-1.358942525929204e-05 + 2.0366694049489458e-05j,
                                            rel=1e-12)  # fmt: skip
    assert snap.H_sense[2, 1, 0] == pytest.approx(-1.2296173666847217e-06 - 4.6265214425453e-07j,
                                                  rel=1e-12)  # fmt: skip
    assert snap.ue_position[3, 0] == 37.74803987289585


def test_factored_products_equal_dense():
    snap = _draw(2)
    assert snap.has_paths and snap.path_coeff.shape == (K, 4)
    rebuilt = np.einsum("kl,kla,klu->kau", snap.path_coeff, snap.path_ap, snap.path_ue.conj())
    np.testing.assert_allclose(rebuilt, snap.H, rtol=0, atol=1e-12 * np.abs(snap.H).max())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((K, snap.M_ut, 3)) + 1j * rng.standard_normal((K, snap.M_ut, 3))
    for product, dense in ((channel_product, snap.H), (sensing_product, snap.H_sense)):
        expected = dense @ x
        scale = np.abs(expected).max()
        np.testing.assert_allclose(product(snap, x), expected, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("seed", range(6))
def test_factored_directions_equal_dense(seed):
    snap = _draw(seed, n_nlos=[3, 3, 0, 6, 1, 3][seed])
    dense = directions_from_channels(snap.H, snap.sense_tx)
    factored = directions_from_paths(snap)
    for a, b in zip(dense, factored, strict=True):
        phase = np.sum(a.conj() * b, axis=1)  # a direction is defined up to a phase
        np.testing.assert_allclose(np.abs(phase), 1.0, atol=1e-12)
        np.testing.assert_allclose(a * (phase / np.abs(phase))[:, None], b, atol=1e-12)


@pytest.mark.parametrize("shift", [0.0, 1e-8])
def test_identical_and_near_collinear_paths(shift):
    # Two paths from one direction (Cholesky fails: the eigenbasis) or from directions
    # 1e-8 apart in cos: f is still H's dominant right singular vector (a_t projected
    # out) and u still has H's row space removed, to round-off.
    snap = _draw(0)
    path_ue, cos_ue = np.array(snap.path_ue), np.array(snap.path_cos_ue)
    path_ue[:, 2] = path_ue[:, 1] * np.exp(1j * np.pi * shift * np.arange(snap.M_ut))
    cos_ue[:, 2] = cos_ue[:, 1] + shift
    H = np.einsum("kl,kla,klu->kau", snap.path_coeff, snap.path_ap, path_ue.conj())
    changed = dict(path_coeff=snap.path_coeff, path_ue=path_ue, path_cos_ue=cos_ue)
    f_dir, u_dir = directions_from_paths(snap.replace(H=H, **changed))
    _, sv, vh = np.linalg.svd(H)
    a_t = snap.sense_tx / np.sqrt(snap.M_ut)
    f_true = vh[:, 0].conj() - np.sum(a_t.conj() * vh[:, 0].conj(), axis=1)[:, None] * a_t
    f_true /= np.linalg.norm(f_true, axis=1, keepdims=True)
    np.testing.assert_allclose(np.abs(np.sum(f_true.conj() * f_dir, axis=1)), 1.0, atol=1e-12)
    leak = np.linalg.norm(H @ u_dir[:, :, None], axis=(1, 2)) / sv[:, 0]
    assert leak.max() <= 1e-12
    assert np.abs(np.sum(a_t.conj() * u_dir, axis=1)).min() > 0.99  # still towards a_t


def test_factors_follow_select_and_are_dropped_with_new_channels():
    snap = _draw(1)
    part = snap.select([0, 3])
    assert part.has_paths
    x = np.ones((2, snap.M_ut, 1), complex)
    np.testing.assert_allclose(channel_product(part, x), snap.H[[0, 3]] @ x, rtol=1e-12)
    assert not snap.replace(H=np.array(snap.H) * 2).has_paths
    assert not with_channel_error(snap, 1e-6, np.random.default_rng(0)).has_paths
    assert snap.replace(tau=0.3).has_paths
    for name in ("path_coeff", "path_ap", "path_ue"):
        with pytest.raises(ValueError):
            getattr(snap, name)[0] = 0  # read-only like every snapshot array


def test_solver_bench_batch_mode(capsys):
    from experiments.solver_bench import main

    assert main(["--batch", "3", "--K", "2", "--methods", "fast,fo", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if "loop ms/slot" in line)
    assert "x loop (CPU)" in header and "max rel cost diff" in header
    rows = [line.split() for line in lines if line.split()[:2] in (["2", "fast"], ["2", "fo"])]
    assert len(rows) == 2
    for row in rows:
        assert row[2] == "3" and float(row[-2]) <= 1e-9 and row[-1] == "0"


def test_a_subset_of_a_padded_batch_is_the_batch_of_its_slots(hard_slots):
    # The capped-sensing retry runs on SlotBatch.subset: every row field, the padding and
    # the concatenation offsets of stacked() must be those of a batch of just those slots.
    from optimizers.iscc import fast

    kept = np.array(KEPT, dtype=bool)
    slots = [slot.select(mask) for slot, mask in zip(hard_slots, kept, strict=True)]
    rows = np.array([9, 1, 4, 0])  # K' = 2, 1, 2, 3: still padded, in a new order
    part = fast.SlotBatch(slots, width=K).subset(rows)
    alone = fast.SlotBatch([slots[i] for i in rows], width=K)
    assert part.size == alone.size == 4 and part.snapshots == alone.snapshots
    for name in (*fast._ROW_FIELDS, "present"):  # H, H_sense: only without path factors
        mine, theirs = getattr(part, name, None), getattr(alone, name, None)
        np.testing.assert_array_equal(mine, theirs, err_msg=name)
    per_ue = [slots[i].Q for i in rows]
    np.testing.assert_array_equal(part.stacked(per_ue), alone.stacked(per_ue))
    full = fast.SlotBatch(slots, width=K).subset(np.flatnonzero(kept.all(axis=1)))
    assert full.present is None  # only 4-UE slots left: no padding
