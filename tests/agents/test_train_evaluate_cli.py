"""train.py and evaluate.py policies as subprocesses into a temporary folder."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV_KWARGS = json.dumps({"oracle": "fast", "horizon": 16})
HYPERPARAMS = """\
isac_gym/ISCC-v0:
  n_envs: 1
  normalize: {norm_obs: true, norm_reward: true}
  n_steps: 128
  batch_size: 64
  n_epochs: 2
"""


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def _train(out: Path, timesteps: int, hyperparams: Path, *extra: str) -> None:
    """train.py with PPO on the short env, evaluating and checkpointing every 128 steps."""
    _run(
        "train.py",
        "--env",
        "isac_gym/ISCC-v0",
        "--algo",
        "ppo",
        "--timesteps",
        str(timesteps),
        "--out",
        str(out),
        "--env-kwargs",
        ENV_KWARGS,
        "--hyperparams",
        str(hyperparams),
        "--eval-freq",
        "128",
        "--eval-episodes",
        "1",
        "--checkpoint-freq",
        "128",
        "--no-progress",
        *extra,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("train")
    (folder / "hp.yml").write_text(HYPERPARAMS)
    out = folder / "ppo"
    _train(out, 256, folder / "hp.yml", "--seed", "1")
    return out


def test_train_writes_run(trained):
    for name in (
        "model.zip",
        "vecnormalize.pkl",
        "config.json",
        "command.txt",
        "training_curve.png",
        "checkpoints/rl_model_256_steps.zip",
        "checkpoints/rl_model_vecnormalize_256_steps.pkl",
        "best/best_model.zip",
    ):
        assert (trained / name).is_file(), name
    config = json.loads((trained / "config.json").read_text())
    assert config["algo"] == "ppo" and config["seed"] == 1 and config["num_timesteps"] == 256
    assert config["env_kwargs"] == {"oracle": "fast", "horizon": 16}
    assert "train.py" in (trained / "command.txt").read_text()


def test_resume_continues_from_checkpoint(trained, tmp_path):
    import shutil

    out = tmp_path / "resumed"
    shutil.copytree(trained, out)
    shutil.rmtree(out / "checkpoints")
    (out / "checkpoints").mkdir()
    for name in ("rl_model_128_steps.zip", "rl_model_vecnormalize_128_steps.pkl"):
        shutil.copy(trained / "checkpoints" / name, out / "checkpoints" / name)
    _train(out, 384, trained.parent / "hp.yml", "--resume")
    config = json.loads((out / "config.json").read_text())
    assert config["num_timesteps"] == 384
    assert config["runs"][-1]["start_timesteps"] == 128
    assert config["runs"][-1]["resumed_from"].endswith("rl_model_128_steps.zip")
    assert (out / "checkpoints" / "rl_model_384_steps.zip").is_file()
    assert len((out / "command.txt").read_text().splitlines()) == 2


def test_evaluate_policies_cli(trained, tmp_path):
    out = tmp_path / "eval"
    result = _run(
        "evaluate.py",
        "policies",
        "--env",
        "isac_gym/ISCC-v0",
        "--policies",
        f"fixed-beta:mu,lyapunov,ho,ppo:{trained / 'model.zip'}",
        "--episodes",
        "2",
        "--seed",
        "5",
        "--out",
        str(out),
        "--env-kwargs",
        ENV_KWARGS,
        "--no-progress",
    )
    assert "fixed-beta:mu" in result.stdout
    for name in ("policies.csv", "policies.png", "trace.png", "policies.json", "episodes.csv"):
        assert (out / name).is_file(), name
    with open(out / "policies.csv") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    expected = (
        "policy,energy_cost,weighted_cost,success_rate,outage_rate,return_mean,"
        "return_std,decision_ms,episodes"
    ).split(",")
    assert reader.fieldnames[: len(expected)] == expected
    assert {"oracle_ms", "return_mean_ci95", "weighted_cost_ci95"} <= set(reader.fieldnames)
    assert [row["policy"] for row in rows][:3] == ["fixed-beta:mu", "lyapunov", "ho"]
    assert all(row["episodes"] == "2" for row in rows)
    settings = json.loads((out / "policies.json").read_text())
    assert settings["episode_seeds"] == [5, 6] and settings["oracle"] == "fast"
    assert "evaluate.py" in settings["command"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "train.py",
                "--env",
                "isac_gym/ISCC-v0",
                "--algo",
                "dqn",
                "--timesteps",
                "10",
                "--out",
                "x",
            ],
            "invalid choice: 'dqn'",
        ),
        (
            [
                "train.py",
                "--env",
                "isac_gym/ISCC-v0",
                "--algo",
                "ppo",
                "--timesteps",
                "-5",
                "--out",
                "x",
            ],
            "must be a positive integer",
        ),
        (
            ["evaluate.py", "policies", "--policies", "fixed-beta:mu,greedy", "--episodes", "1"],
            "unknown policy 'greedy'; valid: fixed-beta:B, heuristic",
        ),
        (
            ["evaluate.py", "policies", "--policies", "ppo:/no/such/model.zip", "--episodes", "1"],
            "no saved model",
        ),
        (
            ["evaluate.py", "policies", "--policies", "heuristic", "--episodes", "-3"],
            "must be a positive integer",
        ),
        (
            [
                "evaluate.py",
                "policies",
                "--policies",
                "heuristic",
                "--episodes",
                "1",
                "--env-kwargs",
                '{"no_such_key": 1}',
            ],
            "no_such_key",
        ),
    ],
)
def test_bad_arguments_exit_nonzero(args, message):
    result = _run(*args, check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]
