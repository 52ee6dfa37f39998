"""train.py and evaluate.py policies as subprocesses into a temporary folder."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
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
    _run(*_train_args(out, timesteps, hyperparams, *extra, every=128))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("train")
    (folder / "hp.yml").write_text(HYPERPARAMS)
    out = folder / "ppo"
    _train(out, 256, folder / "hp.yml", "--seed", "1", "--checkpoint-freq", "64")
    return out


def _parameters(model_zip: Path) -> dict:
    from stable_baselines3 import PPO

    return {k: v.numpy() for k, v in PPO.load(model_zip, device="cpu").policy.state_dict().items()}


def test_timesteps_stop_exactly_and_equal_the_longer_runs_checkpoint(trained, tmp_path):
    """--timesteps inside a rollout (192 of 2 x 128) stops there, unlearned, as the 256-step
    run's checkpoint at 192; on a rollout's end (128) that rollout is learned from."""
    hp = trained.parent / "hp.yml"
    inside, boundary = tmp_path / "inside", tmp_path / "boundary"
    _train(inside, 192, hp, "--seed", "1")
    _train(boundary, 128, hp, "--seed", "1")
    assert json.loads((inside / "config.json").read_text())["num_timesteps"] == 192
    assert json.loads((boundary / "config.json").read_text())["num_timesteps"] == 128
    longer = _parameters(trained / "checkpoints" / "rl_model_192_steps.zip")  # one update
    for run in (inside, boundary):
        params = _parameters(run / "model.zip")
        assert all(np.array_equal(params[k], longer[k]) for k in longer), run.name
    before_update = _parameters(trained / "checkpoints" / "rl_model_128_steps.zip")
    assert not all(np.array_equal(before_update[k], longer[k]) for k in longer)


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
    out = tmp_path / "resumed"
    shutil.copytree(trained, out)
    shutil.rmtree(out / "checkpoints")
    (out / "checkpoints").mkdir()
    for name in ("rl_model_128_steps.zip", "rl_model_vecnormalize_128_steps.pkl"):
        shutil.copy(trained / "checkpoints" / name, out / "checkpoints" / name)
    _train(out, 384, trained.parent / "hp.yml", "--resume", "--eval-freq", "96")
    with np.load(out / "eval" / "evaluations.npz") as data:  # every 96 total steps
        assert data["timesteps"].tolist() == [128, 192, 288, 384]
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
    assert "2 episode(s) per policy: the 95% CIs are meaningless" in result.stderr
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


# --- run lifecycle: interrupt and resume, reused folders, bad paths ---------------------
TINY = HYPERPARAMS.replace("n_steps: 128", "n_steps: 32").replace(
    "batch_size: 64", "batch_size: 32"
)


def _train_args(
    out: Path, timesteps: int, hyperparams: Path, *extra: str, every: int = 32
) -> list[str]:
    """train.py arguments: PPO on the short env, evaluating and checkpointing every
    ``every`` steps (later arguments override earlier ones)."""
    return [
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
        str(every),
        "--eval-episodes",
        "1",
        "--checkpoint-freq",
        str(every),
        "--no-progress",
        *extra,
    ]


def test_sigint_saves_a_checkpoint_and_resume_continues_with_evaluations(tmp_path):
    import signal
    import time

    (tmp_path / "hp.yml").write_text(TINY)
    out = tmp_path / "run"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    args = _train_args(out, 10**6, tmp_path / "hp.yml")
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not list(out.glob("checkpoints/rl_model_*_steps.zip")):  # training has started
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT, stderr[-2000:]
    assert "Traceback" not in stderr
    assert "resume with:" in stdout and stdout.strip().endswith("--resume")
    config = json.loads((out / "config.json").read_text())
    stopped_at = config["num_timesteps"]
    assert config["runs"][-1]["stopped_by"] == "SIGINT"
    assert (out / "checkpoints" / f"rl_model_{stopped_at}_steps.zip").is_file()
    assert (out / "checkpoints" / f"rl_model_vecnormalize_{stopped_at}_steps.pkl").is_file()
    state = json.loads(
        (out / "checkpoints" / f"rl_model_state_{stopped_at}_steps.json").read_text()
    )
    evaluations_before = state["evaluations"]
    assert evaluations_before >= 1 and (out / "best" / "best_model.zip").is_file()

    target = stopped_at + 64
    result = _run(*_train_args(out, target, tmp_path / "hp.yml", "--resume"))
    assert f"resuming from {out / 'checkpoints'}/rl_model_{stopped_at}_steps.zip" in result.stderr
    assert (out / "best" / "best_model.zip").is_file()
    with np.load(out / "eval" / "evaluations.npz") as data:
        steps = data["timesteps"].tolist()
        best = float(data["results"].mean(axis=1).max())
    # two more evaluations, on the run's grid of every 32 total steps
    assert len(steps) == evaluations_before + 2 and steps == sorted(steps)
    assert steps[-1] == target - target % 32 and all(step % 32 == 0 for step in steps)
    final = int(json.loads((out / "config.json").read_text())["num_timesteps"])
    state = json.loads((out / "checkpoints" / f"rl_model_state_{final}_steps.json").read_text())
    assert state["evaluations"] == len(steps)
    assert state["best_mean_reward"] == pytest.approx(best)  # the best of both runs
    config = json.loads((out / "config.json").read_text())
    assert config["runs"][-1]["start_timesteps"] == stopped_at


def test_reused_folder_is_refused_and_overwrite_clears_it(trained, tmp_path):
    out = tmp_path / "reused"
    shutil.copytree(trained, out)
    hp = trained.parent / "hp.yml"
    refused = _run(*_train_args(out, 128, hp), check=False)
    assert refused.returncode == 2
    assert "is not empty" in refused.stderr and "--overwrite" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert (out / "checkpoints" / "rl_model_256_steps.zip").is_file()  # untouched

    (tmp_path / "tiny.yml").write_text(TINY)
    result = _run(*_train_args(out, 40, tmp_path / "tiny.yml", "--overwrite"))
    assert "ends at" not in result.stderr  # one env: exactly 40 steps
    assert not (out / "checkpoints" / "rl_model_256_steps.zip").exists()
    assert json.loads((out / "config.json").read_text())["num_timesteps"] == 40
    assert len((out / "command.txt").read_text().splitlines()) == 1


def _bad_path_cases(tmp: Path) -> list[tuple[list[str], str]]:
    blocker = tmp / "a_file"
    train = ["train.py", "--env", "isac_gym/ISCC-v0", "--algo", "ppo", "--timesteps", "64"]
    policies = ["evaluate.py", "policies", "--policies", "heuristic", "--episodes", "1"]
    paper = ["evaluate.py", "paper", "--figure", "2", "--trials", "1"]
    bench = ["-m", "experiments.cli", "mimo", "--drops", "1"]
    return [
        ([*train, "--out", "/proc/no_such/run"], "--out /proc/no_such/run: cannot create"),
        ([*train, "--out", str(blocker / "run")], "cannot create the folder (Not a directory)"),
        ([*policies, "--out", str(blocker / "x")], "Not a directory"),
        ([*paper, "--out", str(blocker)], "exists and is not a folder"),
        ([*bench, "--csv", str(blocker / "x.csv")], "--csv"),
        (
            [
                "train.py",
                "--env",
                "nope/X-v0",
                "--algo",
                "ppo",
                "--timesteps",
                "64",
                "--out",
                str(tmp / "r"),
            ],
            "NamespaceNotFound",
        ),
        ([*policies, "--env", "nope/X-v0", "--out", str(tmp / "p")], "NamespaceNotFound"),
    ]


@pytest.mark.parametrize("case", range(7))
def test_bad_paths_and_envs_are_one_line_errors(case, tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    args, message = _bad_path_cases(tmp_path)[case]
    result = _run(*args, check=False)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and message in lines[0], result.stderr
