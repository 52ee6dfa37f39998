"""``evaluate_batch`` equals ``evaluate`` slot by slot, boundaries included."""

import numpy as np
import pytest

from isac_gym.iscc import Allocation, ISCCConfig, evaluate, sample_snapshot, with_channel_error
from isac_gym.iscc.model import ENERGY_ATOL, FEASIBILITY_RTOL, Evaluation, evaluate_batch

K = 3
ARRAY_FIELDS = tuple(
    name for name in Evaluation.__dataclass_fields__ if name not in ("cost", "checks")
)
#: Just outside, on, and just inside a constraint's tolerance edge.
EDGE_FACTORS = (1.0 - 1e-9, 1.0, 1.0 + 1e-9)


def random_allocation(snapshot, rng, share=None, alpha=None) -> Allocation:
    """Beams and combiners at random (not a solver's), powers within about P_max."""
    M_ut, M_a, M_ur = snapshot.M_ut, snapshot.M_a, snapshot.M_ur

    def vectors(size, scale):
        x = rng.standard_normal((K, size)) + 1j * rng.standard_normal((K, size))
        return scale * x / np.linalg.norm(x, axis=1, keepdims=True)

    return Allocation(
        alpha=rng.uniform(0, 1, K) if alpha is None else alpha,
        f_u=rng.uniform(0.1, 1.0, K) * snapshot.C_u,
        f_ap=rng.uniform(0.1, 1.0, K) * snapshot.C_ap / K,
        f=vectors(M_ut, np.sqrt(0.5 * snapshot.P_max)),
        u=vectors(M_ut, np.sqrt(0.4 * snapshot.P_max)),
        w=vectors(M_a, 1.0),
        w_tilde=vectors(M_ur, 1.0),
        bandwidth_share=share,
    )


def shares(snapshot) -> np.ndarray:
    """OFDMA bandwidth shares proportional to path loss (as the baseline's)."""
    loss = 1.0 / snapshot.path_gain
    return loss / loss.sum()


def mixed_slots(seed=0):
    """Slots of every kind: path factors (two path counts), dense copies, a CSI-error
    estimate, binding energy budgets, a tiny tau (infeasible UEs), OFDMA shares, and
    per-UE betas over 1e-2..1e2."""
    rng = np.random.default_rng(seed)
    configs = (ISCCConfig.paper(K=K), ISCCConfig.paper(K=K, n_nlos=1))
    snapshots, allocations, betas = [], [], []
    for slot in range(12):
        snapshot = sample_snapshot(configs[slot % 2], rng)
        if slot % 4 == 1:
            snapshot = snapshot.replace(H=snapshot.H)  # same channel, dense only
        if slot == 2:
            snapshot = with_channel_error(snapshot, 1e-7, rng)
        if slot in (3, 7):
            snapshot = snapshot.replace(energy_budget=rng.uniform(1e-9, 1e-4, K))
        if slot == 5:
            snapshot = snapshot.replace(tau=np.array([1e-6, 0.5, 1e-9]))
        if slot >= 8:  # lenient limits: random beams meet them
            snapshot = snapshot.replace(gamma_s=1e-9, tau=np.full(K, 1e3))
        share = shares(snapshot) if slot % 3 == 0 else None
        snapshots.append(snapshot)
        allocations.append(random_allocation(snapshot, rng, share))
        betas.append(10.0 ** rng.uniform(-2, 2, K) if slot % 2 else float(slot + 1))
    return snapshots, allocations, betas


def assert_equal_evaluations(batch, single, rtol=1e-12):
    assert batch.cost == pytest.approx(single.cost, rel=rtol, abs=0)
    for name in ARRAY_FIELDS:
        got, want = getattr(batch, name), getattr(single, name)
        assert got.shape == want.shape, name
        finite = np.isfinite(want)
        assert np.array_equal(np.isfinite(got), finite), name  # inf exactly where evaluate's
        np.testing.assert_array_equal(got[~finite], want[~finite], err_msg=name)
        np.testing.assert_allclose(got[finite], want[finite], rtol=rtol, atol=0, err_msg=name)
    assert batch.checks.keys() == single.checks.keys()
    for name, verdict in single.checks.items():
        np.testing.assert_array_equal(batch.checks[name], verdict, err_msg=name)
    np.testing.assert_array_equal(batch.feasible, single.feasible)


def test_mixed_batch_equals_evaluate_slot_by_slot():
    snapshots, allocations, betas = mixed_slots()
    assert {s.has_paths for s in snapshots} == {True, False}
    assert len({s.path_coeff.shape for s in snapshots if s.has_paths}) == 2
    evaluations = evaluate_batch(snapshots, allocations, betas)
    singles = [evaluate(*args) for args in zip(snapshots, allocations, betas, strict=True)]
    for batch, single in zip(evaluations, singles, strict=True):
        assert_equal_evaluations(batch, single)
    # the batch covers what it claims: infeasible UEs, binding budgets, and feasible ones
    verdicts = np.array([e.feasible for e in singles])
    assert verdicts.any() and not verdicts.all()
    assert not singles[5].checks["latency"][[0, 2]].any()
    assert not singles[3].checks["energy_budget"].all()


def test_a_batch_of_one_and_a_beta_array():
    snapshots, allocations, betas = mixed_slots(seed=1)
    rows = np.stack([np.broadcast_to(b, (K,)) for b in betas])
    as_array = evaluate_batch(snapshots, allocations, rows)
    for slot in range(len(snapshots)):
        (alone,) = evaluate_batch(
            snapshots[slot : slot + 1], allocations[slot : slot + 1], [rows[slot]]
        )
        single = evaluate(snapshots[slot], allocations[slot], betas[slot])
        assert_equal_evaluations(alone, single)
        assert_equal_evaluations(as_array[slot], single)


def edge_case(snapshot, allocation, beta, constraint, factor):
    """The snapshot with ``constraint``'s limit on UE 0's tolerance edge times ``factor``
    (< 1: violated, > 1: met, for limits that are upper bounds)."""
    q = evaluate(snapshot, allocation, beta)
    tol = 1.0 + FEASIBILITY_RTOL
    per_ue = {
        "latency": ("tau", q.latency[0] / tol),
        "cpu_ue": ("C_u", allocation.f_u[0] / tol),
        "energy_budget": ("energy_budget", (q.energy_ue[0] - ENERGY_ATOL) / tol),
    }
    if constraint in per_ue:
        name, edge = per_ue[constraint]
        values = getattr(snapshot, name).copy()
        values[0] = edge * factor
        return snapshot.replace(**{name: values})
    if constraint == "sensing":  # a lower bound on sinr_s: the threshold moves the other way
        return snapshot.replace(gamma_s=q.sinr_s.min() * tol / factor)
    if constraint == "power":
        return snapshot.replace(P_max=q.power.max() / tol * factor)
    assert constraint == "cpu_ap"
    return snapshot.replace(C_ap=allocation.f_ap.sum() / tol * factor)


@pytest.mark.parametrize(
    "constraint", ["sensing", "latency", "cpu_ue", "cpu_ap", "power", "energy_budget"]
)
def test_verdicts_on_both_sides_of_every_constraint_edge(constraint):
    """Limits just outside, exactly on and just inside the tolerance edge, on slots with
    and without path factors: evaluate_batch's verdicts are evaluate's (1e-9 relative
    is far above the round-off between the factored and the dense products)."""
    rng = np.random.default_rng(3)
    config = ISCCConfig.paper(K=K)
    snapshots, allocations, betas, exact = [], [], [], []
    for slot in range(6):
        base = sample_snapshot(config, rng)
        dense = slot % 2 == 1
        if dense:
            base = base.replace(H=base.H)
        allocation = random_allocation(base, rng, alpha=np.array([0.6, 0.3, 0.0]))
        beta = float(slot + 1)
        for factor in EDGE_FACTORS:
            # Exactly on a channel-dependent edge, the factored products' round-off may
            # decide; there only dense slots (the dense products are evaluate's own).
            if (
                factor == 1.0
                and not dense
                and constraint in ("sensing", "latency", "energy_budget")
            ):
                continue
            snapshots.append(edge_case(base, allocation, beta, constraint, factor))
            allocations.append(allocation)
            betas.append(beta)
            exact.append(factor)
    evaluations = evaluate_batch(snapshots, allocations, betas)
    sides = set()
    for snapshot, allocation, beta, factor, batch in zip(
        snapshots, allocations, betas, exact, evaluations, strict=True
    ):
        single = evaluate(snapshot, allocation, beta)
        assert_equal_evaluations(batch, single)
        ue = 0 if constraint not in ("sensing", "power") else None
        verdict = single.checks[constraint][ue] if ue is not None else single.checks[constraint]
        sides.add((factor, bool(np.all(verdict))))
    # both sides exercised: just outside fails, just inside holds, on the edge holds
    assert sides == {(EDGE_FACTORS[0], False), (1.0, True), (EDGE_FACTORS[2], True)}


def test_errors_name_the_mismatch():
    snapshots, allocations, betas = mixed_slots()
    with pytest.raises(ValueError, match="allocations must be one per snapshot"):
        evaluate_batch(snapshots, allocations[:-1], betas)
    with pytest.raises(ValueError, match="betas must be one beta per slot"):
        evaluate_batch(snapshots, allocations, betas[:-1])
    with pytest.raises(ValueError, match="betas must be one beta per slot"):
        evaluate_batch(snapshots, allocations, 1.0)
    with pytest.raises(ValueError, match=r"betas\[1\]: beta must be finite and > 0"):
        evaluate_batch(snapshots, allocations, [1.0, -1.0] + betas[2:])
    with pytest.raises(ValueError, match="non-empty sequence of Snapshot"):
        evaluate_batch([], [], [])
    other = sample_snapshot(ISCCConfig.paper(K=K + 1), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"equal K and array sizes .* snapshot 2 has \(4,"):
        evaluate_batch(snapshots[:2] + [other], allocations[:3], betas[:3])
    bad = allocations[4].replace(w=allocations[4].w[:, :-1])
    with pytest.raises(ValueError, match=r"allocations\[4\]: Allocation.w must have shape"):
        evaluate_batch(snapshots, allocations[:4] + [bad] + allocations[5:], betas)
    nan = allocations[6].replace(alpha=np.array([0.5, np.nan, 0.5]))
    with pytest.raises(ValueError, match=r"allocations\[6\]: Allocation.alpha contains NaN"):
        evaluate_batch(snapshots, allocations[:6] + [nan] + allocations[7:], betas)
    zero = allocations[1].replace(bandwidth_share=np.array([0.5, 0.5, 0.0]))
    with pytest.raises(ValueError, match=r"allocations\[1\]: .*bandwidth_share must be > 0"):
        evaluate_batch(snapshots, [allocations[0], zero] + allocations[2:], betas)
    with pytest.raises(ValueError, match=r"allocations\[0\] must be an Allocation"):
        evaluate_batch(snapshots, [None] + allocations[1:], betas)
