"""The mMIMO ISAC benchmark CLI (experiments.mimo_bench) on the small setting."""

from __future__ import annotations

import csv
import math

import pytest

from experiments.mimo_bench import CSV_COLUMNS, main


def test_small_run_writes_csv(tmp_path, capsys):
    path = tmp_path / "mimo.csv"
    argv = ["--small", "--drops", "2", "--omega", "1e-5", "--schemes", "equal_com,equal_cs"]
    assert main([*argv, "--method", "cvxpy", "--csv", str(path)]) == 0
    out = capsys.readouterr().out
    assert "omega=1e-05" in out and "method cvxpy" in out
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        rows = list(reader)
    schemes = ("equal_com", "equal_cs")
    assert len(rows) == 2 * len(schemes)  # seeds 0, 1 x two schemes, one omega
    assert {(r["scheme"], r["seed"]) for r in rows} == {(s, d) for s in schemes for d in "01"}
    assert all(float(r["omega"]) == 1e-5 for r in rows)
    feasible = [r for r in rows if r["feasible"] == "True"]
    assert feasible, "no drop was feasible"
    for r in feasible:
        assert math.isfinite(float(r["ee"])) and float(r["ee"]) > 0
        assert float(r["wall_s"]) > 0


@pytest.mark.parametrize(
    "argv, word",
    [(["--omega", "2"], "omega"), (["--schemes", "best"], "schemes"), (["--drops", "0"], "drops")],
)
def test_bad_arguments_exit_with_message(argv, word, capsys):
    with pytest.raises(SystemExit) as raised:
        main(["--small", *argv])
    assert raised.value.code == 2
    assert word in capsys.readouterr().err


def test_the_env_bench_runs_native_and_sync_to_the_same_returns():
    from conftest import MIMO_TINY_CELL

    from experiments.mimo_env_bench import frames_run

    cell = {**MIMO_TINY_CELL, "solver_options": {}}  # the default (fast) oracle
    for policy in ("hor", "random"):
        native = frames_run("native", 2, policy, 3, 0, **cell)
        sync = frames_run("sync", 2, policy, 3, 0, **cell)
        assert native[0] > 0 and sync[0] > 0 and native[1] > 0
        assert native[2] == sync[2]  # the batch is solve_mimo, bit for bit


def test_the_env_bench_refuses_a_bad_size(capsys):
    from experiments.mimo_env_bench import main as env_bench

    with pytest.raises(SystemExit):
        env_bench(["--sizes", "0"])
    assert "must be an integer >= 1" in capsys.readouterr().err
