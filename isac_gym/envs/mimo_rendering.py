"""RGB frames of the mMIMO ISAC environment: users (SE and rate demand), target direction,
battery and budget."""

from __future__ import annotations

import numpy as np

from isac_gym.envs.rendering import to_rgb, two_panel_figure


def render_mimo(env, size: tuple[float, float] = (8.0, 4.0), dpi: int = 80) -> np.ndarray:
    """A uint8 (H, W, 3) frame drawn with matplotlib on an Agg canvas (no display)."""
    from matplotlib.patches import Circle

    cfg, cell = env.config, env.config.cell
    se = env._last.get("se", np.zeros(env.K))
    demands = env._last.get("rate_demand", env._demand)  # what the shown SEs were judged against
    fig, (geo, bars) = two_panel_figure(size, dpi)

    geo.add_patch(Circle((0, 0), cell.cell_radius, color="0.92", zorder=0))
    geo.plot(0, 0, "k^", markersize=10, label="BS")
    reach = 1.1 * cell.cell_radius
    geo.plot(
        [0, reach * np.cos(env._azimuth)], [0, reach * np.sin(env._azimuth)], "r--", label="target"
    )
    points = geo.scatter(*env._position.T, c=se, cmap="viridis", vmin=0, s=80, zorder=3)
    fig.colorbar(points, ax=geo, label="SE R_k [bps/Hz]; label: demand R_th,k")
    for (x, y), demand in zip(env._position, demands, strict=True):
        geo.annotate(f"{demand:g}", (x, y), textcoords="offset points", xytext=(6, 6), fontsize=7)
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
    return to_rgb(fig)
