"""Beam and combiner building blocks for eqs. (7)-(8): pure functions of a snapshot.

* :func:`comm_combiners` / :func:`sensing_combiners` return, for given transmit beams,
  the combiners that maximise (7) and (8) (generalised Rayleigh quotients). With full-band
  sharing every UE's interference-plus-noise covariance is ``R_all`` minus its own
  desired term, so by Sherman-Morrison ``w_k ∝ R_all^{-1} h_k`` for all k from one solve.
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


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit norm (zero rows stay zero)."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, _TINY)


def _max_sinr_combiners(
    desired: np.ndarray, interference: np.ndarray, noise: float, share: np.ndarray | None
) -> np.ndarray:
    """Unit-norm ``w_k ∝ R_k^{-1} desired_k``.

    ``desired``: (K, M) received desired vectors; ``interference``: (K, J, M) every
    received vector that may interfere (including the desired ones). Without ``share``,
    R_k = sum of all except the desired term + noise I (one solve, Sherman-Morrison);
    with ``share`` (orthogonal access) only UE k's own terms remain, noise scaled.
    """
    K, M = desired.shape
    eye = np.eye(M)
    if share is None:
        R = np.einsum("jm,jn->mn", interference.reshape(-1, M), interference.reshape(-1, M).conj())
        w = np.linalg.solve(R + noise * eye, desired.T).T
    else:
        R = np.einsum("kjm,kjn->kmn", interference, interference.conj())
        R = R - np.einsum("km,kn->kmn", desired, desired.conj())
        R = R + noise * share[:, None, None] * eye
        w = np.linalg.solve(R, desired[..., None])[..., 0]
    return normalize_rows(w)


def comm_combiners(
    snapshot: Snapshot, f: np.ndarray, u: np.ndarray, share: np.ndarray | None = None
) -> np.ndarray:
    """AP combiners w (K, M_a) maximising gamma_k^c of eq. (7) for beams f, u."""
    h_f = np.einsum("kab,kb->ka", snapshot.H, f)
    h_u = np.einsum("kab,kb->ka", snapshot.H, u)
    if share is None:
        received = np.concatenate([h_f, h_u])[None]
    else:  # orthogonal access: only the UE's own two signals
        received = np.stack([h_f, h_u], axis=1)
    return _max_sinr_combiners(h_f, received, snapshot.noise, share)


def sensing_combiners(
    snapshot: Snapshot, f: np.ndarray, u: np.ndarray, share: np.ndarray | None = None
) -> np.ndarray:
    """UE sensing combiners w~ (K, M_ur) maximising gamma_k^s of eq. (8) for f, u."""
    e_f = np.einsum("krb,kb->kr", snapshot.H_sense, f)
    e_u = np.einsum("krb,kb->kr", snapshot.H_sense, u)
    if share is None:
        received = np.concatenate([e_f, e_u])[None]
    else:
        received = np.stack([e_f, e_u], axis=1)
    return _max_sinr_combiners(e_u, received, snapshot.noise, share)


def _row_space(H: np.ndarray, probe_columns: int = 16) -> np.ndarray:
    """Orthonormal bases (K, M_ut, r) of the row spaces (conjugated) of the H_k.

    mmWave channels have low rank (LoS + a few paths), so a fixed probe of
    ``probe_columns`` directions spans the row space exactly; the full SVD is the
    fallback when the probe misses part of H_k.
    """
    K, M_a, M_ut = H.shape
    probe = _probe(M_a, min(probe_columns, M_a, M_ut))
    basis, _ = np.linalg.qr(np.swapaxes(H.conj(), 1, 2) @ probe)  # (K, M_ut, r)
    residual = H - (H @ basis) @ np.swapaxes(basis.conj(), 1, 2)
    if np.all(np.linalg.norm(residual, axis=(1, 2)) <= 1e-9 * np.linalg.norm(H, axis=(1, 2))):
        return basis
    _, sv, vh = np.linalg.svd(H, full_matrices=False)
    keep = sv > 1e-9 * sv[:, :1]
    return np.swapaxes(vh.conj(), 1, 2) * keep[:, None, :]


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
    H = snapshot.H
    basis = _row_space(H)  # (K, M_ut, r)
    # Dominant right singular vector of H_k from the small matrix H_k basis_k.
    _, _, vh = np.linalg.svd(H @ basis, full_matrices=False)
    v = np.einsum("kmr,kr->km", basis, vh[:, 0, :].conj())
    a_t = normalize_rows(snapshot.sense_tx)
    f_dir = v - np.sum(a_t.conj() * v, axis=1, keepdims=True) * a_t
    u_dir = a_t - np.einsum("kmr,kr->km", basis, np.einsum("kmr,km->kr", basis.conj(), a_t))
    return normalize_rows(f_dir), normalize_rows(u_dir)
