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

import numpy as np

from isac_gym.iscc.scenario import Snapshot

_TINY = 1e-300
_RANK_RTOL = 1e-9  # singular values below this fraction of the largest count as zero
_GRAM_RTOL = 1e-14  # Gram eigenvalues (squared singular values) below this count as zero


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm (zero rows stay zero)."""
    x = np.asarray(x)
    square = (x * x.conj()).real if np.iscomplexobj(x) else x * x
    norm = np.sqrt(np.sum(square, axis=-1, keepdims=True))
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

    mmWave channels have low rank (LoS + a few paths): with a fixed generic probe P of
    ``probe_columns`` columns, ``X_k = H_k^H P`` spans the row space exactly when the
    rank is below ``probe_columns``. Then (no 64 x 64 factorisation): the eigenvectors
    of the small Gram ``X^H X = W L W^H`` with non-zero eigenvalues give the basis
    ``B = X W L^{-1/2}``, and the eigenvectors ``y_i`` of ``(H B)^H (H B)`` the right
    singular vectors ``B y_i`` (Rayleigh-Ritz, exact since B spans the row space). A
    random test vector checks that nothing of H_k was missed; the full SVD is the
    fallback.
    """
    K, M_a, M_ut = H.shape
    columns = min(probe_columns, M_a, M_ut)
    if columns < M_ut:
        X = np.swapaxes((_probe(M_a, columns).T.conj() @ H).conj(), 1, 2)  # H^H P
        lam, W = np.linalg.eigh(np.swapaxes(X.conj(), 1, 2) @ X)  # ascending
        kept = lam > _GRAM_RTOL * lam[:, -1:]
        if np.all(np.sum(kept, axis=1) < columns):
            scale = np.where(kept, 1.0 / np.sqrt(np.where(kept, lam, 1.0)), 0.0)
            B = X @ (W * scale[:, None, :])  # (K, M_ut, c), zero columns beyond the rank
            Y = H @ B
            s2, Vs = np.linalg.eigh(np.swapaxes(Y.conj(), 1, 2) @ Y)
            V = B @ Vs[:, :, ::-1]  # decreasing singular values
            s2 = s2[:, ::-1]
            keep = s2 > _RANK_RTOL**2 * s2[:, :1]
            V = V * keep[:, None, :]
            # Nothing of H_k outside span(V): H (t - V V^H t) = 0 for a generic t.
            t = _probe(M_ut, 1)  # (M_ut, 1)
            Vh = np.swapaxes(V.conj(), 1, 2)
            rest = t - V @ (Vh @ t)
            rest = rest - V @ (Vh @ rest)  # second pass: round-off
            Ht, miss = H @ t, H @ rest  # (K, M_a, 1)
            norm2 = np.sum((Ht * Ht.conj()).real, axis=(1, 2))
            if np.all(np.sum((miss * miss.conj()).real, axis=(1, 2)) <= 1e-18 * norm2):
                return V, keep
    _, sv, vh = np.linalg.svd(H, full_matrices=False)
    keep = sv > _RANK_RTOL * sv[:, :1]
    return np.swapaxes(vh.conj(), 1, 2) * keep[:, None, :], keep


def _row_space(H: np.ndarray, probe_columns: int = 8) -> np.ndarray:
    """Orthonormal bases (K, M_ut, r) of the row spaces (conjugated) of the H_k.

    Columns beyond H_k's rank are zero (see :func:`right_singular`).
    """
    return right_singular(H, probe_columns)[0]


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
    """Unit-norm communication and sensing directions (K, M_ut) (see module docstring)."""
    V, _ = right_singular(snapshot.H)  # zero columns beyond the rank
    v = V[:, :, 0]  # dominant right singular vector of H_k
    a_t = normalize_rows(snapshot.sense_tx)
    f_dir = v - np.sum(a_t.conj() * v, axis=1, keepdims=True) * a_t
    Vh = np.swapaxes(V.conj(), 1, 2)
    u_dir = a_t - (V @ (Vh @ a_t[:, :, None]))[:, :, 0]
    u_dir = u_dir - (V @ (Vh @ u_dir[:, :, None]))[:, :, 0]  # second pass: round-off
    return normalize_rows(f_dir), normalize_rows(u_dir)
