"""The open constants put the paper's default point where the paper says it is."""

import subprocess
import sys

import numpy as np
import pytest

from isac_gym.demo import simple_allocation
from isac_gym.iscc import ISCCConfig, beam_directions, comm_combiners, evaluate, sample_snapshot
from isac_gym.iscc.beams import sensing_combiners


@pytest.fixture(scope="module")
def default_point():
    config = ISCCConfig.paper()  # Table I, tau = 0.4 s
    snaps = [sample_snapshot(config, np.random.default_rng(seed)) for seed in range(50)]
    return config, snaps, [evaluate(s, simple_allocation(s, 0.76), 0.1) for s in snaps]


def test_simple_allocation_is_feasible_at_the_default_point(default_point):
    _, _, evs = default_point
    success = np.mean([ev.feasible for ev in evs])
    assert success >= 0.95, success


def test_orders_of_magnitude_match_the_paper(default_point):
    _, _, evs = default_point
    t_com = np.concatenate([ev.t_com for ev in evs])
    assert 1e-3 < np.median(t_com) < 10e-3  # "a few ms" (paper Fig. 9: 4.8-6.4 ms)
    e_isac = np.concatenate([ev.energy_isac for ev in evs])
    e_comp = np.concatenate([ev.energy_local + ev.energy_ap for ev in evs])
    assert np.median(e_comp / e_isac) > 100  # computation energy dominates


def test_max_sinr_combiners_are_optimal(default_point):
    _, snaps, evs = default_point
    snap = snaps[0]
    f_dir, u_dir = beam_directions(snap)
    f, u = 0.05 * f_dir, 0.05 * u_dir
    w, wt = comm_combiners(snap, f, u), sensing_combiners(snap, f, u)
    alloc = simple_allocation(snap, 0.5).replace(f=f, u=u, w=w, w_tilde=wt)
    best = evaluate(snap, alloc, 1.0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        dw = rng.standard_normal(w.shape) + 1j * rng.standard_normal(w.shape)
        dwt = rng.standard_normal(wt.shape) + 1j * rng.standard_normal(wt.shape)
        other = evaluate(snap, alloc.replace(w=w + 0.01 * dw, w_tilde=wt + 0.01 * dwt), 1.0)
        assert np.all(other.sinr_c <= best.sinr_c * (1 + 1e-12))
        assert np.all(other.sinr_s <= best.sinr_s * (1 + 1e-12))


def test_beam_directions_decouple_sensing_and_communication(paper_snapshot):
    f_dir, u_dir = beam_directions(paper_snapshot)
    np.testing.assert_allclose(np.linalg.norm(f_dir, axis=1), 1.0)
    # f_k has no component on the target direction a_t(psi_k) ...
    assert np.max(np.abs(np.sum(paper_snapshot.sense_tx.conj() * f_dir, axis=1))) < 1e-9
    # ... and u_k leaks nothing into H_k.
    leak = np.linalg.norm(np.einsum("kab,kb->ka", paper_snapshot.H, u_dir), axis=1)
    assert np.max(leak / np.linalg.norm(paper_snapshot.H, ord=2, axis=(1, 2))) < 1e-9


def test_demo_runs_and_prints_a_summary():
    out = subprocess.run(
        [sys.executable, "-m", "isac_gym.demo", "--seed", "3"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "weighted cost (17a)" in out and "sensing SINR (8)" in out
    bad = subprocess.run(
        [sys.executable, "-m", "isac_gym.demo", "--alpha", "2"], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "--alpha" in bad.stderr
