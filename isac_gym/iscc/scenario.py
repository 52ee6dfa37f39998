"""One slot of the ISCC system: geometry, channels and tasks sampled into a ``Snapshot``.

Section II of Dong et al. (2026), with the open constants of ``docs/model.md``:

* AP at ``ap_position`` (sector apex, height ``h_a``) with an ``M_a``-element ULA whose
  axis is perpendicular to the sector boresight (+x); UEs uniform (by area) in the
  sector of radius ``r_0`` and half opening ``sector_half_width``; each UE carries a
  transmit ULA (``M_ut``) and a co-located receive ULA (``M_ur``) along a random heading.
* Communication channel (block fading, eq. (3)), Rician with ``n_nlos`` NLoS paths:
  ``H_k = sqrt(g_k) [ sqrt(kappa/(kappa+1)) e^{j phi} a_ap a_ue^H
  + sqrt(1/((kappa+1) L)) sum_l c_l a_ap(.) a_ue(.)^H ]``, ``c_l ~ CN(0, 1)``,
  ``g_k = G_e^2 / (FSPL(1 m) d_k^n)`` (log-distance; n = 2.1 is 3GPP UMi-SC LoS).
* The snapshot keeps H_k's path factors (``path_coeff``, ``path_ap``, ``path_ue`` and
  the paths' direction cosines ``path_cos_ap``, ``path_cos_ue``; ``sense_cos`` for
  a_t(psi_k)): every path is rank one, so products with H_k cost
  ``(1 + n_nlos) (M_a + M_ut)`` per vector instead of ``M_a M_ut``, and inner products
  of steering vectors have a closed form (``has_paths``). The dense ``H`` and ``H_sense``
  of a drawn slot are built from the factors only when read (:class:`DenseChannel`).
  Hand-built snapshots and channel estimates (:func:`with_channel_error`) have no
  factors and give the dense matrices.
* Sensing channel, eq. (5): ``H~_k = rho_k a_r(psi_k) a_t(psi_k)^H`` with the radar
  equation ``|rho_k|^2 = G_e^2 lambda^2 sigma_rcs / ((4 pi)^3 d_k^4)`` and a uniform phase.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from isac_gym.iscc.arrays import ula_steering
from isac_gym.iscc.config import ISCCConfig

_MAX_REJECTION_ROUNDS = 1000


class DenseChannel:
    """A dense channel field of :class:`Snapshot` (``H`` or ``H_sense``), built on first read.

    A drawn slot carries H_k's path factors, and the batched solvers and
    ``evaluate_batch`` work from them, so the (K, M_a, M_ut) and (K, M_ur, M_ut) complex
    matrices are built only when code reads them (``evaluate``, ``sca_admm``), from the
    factors by eq. (3) (``H_k = sum_l c_kl a_ap,kl a_ue,kl^H``) and eq. (5)
    (``H~_k = rho_k a_r a_t^H``), then kept. Given explicitly (hand-built snapshots,
    channel estimates) they are stored as given.
    """

    def __set_name__(self, owner, name: str) -> None:
        self.name, self.key = name, "_dense_" + name

    def __get__(self, snapshot, owner=None):
        if snapshot is None:
            return None  # the dataclass field's default: build on first read
        value = snapshot.__dict__[self.key]
        if value is None:
            value = _DENSE_BUILDERS[self.name](snapshot)
            value.setflags(write=False)
            snapshot.__dict__[self.key] = value
        return value

    def __set__(self, snapshot, value) -> None:
        snapshot.__dict__[self.key] = value


def _dense_comm(snapshot: Snapshot) -> np.ndarray:
    """Eq. (3): ``H_k = sum_l c_kl a_ap,kl a_ue,kl^H`` as (M_a x paths) @ (paths x M_ut)."""
    scaled = snapshot.path_coeff[:, :, None] * snapshot.path_ap
    return np.matmul(scaled.transpose(0, 2, 1), snapshot.path_ue.conj())


def _dense_sense(snapshot: Snapshot) -> np.ndarray:
    """Eq. (5): ``H~_k = rho_k a_r(psi_k) a_t(psi_k)^H``."""
    received = snapshot.rho[:, None] * snapshot.sense_rx
    return received[:, :, None] * snapshot.sense_tx.conj()[:, None, :]


_DENSE_BUILDERS = {"H": _dense_comm, "H_sense": _dense_sense}


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Everything one slot's optimizer and evaluator need, as plain read-only arrays.

    Shapes: K UEs, ``M_a`` AP antennas, ``M_ut``/``M_ur`` UE transmit/receive antennas.
    """

    # system constants (copied from the config so that a snapshot is self-contained)
    B: float  #: bandwidth [Hz]
    noise: float  #: noise power sigma_1^2 = sigma_2^2 [W]
    P_max: float  #: per-UE power budget [W]
    C_ap: float  #: AP CPU capacity available in this slot [cycle/s]
    xi_ap: float  #: AP capacitance coefficient
    gamma_s: float  #: sensing SINR threshold (linear)
    # per-UE task and device data, (K,)
    Q: np.ndarray  #: task size [bit]
    tau: np.ndarray  #: latency budget [s]
    C_u: np.ndarray  #: UE CPU capacity [cycle/s]
    xi_u: np.ndarray  #: UE capacitance coefficient
    varpi: np.ndarray  #: CPU cycles per bit
    energy_budget: np.ndarray  #: E_k^u <= energy_budget_k [J] (inf: no battery limit)
    # geometry
    ue_position: np.ndarray  #: (K, 2) [m]
    ue_heading: np.ndarray  #: (K,) UE array axis angle [rad]
    ap_position: np.ndarray  #: (2,) [m]
    target_position: np.ndarray  #: (2,) [m]
    distance_ap: np.ndarray  #: (K,) 3-D UE-AP distance [m]
    distance_target: np.ndarray  #: (K,) UE-target distance [m]
    # channels
    path_gain: np.ndarray  #: (K,) large-scale gain g_k of H_k (incl. element gains)
    rho: np.ndarray  #: (K,) complex sensing gain rho_k of eq. (5)
    sense_rx: np.ndarray  #: (K, M_ur) a_r(psi_k)
    sense_tx: np.ndarray  #: (K, M_ut) a_t(psi_k)
    ap_los: np.ndarray  #: (K, M_a) AP response towards UE k (LoS)
    ue_los: np.ndarray  #: (K, M_ut) UE k's transmit response towards the AP (LoS)
    #: (K, M_a, M_ut) communication channels H_k, eq. (3); None: built from the path
    #: factors on first use (``DenseChannel``)
    H: np.ndarray | None = DenseChannel()
    #: (K, M_ur, M_ut) sensing channels H~_k, eq. (5); None: ``rho a_r a_t^H`` on first use
    H_sense: np.ndarray | None = DenseChannel()
    # path factors of H (None for hand-built channels): H_k = sum_l c_kl a_ap,kl a_ue,kl^H
    path_coeff: np.ndarray | None = None  #: (K, L+1) c_kl incl. sqrt(g_k), LoS first
    path_ap: np.ndarray | None = None  #: (K, L+1, M_a) AP responses a_ap,kl
    path_ue: np.ndarray | None = None  #: (K, L+1, M_ut) UE transmit responses a_ue,kl
    path_cos_ap: np.ndarray | None = None  #: (K, L+1) direction cosines of a_ap,kl
    path_cos_ue: np.ndarray | None = None  #: (K, L+1) direction cosines of a_ue,kl
    sense_cos: np.ndarray | None = None  #: (K,) direction cosine of a_t(psi_k)

    def __post_init__(self) -> None:
        self._own(_ARRAY_KEYS)

    def _own(self, keys) -> None:
        """Check the channels are given; make the arrays stored under ``keys`` read-only
        and the snapshot's own (copies unless nothing else can write to them)."""
        state = self.__dict__  # the fields as stored (``_STORED_AS``), read without building
        unbuilt = state["_dense_H"] is None or state["_dense_H_sense"] is None
        if unbuilt and not self.has_paths:
            raise ValueError("Snapshot needs H and H_sense unless it has every path factor")
        for key in keys:
            value = state[key]
            # A read-only array that no writeable array backs (e.g. from another snapshot,
            # or a slot's rows of a vector env's batch) is shared, not copied.
            if isinstance(value, np.ndarray) and not _shareable(value):
                value = value.copy()
                value.setflags(write=False)
                state[key] = value

    @property
    def K(self) -> int:
        return int(self.Q.shape[0])

    @property
    def M_a(self) -> int:
        dense = self.stored("H")
        return int(self.path_ap.shape[2] if dense is None else dense.shape[1])

    @property
    def M_ut(self) -> int:
        dense = self.stored("H")
        return int(self.path_ue.shape[2] if dense is None else dense.shape[2])

    @property
    def M_ur(self) -> int:
        dense = self.stored("H_sense")
        return int(self.sense_rx.shape[1] if dense is None else dense.shape[1])

    def stored(self, name: str):
        """The field ``name`` as stored: for ``H`` and ``H_sense`` None while not built."""
        return self.__dict__[_STORED_AS.get(name, name)]

    @property
    def has_paths(self) -> bool:
        """True when H is given by its path factors and H_sense = rho a_r a_t^H exactly."""
        state = self.__dict__
        for name in PATH_FIELDS:  # (a plain loop: this runs for every slot of a batch)
            if state[name] is None:
                return False
        return True

    def replace(self, **changes) -> Snapshot:
        """A copy with some fields changed (per-UE scalars are broadcast to (K,))."""
        for name in ("Q", "tau", "C_u", "xi_u", "varpi", "energy_budget"):
            if name in changes:
                value = np.asarray(changes[name], dtype=float)
                if value.shape != (self.K,):
                    value = np.broadcast_to(value, (self.K,))
                changes[name] = value
        channels = ("H", "H_sense", "rho", "sense_rx", "sense_tx")
        if any(name in changes for name in channels) and "path_coeff" not in changes:
            # new channels: the old factors no longer describe them (dense from now on)
            changes.update(dict.fromkeys(PATH_FIELDS))
            for name in _DENSE_BUILDERS:  # the old dense channels, unless given
                changes.setdefault(name, getattr(self, name))
        return self._with(changes)

    def select(self, ues) -> Snapshot:
        """The slot restricted to the UEs ``ues`` (indices or a (K,) mask).

        The others are silent: they neither transmit nor interfere, so every
        cross-UE term of (7)-(8) runs over the selected UEs only.
        """
        index = np.arange(self.K)[np.asarray(ues)]
        if np.array_equal(index, np.arange(self.K)):
            return self
        state = self.__dict__
        selected = {key: state[key] for key in _PER_UE_KEYS if state[key] is not None}
        return self._with(_frozen(**{key: value[index] for key, value in selected.items()}))

    def _with(self, changes: dict) -> Snapshot:
        """``dataclasses.replace(self, **changes)`` without its per-field overhead (a slot
        is copied several times per environment step); ``changes`` may also name fields
        by their storage keys (``_STORED_AS``)."""
        unknown = changes.keys() - _STORAGE_KEYS - _STORED_AS.keys()
        if unknown:
            raise TypeError(f"Snapshot has no fields {sorted(unknown)}")
        copy = object.__new__(Snapshot)
        state = copy.__dict__
        state.update(self.__dict__)
        keys = [_STORED_AS.get(name, name) for name in changes]
        state.update(zip(keys, changes.values(), strict=True))
        copy._own(keys)  # the other arrays are this snapshot's, already its own
        return copy


def _shareable(array: np.ndarray) -> bool:
    """True for a read-only array whose memory is a read-only ndarray's (itself or the
    base it views): nothing can write to it, so a snapshot may keep it without a copy."""
    if array.flags.writeable:
        return False
    root = array
    while isinstance(root.base, np.ndarray):
        root = root.base
    return root.base is None and not root.flags.writeable


def _frozen(**arrays: np.ndarray) -> dict[str, np.ndarray]:
    """Freshly built arrays (nobody else holds them), made read-only in place.

    ``Snapshot`` then shares them instead of taking a defensive copy (the channels are
    the bulk of a slot's data, drawn every environment step).
    """
    for value in arrays.values():
        if value.base is None:
            value.setflags(write=False)
    return arrays


#: Snapshot fields holding arrays.
_ARRAY_FIELDS = tuple(
    f.name for f in dataclasses.fields(Snapshot) if f.type.startswith("np.ndarray")
)
#: Where a field is stored in a snapshot's ``__dict__`` when not under its name.
_STORED_AS = {name: "_dense_" + name for name in _DENSE_BUILDERS}
_STORAGE_KEYS = frozenset(_STORED_AS.get(f.name, f.name) for f in dataclasses.fields(Snapshot))
_ARRAY_KEYS = tuple(_STORED_AS.get(name, name) for name in _ARRAY_FIELDS)

#: The path factors: all set (``Snapshot.has_paths``) or all None.
PATH_FIELDS = ("path_coeff", "path_ap", "path_ue", "path_cos_ap", "path_cos_ue", "sense_cos")

#: Snapshot fields indexed by UE along their first axis.
PER_UE_SNAPSHOT_FIELDS = tuple(
    field.name
    for field in dataclasses.fields(Snapshot)
    if field.type.startswith("np.ndarray") and field.name not in ("ap_position", "target_position")
)
_PER_UE_KEYS = tuple(_STORED_AS.get(name, name) for name in PER_UE_SNAPSHOT_FIELDS)


def pathloss_gain(config: ISCCConfig, distance) -> np.ndarray:
    """Large-scale channel gain ``g = G_e^2 (lambda / 4 pi)^2 d^-n`` (log-distance)."""
    fspl_1m = (4.0 * np.pi / config.wavelength) ** 2
    return config.element_gain**2 / (
        fspl_1m * np.asarray(distance, float) ** config.pathloss_exponent
    )


def radar_gain(config: ISCCConfig, distance) -> np.ndarray:
    """Two-way sensing gain ``|rho|^2 = G_e^2 lambda^2 sigma / ((4 pi)^3 d^4)`` of eq. (5)."""
    d = np.asarray(distance, dtype=float)
    return config.element_gain**2 * config.wavelength**2 * config.rcs / ((4 * np.pi) ** 3 * d**4)


def sample_ue_positions(config: ISCCConfig, rng: np.random.Generator, num: int) -> np.ndarray:
    """``num`` points uniform by area in the sector, respecting the minimum distances."""
    ap = np.asarray(config.ap_position)
    target = np.asarray(config.target_position)
    positions = np.empty((num, 2))
    missing = np.arange(num)
    for _ in range(_MAX_REJECTION_ROUNDS):
        r = np.sqrt(rng.uniform(config.min_ue_ap_distance**2, config.r_0**2, missing.size))
        phi = rng.uniform(-config.sector_half_width, config.sector_half_width, missing.size)
        positions[missing] = ap + np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)
        far = np.linalg.norm(positions[missing] - target, axis=1) >= config.min_ue_target_distance
        missing = missing[~far]
        if missing.size == 0:
            return positions
    raise ValueError(
        "ISCCConfig.min_ue_target_distance leaves (almost) no room in the sector for UEs"
    )


def draw_fading(config: ISCCConfig, rng: np.random.Generator, num: int) -> dict[str, np.ndarray]:
    """The small-scale fading draws of ``num`` UEs for one slot, in the sampler's order.

    LoS phases, the NLoS gains' real and imaginary parts, the NLoS direction cosines at
    the AP and at the UE (``L = n_nlos`` paths each) and the sensing phases: everything
    :func:`channels_from_draws` needs besides the geometry. Drawing them apart from the
    arithmetic lets a vector env draw with each env's generator and compute all at once.
    """
    L = config.n_nlos
    draws = {"los_phase": rng.uniform(size=num)}
    if L > 0:
        draws["nlos_real"] = rng.standard_normal((num, L))
        draws["nlos_imag"] = rng.standard_normal((num, L))
        draws["nlos_cos_ap"] = rng.uniform(-1, 1, (num, L))
        draws["nlos_cos_ue"] = rng.uniform(-1, 1, (num, L))
    draws["sense_phase"] = rng.uniform(size=num)
    return draws


def _paths(config: ISCCConfig, draws: dict[str, np.ndarray], cos_ap, cos_ue):
    """Path gains c_kl (without sqrt(g_k)) and direction cosines of eq. (3), LoS first.

    The LoS path has the geometric cosines, weight ``sqrt(kappa / (kappa + 1))`` and a
    uniform phase; the ``L = n_nlos`` NLoS paths ``sqrt(1 / ((kappa + 1) L)) CN(0, 1)``
    and cosines uniform in [-1, 1]. Returns ``(coeff, cos_ap, cos_ue)``, each (..., L+1).
    """
    L, kappa = config.n_nlos, config.rician_factor
    los_weight = np.sqrt(kappa / (kappa + 1.0)) if L > 0 else 1.0
    coeff = (los_weight * np.exp(2j * np.pi * draws["los_phase"]))[..., None]
    cos_ap, cos_ue = cos_ap[..., None], cos_ue[..., None]
    if L > 0:
        scattered = (draws["nlos_real"] + 1j * draws["nlos_imag"]) / np.sqrt(2)
        coeff = np.concatenate([coeff, np.sqrt(1.0 / ((kappa + 1.0) * L)) * scattered], axis=-1)
        cos_ap = np.concatenate([cos_ap, draws["nlos_cos_ap"]], axis=-1)
        cos_ue = np.concatenate([cos_ue, draws["nlos_cos_ue"]], axis=-1)
    return coeff, cos_ap, cos_ue


def channels_from_geometry(
    config: ISCCConfig,
    rng: np.random.Generator,
    ue_position: np.ndarray,
    ue_heading: np.ndarray,
) -> dict[str, np.ndarray]:
    """Small-scale fading and sensing channels for given UE positions and headings."""
    draws = draw_fading(config, rng, ue_position.shape[0])
    return channels_from_draws(config, ue_position, ue_heading, draws)


def channels_from_draws(
    config: ISCCConfig,
    ue_position: np.ndarray,
    ue_heading: np.ndarray,
    draws: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """The channel fields of a snapshot, eqs. (3) and (5), from geometry and fading draws.

    Shapes: ``ue_position`` (..., K, 2), ``ue_heading`` (..., K), ``draws`` as from
    :func:`draw_fading` with the same leading dimensions; every result has them too, so
    the slots of many environments are computed in one go (element for element the
    arithmetic of one slot). The dense H and H~ are left to :class:`DenseChannel`.
    """
    ap = np.asarray(config.ap_position)
    target = np.asarray(config.target_position)
    cos_h, sin_h = np.cos(ue_heading), np.sin(ue_heading)  # UE array axes

    # LoS geometry UE -> AP (3-D, the AP is h_a - h_u higher); AP ULA axis is +y.
    offset = ap - ue_position
    distance_ap = np.sqrt((offset**2).sum(axis=-1) + (config.h_a - config.h_u) ** 2)
    cos_ue = (offset[..., 0] * cos_h + offset[..., 1] * sin_h) / distance_ap
    cos_ap = -offset[..., 1] / distance_ap
    # Sensing geometry, eq. (5): same-height target, monostatic co-located Tx/Rx arrays.
    to_target = target - ue_position
    distance_target = np.sqrt((to_target**2).sum(axis=-1))
    cos_sense = (to_target[..., 0] * cos_h + to_target[..., 1] * sin_h) / distance_target

    gain = pathloss_gain(config, distance_ap)
    coeff, cos_ap_paths, cos_ue_paths = _paths(config, draws, cos_ap, cos_ue)
    a_ap = ula_steering(config.M_a, cos_ap_paths)  # (..., K, paths, M_a)
    # The UE's transmit responses: the paths and, last, the target direction.
    a_ue = ula_steering(config.M_ut, np.concatenate([cos_ue_paths, cos_sense[..., None]], axis=-1))
    sense_tx, a_ue = a_ue[..., -1, :], a_ue[..., :-1, :]
    # H = sqrt(g) sum_l c_l a_ap,l a_ue,l^H and H~ = rho a_r a_t^H are built on first read
    coeff = np.sqrt(gain)[..., None] * coeff
    ap_los, ue_los = a_ap[..., 0, :], a_ue[..., 0, :]
    a_ue = np.ascontiguousarray(a_ue)

    sense_rx = ula_steering(config.M_ur, cos_sense)
    rho = np.sqrt(radar_gain(config, distance_target)) * np.exp(2j * np.pi * draws["sense_phase"])
    return _frozen(
        path_gain=gain,
        rho=rho,
        sense_rx=sense_rx,
        sense_tx=sense_tx,
        ap_los=ap_los,
        ue_los=ue_los,
        path_coeff=coeff,
        path_ap=a_ap,
        path_ue=a_ue,
        path_cos_ap=cos_ap_paths,
        path_cos_ue=cos_ue_paths,
        sense_cos=cos_sense,
        distance_ap=distance_ap,
        distance_target=distance_target,
    )


def sample_snapshot(
    config: ISCCConfig,
    rng: np.random.Generator,
    ue_position: np.ndarray | None = None,
    ue_heading: np.ndarray | None = None,
    energy_budget=np.inf,
    C_ap: float | None = None,
) -> Snapshot:
    """Draw one slot: UE positions (unless given), headings, channels; tasks from config.

    ``energy_budget`` (scalar or (K,)) bounds E_k^u (batteries); ``C_ap`` overrides the
    AP capacity available in this slot (e.g. reduced by background load).
    """
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    K = config.K
    if ue_position is None:
        ue_position = sample_ue_positions(config, rng, K)
    ue_position = np.asarray(ue_position, dtype=float)
    if ue_position.shape != (K, 2):
        raise ValueError(f"ue_position must have shape ({K}, 2), got {ue_position.shape}")
    if ue_heading is None:
        ue_heading = rng.uniform(0.0, 2.0 * np.pi, K)
    ue_heading = np.broadcast_to(np.asarray(ue_heading, dtype=float), (K,))
    budget = np.broadcast_to(np.asarray(energy_budget, dtype=float), (K,))
    if not (budget >= 0).all():  # also false for NaN
        raise ValueError(f"energy_budget must be >= 0 (inf for none), got {energy_budget!r}")
    C_ap = config.C_ap if C_ap is None else float(C_ap)
    if not np.isfinite(C_ap) or C_ap < 0:
        raise ValueError(f"C_ap must be finite and >= 0, got {C_ap!r}")
    channels = channels_from_geometry(config, rng, ue_position, ue_heading)
    return snapshot_from_channels(config, ue_position, ue_heading, channels, budget, C_ap)


def snapshot_from_channels(
    config: ISCCConfig,
    ue_position: np.ndarray,
    ue_heading: np.ndarray,
    channels: dict[str, np.ndarray],
    energy_budget=np.inf,
    C_ap: float | None = None,
    like: Snapshot | None = None,
) -> Snapshot:
    """The slot of ``config`` (tasks from it) with the channel fields ``channels`` (of
    :func:`channels_from_draws`); arguments as :func:`sample_snapshot`, not validated.

    ``like``: a snapshot this function made with the same config, ``energy_budget`` and
    ``C_ap``; its constants are reused instead of built again (an env draws a slot per
    step)."""
    if like is not None:
        fresh = dict(channels, ue_position=ue_position, ue_heading=ue_heading)
        return like._with({**fresh, "H": None, "H_sense": None})
    K = config.K
    return Snapshot(
        B=config.B,
        noise=config.noise,
        P_max=config.P_max,
        C_ap=config.C_ap if C_ap is None else C_ap,
        xi_ap=config.xi_ap,
        gamma_s=config.gamma_s,
        Q=config.per_ue("Q"),
        tau=config.per_ue("tau"),
        C_u=config.per_ue("C_u"),
        xi_u=config.per_ue("xi_u"),
        varpi=config.per_ue("varpi"),
        energy_budget=np.broadcast_to(np.asarray(energy_budget, dtype=float), (K,)),
        ue_position=ue_position,
        ue_heading=ue_heading,
        ap_position=np.asarray(config.ap_position, dtype=float),
        target_position=np.asarray(config.target_position, dtype=float),
        **channels,
    )


def with_channel_error(snapshot: Snapshot, phi: float, rng: np.random.Generator) -> Snapshot:
    """The estimate ``H^_k = H_k - Delta_k`` with ``||Delta_k||_2 = phi`` (paper Fig. 9).

    The error is drawn on the sphere of spectral radius ``phi`` (the worst-case boundary
    of the set Psi_k), independently for the communication and the sensing channels;
    optimizers see the returned snapshot, the evaluation keeps using the true one. The
    rank-one sensing factors (rho, a_r, a_t) of the estimate are its dominant singular
    triplet.
    """
    if not np.isfinite(phi) or phi < 0:
        raise ValueError(f"phi must be finite and >= 0, got {phi!r}")

    def perturbed(H: np.ndarray) -> np.ndarray:
        delta = rng.standard_normal(H.shape) + 1j * rng.standard_normal(H.shape)
        delta *= phi / np.linalg.norm(delta, ord=2, axis=(1, 2))[:, None, None]
        return H - delta

    H_sense = perturbed(snapshot.H_sense)
    # Rank-one factors of the estimate: its dominant singular triplet.
    left, sv, right_h = np.linalg.svd(H_sense)
    M_ur, M_ut = H_sense.shape[1:]
    return snapshot.replace(
        H=perturbed(snapshot.H),
        H_sense=H_sense,
        rho=sv[:, 0] / np.sqrt(M_ur * M_ut),
        sense_rx=left[:, :, 0] * np.sqrt(M_ur),
        sense_tx=right_h[:, 0, :].conj() * np.sqrt(M_ut),
    )
