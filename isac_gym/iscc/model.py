"""The true (non-linearised) ISCC model of Dong et al. (2026), eqs. (1)-(17), (58).

:func:`evaluate` is the single judge of every solver: it takes a ``Snapshot``, an
``Allocation`` and the weights beta_k, and returns SINRs (7)-(8), rates (9), latencies
(10)-(12), energies (13)-(16), the weighted cost (17a) and per-UE satisfaction of
(17b)-(17g) (the success indicator I_k of the ASR, eq. (58)). :func:`evaluate_batch` is
the same model over B slots at once (one set of (B, K) arrays, the same kernel).

Conventions that the paper leaves implicit:

* A term ``x / y`` with ``x = 0`` is 0 (nothing to send or compute takes no time and no
  energy); with ``x > 0`` and ``y = 0`` it is ``inf``. Hence ``alpha = 0`` gives
  ``t_com = t_proc = t_off = 0`` and ``E_isac = 0`` as in (13). ``evaluate`` never
  returns NaN.
* Constraints are checked with relative tolerance ``FEASIBILITY_RTOL`` (1e-6) so that
  an allocation sitting exactly on a bound (a solver's typical optimum) is feasible.
* The AP capacity (17e) is one constraint for all UEs; when it is violated every UE
  that uses the AP (``f_ap > 0``) is marked infeasible.
* An optional ``bandwidth_share`` s_k turns the access orthogonal (the OFDMA baseline):
  UE k gets ``s_k B`` Hz, sees no signal of another UE in (7) and (8), and its noise
  power scales with ``s_k``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from isac_gym.iscc.scenario import Snapshot

#: Relative tolerance of every constraint check (documented in the module docstring).
FEASIBILITY_RTOL = 1e-6
#: Absolute slack on the energy budget [J] (so that a zero budget with zero use passes).
ENERGY_ATOL = 1e-12

CONSTRAINTS = ("sensing", "latency", "cpu_ue", "cpu_ap", "alpha", "power", "energy_budget")


@dataclass(frozen=True, eq=False)
class Allocation:
    """Decision variables of (P1): offloading, CPU frequencies, beams and combiners.

    Shapes: ``alpha, f_u, f_ap`` (K,); ``f, u`` (K, M_ut) transmit beams (rows are
    f_k, u_k, so F_k = f_k f_k^H); ``w`` (K, M_a) AP combiners; ``w_tilde`` (K, M_ur)
    UE sensing combiners; ``bandwidth_share`` (K,) or None (full-band sharing).
    """

    alpha: np.ndarray
    f_u: np.ndarray
    f_ap: np.ndarray
    f: np.ndarray
    u: np.ndarray
    w: np.ndarray
    w_tilde: np.ndarray
    bandwidth_share: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("alpha", "f_u", "f_ap", "bandwidth_share"):
            value = getattr(self, name)
            if value is not None and not _is_array(value, 1, np.float64):
                object.__setattr__(self, name, np.atleast_1d(np.asarray(value, dtype=float)))
        for name in ("f", "u", "w", "w_tilde"):
            value = getattr(self, name)
            if not _is_array(value, 2, np.complex128):
                object.__setattr__(self, name, np.atleast_2d(np.asarray(value, complex)))

    @property
    def power(self) -> np.ndarray:
        """P_k = Tr(F_k + R_k^0) = ||f_k||^2 + ||u_k||^2, eq. (2)."""
        return _norm2(self.f) + _norm2(self.u)

    def replace(self, **changes) -> Allocation:
        return dataclasses.replace(self, **changes)

    def check_shapes(self, snapshot: Snapshot) -> None:
        """Raise ``ValueError`` naming the first field whose shape or values are wrong."""
        K = snapshot.K
        expected = {
            "alpha": (K,),
            "f_u": (K,),
            "f_ap": (K,),
            "f": (K, snapshot.M_ut),
            "u": (K, snapshot.M_ut),
            "w": (K, snapshot.M_a),
            "w_tilde": (K, snapshot.M_ur),
        }
        if self.bandwidth_share is not None:
            expected["bandwidth_share"] = (K,)
        for name, shape in expected.items():
            value = getattr(self, name)
            if value.shape != shape:
                raise ValueError(f"Allocation.{name} must have shape {shape}, got {value.shape}")
            # A finite sum proves every entry finite (the elementwise test is the fallback).
            if not (np.isfinite(value.sum()) or np.isfinite(value).all()):
                raise ValueError(f"Allocation.{name} contains NaN or inf")
        if self.bandwidth_share is not None and (self.bandwidth_share <= 0).any():
            raise ValueError("Allocation.bandwidth_share must be > 0 for every UE")


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Every quantity of the true model for one allocation; per-UE arrays are (K,)."""

    sinr_c: np.ndarray  #: communication SINR gamma_k^c, eq. (7)
    sinr_s: np.ndarray  #: sensing SINR gamma_k^s, eq. (8)
    rate: np.ndarray  #: R_k [bit/s], eq. (9)
    t_local: np.ndarray  #: eq. (10) [s]
    t_com: np.ndarray  #: alpha_k Q_k / R_k, eq. (11) [s]
    t_proc: np.ndarray  #: varpi_k alpha_k Q_k / f_k^ap, eq. (11) [s]
    t_off: np.ndarray  #: t_com + t_proc, eq. (11) [s]
    latency: np.ndarray  #: T_k = max(t_local, t_off), eq. (12) [s]
    power: np.ndarray  #: P_k, eq. (2) [W]
    energy_isac: np.ndarray  #: eq. (13) [J]
    energy_local: np.ndarray  #: eq. (14) [J]
    energy_ap: np.ndarray  #: eq. (15) [J]
    energy_ue: np.ndarray  #: eq. (16) [J]
    beta: np.ndarray  #: the weights the cost was computed with
    cost: float  #: sum_k E_k^u + beta_k E_k^ap, eq. (17a) [J]
    checks: dict[str, np.ndarray]  #: constraint name -> (K,) bool, see CONSTRAINTS
    feasible: np.ndarray  #: all checks hold: the indicator I_k of eq. (58)

    @property
    def success_rate(self) -> float:
        """Fraction of UEs that satisfy every constraint (ASR of one trial, eq. (58))."""
        return float(np.mean(self.feasible))

    def cost_of(self, ues) -> float:
        """The terms of (17a) of the UEs ``ues`` (a mask or indices): sum E^u + beta E^ap.

        Comparing solutions on the UEs both serve: an unserved UE's cost is a best effort.
        """
        return float((self.energy_ue + self.beta * self.energy_ap)[ues].sum())

    def violations(self) -> dict[int, list[str]]:
        """UE index -> names of the constraints it violates (only failing UEs)."""
        failing = {}
        for k in np.flatnonzero(~self.feasible):
            failing[int(k)] = [name for name in CONSTRAINTS if not self.checks[name][k]]
        return failing


def as_beta(beta, K: int) -> np.ndarray:
    """Validate beta (scalar or (K,), finite, > 0) and return it as a new (K,) array."""
    array = np.asarray(beta, dtype=float)
    if array.shape == (K,):
        array = array.copy()
    elif array.ndim == 0:
        array = np.full(K, array)
    else:
        raise ValueError(f"beta must be a scalar or have shape ({K},), got shape {array.shape}")
    if not (array.min() > 0 and array.max() < np.inf):  # also false for NaN
        raise ValueError(f"beta must be finite and > 0, got {beta!r}")
    return array


def _is_array(value, ndim: int, dtype) -> bool:
    return type(value) is np.ndarray and value.ndim == ndim and value.dtype == dtype


def _norm2(x: np.ndarray) -> np.ndarray:
    """Squared norms of the rows of a complex (..., K, M) array."""
    return (x * x.conj()).real.sum(axis=-1)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator`` with 0/y = 0 and x/0 = inf for x > 0 (no NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(numerator / denominator, dtype=float)
    out[denominator <= 0] = np.inf
    out[numerator <= 0] = 0.0
    return out


def sinr_terms(snapshot: Snapshot, allocation: Allocation):
    """Signal and interference-plus-noise powers of (7) and (8).

    Returns ``(signal_c, denominator_c, signal_s, denominator_s)``, each (K,). With
    ``bandwidth_share`` set (orthogonal access) the cross-UE terms vanish and the noise
    is scaled by the share.
    """
    beams = np.stack((allocation.f, allocation.u), axis=2)  # (K, M_ut, 2): f_j, u_j
    share = allocation.bandwidth_share
    return _sinr_parts(
        received_powers(allocation.w, snapshot.H @ beams),
        received_powers(allocation.w_tilde, snapshot.H_sense @ beams),
        snapshot.noise * _norm2(allocation.w),
        snapshot.noise * _norm2(allocation.w_tilde),
        1.0 if share is None else share,
        orthogonal=share is not None,
    )


def received_powers(combiners: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """``[..., k, j, 0 / 1] = |c_k^H channel_j f_j / u_j|^2``, the terms of (7) / (8).

    ``combiners`` (..., K, M); ``outputs`` (..., K, M, 2): ``channel_j [f_j, u_j]``.
    """
    *lead, K, M, _ = outputs.shape
    stacked = np.swapaxes(outputs, -3, -2).reshape(*lead, M, 2 * K)  # columns (j, 0 / 1)
    y = combiners.conj() @ stacked
    return (y * y.conj()).real.reshape(*lead, K, K, 2)


def _sinr_parts(comm, sense, noise_c, noise_s, share, orthogonal):
    """Signals and denominators of (7)-(8) from :func:`received_powers` (..., K, K, 2).

    ``noise_c, noise_s``: (..., K) noise powers sigma^2 ||w_k||^2; ``share``: (..., K)
    bandwidth shares (1 where the band is shared); ``orthogonal``: bool, broadcastable
    against (..., K), true where the access is orthogonal (OFDMA).
    """
    ue = np.arange(comm.shape[-2])
    signal_c = comm[..., ue, ue, 0]
    signal_s = sense[..., ue, ue, 1]
    # (7): sensing leakage of all UEs + communication of the others + noise
    denominator_c = comm.sum(axis=(-2, -1)) - signal_c + noise_c
    # (8): communication echoes of all UEs through H~_j + other UEs' sensing + noise
    denominator_s = sense.sum(axis=(-2, -1)) - signal_s + noise_s
    if np.any(orthogonal):  # own leakage / own echo + the share of the noise only
        denominator_c = np.where(orthogonal, comm[..., ue, ue, 1] + share * noise_c, denominator_c)
        denominator_s = np.where(orthogonal, sense[..., ue, ue, 0] + share * noise_s, denominator_s)
    return signal_c, denominator_c, signal_s, denominator_s


def sensing_met(snapshot: Snapshot, sinr_s: np.ndarray) -> np.ndarray:
    """(17b) per UE, gamma_k^s >= gamma_th, with the tolerance of every check.

    ``snapshot``: anything with ``gamma_s`` broadcastable against ``sinr_s``.
    """
    return sinr_s * (1.0 + FEASIBILITY_RTOL) >= snapshot.gamma_s


def constraint_checks(
    limits, *, sinr_s, latency, alpha, f_u, f_ap, power, energy_ue
) -> dict[str, np.ndarray]:
    """Per-UE checks of (17b)-(17g) and the energy budget, named as in ``CONSTRAINTS``.

    The one definition of the constraints (``evaluate`` and SCA-ADMM's candidate ranking
    use it), with relative tolerance ``FEASIBILITY_RTOL``. The quantities are arrays
    ``(..., K)``: one slot, or a batch of slots on leading axes. ``limits`` holds the
    bounds as a ``Snapshot`` names them (``gamma_s, tau, C_u, C_ap, P_max,
    energy_budget``), each broadcastable against the quantities (per-slot scalars of a
    batch with a trailing axis of length 1). (17e) is one constraint per slot: when the
    AP capacity is exceeded, every UE that uses the AP (``f_ap > 0``) fails it.
    """
    tol = 1.0 + FEASIBILITY_RTOL
    uses_ap = f_ap > 0
    ap_ok = f_ap.sum(axis=-1, keepdims=True) <= limits.C_ap * tol
    return {
        "sensing": sensing_met(limits, sinr_s),  # (17b)
        "latency": latency <= limits.tau * tol,  # (17c)
        "cpu_ue": (f_u >= 0) & (f_u <= limits.C_u * tol),  # (17d)
        "cpu_ap": (f_ap >= 0) & (ap_ok | ~uses_ap),  # (17e)
        "alpha": (alpha >= 0) & (alpha <= 1),  # (17f)
        "power": power <= limits.P_max * tol,  # (17g)
        "energy_budget": energy_ue <= limits.energy_budget * tol + ENERGY_ATOL,
    }


def evaluate(snapshot: Snapshot, allocation: Allocation, beta) -> Evaluation:
    """Evaluate an allocation on the true model, eqs. (2), (7)-(17), (58)."""
    allocation.check_shapes(snapshot)
    beta = as_beta(beta, snapshot.K)
    share = allocation.bandwidth_share
    fields = _true_model(
        snapshot,
        allocation,
        *sinr_terms(snapshot, allocation),
        share=1.0 if share is None else share,
        beta=beta,
    )
    cost = float(fields.pop("cost"))
    return Evaluation(**fields, cost=cost)


def _true_model(
    limits, decisions, signal_c, denominator_c, signal_s, denominator_s, *, share, beta
):
    """Every ``Evaluation`` field (cost unconverted) from the powers of (7)-(8).

    Eqs. (2), (9)-(17), (58) on arrays (..., K): one slot, or a batch of slots on
    leading axes (then ``limits`` holds the snapshot fields stacked, (B, K) per UE and
    (B, 1) per slot, and ``decisions`` the allocation fields stacked).
    """
    alpha, f_u, f_ap = decisions.alpha, decisions.f_u, decisions.f_ap
    sinr_c = _ratio(signal_c, denominator_c)
    sinr_s = _ratio(signal_s, denominator_s)
    rate = share * limits.B * np.log2(1.0 + sinr_c)  # (9)

    terms = slot_terms(
        limits, rate=rate, sinr_s=sinr_s, alpha=alpha, f_u=f_u, f_ap=f_ap,
        power=decisions.power, beta=beta,
    )  # fmt: skip
    return dict(sinr_c=sinr_c, sinr_s=sinr_s, rate=rate, beta=beta, **terms)


def slot_terms(limits, *, rate, sinr_s, alpha, f_u, f_ap, power, beta) -> dict:
    """Eqs. (10)-(17a) and the verdicts (17b)-(17g), (58) from the rates (9).

    The one place these formulas live: :func:`evaluate` (``_true_model``) and
    SCA-ADMM's candidate ranking call it with their SINRs. ``limits``: the snapshot (or
    an object with its fields ``Q, varpi, xi_u, xi_ap`` and those of
    :func:`constraint_checks`); arrays (..., K).
    """
    Q, varpi = limits.Q, limits.varpi
    offloaded = np.maximum(alpha, 0.0) * Q
    local = np.maximum(1.0 - alpha, 0.0) * Q
    t_local = _ratio(varpi * local, f_u)  # (10)
    t_com = _ratio(offloaded, rate)  # (11)
    t_proc = _ratio(varpi * offloaded, f_ap)  # (11)
    t_off = t_com + t_proc
    latency = np.maximum(t_local, t_off)  # (12)
    with np.errstate(invalid="ignore"):
        energy_isac = power * t_com  # (13)
    energy_isac[t_com == np.inf] = np.inf  # the data cannot be sent (also with P_k = 0)
    energy_local = limits.xi_u * f_u**2 * varpi * local  # (14)
    energy_ap = limits.xi_ap * f_ap**2 * varpi * offloaded  # (15)
    energy_ue = energy_isac + energy_local  # (16)
    cost = (energy_ue + beta * energy_ap).sum(axis=-1)  # (17a)
    checks = constraint_checks(
        limits,
        sinr_s=sinr_s,
        latency=latency,
        alpha=alpha,
        f_u=f_u,
        f_ap=f_ap,
        power=power,
        energy_ue=energy_ue,
    )
    return dict(
        t_local=t_local,
        t_com=t_com,
        t_proc=t_proc,
        t_off=t_off,
        latency=latency,
        power=power,
        energy_isac=energy_isac,
        energy_local=energy_local,
        energy_ap=energy_ap,
        energy_ue=energy_ue,
        cost=cost,
        checks=checks,
        feasible=np.logical_and.reduce(list(checks.values())),  # I_k of (58)
    )


def evaluate_batch(snapshots, allocations, betas) -> list[Evaluation]:
    """:func:`evaluate` of B slots at once: ``[evaluate(s, a, b) for ...]``, vectorised.

    ``snapshots``: a sequence of ``Snapshot`` with equal K and array sizes;
    ``allocations``: one ``Allocation`` per slot; ``betas``: one beta per slot (a scalar
    or (K,) each, or a (B, K) array). Bad input raises the ValueError of ``evaluate``
    (prefixed with the slot) or one naming the mismatched length or size.

    The same true model as ``evaluate``, eqs. (2), (7)-(17), (58), with every formula on
    (B, K) arrays (the one kernel, :func:`_true_model`, and the checks (17b)-(17g) of
    :func:`constraint_checks`). The channel outputs ``H_j [f_j, u_j]`` and ``H~_j [f_j,
    u_j]`` of (7)-(8) come, for slots whose snapshot has the path factors
    (``Snapshot.has_paths``), from the factors of (3) and the rank-one (5):
    ``H x = A_ap (c * (A_ue^H x))``, ``H~ x = rho a_r (a_t^H x)``, which are the dense
    products to round-off (relative ~1e-15; these snapshots' dense H and H~ are built
    from the same factors); for the others (hand-built channels, CSI-error estimates)
    from the dense H and H~ as in ``evaluate``. Nothing here uses a solver's algebra
    (beam directions, Gram matrices, closed-form SINRs): only the allocation's beams and
    combiners enter.
    """
    snapshots, allocations = list(snapshots), list(allocations)
    limits = _stacked_snapshots(snapshots)
    decisions = _stacked_allocations(snapshots, allocations)
    betas = _batch_betas(betas, len(snapshots), limits.K)
    beams = np.stack((decisions.f, decisions.u), axis=-1)  # (B, K, M_ut, 2)
    comm, sense = _channel_outputs(snapshots, beams)
    parts = _sinr_parts(
        received_powers(decisions.w, comm),
        received_powers(decisions.w_tilde, sense),
        limits.noise * _norm2(decisions.w),
        limits.noise * _norm2(decisions.w_tilde),
        decisions.share,
        orthogonal=decisions.orthogonal,
    )
    fields = _true_model(limits, decisions, *parts, share=decisions.share, beta=betas)
    checks, costs = fields.pop("checks"), fields.pop("cost")
    return [
        Evaluation(
            **{name: value[slot] for name, value in fields.items()},
            cost=float(costs[slot]),
            checks={name: value[slot] for name, value in checks.items()},
        )
        for slot in range(len(snapshots))
    ]


#: Snapshot fields the true model reads: per slot (stacked (B, 1)) and per UE ((B, K)).
_SLOT_LIMITS = ("B", "noise", "P_max", "C_ap", "xi_ap", "gamma_s")
_UE_LIMITS = ("Q", "tau", "C_u", "xi_u", "varpi", "energy_budget")
_DECISIONS = ("alpha", "f_u", "f_ap", "f", "u", "w", "w_tilde")


def _stacked_snapshots(snapshots: list) -> SimpleNamespace:
    """The limits of B snapshots (equal K and array sizes, else ValueError), stacked."""
    if not snapshots or not all(isinstance(s, Snapshot) for s in snapshots):
        raise ValueError("snapshots must be a non-empty sequence of Snapshot")
    sizes = [(s.K, s.M_a, s.M_ut, s.M_ur) for s in snapshots]
    for slot, size in enumerate(sizes):
        if size != sizes[0]:
            raise ValueError(
                f"snapshots must have equal K and array sizes (K, M_a, M_ut, M_ur): "
                f"snapshot 0 has {sizes[0]}, snapshot {slot} has {size}"
            )
    limits = SimpleNamespace(K=sizes[0][0])
    for name in _SLOT_LIMITS:
        setattr(limits, name, np.array([[getattr(s, name)] for s in snapshots], dtype=float))
    for name in _UE_LIMITS:
        setattr(limits, name, np.array([getattr(s, name) for s in snapshots]))
    return limits


def _stacked_allocations(snapshots: list, allocations: list) -> SimpleNamespace:
    """The allocations' fields stacked (B, K, ...), checked as ``check_shapes`` does."""
    if len(allocations) != len(snapshots):
        raise ValueError(
            f"allocations must be one per snapshot ({len(snapshots)}), got {len(allocations)}"
        )
    first = snapshots[0]
    size, K = len(snapshots), first.K
    expected = {"f": (first.M_ut,), "u": (first.M_ut,), "w": (first.M_a,)}
    expected["w_tilde"] = (first.M_ur,)
    decisions = SimpleNamespace()
    valid = True
    for name in _DECISIONS:
        rows = [getattr(a, name) if isinstance(a, Allocation) else None for a in allocations]
        shapes = {getattr(row, "shape", None) for row in rows}
        valid = valid and shapes == {(K, *expected.get(name, ()))}
        if not valid:
            break
        stacked = np.array(rows)
        valid = bool(np.isfinite(stacked.sum()) or np.isfinite(stacked).all())
        setattr(decisions, name, stacked)
    shares = [a.bandwidth_share if isinstance(a, Allocation) else None for a in allocations]
    orthogonal = np.array([share is not None for share in shares])
    if valid and orthogonal.any():
        valid = {shares[slot].shape for slot in np.flatnonzero(orthogonal)} == {(K,)}
        decisions.share = np.stack([np.ones(K) if s is None else s for s in shares])
        valid = valid and bool((decisions.share > 0).all())
    if not valid:
        _raise_first_invalid(snapshots, allocations)
    if not orthogonal.any():
        decisions.share = np.ones((size, K))
    decisions.orthogonal = orthogonal[:, None]
    decisions.power = _norm2(decisions.f) + _norm2(decisions.u)  # (2)
    return decisions


def _raise_first_invalid(snapshots: list, allocations: list):
    """The ValueError of ``Allocation.check_shapes`` of the first bad slot."""
    for slot, (snapshot, allocation) in enumerate(zip(snapshots, allocations, strict=True)):
        if not isinstance(allocation, Allocation):
            raise ValueError(
                f"allocations[{slot}] must be an Allocation, got {type(allocation).__name__}"
            )
        try:
            allocation.check_shapes(snapshot)
        except ValueError as error:
            raise ValueError(f"allocations[{slot}]: {error}") from None
    raise AssertionError("no invalid allocation found")  # unreachable


def _batch_betas(betas, size: int, K: int) -> np.ndarray:
    """One validated beta row per slot, (B, K), from a (B, K) array or B scalars / rows."""
    if isinstance(betas, np.ndarray) and betas.shape == (size, K) and betas.dtype == float:
        if betas.min() > 0 and betas.max() < np.inf:  # also false for NaN
            return betas.copy()
    try:
        count = len(betas)
    except TypeError:  # a scalar
        count = None
    if count != size:
        raise ValueError(f"betas must be one beta per slot ({size}), got {betas!r}")
    rows = []
    for slot, beta in enumerate(betas):
        try:
            rows.append(as_beta(beta, K))
        except ValueError as error:
            raise ValueError(f"betas[{slot}]: {error}") from None
    return np.stack(rows)


def _channel_outputs(snapshots: list, beams: np.ndarray):
    """``H_k [f_k, u_k]`` (B, K, M_a, 2) and ``H~_k [f_k, u_k]`` (B, K, M_ur, 2).

    Slots with path factors, grouped by path count: ``A_ap (c * (A_ue^H x))`` of (3) and
    ``rho a_r (a_t^H x)`` of (5); the others: the dense H and H~ (as ``evaluate``).
    """
    first = snapshots[0]
    size, K = beams.shape[:2]
    comm = np.empty((size, K, first.M_a, 2), dtype=complex)
    sense = np.empty((size, K, first.M_ur, 2), dtype=complex)
    groups: dict = {}
    for slot, snapshot in enumerate(snapshots):
        key = snapshot.path_coeff.shape if snapshot.has_paths else None
        groups.setdefault(key, []).append(slot)
    for key, slots in groups.items():
        if key is None:
            for slot in slots:
                comm[slot] = snapshots[slot].H @ beams[slot]
                sense[slot] = snapshots[slot].H_sense @ beams[slot]
            continue
        group = [snapshots[slot] for slot in slots]
        x = beams[slots]

        def stacked(name, group=group):
            return np.array([getattr(s, name) for s in group])

        coeff, ap, ue = stacked("path_coeff"), stacked("path_ap"), stacked("path_ue")
        comm[slots] = np.swapaxes(ap, -1, -2) @ (coeff[..., None] * (ue.conj() @ x))  # (3)
        along = stacked("rho")[..., None, None] * (stacked("sense_tx").conj()[..., None, :] @ x)
        sense[slots] = stacked("sense_rx")[..., :, None] * along  # (5)
    return comm, sense
