"""train.py --seeds N: bands over seeds, the sweep file, and 2 tiny seeds on Ray."""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from agents import seeds, training

T_975_1 = 12.7062  # Student t quantile, 1 degree of freedom (two seeds)
HYPERPARAMS = """\
isac_gym/ISCC-v0:
  n_envs: 1
  normalize: {norm_obs: true, norm_reward: true}
  n_steps: 64
  batch_size: 32
  n_epochs: 1
"""


def _result(seed, eval_steps, eval_returns, train_steps=(), train_returns=(), steps=128):
    return {
        "seed": seed,
        "num_timesteps": steps,
        "eval_timesteps": list(eval_steps),
        "eval_returns": list(eval_returns),
        "train_timesteps": list(train_steps),
        "train_returns": list(train_returns),
    }


def test_band_mean_std_and_student_t_interval():
    stats = seeds.band(np.array([[0.0, 1.0, 5.0], [2.0, np.nan, 7.0]]))
    np.testing.assert_array_equal(stats["seeds"], [2, 1, 2])
    np.testing.assert_allclose(stats["mean"], [1.0, 1.0, 6.0])
    np.testing.assert_allclose(stats["std"][[0, 2]], [math.sqrt(2), math.sqrt(2)])
    half = T_975_1 * math.sqrt(2) / math.sqrt(2)
    np.testing.assert_allclose(stats["low"][[0, 2]], [1 - half, 6 - half], rtol=1e-5)
    np.testing.assert_allclose(stats["high"][[0, 2]], [1 + half, 6 + half], rtol=1e-5)
    # one seed at a point: a mean, but no interval
    assert math.isnan(stats["std"][1]) and math.isnan(stats["low"][1])


def test_curves_align_evaluations_and_bin_training_episodes():
    results = [
        _result(0, [64, 128], [-10.0, -4.0], [30, 60, 100, 128], [-20, -18, -9, -7]),
        _result(1, [64, 128], [-12.0, -6.0], [64, 65], [-16, -14]),
    ]
    rows = seeds.curves(results)
    assert [(r["curve"], r["timesteps"]) for r in rows] == [
        ("eval", 64),
        ("eval", 128),
        ("train", 64),
        ("train", 128),
    ]
    assert rows[0]["mean"] == -11.0 and rows[1]["mean"] == -5.0
    assert rows[1]["seed_0"] == -4.0 and rows[1]["seed_1"] == -6.0
    # train: episodes ending in (0, 64] and (64, 128]; an episode ending at 64 is in the first
    assert rows[2]["seed_0"] == -19.0 and rows[2]["seed_1"] == -16.0
    assert rows[3]["seed_0"] == -8.0 and rows[3]["seed_1"] == -14.0
    assert rows[3]["seeds"] == 2 and rows[3]["mean"] == -11.0


def test_curves_without_evaluations_use_an_even_grid():
    rows = seeds.curves([_result(0, [], [], [50, 100], [-3.0, -1.0], steps=100)])
    assert [r["curve"] for r in rows] == ["train"] * 10
    assert [r["timesteps"] for r in rows] == list(range(10, 101, 10))
    assert rows[4]["seed_0"] == -3.0 and rows[9]["seed_0"] == -1.0
    assert math.isnan(rows[0]["mean"]) and rows[0]["seeds"] == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("samples: 2\n", "needs a mapping 'space'"),
        ("space: {lr: {normal: [0, 1]}}\n", "space.lr must be a value or one of"),
        ("space: {lr: 0.1}\nsamples: 0\n", "samples must be an integer >= 1"),
        ("space: {lr: 0.1}\nsearcher: grid\n", "searcher must be one of"),
        ("space: {lr: 0.1}\ntrials: 3\n", "unknown keys ['trials']"),
        ("space: {lr: 0.1}\nvalidation_seeds: 9-3\n", "validation_seeds must be comma-sep"),
        ("space: {lr: 0.1}\nvalidation_seeds: 1000-1002,7\n", "validation_seeds must be one range"),
    ],
)
def test_sweep_file_errors_name_the_key(tmp_path, text, message):
    path = tmp_path / "sweep.yml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        seeds.load_sweep(path)


def test_sweep_file_defaults(tmp_path):
    path = tmp_path / "sweep.yml"
    path.write_text("space: {learning_rate: {loguniform: [1.0e-4, 1.0e-3]}, n_epochs: 1}\n")
    sweep = seeds.load_sweep(path)
    assert sweep["samples"] == 4 and sweep["searcher"] == "random" and sweep["seed"] == 0
    assert sweep["validation_seeds"] is None  # the training evaluations score a sample
    path.write_text("space: {n_epochs: 1}\nvalidation_seeds: 1000-1002\n")
    assert seeds.load_sweep(path)["validation_seeds"] == [1000, 1001, 1002]


def test_validation_return_is_the_models_mean_return_on_those_episodes(tmp_path):
    """A sweep's validation score: the run's final model on the given episode seeds, in
    the run's own env settings (16-slot episodes here), as evaluate.py plays them."""
    from agents.evaluation import make_env_and_policy, run_episode

    (tmp_path / "hp.yml").write_text(HYPERPARAMS)
    settings = _settings(tmp_path / "hp.yml")
    out = tmp_path / "run"
    seeds.train_seed((settings, 0, str(out)))
    score = seeds.validation_return(out, settings, [1000, 1001])
    env, policy = make_env_and_policy("isac_gym/ISCC-v0", f"ppo:{out / 'model.zip'}")
    returns = [run_episode(env, policy, seed)[0] for seed in (1000, 1001)]
    env.close()
    assert [r.slots for r in returns] == [16, 16]
    assert score == pytest.approx(np.mean([r.episode_return for r in returns]), rel=1e-9)


def _train_cli(out, hyperparams, *extra):
    parser = training.add_arguments(argparse.ArgumentParser(prog="train.py"))
    args = parser.parse_args(
        [
            *("--env", "isac_gym/ISCC-v0", "--algo", "ppo", "--timesteps", "128"),
            *("--out", str(out), "--hyperparams", str(hyperparams)),
            *("--env-kwargs", json.dumps({"oracle": "fast", "horizon": 16})),
            *("--eval-freq", "64", "--eval-episodes", "1", "--checkpoint-freq", "128"),
            "--no-progress",
            *extra,
        ]
    )
    return args.run(args, parser)


def test_tune_needs_the_ray_backend(tmp_path, capsys):
    (tmp_path / "hp.yml").write_text(HYPERPARAMS)
    (tmp_path / "sweep.yml").write_text("space: {n_epochs: 1}\n")
    with pytest.raises(SystemExit):
        _train_cli(tmp_path / "out", tmp_path / "hp.yml", "--tune", str(tmp_path / "sweep.yml"))
    assert "--tune: runs on Ray Tune, add --backend ray" in capsys.readouterr().err


@pytest.mark.slow  # ~15 s idle, ~40 s under load (torch in two Ray workers)
def test_two_seeds_on_ray_write_curves_and_match_a_local_run(ray_local, tmp_path):
    (tmp_path / "hp.yml").write_text(HYPERPARAMS)
    out = tmp_path / "multi"
    assert (
        _train_cli(out, tmp_path / "hp.yml", "--seeds", "2", "--seed", "5", "--backend", "ray") == 0
    )
    with open(out / "curves.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["curve"], r["timesteps"]) for r in rows] == [
        ("eval", "64"),
        ("eval", "128"),
        ("train", "64"),
        ("train", "128"),
    ]
    assert all(r["seeds"] == "2" and r["seed_5"] and r["seed_6"] for r in rows)
    assert (out / "curves.png").read_bytes().startswith(b"\x89PNG")
    summary = json.loads((out / "seeds.json").read_text())
    assert [s["seed"] for s in summary["seeds"]] == [5, 6] and summary["backend"] == "ray"
    assert (out / "seed_6" / "model.zip").is_file()
    # seed 6 trained again here, in this process: the same evaluation returns
    local = seeds.train_seed((_settings(tmp_path / "hp.yml"), 6, str(tmp_path / "local6")))
    assert [f"{value:.6g}" for value in local["eval_returns"]] == [
        r["seed_6"] for r in rows if r["curve"] == "eval"
    ]


def _settings(hyperparams) -> dict:
    return {
        "env_id": "isac_gym/ISCC-v0",
        "algo": "ppo",
        "timesteps": 128,
        "hyperparams": training.load_hyperparams("ppo", "isac_gym/ISCC-v0", hyperparams),
        "env_kwargs": {"oracle": "fast", "horizon": 16},
        "eval_freq": 64,
        "eval_episodes": 1,
        "checkpoint_freq": 128,
    }


@pytest.mark.slow
def test_tune_sweep_writes_trials_best_first(ray_local, tmp_path):
    (tmp_path / "hp.yml").write_text(HYPERPARAMS)
    (tmp_path / "sweep.yml").write_text(
        "space: {learning_rate: {loguniform: [1.0e-4, 1.0e-3]}, gamma: {choice: [0.9, 0.99]}}\n"
        "samples: 2\nseed: 3\n"
    )
    out = tmp_path / "sweep"
    extra = ("--backend", "ray", "--tune", str(tmp_path / "sweep.yml"))
    assert _train_cli(out, tmp_path / "hp.yml", *extra) == 0
    with open(out / "trials.csv", newline="") as handle:
        trials = list(csv.DictReader(handle))
    assert len(trials) == 2 and {"trial", "eval_return", "gamma", "learning_rate"} <= set(trials[0])
    assert float(trials[0]["eval_return"]) >= float(trials[1]["eval_return"])
    assert all(1e-4 <= float(t["learning_rate"]) <= 1e-3 for t in trials)
    assert (out / "curves.csv").is_file() and (out / "curves.png").is_file()
    best = out / "trials" / trials[0]["trial"] / "seed_0" / "model.zip"
    assert best.is_file()


def _fake_run(folder: Path, seed: int, evaluations: list[tuple[int, float]]) -> None:
    """A finished run folder as train.py leaves it (config.json, a monitor file with
    two 100-step episodes, eval/evaluations.npz), written by hand."""
    (folder / "monitor").mkdir(parents=True)
    (folder / "eval").mkdir()
    lines = ['#{"t_start": 0}', "r,l,t", f"{-10.0 * seed},100,1", f"{-5.0 * seed},100,2"]
    (folder / "monitor" / "native.monitor.csv").write_text("\n".join(lines) + "\n")
    steps = np.array([s for s, _ in evaluations])
    results = np.array([[r, r] for _, r in evaluations])
    np.savez(folder / "eval" / "evaluations.npz", timesteps=steps, results=results,
             ep_lengths=np.full_like(results, 100))  # fmt: skip
    config = {"seed": seed, "num_timesteps": 200, "wall_time_s": 1.5}
    (folder / "config.json").write_text(json.dumps(config))


def test_gather_reads_runs_trained_apart_and_writes_their_curves(tmp_path):
    """Seed 0 evaluated at 100 and 200 steps, seed 1 only at 100: at 100 two seeds
    (mean of -1 and -3), at 200 one; unfinished folders are skipped."""
    _fake_run(tmp_path / "seed_0", 0, [(100, -1.0), (200, -2.0)])
    _fake_run(tmp_path / "seed_1", 1, [(100, -3.0)])
    (tmp_path / "seed_2").mkdir()  # no config.json: still training
    assert seeds.main([str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "curves.csv").open()))
    evals = {int(r["timesteps"]): r for r in rows if r["curve"] == "eval"}
    assert (evals[100]["seeds"], float(evals[100]["mean"])) == ("2", -2.0)
    assert (evals[200]["seeds"], float(evals[200]["mean"])) == ("1", -2.0)
    train_rows = {int(r["timesteps"]): r for r in rows if r["curve"] == "train"}
    assert float(train_rows[100]["mean"]) == -5.0  # episodes ending at step 100: 0, -10
    assert (tmp_path / "curves.png").is_file()


def test_gather_without_finished_runs_is_a_one_line_error(tmp_path, capsys):
    assert seeds.main([str(tmp_path)]) == 2
    assert "no finished run" in capsys.readouterr().err
