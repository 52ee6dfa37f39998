"""RGB frames of the ISCC environment: sector, UEs and target; batteries and offloading."""

from __future__ import annotations

import numpy as np
from gymnasium import logger as gym_logger
from gymnasium.error import DependencyNotInstalled


def checked_render(env, draw):
    """Gymnasium's ``render`` contract, shared by the environments: without a
    ``render_mode`` a warning and None; before ``reset`` an error; else ``draw(env)``."""
    if env.render_mode is None:
        gym_logger.warn("render() called without a render_mode; use render_mode='rgb_array'")
        return None
    if not hasattr(env, "_rng"):
        raise RuntimeError("call reset() before render()")
    return draw(env)


def two_panel_figure(size: tuple[float, float], dpi: int):
    """A matplotlib figure on an Agg canvas (no display) with a wide left and a narrow
    right panel: ``(figure, (left, right))``."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - matplotlib is a dependency
        raise DependencyNotInstalled(
            "rendering needs matplotlib: pip install matplotlib"
        ) from error
    fig = Figure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1.0]})


def to_rgb(fig) -> np.ndarray:
    """The figure as a uint8 (H, W, 3) array."""
    fig.tight_layout()
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def render_iscc(env, size: tuple[float, float] = (8.0, 4.0), dpi: int = 80) -> np.ndarray:
    """A uint8 (H, W, 3) frame drawn with matplotlib on an Agg canvas (no display)."""
    from matplotlib.patches import Wedge

    cfg, cell = env.config, env.config.cell
    alpha = env._last.get("alpha", np.zeros(env.K))
    fig, (geo, bars) = two_panel_figure(size, dpi)

    half = np.degrees(cell.sector_half_width)
    ap = np.asarray(cell.ap_position)
    geo.add_patch(Wedge(ap, cell.r_0, -half, half, color="0.92", zorder=0))
    geo.plot(*ap, "k^", markersize=10, label="AP")
    geo.plot(*cell.target_position, "rx", markersize=10, mew=2, label="target")
    pos = env._position
    points = geo.scatter(
        pos[:, 0],
        pos[:, 1],
        c=alpha,
        cmap="viridis",
        vmin=0,
        vmax=1,
        edgecolors=np.where(env._task, "k", "0.7"),
        s=80,
        zorder=3,
    )
    for k, (x, y) in enumerate(pos):
        geo.annotate(str(k), (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    fig.colorbar(points, ax=geo, label="offloaded fraction alpha_k")
    geo.set_aspect("equal")
    geo.set_xlim(ap[0] - 5, ap[0] + cell.r_0 + 5)
    geo.set_ylim(ap[1] - cell.r_0, ap[1] + cell.r_0)
    geo.set_xlabel("x [m]")
    geo.set_ylabel("y [m]")
    geo.set_title(f"slot {env._t} / {cfg.horizon}")
    geo.legend(loc="lower left", fontsize=7)

    ues = np.arange(env.K)
    bars.bar(ues, env._battery, color="tab:green", label="battery B_k")
    bars.axhline(cfg.b_min, color="tab:red", linestyle="--", label="B_min")
    bars.set_ylim(0, cfg.b_max)
    bars.set_xticks(ues)
    bars.set_xlabel("UE")
    bars.set_ylabel("battery [J]")
    bars.set_title(f"AP backlog {env._backlog / (cell.C_ap * cfg.slot_duration):.2f} C^ap T")
    bars.legend(loc="upper right", fontsize=7)
    return to_rgb(fig)
