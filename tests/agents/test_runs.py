"""isac_gym.runs (output folders, set publishing, formats) and the small run-lifecycle
helpers of agents: metrics reducer, overshoot planning, CI warnings, policies.png."""

from __future__ import annotations

import json
import math
import os
import subprocess

import numpy as np
import pytest

from isac_gym.runs import (
    OutputError,
    clean_stale,
    code_commit,
    format_csv,
    format_value,
    prepare_output,
    publish_set,
    to_jsonable,
)


# --- output folders -------------------------------------------------------------------
def test_prepare_output_creates_and_rejects_paths_under_a_file(tmp_path):
    assert prepare_output(tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="--out .*file/sub: cannot create the folder"):
        prepare_output(tmp_path / "file" / "sub")
    with pytest.raises(OutputError, match="exists and is not a folder"):
        prepare_output(tmp_path / "file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes everywhere")
def test_prepare_output_rejects_an_unwritable_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            prepare_output(folder)
    finally:
        folder.chmod(0o700)


def test_non_empty_folder_refused_unless_overwrite_of_run_files(tmp_path):
    (tmp_path / "model.zip").write_text("old")
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(OutputError, match="not empty .*--resume.*--overwrite"):
        prepare_output(tmp_path, must_be_empty=True)
    owned = ("model.zip", "checkpoints")
    prepare_output(tmp_path, must_be_empty=True, overwrite=True, owned=owned)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    prepare_output(tmp_path, must_be_empty=True)  # an empty folder passes


def test_overwrite_never_deletes_foreign_files(tmp_path):
    (tmp_path / "model.zip").write_text("old")
    (tmp_path / "thesis.tex").write_text("mine")
    with pytest.raises(OutputError, match="thesis.tex"):
        prepare_output(tmp_path, must_be_empty=True, overwrite=True, owned=("model.zip",))
    assert (tmp_path / "thesis.tex").read_text() == "mine"
    assert (tmp_path / "model.zip").is_file()


# --- publishing a set -----------------------------------------------------------------
def _old_set(folder):
    for name in ("f.csv", "f.json"):
        (folder / name).write_text(f"old {name}")


def test_publish_set_replaces_all_files_together(tmp_path):
    _old_set(tmp_path)
    with publish_set(tmp_path, "f") as staging:
        (staging / "f.csv").write_text("new csv")
        (staging / "f.json").write_text("new json")
        assert (tmp_path / "f.csv").read_text() == "old f.csv"  # nothing before the end
    assert (tmp_path / "f.csv").read_text() == "new csv"
    assert (tmp_path / "f.json").read_text() == "new json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv", "f.json"]


def test_failed_set_leaves_the_old_one_and_no_temporaries(tmp_path):
    _old_set(tmp_path)
    with pytest.raises(RuntimeError), publish_set(tmp_path, "f") as staging:
        (staging / "f.csv").write_text("new csv")
        raise RuntimeError("plot failed")
    assert (tmp_path / "f.csv").read_text() == "old f.csv"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv", "f.json"]


def test_clean_stale_rolls_committed_sets_forward_and_drops_the_rest(tmp_path):
    _old_set(tmp_path)
    committed = tmp_path / ".f.abc.set.tmp"  # killed between the renames
    committed.mkdir()
    (committed / "f.json").write_text("new json")
    (committed / "COMMITTED").write_text("\n")
    unfinished = tmp_path / ".g.abc.set.tmp"  # killed while writing
    unfinished.mkdir()
    (unfinished / "g.csv").write_text("half")
    (tmp_path / ".f.png.xyz.tmp").write_bytes(b"\x89PNG half")  # atomic_write leftover
    assert len(clean_stale(tmp_path)) == 3
    assert (tmp_path / "f.json").read_text() == "new json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.csv", "f.json"]


def test_clean_stale_leaves_the_temporaries_of_a_running_writer(tmp_path):
    running = tmp_path / ".f.1.abcdefgh.set.tmp"  # pid 1 always runs
    running.mkdir()
    gone = tmp_path / ".f.png.999999999.abcdefgh.tmp"  # no such process
    gone.write_bytes(b"half")
    assert clean_stale(tmp_path) == [gone]
    assert running.is_dir()


# --- formats --------------------------------------------------------------------------
def test_one_csv_format():
    assert [format_value(v) for v in (math.nan, None, math.inf, 0.1 + 0.2, 3, True)] == [
        "",
        "",
        "inf",
        "0.3",
        "3",
        "1",
    ]
    text = format_csv([{"name": "a,b", "x": np.float64(1 / 3)}, {"name": "c", "x": math.nan}])
    assert text == 'name,x\n"a,b",0.333333\nc,\n'


def test_one_json_conversion():
    value = {1: np.arange(2), "x": (np.float32(0.5), math.inf), "o": object}
    converted = to_jsonable(value)
    assert converted["1"] == [0, 1] and converted["x"] == [0.5, "inf"]
    json.dumps(converted, allow_nan=False)


# --- the metrics reducer and the drop causes --------------------------------------------
def test_step_counts_reads_the_env_info():
    from agents.metrics import drop_causes, step_counts
    from isac_gym.envs.iscc import DROP_CAUSES

    assert drop_causes() is DROP_CAUSES  # one list, the env's
    info = {
        "energy_cost": 2.0,
        "weighted_cost": 1.5,
        "oracle_time_s": 0.01,
        "task": [True, False, True],
        "success": [True, True, False],
        "alpha": [0.5, 0.9, 0.25],
        "outage": [False, True, True],
        "drops": {"deadline": 1},
        "rewards": {"energy": -1.0},
    }
    counts = step_counts(info)
    assert (counts["tasks"], counts["successes"]) == (2, 1)  # the 2nd UE had no task
    assert (counts["ue_slots"], counts["outages"]) == (3, 2)
    assert (counts["alpha_sum"], counts["alpha_count"]) == (0.75, 2)
    assert counts["drops_deadline"] == 1 and counts["reward_energy"] == -1.0
    assert step_counts({})["tasks"] == 0


def test_evaluation_has_no_own_drop_cause_list():
    import agents.evaluation

    assert not hasattr(agents.evaluation, "DROP_CAUSES")


# --- training plans and messages ------------------------------------------------------
def test_planned_end_is_the_target_in_whole_steps_of_every_env():
    from agents.training import planned_end

    assert planned_end(0, 100, 1) == 100  # not the end of PPO's rollout
    assert planned_end(0, 100, 64) == 128  # 64 envs step together
    assert planned_end(20480, 30000, 1) == 30000
    assert planned_end(5000, 3000, 1) == 5000  # nothing to train


def test_resume_command_adds_resume_and_drops_overwrite():
    from agents.training import resume_command

    assert resume_command("python train.py --out 'a b' --overwrite") == (
        "python train.py --out 'a b' --resume"
    )
    assert resume_command("python train.py --resume") == "python train.py --resume"


def test_ci_warning_below_three_episodes():
    from agents.evaluation import _mean_ci, ci_warning

    assert "meaningless" in ci_warning(2) and "undefined" in ci_warning(1)
    assert ci_warning(3) is None
    assert _mean_ci({"x": 1.0, "x_ci95": math.nan}, "x", 1) == "1.0 ± n/a"


def _rows():
    return [
        {
            "policy": name,
            "weighted_cost": cost,
            "weighted_cost_ci95": cost_ci,
            "success_rate": rate,
            "success_rate_ci95": rate_ci,
            "decision_ms": 0.01,
            "oracle_ms": 1.0,
        }
        for name, cost, cost_ci, rate, rate_ci in (
            ("a", 1.0, 3.0, 0.99, 0.05),
            ("b", 2.0, 0.5, 0.6, 0.7),
        )
    ]


def test_policies_plot_keeps_error_bars_in_range():
    import matplotlib.pyplot as plt

    from agents.evaluation import EpisodeResult, clipped_errors, policies_figure

    errors = clipped_errors([1.0, 2.0], [3.0, 0.5])
    np.testing.assert_allclose(errors, [[1.0, 0.5], [3.0, 0.5]])  # cost stays >= 0
    results = [EpisodeResult(p, 0, 0, "beta", episode_return=-1.0) for p in ("a", "b")]
    fig = policies_figure(_rows(), results)
    try:
        cost_ax, success_ax = fig.axes[1], fig.axes[2]
        assert "%" in success_ax.get_ylabel()
        low, high = success_ax.get_ylim()
        assert 0 <= low and high <= 100.5
        for ax, bottom, top in ((cost_ax, 0.0, np.inf), (success_ax, 0.0, 100.0)):
            for collection in ax.collections:  # the error bars
                for segment in collection.get_segments():
                    assert bottom - 1e-9 <= segment[:, 1].min()
                    assert segment[:, 1].max() <= top + 1e-9
            heights = [patch.get_height() for patch in ax.patches]
            assert max(heights) <= top
        assert [p.get_height() for p in success_ax.patches] == pytest.approx([99.0, 60.0])
    finally:
        plt.close(fig)


def test_unwrapped_env_before_any_episode_does_not_say_it_ended():
    import gymnasium

    import isac_gym  # noqa: F401

    env = gymnasium.make("isac_gym/ISCC-v0", oracle="fast", horizon=1).unwrapped
    with pytest.raises(RuntimeError) as error:
        env.step(env.action_space.sample())
    assert "ended" not in str(error.value)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    with pytest.raises(RuntimeError, match="the episode has ended"):
        env.step(env.action_space.sample())


def test_entry_points_are_mains_returning_exit_codes(tmp_path):
    import importlib
    import re
    from pathlib import Path

    from experiments.cli import bench_main

    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    section = pyproject.read_text().split("[project.scripts]")[1].split("\n[")[0]
    scripts = dict(re.findall(r'^([\w-]+) = "([\w.:]+)"$', section, flags=re.M))
    assert set(scripts) == {"isac-train", "isac-evaluate", "isac-bench"}
    for target in scripts.values():
        module, _, name = target.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), target
    (tmp_path / "a_file").write_text("")
    assert bench_main(["mimo", "--csv", str(tmp_path / "a_file" / "x.csv")]) == 2
    with pytest.raises(SystemExit) as exit_info:
        bench_main(["nope"])
    assert exit_info.value.code == 2


def test_timesteps_default_to_the_yaml_n_timesteps(tmp_path):
    from agents.training import default_timesteps
    from isac_gym.cli import UsageError

    assert default_timesteps("ppo", "isac_gym/ISCC-v0") == 700_032  # the shipped agent's
    path = tmp_path / "hp.yml"
    path.write_text("isac_gym/ISCC-v0:\n  n_steps: 8\n")
    with pytest.raises(UsageError, match="--timesteps is required.*no n_timesteps"):
        default_timesteps("ppo", "isac_gym/ISCC-v0", path)
    for bad in ("0", "-5", "1.5", "many", "true", "[1]"):
        path.write_text(f"isac_gym/ISCC-v0:\n  n_timesteps: {bad}\n")
        with pytest.raises(UsageError, match="n_timesteps must be a positive integer"):
            default_timesteps("ppo", "isac_gym/ISCC-v0", path)


def test_read_monitor_skips_a_run_without_finished_episodes_silently(tmp_path):
    import warnings

    from agents.training import read_monitor

    (tmp_path / "monitor").mkdir()
    (tmp_path / "monitor" / "native.monitor.csv").write_text('#{"t_start": 0}\nr,l,t\n')
    (tmp_path / "monitor" / "b.monitor.csv").write_text('#{"t_start": 0}\nr,l,t\n-3.5,10,1\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # genfromtxt warns on an empty body
        steps, returns = read_monitor(tmp_path)
    assert steps.tolist() == [10] and returns.tolist() == [-3.5]


def test_a_runs_own_tracked_outputs_do_not_make_the_code_dirty(tmp_path, tmp_path_factory):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table.csv").write_text("a\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    commit = code_commit(tmp_path, tmp_path / "results")
    assert len(commit) == 40 and "dirty" not in commit
    (tmp_path / "results" / "table.csv").write_text("b\n")  # the run rewrote its output
    assert code_commit(tmp_path, tmp_path / "results") == commit
    assert code_commit(tmp_path, tmp_path / "elsewhere") == commit + "+dirty"
    (tmp_path / "code.py").write_text("x = 2\n")  # the code changed
    assert code_commit(tmp_path, tmp_path / "results") == commit + "+dirty"
    plain = tmp_path_factory.mktemp("plain")  # not a checkout
    assert code_commit(plain, plain / "results") == "unknown"
