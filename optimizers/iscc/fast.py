"""``method="fast"``: structured beams plus the exact compute allocation.

1. Directions from :func:`isac_gym.iscc.beam_directions`: f_k along H_k's dominant right
   singular vector with a_t(psi_k) projected out (no communication echo in (8)), u_k
   along a_t(psi_k) with H_k's row space projected out (no sensing leakage in (7)).
2. Sensing powers: the least powers meeting (17b), by the standard interference-function
   iteration ``p_k <- p_k gamma_th / gamma_k^s`` with max-SINR combiners recomputed each
   round (Yates, 1995), which converges to the component-wise minimum when one exists.
   A UE that cannot meet (17b) at P_max along its projected u_k (a_t(psi_k) nearly in
   H_k's row space) senses along a_t(psi_k) itself instead.
3. Communication powers: with u_k invisible to the AP, gamma_k^c = p_k e_k where e_k
   is UE k's max-SINR gain against the others' beams. For a log grid of p_k, UE k's
   compute cost at its best alpha picks its power (alpha from
   :func:`optimizers.iscc.compute.approximate_alpha`: two Newton steps, whose error enters
   the cost only at second order; the final alpha is exact, step 4). With orthogonal
   access (OFDMA) the least sensing powers of step 2 are in closed form.
4. Exact compute allocation at the true rates of the final beams (the polish step),
   then one evaluation of the true model. UEs that still miss (17b) (sensing power
   capped at P_max) are excluded from the AP capacity coupling there, so that they
   cannot take the AP from the others; they are reported infeasible as before.

Speed: every received vector of (7)-(8) is a multiple of one of ``H_k f_k``, ``H_k u_k``,
``H~_k f_k``, ``H~_k u_k`` (computed once). Combiners, SINRs and the Yates rounds use the
2K x 2K Gram matrices of these vectors (:func:`isac_gym.iscc.beams.gram_sinr`) instead
of 64 x 64 covariance solves; the Yates iteration starts from the exact powers for fixed
combiners (:func:`_fixed_receiver_powers`), so it needs a round or two.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.linalg import lapack

from isac_gym.iscc import Allocation, Snapshot, beam_directions
from isac_gym.iscc.beams import gram_max_sinr, gram_sinr, normalize_rows, received_vectors
from isac_gym.iscc.model import as_beta, sensing_met
from optimizers.iscc.compute import (
    _EDGE,
    _Coefficients,
    _per_ue_array,
    alpha_lower_bound,
    approximate_alpha,
    exact_compute_allocation,
)

_SENSING_ROUNDS = 30
_SENSING_MARGIN = 1.0 + 1e-4  # aim just above gamma_th so round-off cannot fail (17b)
_POWER_GRID = 24


def sensing_powers(snapshot: Snapshot, f, u_dir, share=None, *, floor=None) -> np.ndarray:
    """Least sensing powers meeting (17b) (capped at P_max) for unit directions u_dir.

    The received vectors of (8) are ``H~_j f_j`` and ``sqrt(p_j) H~_j u_j``; see
    :func:`_sensing_powers`. ``floor``: least powers >= floor (scalar or (K,)) instead.
    """
    K = snapshot.K
    received = received_vectors(snapshot.H_sense, f, u_dir, share)
    index = K + np.arange(K) if share is None else np.ones(K, dtype=int)
    return _sensing_powers(snapshot, received, index, share, floor)


def _sensing_powers(
    snapshot: Snapshot, received: np.ndarray, index, share, floor=None
) -> np.ndarray:
    """Yates' iteration ``p_k <- p_k gamma_th / gamma_k^s`` on a Gram matrix.

    ``received`` (B, J, M) as in :func:`isac_gym.iscc.beams.gram_sinr`, with the rows
    ``index`` holding UE k's unit-power sensing echo ``H~_k u_dir_k`` (scaled by
    ``sqrt(p_k)``) and every other row at its actual power. With ``S = diag(scales)``,
    ``Z = (sigma^2 I + S G S)^{-1} = S^{-1} (G + sigma^2 S^{-2})^{-1} S^{-1}``, so by
    :func:`~isac_gym.iscc.beams.gram_sinr` the max-SINR value of (8) is

        gamma_k^s = p_k / (sigma^2 M_kk) - 1,  M = (G + sigma^2 S^{-2})^{-1},

    and a round costs one small inverse of the fixed Gram matrix G plus a diagonal.

    Start: the iteration decreases monotonically to the least powers from any feasible
    point, and every iterate stays feasible. :func:`_fixed_receiver_powers` gives one
    close to the answer (the exact powers for the combiners of the noise-limited
    powers, capped at P_max); where it does not exist (no positive solution), the start
    is ``P_max / 2`` as in the plain method. With ``floor`` every iterate is raised to
    at least ``floor`` (``max(floor, .)`` of a standard interference function is one).
    """
    K = snapshot.K
    B, J, _ = received.shape
    gram = received.conj() @ np.swapaxes(received, 1, 2)
    if share is None:
        rows = np.zeros(K, dtype=int)
        load = np.full((B, J), snapshot.noise)
    else:
        rows = np.arange(K)
        load = np.repeat((snapshot.noise * share)[:, None], J, axis=1)
    noise_k = load[rows, index]  # sigma^2 of UE k's set
    flat = gram.reshape(B, J * J)  # a copy-free view of the diagonal: flat[:, :: J + 1]
    base = flat[:, :: J + 1].copy()
    echo = base.real[rows, index]  # ||H~_k u_dir_k||^2
    target = snapshot.gamma_s * _SENSING_MARGIN

    def inverse(p):  # M = (G + sigma^2 S^{-2})^{-1}
        load[rows, index] = noise_k / p
        flat[:, :: J + 1] = base + load
        return np.linalg.inv(gram)

    noise_limited = np.minimum(snapshot.P_max, target * noise_k / np.maximum(echo, 1e-300))
    with np.errstate(all="ignore"):
        p = _fixed_receiver_powers(
            inverse(noise_limited), load, rows, index, noise_limited, noise_k, target
        )
    # Capping a UE at P_max lowers the others' interference: still a feasible start.
    p = np.minimum(p, snapshot.P_max) if np.all(p > 0) else np.full(K, snapshot.P_max / 2)
    if floor is not None:
        floor = np.minimum(floor, snapshot.P_max)
        p = np.maximum(p, floor)
    for _ in range(_SENSING_ROUNDS):
        m = inverse(p)[rows, index, index].real
        sinr = p / np.maximum(noise_k * m, 1e-300) - 1.0
        new = np.minimum(snapshot.P_max, p * target / np.maximum(sinr, 1e-300))
        if floor is not None:
            new = np.maximum(new, floor)
        if (np.abs(new - p) <= 1e-8 + 1e-6 * p).all():  # np.allclose(new, p, rtol=1e-6)
            return new
        p = new
    return p


def _fixed_receiver_powers(M, load, rows, index, p0, noise_k, target):
    """Least powers meeting (17b) exactly with the max-SINR combiners of powers ``p0``.

    With ``Z = (sigma^2 I + S G S)^{-1}`` (scales S at ``p0``) and ``E = I - sigma^2 Z``,
    UE k's max-SINR combiner ``w_k = X Z e_k`` receives row j with amplitude
    ``w_k^H x_j = E_kj`` (push-through identity) and noise ``sigma^2 ||w_k||^2 = sigma^2
    (Z E)_kk``. With these combiners fixed, (8) at target for every UE is the linear
    system ``a_kk p_k - gamma sum_{j != k} a_kj p_j = gamma (c_k + n_k)``, ``a_kj =
    |E_{k,j}|^2 / p0_j`` (the others' echoes, per unit power), ``c_k`` the fixed rows.
    Re-optimising the combiners only raises the SINRs, so the solution is feasible.
    """
    B, J, _ = M.shape
    K = index.shape[0]
    inv_scale = np.sqrt(load / noise_k[:, None] if B == K else load / noise_k[0])  # 1 / s
    Z = M * inv_scale[:, :, None] * inv_scale[:, None, :]
    Zk = Z[rows, index, :]  # (K, J): row i_k of UE k's set
    Ek = -noise_k[:, None] * Zk
    Ek[np.arange(K), index] += 1.0
    power = (Ek * Ek.conj()).real
    noise_power = noise_k * np.einsum("kj,kj->k", Zk, Ek.conj()).real  # (Z E)_kk, E = E^H
    own = power[np.arange(K), index]
    if B == 1:
        echoes = power[:, index] / p0[None, :]  # a_kj
        fixed = power.sum(axis=1) - power[:, index].sum(axis=1)  # c_k
        system = -target * echoes
        system.flat[:: K + 1] = own / p0
        *_, powers, info = lapack.dgesv(system, target * (fixed + noise_power))
        return powers if info == 0 else np.full(K, np.nan)  # singular: no start
    fixed = power.sum(axis=1) - own
    return target * (fixed + noise_power) * p0 / own


def _least_sensing_powers(snapshot: Snapshot, e_u, share) -> np.ndarray:
    """:func:`sensing_powers` with f = 0 from the echoes ``e_u = H~_k u_dir_k``."""
    if share is None:
        return _sensing_powers(snapshot, e_u[None], np.arange(snapshot.K), None)
    # Orthogonal access: UE k's own echo against its noise alone, gamma = p |e_u|^2 / s sigma^2.
    echo = (e_u * e_u.conj()).real.sum(axis=1)
    target = snapshot.gamma_s * _SENSING_MARGIN
    return np.minimum(snapshot.P_max, target * snapshot.noise * share / np.maximum(echo, 1e-300))


def _comm_gain(snapshot: Snapshot, f_dir, p_f, share, h=None) -> np.ndarray:
    """e_k with gamma_k^c = p_k e_k for max-SINR combining against the others' beams.

    Full band: ``gamma_k = p_k h_k^H R_{-k}^{-1} h_k`` with ``R = sigma^2 I + sum_j p_j
    h_j h_j^H``, from the K x K Gram matrix of the ``sqrt(p_j) h_j`` (push-through
    identity, :func:`isac_gym.iscc.beams.gram_sinr`). ``h``: ``H_k f_dir_k`` if known.
    """
    if h is None:
        h = (snapshot.H @ f_dir[:, :, None])[:, :, 0]
    if share is not None:
        return np.sum((h * h.conj()).real, axis=1) / (share * snapshot.noise)
    scaled = np.sqrt(p_f)[:, None] * h
    gram = (scaled.conj() @ scaled.T)[None]
    return gram_sinr(gram, np.arange(snapshot.K), snapshot.noise) / p_f


@lru_cache(maxsize=8)
def _log_grid(points: int) -> np.ndarray:
    return np.logspace(-4, 0, points)


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
    beta = as_beta(beta, K)
    f_dir, u_dir = beam_directions(snapshot)
    # Every received vector of (7)-(8) is a multiple of one of these four products.
    directions = np.stack((f_dir, u_dir), axis=2)  # (K, M_ut, 2)
    h_fu = snapshot.H @ directions
    e_fu = snapshot.H_sense @ directions
    h_f, h_u, e_f, e_u = h_fu[:, :, 0], h_fu[:, :, 1], e_fu[:, :, 0], e_fu[:, :, 1]

    # f = 0 while the sensing powers are set (the echo of f_k vanishes in (8) anyway).
    p_u = _least_sensing_powers(snapshot, e_u, share)
    capped = p_u >= snapshot.P_max
    if capped.any():
        # (17b) unreachable along u_dir (a_t(psi_k) nearly inside H_k's row space): those
        # UEs sense along a_t(psi_k) itself, the full echo, leaking into (7) instead.
        a_t = normalize_rows(snapshot.sense_tx)
        u_try = np.where(capped[:, None], a_t, u_dir)
        e_try = (snapshot.H_sense @ u_try[:, :, None])[:, :, 0]
        p_try = _least_sensing_powers(snapshot, e_try, share)
        if np.sum(p_try >= snapshot.P_max) < np.sum(capped):
            u_dir, e_u, p_u = u_try, e_try, p_try
            h_u = (snapshot.H @ u_dir[:, :, None])[:, :, 0]
    budget = np.maximum(snapshot.P_max - p_u, snapshot.P_max * 1e-6)

    # Per-UE communication power on a log grid, the others at their remaining budget.
    gain = _comm_gain(snapshot, f_dir, budget, share, h=h_f)
    grid = budget[:, None] * _log_grid(int(power_grid))  # (K, G)
    bandwidth = snapshot.B if share is None else snapshot.B * share[:, None]
    with np.errstate(divide="ignore"):
        c = snapshot.Q[:, None] / (bandwidth * np.log2(1.0 + grid * gain[:, None]))
    no_link = c == np.inf
    cycles = snapshot.varpi * snapshot.Q
    cubes = cycles**3
    weight = 1.0 if weight_ue is None else _per_ue_array("weight_ue", weight_ue, K)[:, None]
    co_grid = _Coefficients(
        w=weight,
        beta=beta[:, None],
        P=grid + p_u[:, None],
        c=c,
        a=(snapshot.xi_u * cubes / snapshot.tau**2)[:, None],
        b=(snapshot.xi_ap * cubes)[:, None],
        d=cycles[:, None],
        tau=snapshot.tau[:, None],
        no_link=no_link,
    )
    lo = np.broadcast_to(alpha_lower_bound(snapshot)[:, None], grid.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        hi = np.minimum(1.0, _EDGE * co_grid.tau / c)  # 0 where there is no link (c = inf)
    if alpha_fixed is None:
        # Only the ranking of the grid points matters here: the final alpha is the exact
        # compute allocation below, at the true rates.
        alpha = approximate_alpha(co_grid, lo, np.maximum(hi, lo))
        usable = hi >= lo
    else:
        alpha = np.broadcast_to(np.asarray(alpha_fixed, float).reshape(-1, 1), grid.shape)
        usable = alpha <= hi
    with np.errstate(invalid="ignore", over="ignore"):
        cost = np.where(usable, co_grid.cost(np.minimum(alpha, hi)), np.inf)
    # The cheapest usable power; a UE with none usable transmits at its full budget.
    best = cost.argmin(axis=1)
    best[cost.min(axis=1) == np.inf] = power_grid - 1
    p_f = grid[np.arange(K), best]
    if alpha_fixed is not None and np.all(np.asarray(alpha_fixed) == 0):
        p_f = np.zeros(K)  # nothing to send: the communication beam is switched off
    # A UE whose sensing power is capped keeps (17g): its sensing gives up the floor of
    # the communication budget (it misses (17b) either way).
    p_u = np.minimum(p_u, snapshot.P_max - p_f)

    a_f, a_u = np.sqrt(p_f)[:, None], np.sqrt(p_u)[:, None]
    f, u = a_f * f_dir, a_u * u_dir
    comm = _stack(a_f * h_f, a_u * h_u, share)
    sense = _stack(a_f * e_f, a_u * e_u, share)
    noise = snapshot.noise if share is None else snapshot.noise * share
    index = np.arange(K)
    w, sinr_c = gram_max_sinr(comm, index if share is None else 0 * index, noise)
    w_tilde, sinr_s = gram_max_sinr(sense, K + index if share is None else 1 + 0 * index, noise)
    true_rate = snapshot.B * (1.0 if share is None else share) * np.log2(1.0 + sinr_c)
    # UEs that miss (17b) whatever the compute allocation does stay out of the AP
    # capacity coupling, so that they cannot starve the others (``optimizers.iscc.compute``).
    blind = ~sensing_met(snapshot, sinr_s)
    compute = exact_compute_allocation(
        snapshot,
        beta,
        true_rate,
        p_f + p_u,
        weight_ue=weight_ue,
        alpha_fixed=alpha_fixed,
        alpha_start=alpha[np.arange(K), best] if alpha_fixed is None else None,
        exclude=blind if blind.any() else None,
    )
    allocation = Allocation(compute.alpha, compute.f_u, compute.f_ap, f, u, w, w_tilde, share)
    info = dict(
        iterations=1, converged=True, sensing_power=p_u, comm_power=p_f, ap_price=compute.ap_price
    )
    return allocation, info


def _stack(x_f: np.ndarray, x_u: np.ndarray, share) -> np.ndarray:
    """Received sets as in :func:`isac_gym.iscc.beams.received_vectors`."""
    if share is None:
        return np.concatenate([x_f, x_u])[None]
    return np.stack([x_f, x_u], axis=1)
