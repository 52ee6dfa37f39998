"""A figure's files are one set: a kill mid-write keeps the old set and the next run
cleans up; Fig. 2's panels show every scheme and only the markers they draw."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from experiments.iscc_figures import FIGURES

ROOT = Path(__file__).parents[2]

#: Runs Fig. 2 but kills itself (SIGKILL: no cleanup) in the middle of the PNG write.
KILLED_RUN = """
import os, signal, sys
import matplotlib.figure
def savefig(self, target, *args, **kwargs):
    handle = target if hasattr(target, "write") else open(target, "wb")
    handle.write(b"\\x89PNG half")
    handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)
matplotlib.figure.Figure.savefig = savefig
sys.argv = ["evaluate.py", "paper", "--figure", "2", "--trials", "1", "--jobs", "1",
            "--no-progress", "--seed", "7", "--out", sys.argv[1]]
from experiments.cli import evaluate_main
evaluate_main(sys.argv[1:])
"""


def _paper(out: Path, *extra: str) -> subprocess.CompletedProcess:
    args = ["--figure", "2", "--trials", "1", "--jobs", "1", "--no-progress", "--out", str(out)]
    return subprocess.run(
        [sys.executable, "evaluate.py", "paper", *args, *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_kill_during_the_png_keeps_the_old_set_and_the_next_run_cleans(tmp_path):
    assert _paper(tmp_path).returncode == 0
    names = ("fig2.csv", "fig2.png", "fig2.json")
    old = {name: (tmp_path / name).read_bytes() for name in names}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(tmp_path)], cwd=ROOT, capture_output=True
    )
    assert killed.returncode == -9
    assert {name: (tmp_path / name).read_bytes() for name in names} == old  # the old set
    assert any(p.name.startswith(".") for p in tmp_path.iterdir())  # the kill's leftovers
    again = _paper(tmp_path, "--seed", "7")
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted((*names, "manifest.json"))
    assert (tmp_path / "fig2.csv").read_bytes() != old["fig2.csv"]  # seed 7's set


def _fig2_rows(all_feasible: bool) -> list[dict]:
    spec = FIGURES[2]
    rows = []
    for scheme in spec.schemes:
        for x in spec.x_values:
            ok = scheme in ("proposed", "ctem", "ofdma") or all_feasible
            rows.append(
                {
                    "scheme": scheme,
                    "x": x,
                    "asr": 100.0 if ok else 0.0,
                    "mean_alpha": 0.5,
                    "mean_cost": 0.1 / x if ok else np.nan,
                    "trials": 2,
                    "feasible_trials": 2 if ok else (1 if scheme == "fo" else 0),
                }
            )
    return rows


def _pixels_near(image: np.ndarray, color: str, tolerance: float = 0.08) -> int:
    import matplotlib.colors

    rgb = np.array(matplotlib.colors.to_rgb(color))
    return int((np.abs(image[..., :3] - rgb).max(axis=-1) < tolerance).sum())


def test_fig2_panel_a_shows_ctem_and_ofdma_on_the_proposed_line():
    import matplotlib.pyplot as plt

    from experiments.plotting import figure

    rows = [r for r in _fig2_rows(True) if r["scheme"] in ("proposed", "ctem", "ofdma")]
    fig = figure(FIGURES[2], rows, 2)
    try:
        fig.canvas.draw()
        image = np.asarray(fig.canvas.buffer_rgba(), float) / 255
        box = fig.axes[0].get_window_extent()
        height = image.shape[0]
        panel = image[int(height - box.y1) : int(height - box.y0), int(box.x0) : int(box.x1)]
        assert _pixels_near(panel, "tab:orange") > 150, "CTEM hidden"
        assert _pixels_near(panel, "tab:brown") > 150, "OFDMA hidden"
    finally:
        plt.close(fig)


def test_fig2_panel_c_mentions_hollow_markers_only_when_it_draws_them():
    import matplotlib.pyplot as plt

    from experiments.plotting import figure

    for all_feasible, expected in ((True, False), (False, True)):
        rows = _fig2_rows(all_feasible)
        if not all_feasible:  # FO feasible in 1 of 2 drops: a cost over that drop
            for row in rows:
                if row["scheme"] == "fo":
                    row["mean_cost"] = 0.2
        fig = figure(FIGURES[2], rows, 2)
        try:
            assert ("hollow" in fig.axes[2].get_title()) is expected
        finally:
            plt.close(fig)
