"""RGB frames of the mMIMO ISAC environment: users, target direction, battery and budget."""

from __future__ import annotations

import numpy as np
from gymnasium.error import DependencyNotInstalled


def render_mimo(env, size: tuple[float, float] = (8.0, 4.0), dpi: int = 80) -> np.ndarray:
    """A uint8 (H, W, 3) frame drawn with matplotlib on an Agg canvas (no display)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import Circle
    except ImportError as error:  # pragma: no cover - matplotlib is a dependency
        raise DependencyNotInstalled(
            "rendering needs matplotlib: pip install matplotlib"
        ) from error

    cfg, cell = env.config, env.config.cell
    se = env._last.get("se", np.zeros(env.K))
    fig = Figure(figsize=size, dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    geo, bars = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1.0]})

    geo.add_patch(Circle((0, 0), cell.cell_radius, color="0.92", zorder=0))
    geo.plot(0, 0, "k^", markersize=10, label="BS")
    reach = 1.1 * cell.cell_radius
    geo.plot(
        [0, reach * np.cos(env._azimuth)], [0, reach * np.sin(env._azimuth)], "r--", label="target"
    )
    points = geo.scatter(*env._position.T, c=se, cmap="viridis", vmin=0, s=80, zorder=3)
    fig.colorbar(points, ax=geo, label="SE R_k [bps/Hz]")
    geo.set_aspect("equal")
    geo.set_xlim(-reach, reach)
    geo.set_ylim(-reach, reach)
    geo.set_title(f"frame {env._t} / {cfg.horizon}")
    geo.legend(loc="lower left", fontsize=7)

    budget = env._last.get("budget", 0.0) / cell.P_max
    bars.bar([0, 1], [env._battery / cfg.b_max, budget], color=["tab:green", "tab:blue"])
    bars.axhline(cfg.b_min / cfg.b_max, color="tab:red", linestyle="--", label="B_min")
    bars.set_xticks([0, 1], ["battery / B_max", "budget / P_max"])
    bars.set_ylim(0, 1)
    bars.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
