"""--backend ray: the same bytes as the local backend, ordered results, a one-line error
without Ray. One local Ray for the session (the ``ray_local`` fixture of conftest)."""

from __future__ import annotations

import argparse
import csv
import math
import sys

import pytest

from agents import evaluation
from experiments import paper
from isac_gym import ray_backend

POLICY_ARGS = ["--policies", "fixed-beta:mu,fl", "--episodes", "2", "--seed", "3"]
ENV_KWARGS = '{"oracle": "fast", "horizon": 12}'
TIMING_COLUMNS = {"decision_ms", "oracle_ms", "decision_ms_ci95", "oracle_ms_ci95"}


def _policies_cli(out, *extra: str) -> int:
    parser = argparse.ArgumentParser(prog="evaluate.py policies")
    evaluation.add_arguments(parser)
    args = parser.parse_args(
        [*POLICY_ARGS, "--env-kwargs", ENV_KWARGS, "--out", str(out), "--no-progress", *extra]
    )
    return args.run(args, parser)


def _without_timing(path) -> list[dict]:
    """The CSV's rows without the wall-clock columns (those differ between any two runs)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]


def test_ray_map_keeps_submission_order_and_reports_progress(ray_local):
    # workers import the function by name: a stdlib one here (tests/ is not a package)
    ticks = []
    tasks = list(range(23, 0, -1))
    results = ray_backend.ray_map(
        math.factorial, tasks, progress=lambda: ticks.append(1), chunksize=4
    )
    assert results == [math.factorial(t) for t in tasks]
    assert len(ticks) == len(tasks)
    assert ray_backend.ray_map(math.factorial, []) == []
    # the first task finishes last (a big factorial), the results keep the task order
    slow_first = [60_000, 3, 2, 1]
    results = ray_backend.ray_map(math.factorial, slow_first, chunksize=1)
    assert results[1:] == [6, 2, 1] and results[0] == math.factorial(60_000)


def test_ray_map_raises_the_task_error(ray_local):
    with pytest.raises(ValueError, match="math domain error"):
        ray_backend.ray_map(math.sqrt, [4.0, 1.0, -1.0, 9.0], chunksize=1)


def test_fig2_csv_is_byte_identical_to_local(ray_local, tmp_path):
    common = ["--figure", "2", "--trials", "2", "--no-progress"]
    assert paper.main([*common, "--jobs", "1", "--out", str(tmp_path / "local")]) == 0
    assert paper.main([*common, "--backend", "ray", "--out", str(tmp_path / "ray")]) == 0
    local = (tmp_path / "local" / "fig2.csv").read_bytes()
    assert (tmp_path / "ray" / "fig2.csv").read_bytes() == local
    assert local.count(b"\n") == 1 + 6 * 9  # header + 6 schemes x 9 latency budgets


def test_policy_comparison_is_identical_to_local(ray_local, tmp_path):
    assert _policies_cli(tmp_path / "local") == 0
    assert _policies_cli(tmp_path / "ray", "--backend", "ray") == 0
    for name in ("episodes.csv", "policies.csv"):
        local = _without_timing(tmp_path / "local" / name)
        assert _without_timing(tmp_path / "ray" / name) == local
        assert local and {"return", "return_mean"} & set(local[0])
    assert len(_without_timing(tmp_path / "local" / "episodes.csv")) == 4  # 2 policies x 2


def test_missing_ray_is_one_line_naming_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ray_backend.RayNotInstalled, match=r'pip install -e "\.\[ray\]"'):
        ray_backend.import_ray()
    with pytest.raises(SystemExit) as exit_info:
        paper.main(["--figure", "2", "--backend", "ray", "--out", "unused"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install -e ".[ray]"' in err


def test_ray_address_needs_the_ray_backend(capsys):
    with pytest.raises(SystemExit) as exit_info:
        paper.main(["--figure", "2", "--ray-address", "auto", "--out", "unused"])
    assert exit_info.value.code == 2
    assert "--ray-address: needs --backend ray" in capsys.readouterr().err


def test_backend_choices_are_checked(capsys):
    parser = argparse.ArgumentParser()
    ray_backend.add_arguments(parser)
    assert parser.parse_args([]).backend == "local"
    with pytest.raises(SystemExit):
        parser.parse_args(["--backend", "dask"])
    assert "invalid choice: 'dask'" in capsys.readouterr().err
