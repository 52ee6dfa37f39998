"""Beam and combiner building blocks for eqs. (7)-(8): pure functions of a snapshot.

* :func:`comm_combiners` / :func:`sensing_combiners` return, for given transmit beams,
  the combiners that maximise (7) and (8) (generalised Rayleigh quotients). With full-band
  sharing every UE's interference-plus-noise covariance is ``R_all`` minus its own
  desired term, so by Sherman-Morrison ``w_k ∝ R_all^{-1} h_k`` for all k. The received
  vectors ``x_j`` (columns of X) number only 2K, so ``R_all = sigma^2 I + X X^H`` is never
  formed: by the push-through identity ``R_all^{-1} X = X (sigma^2 I + X^H X)^{-1}``,
  one 2K x 2K solve on the Gram matrix gives every combiner (:func:`gram_max_sinr`,
  which also returns the resulting SINRs).
* :func:`beam_directions` returns unit-norm directions that decouple the two functions:
  f_k along H_k's dominant right singular vector with the target direction a_t(psi_k)
  projected out (its echo then never interferes in (8), where it enters only through
  ``a_t(psi_k)^H f_k``), and u_k along a_t(psi_k) with H_k's row space projected out
  (no sensing leakage into (7)).
"""

from __future__ import annotations

import contextlib

import numpy as np

from isac_gym.iscc.arrays import ula_inner
from isac_gym.iscc.scenario import Snapshot

_TINY = 1e-300
_RANK_RTOL = 1e-9  # singular values below this fraction of the largest count as zero
_GRAM_RTOL = 1e-14  # Gram eigenvalues (squared singular values) below this count as zero


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm (zero rows stay zero)."""
    x = np.asarray(x)
    if np.iscomplexobj(x):
        square = np.square(x.real) + np.square(x.imag)
    else:
        square = np.square(x)
    norm = np.sqrt(square.sum(axis=-1, keepdims=True))
    return x / np.maximum(norm, _TINY)


def gram_sinr(gram: np.ndarray, index: np.ndarray, noise, return_inverse: bool = False):
    """Max-SINR values (7)-(8) of the desired rows ``index`` from a Gram matrix.

    ``gram`` (B, J, J): ``x_i^H x_j`` of the received vectors (B = 1: one shared set,
    full-band sharing; B = K: one set per UE, orthogonal access); ``index`` (K,): row of
    UE k's desired vector (in set k when B = K); ``noise``: scalar or (B,). UE k's
    interference-plus-noise covariance is every other vector of its set plus ``noise I``.
    With ``R = noise I + X X^H`` (desired included) and ``Z = (noise I + X^H X)^{-1}``:

        gamma_k = d^H R_{-k}^{-1} d = q / (1 - q),  q = d^H R^{-1} d = 1 - noise Z_kk

    (Sherman-Morrison; push-through identity ``R^{-1} X = X Z``, so ``X^H R^{-1} X = X^H X
    Z = I - noise Z``), i.e. ``gamma_k = 1 / (noise Z_kk) - 1``. Returns (K,) SINRs, and
    ``Z`` too with ``return_inverse``.
    """
    B, J, _ = gram.shape
    noise = np.asarray(noise, dtype=float)
    A = gram + (noise.reshape(-1, 1, 1) if noise.ndim else noise) * np.eye(J)
    Z = np.linalg.inv(A)
    if B == 1:
        z = Z[0, index, index].real
    else:
        z = Z[np.arange(index.shape[0]), index, index].real
    sinr = 1.0 / np.maximum(noise * z, _TINY) - 1.0
    sinr = np.maximum(sinr, 0.0)
    return (sinr, Z) if return_inverse else sinr


def gram_max_sinr(received: np.ndarray, index: np.ndarray, noise):
    """Max-SINR combiners and their SINRs, eqs. (7)-(8), from the Gram matrix.

    ``received`` (B, J, M): rows ``x_j``; ``index`` and ``noise`` as in :func:`gram_sinr`.
    ``w_k ∝ R_{-k}^{-1} d_k ∝ R^{-1} d_k = X Z e_k`` (Sherman-Morrison, push-through).
    Returns ``(w, sinr)``: unit-norm combiners (K, M) and (K,) SINRs.
    """
    K = index.shape[0]
    gram = received.conj() @ np.swapaxes(received, 1, 2)  # (B, J, J): x_i^H x_j
    sinr, Z = gram_sinr(gram, index, noise, return_inverse=True)
    if received.shape[0] == 1:
        w = Z[0][:, index].T @ received[0]  # w_k = sum_j Z[j, k] x_j
    else:
        w = np.einsum("kj,kjm->km", Z[np.arange(K), :, index], received)
    return normalize_rows(w), sinr


def received_vectors(channel: np.ndarray, f: np.ndarray, u: np.ndarray, share=None):
    """Received sets ``[channel_j f_j, channel_j u_j]`` (B, J, M) of (7) / (8).

    Full band (``share`` None): one set of 2K rows (f rows first); orthogonal access:
    per UE its own two rows (K, 2, M).
    """
    x_f = (channel @ f[:, :, None])[:, :, 0]
    x_u = (channel @ u[:, :, None])[:, :, 0]
    if share is None:
        return np.concatenate([x_f, x_u])[None]
    return np.stack([x_f, x_u], axis=1)


def comm_combiners(
    snapshot: Snapshot, f: np.ndarray, u: np.ndarray, share: np.ndarray | None = None
) -> np.ndarray:
    """AP combiners w (K, M_a) maximising gamma_k^c of eq. (7) for beams f, u."""
    return comm_combiners_and_sinr(snapshot, f, u, share)[0]


def comm_combiners_and_sinr(snapshot: Snapshot, f, u, share=None):
    """:func:`comm_combiners` and the SINRs gamma_k^c (7) they achieve."""
    K = snapshot.K
    received = received_vectors(snapshot.H, f, u, share)
    index = np.arange(K) if share is None else np.zeros(K, dtype=int)
    noise = snapshot.noise if share is None else snapshot.noise * share
    return gram_max_sinr(received, index, noise)


def sensing_combiners(
    snapshot: Snapshot, f: np.ndarray, u: np.ndarray, share: np.ndarray | None = None
) -> np.ndarray:
    """UE sensing combiners w~ (K, M_ur) maximising gamma_k^s of eq. (8) for f, u."""
    return sensing_combiners_and_sinr(snapshot, f, u, share)[0]


def sensing_combiners_and_sinr(snapshot: Snapshot, f, u, share=None):
    """:func:`sensing_combiners` and the SINRs gamma_k^s (8) they achieve."""
    K = snapshot.K
    received = received_vectors(snapshot.H_sense, f, u, share)
    index = K + np.arange(K) if share is None else np.ones(K, dtype=int)
    noise = snapshot.noise if share is None else snapshot.noise * share
    return gram_max_sinr(received, index, noise)


def right_singular(H: np.ndarray, probe_columns: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Right singular vectors of the H_k: ``(V, keep)``, V (K, M_ut, r), keep (K, r) bool.

    Columns of V with ``keep`` true are (to round-off) an orthonormal basis of H_k's row
    space (conjugated), in decreasing order of singular value; the others are zero.
    Low-rank channels take :func:`_low_rank_factors`; the full SVD is the fallback.
    """
    factors = _low_rank_factors(H, probe_columns)
    if factors is not None:
        basis, s2, ritz = factors
        keep = s2 > _RANK_RTOL**2 * s2[:, :1]
        return (basis @ ritz) * keep[:, None, :], keep
    _, sv, vh = np.linalg.svd(H, full_matrices=False)
    keep = sv > _RANK_RTOL * sv[:, :1]
    return np.swapaxes(vh.conj(), 1, 2) * keep[:, None, :], keep


def _low_rank_factors(H: np.ndarray, probe_columns: int = 8):
    """``(B, s2, Y)`` with ``V = B Y``, or None when H_k is not provably of low rank.

    mmWave channels have low rank (LoS + a few paths): with a fixed generic probe P of
    ``probe_columns`` columns, ``X_k = H_k^H P`` spans the row space exactly when the
    rank is below ``probe_columns``. Then (no 64 x 64 factorisation): the eigenvectors
    of the small Gram ``X^H X = W L W^H`` with non-zero eigenvalues give an orthonormal
    basis ``B = X W L^{-1/2}`` of the row space (zero columns beyond the rank), and the
    eigenvectors ``y_i`` of ``(H B)^H (H B)``, eigenvalues ``s_i^2`` in decreasing
    order, the right singular vectors ``B y_i`` (Rayleigh-Ritz, exact since B spans the
    row space). The energy check ``||H_k||_F^2 = sum_i s_i^2`` (relative ``1e-10``)
    confirms that nothing of H_k was missed.
    """
    K, M_a, M_ut = H.shape
    columns = min(probe_columns, M_a, M_ut)
    if columns >= M_ut:
        return None
    X = (_probe(M_a, columns).conj().T @ H).conj().transpose(0, 2, 1)  # H^H P
    lam, W = np.linalg.eigh(X.conj().transpose(0, 2, 1) @ X)  # ascending
    kept = lam > _GRAM_RTOL * lam[:, -1:]
    if kept.sum(axis=1).max() >= columns:
        return None
    basis = X @ (W * (kept / np.sqrt(np.maximum(lam, _TINY)))[:, None, :])
    Y = H @ basis
    s2, ritz = np.linalg.eigh(Y.conj().transpose(0, 2, 1) @ Y)
    flat = H.reshape(K, -1).view(float)
    energy = np.einsum("ki,ki->k", flat, flat)  # ||H_k||_F^2
    if not (energy - s2.sum(axis=1) <= 1e-10 * energy).all():
        return None
    return basis, s2[:, ::-1], ritz[:, :, ::-1]


_PROBES: dict[tuple[int, int], np.ndarray] = {}


def _probe(rows: int, columns: int) -> np.ndarray:
    """A fixed generic (Gaussian, seeded) probe matrix, cached per shape."""
    key = (rows, columns)
    if key not in _PROBES:
        rng = np.random.default_rng(12345)
        _PROBES[key] = rng.standard_normal((rows, columns)) + 1j * rng.standard_normal(
            (rows, columns)
        )
    return _PROBES[key]


def beam_directions(snapshot: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm communication and sensing directions (K, M_ut) (see module docstring).

    From the path factors when the snapshot has them (:func:`directions_from_paths`),
    else from the dense channels (:func:`directions_from_channels`); both give the
    same directions up to round-off and a phase per UE, which no quantity of (7)-(8)
    depends on.
    """
    if snapshot.has_paths:
        return directions_from_paths(snapshot)
    return directions_from_channels(snapshot.H, snapshot.sense_tx)


def directions_from_channels(H: np.ndarray, sense_tx: np.ndarray):
    """:func:`beam_directions` of dense channels H (..., M_a, M_ut), a_t (..., M_ut)."""
    lead = H.shape[:-2]
    H = H.reshape(-1, *H.shape[-2:])
    factors = _low_rank_factors(H)
    if factors is None:
        basis, _ = right_singular(H)  # zero columns beyond the rank
        v = basis[:, :, :1]
    else:
        basis, _, ritz = factors
        v = basis @ ritz[:, :, :1]  # dominant right singular vector of H_k
    projection = basis.conj().transpose(0, 2, 1)
    return _decoupled(basis, projection, v, sense_tx.reshape(-1, sense_tx.shape[-1]), lead)


def directions_from_paths(snapshot) -> tuple[np.ndarray, np.ndarray]:
    """:func:`beam_directions` from the path factors ``H = sum_l c_l a_ap,l a_ue,l^H``.

    ``snapshot``: a ``Snapshot`` with ``has_paths``, or any object with its path fields
    and ``M_a`` (with leading axes, e.g. a batch of slots). H's row space (the
    complement of its null space) is spanned by the UE responses ``a_ue,l``: with ``X =
    [a_ue,l]``, ``B = X S`` is an orthonormal basis of it (:func:`_orthonormalising`).
    ``H B = A_ap diag(c) X^H B``, so the Gram ``(H B)^H (H B) = Z^H (A_ap^H A_ap) Z``,
    ``Z = diag(c) X^H B``, is (L+1) x (L+1): its dominant eigenvector y gives H's
    dominant right singular vector ``B y`` (Rayleigh-Ritz, exact as B spans the row
    space). Every Gram of steering vectors, and ``X^H a_t``, is a Dirichlet kernel
    (:func:`isac_gym.iscc.arrays.ula_inner`): only the final vectors are M long.
    """
    lead = snapshot.path_coeff.shape[:-1]
    paths = snapshot.path_coeff.shape[-1]
    coeff = snapshot.path_coeff.reshape(-1, paths)
    cos_ue = snapshot.path_cos_ue.reshape(-1, paths)
    cos_ap = snapshot.path_cos_ap.reshape(-1, paths)
    a_ue = snapshot.path_ue.reshape(-1, paths, snapshot.path_ue.shape[-1])  # rows a_ue,l
    M_ut = a_ue.shape[-1]
    gram_ue = ula_inner(M_ut, cos_ue[:, :, None], cos_ue[:, None, :])  # X^H X
    gram_ap = ula_inner(snapshot.M_a, cos_ap[:, :, None], cos_ap[:, None, :])  # A_ap^H A_ap
    scale = _orthonormalising(gram_ue)  # B = X S
    Z = coeff[:, :, None] * _small_matmul(gram_ue, scale)  # diag(c) X^H B
    _, ritz = np.linalg.eigh(_small_matmul(_small_matmul(_adjoint(Z), gram_ap), Z))
    v = _small_matmul(scale, ritz[:, :, -1:])[:, :, 0]  # H's dominant: X v
    a_t = snapshot.sense_tx.reshape(-1, M_ut) / np.sqrt(M_ut)  # unit norm
    x_h_a = ula_inner(M_ut, cos_ue, snapshot.sense_cos.reshape(-1, 1)) / np.sqrt(M_ut)
    # f = X v - (a_t^H X v) a_t, with a_t^H X v = sum_l conj(X^H a_t)_l v_l
    f_dir = _combine(a_ue, v) - np.sum(x_h_a.conj() * v, axis=1)[:, None] * a_t
    # u = a_t - B B^H a_t = a_t - X S S^H X^H a_t, then once more on the residual
    u_dir = a_t - _combine(a_ue, _project(scale, x_h_a))
    residual = np.einsum("nlm,nm->nl", a_ue, u_dir.conj()).conj()  # X^H u
    u_dir = u_dir - _combine(a_ue, _project(scale, residual))
    size = (*lead, M_ut)
    return normalize_rows(f_dir).reshape(size), normalize_rows(u_dir).reshape(size)


def _small_matmul(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Stacked products of tiny matrices, elementwise (numpy's matmul loops per matrix)."""
    return (left[..., :, :, None] * right[..., None, :, :]).sum(axis=-2)


def _adjoint(matrix: np.ndarray) -> np.ndarray:
    return np.swapaxes(matrix, -1, -2).conj()


def _project(scale: np.ndarray, x_h_y: np.ndarray) -> np.ndarray:
    """Coefficients w of ``B B^H y = X w`` from ``X^H y``: ``w = S S^H X^H y``."""
    return _small_matmul(scale, _small_matmul(_adjoint(scale), x_h_y[:, :, None]))[:, :, 0]


def _combine(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_l weights_l rows_l``: (N, L, M) rows, (N, L) weights -> (N, M)."""
    return np.einsum("nlm,nl->nm", rows, weights)


def _orthonormalising(gram: np.ndarray) -> np.ndarray:
    """S with ``X S`` an orthonormal basis of span(X), from the Gram ``X^H X`` (N, P, P).

    Cholesky ``X^H X = L L^H`` gives ``S = L^{-H}`` (the thin QR factor; near-collinear
    paths keep their tiny directions, so H's row space is removed from u to round-off).
    Where a Gram is singular (two identical paths), the eigenvectors with non-zero
    eigenvalues, ``S = W L^{-1/2}`` (zero columns beyond the rank), instead.
    """
    with contextlib.suppress(np.linalg.LinAlgError):
        return np.linalg.inv(np.linalg.cholesky(gram)).conj().transpose(0, 2, 1)
    lam, W = np.linalg.eigh(gram)  # ascending
    kept = lam > _GRAM_RTOL * lam[:, -1:]
    return W * (kept / np.sqrt(np.maximum(lam, _TINY)))[:, None, :]


def _decoupled(basis, projection, v, sense_tx: np.ndarray, lead: tuple):
    """f along v with a_t projected out; u along a_t with the row space ``basis`` out.

    ``projection``: ``basis^H``; v (N, M, 1); a_t (N, M). Returns (f_dir, u_dir), each
    shaped ``lead + (M,)``.
    """
    a_t = normalize_rows(sense_tx)
    f_dir = v[:, :, 0] - np.einsum("nm,nm->n", a_t.conj(), v[:, :, 0])[:, None] * a_t
    a_t = a_t[:, :, None]
    u_dir = a_t - basis @ (projection @ a_t)
    u_dir = u_dir - basis @ (projection @ u_dir)  # second pass: round-off
    size = a_t.shape[1]
    f_dir = normalize_rows(f_dir).reshape(*lead, size)
    return f_dir, normalize_rows(u_dir[:, :, 0]).reshape(*lead, size)


def channel_product(snapshot: Snapshot, x: np.ndarray) -> np.ndarray:
    """``H_k x_k`` (K, M_a, n) for x (K, M_ut, n): from the path factors when known."""
    if snapshot.has_paths:
        return path_product(snapshot.path_coeff, snapshot.path_ap, snapshot.path_ue, x)
    return snapshot.H @ x


def sensing_product(snapshot: Snapshot, x: np.ndarray) -> np.ndarray:
    """``H~_k x_k`` (K, M_ur, n) for x (K, M_ut, n): rank one (5) when known."""
    if snapshot.has_paths:
        return rank_one_product(snapshot.rho, snapshot.sense_rx, snapshot.sense_tx, x)
    return snapshot.H_sense @ x


def path_product(path_coeff, path_ap, path_ue, x: np.ndarray) -> np.ndarray:
    """``H x = A_ap (c * (A_ue^H x))`` with ``H = sum_l c_l a_ap,l a_ue,l^H`` (3).

    Shapes: c (..., P), a_ap (..., P, M_a), a_ue (..., P, M_ut), x (..., M_ut, n).
    """
    along_paths = path_coeff[..., None] * (path_ue.conj() @ x)  # (..., P, n)
    return np.swapaxes(path_ap, -1, -2) @ along_paths


def rank_one_product(rho, sense_rx, sense_tx, x: np.ndarray) -> np.ndarray:
    """``H~ x = rho a_r (a_t^H x)`` of eq. (5); shapes (...,), (..., M_ur), (..., M_ut)."""
    along = rho[..., None, None] * (sense_tx.conj()[..., None, :] @ x)  # (..., 1, n)
    return sense_rx[..., :, None] * along
