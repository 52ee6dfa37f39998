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
``H~_k f_k``, ``H~_k u_k`` (computed once, from the path factors when the snapshot has
them: :mod:`isac_gym.iscc.beams`). Combiners, SINRs and the Yates rounds use the
2K x 2K Gram matrices of these vectors (:func:`isac_gym.iscc.beams.gram_sinr`) instead
of 64 x 64 covariance solves; the Yates iteration starts from the exact powers for fixed
combiners (:func:`_fixed_receiver_powers`), so it needs a round or two.

Batches: :func:`solve_fast_batch` runs steps 1-4 for B slots of equal K at once
(:class:`SlotBatch`: per-UE arrays (B, K)); every per-slot branch is a mask over slots
(Yates rounds drop the settled slots, the capped-sensing retry is taken per slot, the
compute allocation is :func:`optimizers.iscc.compute.allocate`). :func:`solve_fast` is
its one-slot case, so a slot gets the same answer alone or in any batch.
"""

from __future__ import annotations

import contextlib
import copy
from functools import lru_cache

import numpy as np

from isac_gym.iscc import Allocation, Snapshot
from isac_gym.iscc.beams import (
    directions_from_channels,
    directions_from_paths,
    normalize_rows,
    path_product,
    rank_one_product,
    received_vectors,
)
from isac_gym.iscc.model import as_beta, sensing_met
from isac_gym.iscc.scenario import PATH_FIELDS, PER_UE_SNAPSHOT_FIELDS
from optimizers.iscc.compute import (
    _EDGE,
    _Coefficients,
    _per_ue_array,
    allocate,
    alpha_lower_bound,
    approximate_alpha,
    coefficients_of,
)

_SENSING_ROUNDS = 30
_SENSING_MARGIN = 1.0 + 1e-4  # aim just above gamma_th so round-off cannot fail (17b)
_POWER_GRID = 24
_TINY = 1e-300
_SLOT_CONSTANTS = ("B", "noise", "P_max", "C_ap", "xi_ap", "gamma_s")
_PER_UE = ("Q", "tau", "C_u", "xi_u", "varpi", "energy_budget", "sense_tx")


class SlotBatch:
    """B snapshots with equal array sizes, stacked for the batched solvers.

    Per-UE fields (``Q``, ``tau``, ...) are (B, K), slot constants (``B``, ``noise``,
    ``P_max``, ``C_ap``, ...) (B, 1), so the per-slot formulas apply unchanged. Channel
    products use the path factors when every snapshot has them (``Snapshot.has_paths``),
    else the dense matrices.

    ``width``: snapshots may have different K (1..width); each is padded to ``width``
    UEs with copies of its UE 0 (``present`` (B, width) marks the real ones), so that
    slots of different K share one batch. The solvers silence the copies (no signal, no
    interference: :meth:`silence`) and keep them out of every sum over UEs; in the
    elementwise steps a copy repeats its UE 0, so it never changes a per-slot branch.
    Without ``width`` (or when every K equals it) ``present`` is None and nothing changes.
    """

    def __init__(self, snapshots, width: int | None = None):
        snapshots = list(snapshots)
        if not snapshots or not all(isinstance(s, Snapshot) for s in snapshots):
            raise ValueError("snapshots must be a non-empty sequence of Snapshot")
        first = snapshots[0]
        padded = width is not None
        sizes = (first.M_a, first.M_ut, first.M_ur) if padded else _sizes(first)
        for i, other in enumerate(snapshots):
            if (_sizes(other)[1:] if padded else _sizes(other)) != sizes:
                what = "array sizes" if padded else "K and array sizes"
                raise ValueError(
                    f"snapshots must have equal {what} ({', '.join(_SIZE_NAMES[padded:])}): "
                    f"snapshot 0 has {sizes}, snapshot {i} has {_sizes(other)[padded:]}"
                )
            if padded and not 1 <= other.K <= width:
                raise ValueError(f"snapshot {i} has K = {other.K}, not in 1..{width}")
        self.snapshots = snapshots
        self.size, self.K = len(snapshots), width if padded else first.K
        self.counts = np.array([s.K for s in snapshots])
        self.present, self._take = _padding(self.counts, self.K)
        for name in _SLOT_CONSTANTS:
            setattr(self, name, np.array([[getattr(s, name)] for s in snapshots], dtype=float))
        for name in _PER_UE:
            setattr(self, name, self.stacked([getattr(s, name) for s in snapshots]))
        self.M_a = first.M_a
        self.has_paths = all(s.has_paths for s in snapshots)
        if self.has_paths and len({s.path_coeff.shape[1:] for s in snapshots}) > 1:
            self.has_paths = False  # different path counts: dense products
        names = PATH_FIELDS + ("rho", "sense_rx") if self.has_paths else ("H", "H_sense")
        for name in names:
            setattr(self, name, self.stacked([getattr(s, name) for s in snapshots]))

    def subset(self, rows: np.ndarray) -> SlotBatch:
        """The slots ``rows`` (indices) as a batch of their own, from this batch's rows:
        slot for slot the same arrays, so a solver step gives them the same numbers."""
        part = copy.copy(self)
        part.snapshots = [self.snapshots[i] for i in rows]
        part.size = len(rows)
        for name in _ROW_FIELDS:
            value = getattr(self, name, None)
            if value is not None:
                setattr(part, name, value[rows])
        part.present, part._take = _padding(part.counts, self.K)
        return part

    def stacked(self, values) -> np.ndarray:
        """Per-slot arrays with a leading UE axis stacked to (B, K, ...), padded (copies
        of UE 0) where a slot has fewer UEs."""
        if self._take is None:
            return np.array(values)
        return np.concatenate(values)[self._take]

    def silence(self, x: np.ndarray) -> np.ndarray:
        """``x`` (B, K, ...), a product just computed, with the padded UEs' entries set to
        zero in place (they neither send nor echo); returns ``x``."""
        if self.present is not None:
            x[~self.present] = 0
        return x

    def copied(self, x: np.ndarray) -> np.ndarray:
        """``x`` (B, K) with the padded UEs' entries those of the slot's UE 0."""
        return x if self.present is None else np.where(self.present, x, x[:, :1])

    def real(self, mask: np.ndarray) -> np.ndarray:
        """``mask`` (B, K) and the UE present."""
        return mask if self.present is None else mask & self.present

    def directions(self):
        """:func:`isac_gym.iscc.beam_directions` of every slot, (B, K, M_ut) each."""
        if self.has_paths:
            return directions_from_paths(self)
        return directions_from_channels(self.H, self.sense_tx)

    def comm(self, x: np.ndarray) -> np.ndarray:
        """``H_k x_k``, (B, K, M_a, n) for x (B, K, M_ut, n)."""
        if self.has_paths:
            return path_product(self.path_coeff, self.path_ap, self.path_ue, x)
        return self.H @ x

    def sense(self, x: np.ndarray) -> np.ndarray:
        """``H~_k x_k``, (B, K, M_ur, n) for x (B, K, M_ut, n); rank one (5) if known."""
        if self.has_paths:
            return rank_one_product(self.rho, self.sense_rx, self.sense_tx, x)
        return self.H_sense @ x


#: ``SlotBatch`` attributes with one row per slot (``SlotBatch.subset``).
_ROW_FIELDS = (
    _SLOT_CONSTANTS + _PER_UE + PATH_FIELDS + ("rho", "sense_rx", "H", "H_sense", "counts")
)
assert set(_PER_UE) <= set(PER_UE_SNAPSHOT_FIELDS)


def _padding(counts: np.ndarray, width: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``present`` (B, width), the real UEs, and the rows of the slots' concatenated
    per-UE arrays that fill a padded batch (UE 0 for the padding); (None, None) when every
    slot has ``width`` UEs."""
    if (counts == width).all():
        return None, None
    present = np.arange(width) < counts[:, None]
    offsets = np.cumsum(counts) - counts
    return present, offsets[:, None] + np.where(present, np.arange(width), 0)


_SIZE_NAMES = ("K", "M_a", "M_ut", "M_ur")


def _sizes(snapshot: Snapshot) -> tuple[int, int, int, int]:
    return snapshot.K, snapshot.M_a, snapshot.M_ut, snapshot.M_ur


def sensing_powers(snapshot: Snapshot, f, u_dir, share=None, *, floor=None) -> np.ndarray:
    """Least sensing powers meeting (17b) (capped at P_max) for unit directions u_dir.

    The received vectors of (8) are ``H~_j f_j`` and ``sqrt(p_j) H~_j u_j``; see
    :func:`_sensing_powers`. ``floor``: least powers >= floor (scalar or (K,)) instead.
    """
    K = snapshot.K
    received = received_vectors(snapshot.H_sense, f, u_dir, share)
    noise = np.full((1, 1), snapshot.noise) if share is None else snapshot.noise * share[:, None]
    index = K + np.arange(K) if share is None else np.ones(1, dtype=int)
    sets = received.shape[0]
    limits = (np.full((sets, 1), snapshot.P_max), np.full((sets, 1), snapshot.gamma_s))
    if floor is not None:
        floor = np.broadcast_to(np.asarray(floor, dtype=float), (K,)).reshape(sets, -1)
    return _sensing_powers(received, index, noise, *limits, floor).reshape(K)


def _sensing_powers(received, index, noise, P_max, gamma_s, floor=None, absent=None) -> np.ndarray:
    """Yates' iteration ``p_k <- p_k gamma_th / gamma_k^s`` on Gram matrices, per set.

    ``received`` (S, J, M): S independent sets of received vectors (one slot each, or one
    UE each with orthogonal access); in every set the rows ``index`` (n,) hold the n UEs'
    unit-power sensing echoes ``H~_k u_dir_k`` (scaled by ``sqrt(p_k)``) and every other
    row is at its actual power; ``noise``, ``P_max``, ``gamma_s`` (S, 1). With ``S =
    diag(scales)``, ``Z = (sigma^2 I + S G S)^{-1} = S^{-1} (G + sigma^2 S^{-2})^{-1}
    S^{-1}``, so by :func:`~isac_gym.iscc.beams.gram_sinr` the max-SINR value of (8) is

        gamma_k^s = p_k / (sigma^2 M_kk) - 1,  M = (G + sigma^2 S^{-2})^{-1},

    and a round costs one small inverse of the fixed Gram matrix G plus a diagonal.

    Start: the iteration decreases monotonically to the least powers from any feasible
    point, and every iterate stays feasible. :func:`_fixed_receiver_powers` gives one
    close to the answer (the exact powers for the combiners of the noise-limited
    powers, capped at P_max); where it does not exist (no positive solution), the start
    is ``P_max / 2`` as in the plain method. With ``floor`` every iterate is raised to
    at least ``floor`` (``max(floor, .)`` of a standard interference function is one).
    A set stops when its powers change by less than 1e-6 relative; it is then frozen.
    ``absent`` (S, n): padded UEs (zero echoes); they stay at P_max, apart from the rest.
    Returns (S, n).
    """
    sets, J, _ = received.shape
    gram = received.conj() @ np.swapaxes(received, 1, 2)
    diagonal = np.einsum("sjj->sj", gram)  # ||x_j||^2; the echoes ||H~_k u_dir_k||^2 at index
    target = gamma_s * _SENSING_MARGIN
    noise_limited = np.minimum(P_max, target * noise / np.maximum(diagonal.real[:, index], _TINY))
    with np.errstate(all="ignore"):
        M = _scaled_inverse(gram, diagonal, index, noise, noise_limited)
        p = _fixed_receiver_powers(M, index, noise_limited, noise, target, absent)
    # Capping a UE at P_max lowers the others' interference: still a feasible start.
    usable = np.all(p > 0, axis=1, keepdims=True)
    p = np.where(usable, np.minimum(p, P_max), P_max / 2)
    if floor is not None:
        floor = np.minimum(floor, P_max)
        p = np.maximum(p, floor)
    result = p.copy()
    rows = np.arange(sets)  # the sets still iterating (settled sets are dropped)
    for _ in range(_SENSING_ROUNDS):
        m = _scaled_inverse(gram, diagonal, index, noise, p)[:, index, index].real
        sinr = p / np.maximum(noise * m, _TINY) - 1.0
        new = np.minimum(P_max, p * target / np.maximum(sinr, _TINY))
        if floor is not None:
            new = np.maximum(new, floor)
        settled = np.all(np.abs(new - p) <= 1e-8 + 1e-6 * p, axis=1)  # allclose, rtol 1e-6
        result[rows] = new
        if settled.all():
            break
        if settled.any():
            keep = ~settled
            rows, gram, diagonal, new = rows[keep], gram[keep], diagonal[keep], new[keep]
            noise, P_max, target = noise[keep], P_max[keep], target[keep]
            floor = None if floor is None else floor[keep]
        p = new
    return result


def _scaled_inverse(gram, diagonal, index, noise, p):
    """``M = (G + sigma^2 S^{-2})^{-1}``: the Gram matrix with the UEs' rows at power p."""
    load = np.repeat(noise, gram.shape[1], axis=1)
    load[:, index] = noise / p
    shifted = gram.copy()
    np.einsum("sjj->sj", shifted)[...] = diagonal + load
    return np.linalg.inv(shifted)


def _fixed_receiver_powers(M, index, p0, noise, target, absent=None):
    """Least powers meeting (17b) exactly with the max-SINR combiners of powers ``p0``.

    With ``Z = (sigma^2 I + S G S)^{-1}`` (scales S at ``p0``) and ``E = I - sigma^2 Z``,
    UE k's max-SINR combiner ``w_k = X Z e_k`` receives row j with amplitude
    ``w_k^H x_j = E_kj`` (push-through identity) and noise ``sigma^2 ||w_k||^2 = sigma^2
    (Z E)_kk``. With these combiners fixed, (8) at target for every UE is the linear
    system ``a_kk p_k - gamma sum_{j != k} a_kj p_j = gamma (c_k + n_k)``, ``a_kj =
    |E_{k,j}|^2 / p0_j`` (the others' echoes, per unit power), ``c_k`` the fixed rows;
    one per set (S, n, n). Re-optimising the combiners only raises the SINRs, so the
    solution is feasible. NaN where a system is singular (no start). A UE ``absent``
    (S, n) has no echo (a zero row of the system): its equation becomes ``p_k = p0_k``.
    """
    n = index.shape[0]
    inv_scale = np.ones(M.shape[:2])  # 1 / s, (S, J)
    inv_scale[:, index] = np.sqrt(1.0 / p0)
    Z = M * inv_scale[:, :, None] * inv_scale[:, None, :]
    Zk = Z[:, index, :]  # (S, n, J): row i_k of UE k's set
    Ek = -noise[:, :, None] * Zk
    Ek[:, np.arange(n), index] += 1.0
    power = (Ek * Ek.conj()).real
    noise_power = noise * np.einsum("skj,skj->sk", Zk, Ek.conj()).real  # (Z E)_kk
    own = power[:, np.arange(n), index]
    echoes = power[:, :, index] / p0[:, None, :]  # a_kj
    fixed = power.sum(axis=2) - power[:, :, index].sum(axis=2)  # c_k
    system = -target[:, :, None] * echoes
    system[:, np.arange(n), np.arange(n)] = own / p0
    rhs = (target * (fixed + noise_power))[:, :, None]
    if absent is not None:
        identity = np.eye(n, dtype=bool)
        system = np.where(absent[:, None, :] | absent[:, :, None], identity, system)
        rhs = np.where(absent[:, :, None], p0[:, :, None], rhs)
    try:
        return np.linalg.solve(system, rhs)[:, :, 0]
    except np.linalg.LinAlgError:  # some set is singular: solve set by set
        powers = np.full(own.shape, np.nan)
        for i in range(own.shape[0]):
            with contextlib.suppress(np.linalg.LinAlgError):
                powers[i] = np.linalg.solve(system[i], rhs[i])[:, 0]
        return powers


def _least_sensing_powers(slots: SlotBatch, e_u, share) -> np.ndarray:
    """:func:`sensing_powers` with f = 0 from the echoes ``e_u = H~_k u_dir_k`` (B, K, M)."""
    target = slots.gamma_s * _SENSING_MARGIN
    if share is None:
        index = np.arange(slots.K)
        absent = None if slots.present is None else ~slots.present
        return _sensing_powers(e_u, index, slots.noise, slots.P_max, slots.gamma_s, absent=absent)
    # Orthogonal access: UE k's own echo against its noise alone, gamma = p |e_u|^2 / s sigma^2.
    echo = (e_u * e_u.conj()).real.sum(axis=2)
    return np.minimum(slots.P_max, target * slots.noise * share / np.maximum(echo, _TINY))


def _max_sinr(received: np.ndarray, index: np.ndarray, noise: np.ndarray):
    """Max-SINR combiners (S, n, M) and SINRs (S, n) of the rows ``index`` of each set.

    :func:`isac_gym.iscc.beams.gram_max_sinr` for S independent sets (S, J, M) with the
    noise (S, 1): ``gamma_k = 1 / (sigma^2 Z_kk) - 1``, ``w_k ∝ X Z e_k``.
    """
    J = received.shape[1]
    gram = received.conj() @ np.swapaxes(received, 1, 2)
    Z = np.linalg.inv(gram + noise[:, :, None] * np.eye(J))
    z = Z[:, index, index].real
    sinr = np.maximum(1.0 / np.maximum(noise * z, _TINY) - 1.0, 0.0)
    w = np.swapaxes(Z[:, :, index], 1, 2) @ received  # w_k = sum_j Z[j, k] x_j
    return normalize_rows(w), sinr


def _comm_gain(slots: SlotBatch, p_f, share, h) -> np.ndarray:
    """e_k with gamma_k^c = p_k e_k for max-SINR combining against the others' beams.

    Full band: ``gamma_k = p_k h_k^H R_{-k}^{-1} h_k`` with ``R = sigma^2 I + sum_j p_j
    h_j h_j^H``, from the K x K Gram matrix of the ``sqrt(p_j) h_j`` (push-through
    identity, :func:`isac_gym.iscc.beams.gram_sinr`); ``h`` (B, K, M_a): ``H_k f_dir_k``.
    """
    if share is not None:
        return np.sum((h * h.conj()).real, axis=2) / (share * slots.noise)
    scaled = np.sqrt(p_f)[:, :, None] * h
    gram = scaled.conj() @ np.swapaxes(scaled, 1, 2)
    Z = np.linalg.inv(gram + slots.noise[:, :, None] * np.eye(slots.K))
    z = np.diagonal(Z, axis1=1, axis2=2).real
    return np.maximum(1.0 / np.maximum(slots.noise * z, _TINY) - 1.0, 0.0) / p_f


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
    """Structured beams + exact compute allocation (see module docstring).

    One slot of :func:`solve_fast_batch`: ``(allocation, info)``.
    """
    K = snapshot.K
    share = None if bandwidth_share is None else np.asarray(bandwidth_share, float)[None]
    weight = None if weight_ue is None else _per_ue_array("weight_ue", weight_ue, K)[None]
    fixed = None if alpha_fixed is None else _pinned(alpha_fixed, (1, K))
    results = solve_fast_batch(
        SlotBatch([snapshot]), as_beta(beta, K)[None], weight, fixed, share, int(power_grid)
    )
    return results[0]


def _pinned(alpha_fixed, shape) -> np.ndarray:
    fixed = np.broadcast_to(np.asarray(alpha_fixed, dtype=float), shape)
    if np.any(~np.isfinite(fixed) | (fixed < 0) | (fixed > 1)):
        raise ValueError(f"alpha_fixed must be in [0, 1], got {alpha_fixed!r}")
    return fixed


def solve_fast_batch(
    slots: SlotBatch, beta, weight=None, alpha_fixed=None, share=None, power_grid=_POWER_GRID
) -> list[tuple[Allocation, dict]]:
    """:func:`solve_fast` of every slot of ``slots`` at once; per-UE arguments (B, K).

    ``beta`` valid (B, K); ``weight`` (B, K) or None (1); ``alpha_fixed`` (B, K) in
    [0, 1] or None; ``share`` (B, K) bandwidth shares or None (full band). Steps 1-4 of
    the module docstring, with every per-slot branch (Yates rounds, the capped-sensing
    retry, Newton counts, the AP price) a mask over slots.
    """
    f_dir, u_dir = slots.directions()
    # Every received vector of (7)-(8) is a multiple of one of these four products.
    directions = np.stack((f_dir, u_dir), axis=3)  # (B, K, M_ut, 2)
    h_fu, e_fu = slots.silence(slots.comm(directions)), slots.silence(slots.sense(directions))
    beams = dict(f_dir=f_dir, u_dir=u_dir, h_f=h_fu[..., 0], h_u=h_fu[..., 1])
    beams.update(e_f=e_fu[..., 0], e_u=e_fu[..., 1])
    # f = 0 while the sensing powers are set (the echo of f_k vanishes in (8) anyway).
    beams["p_u"] = _least_sensing_powers(slots, beams["e_u"], share)
    _retry_capped_sensing(slots, beams, share)
    p_f, alpha_start = _comm_powers(slots, beams, beta, weight, alpha_fixed, share, power_grid)
    # A UE whose sensing power is capped keeps (17g): its sensing gives up the floor of
    # the communication budget (it misses (17b) either way).
    p_u = np.minimum(beams["p_u"], slots.P_max - p_f)
    w, w_tilde, rate, blind = _receivers(slots, beams, p_f, p_u, share)
    # Padded UEs repeat their slot's UE 0 in the compute step (``SlotBatch``).
    rate, power, blind = slots.copied(rate), slots.copied(p_f + p_u), slots.copied(blind)
    alpha_start = None if alpha_start is None else slots.copied(alpha_start)
    co = coefficients_of(slots, beta, rate, power, 1.0 if weight is None else weight)
    # UEs that miss (17b) whatever the compute allocation does stay out of the AP
    # capacity coupling, so that they cannot starve the others (``optimizers.iscc.compute``).
    compute = allocate(slots, co, alpha_fixed, alpha_start, blind, present=slots.present)
    f = np.sqrt(p_f)[..., None] * f_dir
    u = np.sqrt(p_u)[..., None] * beams["u_dir"]
    results = []
    for b, k in enumerate(slots.counts):  # a padded slot's first k UEs are its own
        allocation = Allocation(
            compute.alpha[b, :k], compute.f_u[b, :k], compute.f_ap[b, :k], f[b, :k], u[b, :k],
            w[b, :k], w_tilde[b, :k], None if share is None else share[b, :k],
        )  # fmt: skip
        info = dict(iterations=1, converged=True, sensing_power=p_u[b, :k], comm_power=p_f[b, :k])
        results.append((allocation, info | {"ap_price": float(compute.ap_price[b, 0])}))
    return results


def _retry_capped_sensing(slots: SlotBatch, beams: dict, share) -> None:
    """UEs that cannot meet (17b) along u_dir sense along a_t(psi_k) itself instead.

    (17b) is unreachable along u_dir when a_t(psi_k) lies nearly inside H_k's row space;
    the full echo then leaks into (7). A slot takes the retry when it caps fewer UEs.
    Updates ``beams`` (u_dir, e_u, h_u, p_u) in place.
    """
    capped = slots.real(beams["p_u"] >= slots.P_max)
    rows = np.flatnonzero(capped.any(axis=1))
    if rows.size == 0:
        return
    # Only the slots with a capped UE try (a few % of a batch): the others keep their beams.
    part, capped = slots.subset(rows), capped[rows]
    u_try = np.where(capped[..., None], normalize_rows(part.sense_tx), beams["u_dir"][rows])
    e_try = part.silence(part.sense(u_try[..., None])[..., 0])
    p_try = _least_sensing_powers(part, e_try, None if share is None else share[rows])
    better = np.sum(part.real(p_try >= part.P_max), axis=1) < np.sum(capped, axis=1)
    if not better.any():
        return
    part, rows, u_try = part.subset(np.flatnonzero(better)), rows[better], u_try[better]
    h_try = part.silence(part.comm(u_try[..., None])[..., 0])
    tried = dict(u_dir=u_try, e_u=e_try[better], h_u=h_try, p_u=p_try[better])
    for name, value in tried.items():
        beams[name] = beams[name].copy()
        beams[name][rows] = value


def _comm_powers(slots: SlotBatch, beams, beta, weight, alpha_fixed, share, power_grid):
    """Per-UE communication power from a log grid, the others at their remaining budget.

    UE k's compute cost at its best alpha (:func:`approximate_alpha`: only the ranking
    of the grid points matters; the final alpha is exact) picks its power; a UE with no
    usable power transmits at its full budget. Returns ``(p_f, alpha_start)``.
    """
    p_u = beams["p_u"]
    budget = np.maximum(slots.P_max - p_u, slots.P_max * 1e-6)
    gain = _comm_gain(slots, budget, share, beams["h_f"])
    grid = budget[..., None] * _log_grid(power_grid)  # (B, K, G)
    bandwidth = slots.B[..., None] * (1.0 if share is None else share[..., None])
    with np.errstate(divide="ignore"):
        c = slots.Q[..., None] / (bandwidth * np.log2(1.0 + grid * gain[..., None]))
    cycles = slots.varpi * slots.Q
    co_grid = _Coefficients(
        w=1.0 if weight is None else weight[..., None],
        beta=beta[..., None],
        P=grid + p_u[..., None],
        c=c,
        a=(slots.xi_u * cycles**3 / slots.tau**2)[..., None],
        b=(slots.xi_ap * cycles**3)[..., None],
        d=cycles[..., None],
        tau=slots.tau[..., None],
        no_link=c == np.inf,
    )
    lo = np.broadcast_to(alpha_lower_bound(slots)[..., None], grid.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        hi = np.minimum(1.0, _EDGE * co_grid.tau / c)  # 0 where there is no link (c = inf)
    if alpha_fixed is None:
        alpha = approximate_alpha(co_grid, lo, np.maximum(hi, lo))
        usable = hi >= lo
    else:
        alpha = np.broadcast_to(alpha_fixed[..., None], grid.shape)
        usable = alpha <= hi
    with np.errstate(invalid="ignore", over="ignore"):
        cost = np.where(usable, co_grid.cost(np.minimum(alpha, hi)), np.inf)
    best = cost.argmin(axis=2)[..., None]
    best[cost.min(axis=2) == np.inf] = power_grid - 1
    p_f = np.take_along_axis(grid, best, axis=2)[..., 0]
    if alpha_fixed is not None:  # nothing to send: the communication beam is switched off
        p_f = np.where(np.all(alpha_fixed == 0, axis=1, keepdims=True), 0.0, p_f)
        return p_f, None
    return p_f, np.take_along_axis(alpha, best, axis=2)[..., 0]


def _receivers(slots: SlotBatch, beams, p_f, p_u, share):
    """Max-SINR combiners of (7)-(8) for the final powers, true rates and blind UEs.

    Returns ``(w, w_tilde, rate, blind)``: blind UEs miss (17b) at these beams.
    """
    a_f, a_u = np.sqrt(p_f)[..., None], np.sqrt(p_u)[..., None]
    B, K = p_f.shape
    if share is None:
        comm = np.concatenate((a_f * beams["h_f"], a_u * beams["h_u"]), axis=1)
        sense = np.concatenate((a_f * beams["e_f"], a_u * beams["e_u"]), axis=1)
        noise, index = slots.noise, np.arange(K)
        w, sinr_c = _max_sinr(comm, index, noise)
        w_tilde, sinr_s = _max_sinr(sense, K + index, noise)
    else:  # orthogonal access: one set per UE, [f echo, u echo], noise scaled by the share
        noise = (slots.noise * share).reshape(B * K, 1)
        comm = np.stack((a_f * beams["h_f"], a_u * beams["h_u"]), axis=2)
        sense = np.stack((a_f * beams["e_f"], a_u * beams["e_u"]), axis=2)
        w, sinr_c = _max_sinr(comm.reshape(B * K, 2, -1), np.zeros(1, int), noise)
        w_tilde, sinr_s = _max_sinr(sense.reshape(B * K, 2, -1), np.ones(1, int), noise)
        w, w_tilde = w.reshape(B, K, -1), w_tilde.reshape(B, K, -1)
        sinr_c, sinr_s = sinr_c.reshape(B, K), sinr_s.reshape(B, K)
    rate = slots.B * (1.0 if share is None else share) * np.log2(1.0 + sinr_c)
    return w, w_tilde, rate, ~sensing_met(slots, sinr_s)
