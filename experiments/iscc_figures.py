"""Figure specifications of the ISCC paper's Section VI and the Monte Carlo drop of one point.

A :class:`FigureSpec` says what one figure sweeps (``x_values`` in the unit of its axis),
which schemes it compares and how an x-value becomes an :class:`~isac_gym.ISCCConfig`
(Table I plus the figure's overrides, SI units). :func:`run_drop` samples one seeded drop
(one snapshot) and solves it with every scheme of the figure; the sweep driver
(:mod:`experiments.paper`) aggregates the drops.

Importing this module is light (no optimizers, no matplotlib): ``evaluate.py --help`` imports it.

Randomness: drop ``(figure, x_index, trial)`` of a run with seed ``S`` uses
``numpy.random.SeedSequence([S, figure, x_index, trial])``, spawned into one generator for
the snapshot and one for the CSI error (Fig. 9). Results therefore do not depend on the
worker that computes a drop, nor on ``--jobs``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from isac_gym.units import dbm_to_watt

#: CSV/plot name of a scheme -> ``optimizers.iscc.solve`` method. "proposed" is SCA-ADMM.
SCHEME_METHODS = {
    "proposed": "sca_admm",
    "fl": "fl",
    "fo": "fo",
    "ho": "ho",
    "ctem": "ctem",
    "ofdma": "ofdma",
}
#: Legend labels (the paper's names).
SCHEME_LABELS = {
    "proposed": "Proposed (SCA-ADMM)",
    "fl": "FL",
    "fo": "FO",
    "ho": "HO",
    "ctem": "CTEM",
    "ofdma": "OFDMA",
}
ALL_SCHEMES = tuple(SCHEME_METHODS)

#: Fig. 8: K = 10 UEs, beta_k uniformly spanning [0.1, 5] and C_k^u spanning [1, 5] GHz.
FIG8_K = 10
FIG8_BETA = tuple(0.1 + (5.0 - 0.1) * k / (FIG8_K - 1) for k in range(FIG8_K))
FIG8_C_U = tuple(1e9 + (5e9 - 1e9) * k / (FIG8_K - 1) for k in range(FIG8_K))


def _linspace(start: float, stop: float, num: int) -> tuple[float, ...]:
    return tuple(round(start + (stop - start) * i / (num - 1), 12) for i in range(num))


def _logspace(start_exp: float, stop_exp: float, num: int) -> tuple[float, ...]:
    return tuple(
        float(f"{10.0 ** (start_exp + (stop_exp - start_exp) * i / (num - 1)):.12g}")
        for i in range(num)
    )


@dataclass(frozen=True)
class FigureSpec:
    """One figure of Section VI: the swept quantity, the schemes and the configuration.

    ``x_values`` are in the unit of the plot's x-axis (``x_label``); ``overrides(x)``
    returns the :meth:`ISCCConfig.paper` keyword overrides (SI units) at ``x``, on top
    of ``fixed`` (the figure's settings common to every x). The weights beta_k are
    always the config's ``beta`` field.
    """

    number: int
    title: str
    x_name: str  #: CSV column meaning of ``x`` (also written to the JSON)
    x_label: str  #: x-axis label with unit
    x_values: tuple[float, ...]
    x_log: bool
    schemes: tuple[str, ...]
    default_trials: int
    fixed: dict[str, Any]
    sweep: Callable[[float], dict[str, Any]]
    kind: str = "sweep"  #: "sweep" (Figs. 2-7), "per_ue" (Fig. 8), "csi" (Fig. 9)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def overrides(self, x: float) -> dict[str, Any]:
        """ISCCConfig.paper overrides (SI) at the x-value ``x``."""
        return {**self.fixed, **self.sweep(x)}


FIGURES: dict[int, FigureSpec] = {
    spec.number: spec
    for spec in (
        FigureSpec(
            number=2,
            title="latency budget (Q = 1 Mbit, beta = 0.1)",
            x_name="tau_s",
            x_label=r"latency budget $\tau^{th}$ [s]",
            x_values=_linspace(0.2, 1.0, 9),
            x_log=False,
            schemes=ALL_SCHEMES,
            default_trials=200,
            fixed={"Q": 1e6, "beta": 0.1},
            sweep=lambda x: {"tau": x},
        ),
        FigureSpec(
            number=3,
            title=r"data size Q ($\tau^{th}$ = 0.4 s)",
            x_name="Q_bits",
            x_label="data size Q [bit]",
            x_values=_logspace(4.0, 6.0, 9),
            x_log=True,
            schemes=ALL_SCHEMES,
            default_trials=200,
            fixed={"tau": 0.4},
            sweep=lambda x: {"Q": x},
        ),
        FigureSpec(
            number=4,
            title=r"UE CPU capacity ($\tau^{th}$ = 0.4 s)",
            x_name="C_u_GHz",
            x_label=r"UE computational capacity $C^u$ [GHz]",
            x_values=_linspace(0.5, 2.5, 9),
            x_log=False,
            schemes=ALL_SCHEMES,
            default_trials=200,
            fixed={"tau": 0.4},
            sweep=lambda x: {"C_u": x * 1e9},
        ),
        FigureSpec(
            number=5,
            title=r"number of UEs ($\tau^{th}$ = 0.5 s, $C^{ap}$ = 20 GHz)",
            x_name="K",
            x_label="number of UEs K",
            x_values=tuple(float(k) for k in range(2, 11)),
            x_log=False,
            schemes=ALL_SCHEMES,
            default_trials=150,
            fixed={"tau": 0.5, "C_ap": 20e9},
            sweep=lambda x: {"K": int(round(x))},
        ),
        FigureSpec(
            number=6,
            title=r"maximum transmit power ($\tau^{th}$ = 0.4 s)",
            x_name="P_max_dBm",
            x_label=r"maximum transmit power $P_{max}$ [dBm]",
            x_values=_linspace(5.0, 30.0, 6),
            x_log=False,
            schemes=ALL_SCHEMES,
            default_trials=200,
            fixed={"tau": 0.4},
            sweep=lambda x: {"P_max": float(dbm_to_watt(x))},
        ),
        FigureSpec(
            number=7,
            title=r"energy cost ratio ($\tau^{th}$ = 0.2 s, $C^u$ = 5 GHz, $C^{ap}$ = 50 GHz)",
            x_name="beta",
            x_label=r"energy cost ratio $\beta$",
            x_values=_logspace(-1.0, 1.0, 9),
            x_log=True,
            schemes=ALL_SCHEMES,
            default_trials=200,
            fixed={"tau": 0.2, "C_u": 5e9, "C_ap": 50e9},
            sweep=lambda x: {"beta": x},
        ),
        FigureSpec(
            number=8,
            title=(
                r"K = 10 heterogeneous UEs ($\beta_k$: 0.1..5, $C^u_k$: 1..5 GHz, "
                r"$\tau^{th}$ = 0.4 s)"
            ),
            x_name="C_ap_GHz",
            x_label=r"AP computational capacity $C^{ap}$ [GHz]",
            x_values=(20.0, 50.0),
            x_log=False,
            schemes=ALL_SCHEMES,
            default_trials=200,
            fixed={"K": FIG8_K, "tau": 0.4, "beta": FIG8_BETA, "C_u": FIG8_C_U},
            sweep=lambda x: {"C_ap": x * 1e9},
            kind="per_ue",
            notes=("tau is not stated for Fig. 8 in the paper; we use the default point 0.4 s.",),
        ),
        FigureSpec(
            number=9,
            title=r"imperfect CSI ($\tau^{th}$ = 0.4 s): optimiser sees $\hat H = H - \Delta$",
            x_name="phi",
            x_label=r"channel error bound $\phi$ = $\|\Delta_k\|_2$",
            x_values=_linspace(0.0, 5e-5, 11),
            x_log=False,
            schemes=("proposed",),
            default_trials=200,
            fixed={"tau": 0.4},
            sweep=lambda x: {},
            kind="csi",
            notes=(
                "The paper gives no phi range; phi is absolute (same units as H_k). "
                "Median spectral norms at Table I: ||H_k||_2 ~ 2e-3, ||H~_k||_2 ~ 2e-4.",
            ),
        ),
    )
}


def drop_seed(seed: int, figure: int, x_index: int, trial: int):
    """The ``SeedSequence`` of one drop: a function of its coordinates only."""
    import numpy as np

    return np.random.SeedSequence([int(seed), int(figure), int(x_index), int(trial)])


def run_drop(figure: int, x_index: int, trial: int, seed: int) -> dict[str, dict[str, Any]]:
    """Sample drop ``(figure, x_index, trial)`` and solve it with every scheme.

    Returns ``scheme -> record`` with per-UE arrays ``feasible, alpha, t_com`` and
    scalars ``cost`` (weighted, eq. (17a), at the true beta), ``energy_ue``,
    ``energy_ap`` (sums over UEs, unweighted) and ``solve_s`` (solver wall time).
    Fig. 9 (``kind == "csi"``) also returns ``sinr_loss_db`` (per UE, the sensing SINR
    the optimiser expects on the estimate over the true one, in dB) and
    ``t_com_believed``; there every quantity but those is judged on the true channel.
    A solver that raises gives a record with every UE infeasible, NaN values and
    ``error`` (the exception's text): the sweep counts it instead of stopping.
    """
    import numpy as np

    from isac_gym.iscc import ISCCConfig, evaluate, sample_snapshot
    from isac_gym.iscc.scenario import with_channel_error
    from optimizers import solve

    spec = FIGURES[figure]
    x = spec.x_values[x_index]
    config = ISCCConfig.paper(**spec.overrides(x))
    beta = config.per_ue("beta")
    snapshot_seed, error_seed = drop_seed(seed, figure, x_index, trial).spawn(2)
    snapshot = sample_snapshot(config, np.random.default_rng(snapshot_seed))
    seen = snapshot
    if spec.kind == "csi":
        seen = with_channel_error(snapshot, x, np.random.default_rng(error_seed))

    records = {}
    for scheme in spec.schemes:
        try:
            solution = solve(seen, beta, method=SCHEME_METHODS[scheme])
        except Exception as error:  # a solver crash is a failed drop, counted and reported
            records[scheme] = _failed_record(snapshot.K, spec.kind, error)
            continue
        believed = solution.evaluation
        true = evaluate(snapshot, solution.allocation, beta) if seen is not snapshot else believed
        record = {
            "feasible": np.asarray(true.feasible, bool),
            "alpha": np.asarray(solution.allocation.alpha, float),
            "t_com": np.asarray(true.t_com, float),
            "cost": float(true.cost),
            "energy_ue": float(np.sum(true.energy_ue)),
            "energy_ap": float(np.sum(true.energy_ap)),
            "solve_s": float(solution.info.get("wall_time_s", math.nan)),
        }
        if spec.kind == "csi":
            with np.errstate(divide="ignore", invalid="ignore"):
                loss = 10.0 * np.log10(believed.sinr_s / true.sinr_s)
            record["sinr_loss_db"] = np.where(np.isfinite(loss), loss, np.nan)
            record["t_com_believed"] = np.asarray(believed.t_com, float)
        records[scheme] = record
    return records


def _failed_record(K: int, kind: str, error: Exception) -> dict[str, Any]:
    import numpy as np

    nan = np.full(K, np.nan)
    record = {
        "feasible": np.zeros(K, bool),
        "alpha": nan,
        "t_com": nan,
        "cost": math.nan,
        "energy_ue": math.nan,
        "energy_ap": math.nan,
        "solve_s": math.nan,
        "error": f"{type(error).__name__}: {error}",
    }
    if kind == "csi":
        record["sinr_loss_db"] = nan
        record["t_com_believed"] = nan
    return record
