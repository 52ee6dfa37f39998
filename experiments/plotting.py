"""Plots of the paper reproduction (matplotlib, Agg backend, imported only when plotting).

Figs. 2-7: the paper's three panels, ASR [%] (58), average offloading coefficient and
weighted energy cost (17a). Fig. 8: per-UE alpha_k, ASR and cost per scheme for both AP
capacities. Fig. 9: sensing SINR loss, transmission latency and ASR versus phi.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from experiments.iscc_figures import SCHEME_LABELS, FigureSpec

#: Line styles per scheme. Schemes often coincide (ASR = 100 % for several): the
#: proposed scheme is drawn first with large hollow circles, the others on top with
#: smaller markers and their own dash patterns, so that every scheme stays visible.
STYLE = {
    "proposed": dict(
        color="tab:red",
        marker="o",
        markersize=11,
        markerfacecolor="none",
        markeredgewidth=1.8,
        linewidth=2.2,
        zorder=2,
    ),
    "fl": dict(color="tab:blue", marker="s", markersize=6, linewidth=1.3, zorder=3),
    "fo": dict(color="tab:green", marker="^", markersize=7, linewidth=1.3, zorder=3),
    "ho": dict(color="tab:purple", marker="v", markersize=7, linewidth=1.3, zorder=3),
    "ctem": dict(
        color="tab:orange", marker="D", markersize=5, linewidth=1.5, linestyle="--", zorder=4
    ),
    "ofdma": dict(
        color="tab:brown",
        marker="x",
        markersize=7,
        markeredgewidth=1.5,
        linewidth=1.5,
        linestyle=":",
        zorder=5,
    ),
}


def plot_figure(spec: FigureSpec, rows: list[dict[str, Any]], trials: int, path: Path) -> None:
    """Draw figure ``spec`` from its aggregated ``rows`` and save it as PNG at ``path``
    (the caller publishes it: :func:`isac_gym.runs.publish_set`)."""
    import matplotlib.pyplot as plt

    fig = figure(spec, rows, trials)
    try:
        fig.savefig(path, format="png", dpi=110)
    finally:
        plt.close(fig)


def figure(spec: FigureSpec, rows: list[dict[str, Any]], trials: int):
    """The matplotlib figure of ``spec`` (Agg backend; the caller closes it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), layout="constrained")
    if spec.kind == "per_ue":
        _plot_per_ue(spec, rows, axes)
    elif spec.kind == "csi":
        _plot_csi(spec, rows, axes)
    else:
        _plot_sweep(spec, rows, axes)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=9)
    fig.suptitle(f"Fig. {spec.number}: {spec.title}; {trials} drops per point", fontsize=12)
    return fig


def _by_scheme(rows, scheme):
    return [r for r in rows if r["scheme"] == scheme]


def _finite(values):
    return [v for v in values if v is not None and math.isfinite(v)]


def _plot_sweep(spec, rows, axes):
    ax_asr, ax_alpha, ax_cost = axes
    hollow = False
    for scheme in spec.schemes:
        sel = _by_scheme(rows, scheme)
        xs = [r["x"] for r in sel]
        style = STYLE[scheme]
        label = SCHEME_LABELS[scheme]
        ax_asr.plot(xs, [r["asr"] for r in sel], label=label, **style)
        ax_alpha.plot(xs, [r["mean_alpha"] for r in sel], label=label, **style)
        cost = [r["mean_cost"] for r in sel]
        ax_cost.plot(xs, cost, label=label, **{**style, "marker": None, "markersize": 0})
        full = [(x, c) for x, c, r in zip(xs, cost, sel, strict=True) if _all_ok(r)]
        part = [
            (x, c)
            for x, c, r in zip(xs, cost, sel, strict=True)
            if not _all_ok(r) and c is not None and math.isfinite(c)
        ]
        if full:
            ax_cost.plot(*zip(*full, strict=True), linestyle="none", **_marker(style))
        if part:
            hollow = True
            ax_cost.plot(
                *zip(*part, strict=True),
                linestyle="none",
                markerfacecolor="white",
                **_marker(style),
            )
    ax_asr.set_ylabel("average success rate ASR [%]")
    ax_asr.set_ylim(-3, 103)
    ax_alpha.set_ylabel(r"average offloading coefficient $\alpha$")
    ax_alpha.set_ylim(-0.03, 1.03)
    ax_cost.set_ylabel(r"weighted energy cost $\sum_k E^u_k + \beta_k E^{ap}_k$ [J]")
    ax_asr.set_title("(a) success rate, eq. (58)", fontsize=10)
    ax_alpha.set_title("(b) offloading coefficient", fontsize=10)
    note = " (hollow: infeasible in some drops)" if hollow else ""
    ax_cost.set_title(f"(c) cost over feasible drops{note}", fontsize=10)
    costs = _finite([r["mean_cost"] for r in rows])
    if costs and min(costs) > 0 and max(costs) / min(costs) > 30:
        ax_cost.set_yscale("log")
    for ax in axes:
        ax.set_xlabel(spec.x_label)
        if spec.x_log:
            ax.set_xscale("log")
        ax.grid(True, which="both", alpha=0.3)


def _all_ok(row) -> bool:
    return row["feasible_trials"] == row["trials"]


def _marker(style):
    return {k: style[k] for k in ("color", "marker", "zorder", "markersize") if k in style}


def _plot_per_ue(spec, rows, axes):
    import numpy as np

    ax_alpha, ax_asr, ax_cost = axes
    K = sum(1 for key in rows[0] if key.startswith("alpha_ue"))
    ue = np.arange(1, K + 1)
    dashes = ["-", ":"]
    for scheme in ("proposed", "ctem", "ofdma"):
        if scheme not in spec.schemes:
            continue
        for row, dash in zip(_by_scheme(rows, scheme), dashes, strict=False):
            alpha = [row[f"alpha_ue{k}"] for k in ue]
            style = {**STYLE[scheme], "linestyle": dash}
            label = f"{SCHEME_LABELS[scheme]}, $C^{{ap}}$ = {row['x']:g} GHz"
            ax_alpha.plot(ue, alpha, label=label, **style)
    ax_alpha.set_xlabel(r"UE index k ($\beta_k$: 0.1 $\to$ 5, $C^u_k$: 1 $\to$ 5 GHz)")
    ax_alpha.set_ylabel(r"average offloading coefficient $\alpha_k$")
    ax_alpha.set_xticks(ue)
    ax_alpha.set_ylim(-0.03, 1.03)
    ax_alpha.legend(fontsize=7)

    width = 0.8 / len(spec.x_values)
    pos = np.arange(len(spec.schemes))
    for j, x in enumerate(spec.x_values):
        sel = [next(r for r in rows if r["scheme"] == s and r["x"] == x) for s in spec.schemes]
        offset = pos + (j - (len(spec.x_values) - 1) / 2) * width
        label = f"$C^{{ap}}$ = {x:g} GHz"
        ax_asr.bar(offset, [r["asr"] for r in sel], width, label=label)
        cost = [r["mean_cost"] if math.isfinite(r["mean_cost"]) else 0.0 for r in sel]
        ax_cost.bar(offset, cost, width, label=label)
    for ax in (ax_asr, ax_cost):
        ax.set_xticks(pos)
        ax.set_xticklabels([SCHEME_LABELS[s].split(" ")[0] for s in spec.schemes])
        ax.legend(fontsize=8)
    ax_asr.set_ylabel("average success rate ASR [%]")
    ax_cost.set_ylabel("weighted energy cost [J]")
    ax_alpha.set_title(r"(a) per-UE offloading coefficient $\alpha_k$", fontsize=10)
    ax_asr.set_title("(b) success rate, eq. (58)", fontsize=10)
    ax_cost.set_title("(c) cost over feasible drops (no bar: none feasible)", fontsize=10)
    for ax in axes:
        ax.grid(True, axis="y", alpha=0.3)


def _plot_csi(spec, rows, axes):
    ax_loss, ax_lat, ax_asr = axes
    sel = _by_scheme(rows, "proposed")
    xs = [r["x"] for r in sel]
    style = STYLE["proposed"]
    ax_loss.plot(xs, [r["sinr_loss_db"] for r in sel], label="Proposed (SCA-ADMM)", **style)
    ax_loss.set_ylabel("average sensing SINR loss [dB]\n(expected on estimate vs true)")
    ax_lat.plot(xs, [r["mean_t_com_ms"] for r in sel], label="true channel", **style)
    ax_lat.plot(
        xs,
        [r["t_com_believed_ms"] for r in sel],
        label="expected on the estimate",
        **{**style, "linestyle": "--", "marker": "x"},
    )
    ax_lat.set_ylabel(r"average offloading (transmission) latency $\alpha Q/R$ [ms]")
    ax_asr.plot(xs, [r["asr"] for r in sel], label="Proposed, judged on true channel", **style)
    ax_asr.set_ylabel("average success rate ASR [%]")
    ax_asr.set_ylim(-3, 103)
    ax_loss.set_title("(a) sensing SINR loss", fontsize=10)
    ax_lat.set_title("(b) offloading latency", fontsize=10)
    ax_asr.set_title("(c) success rate on the true channel, eq. (58)", fontsize=10)
    for ax in axes:
        ax.set_xlabel(spec.x_label)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
