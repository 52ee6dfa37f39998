"""``method="fast"``: structured beams plus the exact compute allocation.

1. Directions from :func:`isac_gym.iscc.beam_directions`: f_k along H_k's dominant right
   singular vector with a_t(psi_k) projected out (no communication echo in (8)), u_k
   along a_t(psi_k) with H_k's row space projected out (no sensing leakage in (7)).
2. Sensing powers: the least powers meeting (17b), by the standard interference-function
   iteration ``p_k <- p_k gamma_th / gamma_k^s`` with max-SINR combiners recomputed each
   round (Yates, 1995), which converges to the component-wise minimum when one exists.
3. Communication powers: with u_k invisible to the AP, gamma_k^c = p_k e_k where e_k
   is UE k's max-SINR gain against the others' beams. For a log grid of p_k, the exact
   per-UE compute cost (``optimizers.compute``) picks each UE's power.
4. Exact compute allocation at the true rates of the final beams (the polish step),
   then one evaluation of the true model.
"""

from __future__ import annotations

import numpy as np

from isac_gym.iscc import Allocation, Snapshot, beam_directions, comm_combiners
from isac_gym.iscc.beams import sensing_combiners
from isac_gym.iscc.model import sinr_terms
from optimizers.compute import (
    _EDGE,
    _Coefficients,
    _coefficients,
    alpha_lower_bound,
    exact_compute_allocation,
    solve_alpha_batch,
)

_SENSING_ROUNDS = 30
_SENSING_MARGIN = 1.0 + 1e-4  # aim just above gamma_th so round-off cannot fail (17b)
_POWER_GRID = 24


def _sensing_sinr(snapshot, f, u, share):
    w_tilde = sensing_combiners(snapshot, f, u, share)
    dummy_w = np.zeros((snapshot.K, snapshot.M_a), complex)
    alloc = Allocation(
        np.zeros(snapshot.K),
        np.zeros(snapshot.K),
        np.zeros(snapshot.K),
        f,
        u,
        dummy_w,
        w_tilde,
        share,
    )
    _, _, signal, denominator = sinr_terms(snapshot, alloc)
    return signal / denominator


def sensing_powers(snapshot: Snapshot, f, u_dir, share=None) -> np.ndarray:
    """Least sensing powers meeting (17b) (capped at P_max) for unit directions u_dir."""
    p = np.full(snapshot.K, snapshot.P_max / 2)
    for _ in range(_SENSING_ROUNDS):
        sinr = _sensing_sinr(snapshot, f, np.sqrt(p)[:, None] * u_dir, share)
        new = np.minimum(
            snapshot.P_max, p * snapshot.gamma_s * _SENSING_MARGIN / np.maximum(sinr, 1e-300)
        )
        if np.allclose(new, p, rtol=1e-6):
            return new
        p = new
    return p


def _comm_gain(snapshot: Snapshot, f_dir, p_f, share) -> np.ndarray:
    """e_k with gamma_k^c = p_k e_k for max-SINR combining against the others' beams."""
    h = np.einsum("kab,kb->ka", snapshot.H, f_dir)
    if share is not None:
        return np.sum(np.abs(h) ** 2, axis=1) / (share * snapshot.noise)
    scaled = np.sqrt(p_f)[:, None] * h
    R = scaled.T @ scaled.conj() + snapshot.noise * np.eye(snapshot.M_a)
    x = np.linalg.solve(R, h.T).T  # R^{-1} h_k (R includes UE k itself)
    q = np.real(np.sum(h.conj() * x, axis=1))  # h^H R^{-1} h
    # Sherman-Morrison: h^H R_{-k}^{-1} h = q / (1 - p_k q)
    return q / np.maximum(1.0 - p_f * q, 1e-300)


def solve_fast(
    snapshot: Snapshot,
    beta,
    *,
    weight_ue=None,
    alpha_fixed=None,
    bandwidth_share=None,
    power_grid: int = _POWER_GRID,
) -> tuple[Allocation, dict]:
    """Structured beams + exact compute allocation (see module docstring)."""
    K = snapshot.K
    share = None if bandwidth_share is None else np.asarray(bandwidth_share, dtype=float)
    f_dir, u_dir = beam_directions(snapshot)
    p_u = sensing_powers(snapshot, f_dir * 0.0, u_dir, share)
    budget = np.maximum(snapshot.P_max - p_u, snapshot.P_max * 1e-6)

    # Per-UE communication power on a log grid, the others at their remaining budget.
    gain = _comm_gain(snapshot, f_dir, budget, share)
    grid = budget[:, None] * np.logspace(-4, 0, power_grid)[None, :]  # (K, G)
    bandwidth = snapshot.B * (np.ones(K) if share is None else share)
    with np.errstate(divide="ignore"):
        c = snapshot.Q[:, None] / (bandwidth[:, None] * np.log2(1.0 + grid * gain[:, None]))
    co = _coefficients(snapshot, beta, np.ones(K), np.ones(K), weight_ue)
    per_ue = {name: getattr(co, name)[:, None] for name in ("w", "beta", "a", "b", "d", "tau")}
    co_grid = _Coefficients(**per_ue, P=grid + p_u[:, None], c=c, no_link=~np.isfinite(c))
    lo = np.broadcast_to(alpha_lower_bound(snapshot)[:, None], grid.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        hi = np.where(co_grid.no_link, 0.0, np.minimum(1.0, _EDGE * co_grid.tau / c))
    if alpha_fixed is None:
        alpha = solve_alpha_batch(co_grid, lo, np.maximum(hi, lo))
        usable = hi >= lo
    else:
        alpha = np.broadcast_to(np.asarray(alpha_fixed, float).reshape(-1, 1), grid.shape)
        usable = alpha <= hi
    with np.errstate(invalid="ignore", over="ignore"):
        cost = np.where(usable, co_grid.cost(np.minimum(alpha, hi)), np.inf)
    # The cheapest usable power; a UE with none usable transmits at its full budget.
    best = np.where(np.isfinite(cost).any(axis=1), np.argmin(cost, axis=1), power_grid - 1)
    p_f = grid[np.arange(K), best]
    if alpha_fixed is not None and np.all(np.asarray(alpha_fixed) == 0):
        p_f = np.zeros(K)  # nothing to send: the communication beam is switched off

    f = np.sqrt(p_f)[:, None] * f_dir
    u = np.sqrt(p_u)[:, None] * u_dir
    w = comm_combiners(snapshot, f, u, share) if np.any(p_f > 0) else np.zeros((K, snapshot.M_a))
    w_tilde = sensing_combiners(snapshot, f, u, share)
    probe = Allocation(np.zeros(K), np.zeros(K), np.zeros(K), f, u, w, w_tilde, share)
    signal_c, denominator_c, _, _ = sinr_terms(snapshot, probe)
    true_rate = (
        snapshot.B
        * (1.0 if share is None else share)
        * np.log2(
            1.0 + np.divide(signal_c, denominator_c, out=np.zeros(K), where=denominator_c > 0)
        )
    )
    compute = exact_compute_allocation(
        snapshot, beta, true_rate, p_f + p_u, weight_ue=weight_ue, alpha_fixed=alpha_fixed
    )
    allocation = Allocation(compute.alpha, compute.f_u, compute.f_ap, f, u, w, w_tilde, share)
    info = dict(
        iterations=1, converged=True, sensing_power=p_u, comm_power=p_f, ap_price=compute.ap_price
    )
    return allocation, info
