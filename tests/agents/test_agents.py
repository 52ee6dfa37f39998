"""Policies (agents.policies), training (agents.training) and the evaluation loop."""

from __future__ import annotations

import subprocess
import sys

import gymnasium
import numpy as np
import pytest

import isac_gym  # noqa: F401 - registers the environments
from agents import evaluation, policies, training

ENV_ID = "isac_gym/ISCC-v0"
FAST = {"oracle": "fast", "horizon": 12}
NON_LEARNED = ["fixed-beta:mu", "fixed-beta:1", "heuristic", "lyapunov", "random", "fl", "fo", "ho"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One BLAS and torch thread: multi-threaded BLAS on 64 x 64 matrices is slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        yield
    else:
        with threadpool_limits(1):
            yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def beta_env():
    env = gymnasium.make(ENV_ID, **FAST)
    yield env
    env.close()


@pytest.mark.parametrize("spec", NON_LEARNED)
def test_non_learned_actions_in_space(spec):
    env, policy = evaluation.make_env_and_policy(ENV_ID, spec, FAST)
    assert env.unwrapped.config.action_mode == policy.action_mode
    obs, _ = env.reset(seed=3)
    for _ in range(4):
        action, state = policy.predict(obs, deterministic=True)
        assert state is None
        assert action.shape == env.action_space.shape and action.dtype == np.float32
        assert env.action_space.contains(action)
        obs, *_ = env.step(action)
    batch, _ = policy.predict(np.stack([obs, obs]))
    assert batch.shape == (2, *env.action_space.shape)
    env.close()


def test_action_modes_declared(beta_env):
    assert policies.make_policy("fo", beta_env).action_mode == "allocation"
    for spec in ("fixed-beta:mu", "heuristic", "lyapunov", "random"):
        assert policies.make_policy(spec, beta_env).action_mode == "beta"


def test_fixed_beta_maps_to_beta(beta_env):
    base = beta_env.unwrapped
    obs, _ = beta_env.reset(seed=0)
    mu = policies.make_policy("fixed-beta:mu", beta_env).predict(obs)[0]
    np.testing.assert_allclose(base.action_to_beta(mu), base.config.mu, rtol=1e-5)
    ctem = policies.make_policy("FIXED-BETA:1", beta_env).predict(obs)[0]
    np.testing.assert_allclose(base.action_to_beta(ctem), 1.0, rtol=1e-5)
    alloc = {k: policies.make_policy(k, beta_env).predict(obs)[0] for k in ("fl", "fo", "ho")}
    np.testing.assert_array_equal((alloc["fl"] + 1) / 2, 0.0)
    np.testing.assert_array_equal((alloc["fo"] + 1) / 2, 1.0)
    np.testing.assert_array_equal((alloc["ho"] + 1) / 2, 0.5)


@pytest.mark.parametrize(
    "spec", ["", "nope", "fixed-beta", "fixed-beta:abc", "fixed-beta:-1", "ppo", "heuristic:3"]
)
def test_bad_spec_lists_valid_names(beta_env, spec):
    with pytest.raises(ValueError, match="heuristic|model path|positive"):
        policies.make_policy(spec, beta_env)


def test_bad_spec_message_names_every_policy(beta_env):
    with pytest.raises(ValueError) as error:
        policies.make_policy("dqn:x.zip", beta_env)
    for name in ("fixed-beta:B", "heuristic", "lyapunov", "random", "fl", "fo", "ho", "ppo:"):
        assert name in str(error.value)


def _decoded(env, battery, backlog=0.0):
    cfg = env.unwrapped.config
    capacity = cfg.cell.C_ap * cfg.slot_duration
    return {
        "battery": np.asarray(battery, float),
        "backlog": backlog,
        "ap_reserved": min(cfg.reserve_max, backlog / capacity),
    }


def test_heuristic_rises_with_battery_and_load(beta_env):
    policy = policies.make_policy("heuristic", beta_env)
    cfg = beta_env.unwrapped.config
    levels = np.linspace(cfg.b_min, cfg.b_max, 4)
    beta = policy.beta(_decoded(beta_env, levels))
    assert np.all(np.diff(beta) > 0)
    p = policy.params
    np.testing.assert_allclose(beta[[0, -1]], [p.beta_low, p.beta_high])
    loaded = policy.beta(_decoded(beta_env, levels, backlog=0.5 * cfg.cell.C_ap))
    if p.load_exponent > 0:
        assert np.all(loaded > beta)
    else:
        np.testing.assert_allclose(loaded, beta)


def test_lyapunov_formula_and_clipping(beta_env):
    cfg = beta_env.unwrapped.config
    params = policies.LyapunovParams(V=0.2, theta=0.7, gamma_z=0.1)
    policy = policies.LyapunovPolicy(beta_env, params)
    battery = np.array([0.05, 0.4, 0.8, 1.0])
    backlog = 0.3 * cfg.cell.C_ap * cfg.slot_duration
    beta = policy.beta(_decoded(beta_env, battery, backlog))
    expected = (0.2 * cfg.mu + 0.1 * 0.3) / np.maximum(1e-3, 0.2 + 0.7 * cfg.b_max - battery)
    np.testing.assert_allclose(beta, np.clip(expected, 1e-3, 1e3))
    assert np.all(np.diff(beta) > 0)
    # B >= theta + V: the denominator hits eps; beta = V mu / eps, then the env's range
    full = _decoded(beta_env, np.full(4, cfg.b_max))
    np.testing.assert_allclose(policy.beta(full), 0.2 * cfg.mu / 1e-3)
    strong = policies.LyapunovPolicy(
        beta_env, policies.LyapunovParams(V=0.05, theta=0.8, gamma_z=10.0)
    )
    congested = _decoded(beta_env, np.full(4, cfg.b_max), backlog)
    np.testing.assert_allclose(strong.beta(congested), 1e3)  # clip([...], 1e-3, 1e3)
    np.testing.assert_allclose(strong._beta_action(strong.beta(congested)), 1.0)  # 100


def test_random_policy_reproducible(beta_env):
    policy = policies.make_policy("random", beta_env)
    obs, _ = beta_env.reset(seed=0)
    policy.reset(seed=5)
    first = [policy.predict(obs)[0] for _ in range(3)]
    policy.reset(seed=5)
    second = [policy.predict(obs)[0] for _ in range(3)]
    np.testing.assert_array_equal(first, second)


def test_common_random_numbers_across_policies():
    """The same seed gives every policy (and both action modes) the same exogenous draws."""
    logs = {}
    for spec in ("fixed-beta:mu", "random", "fo"):
        env, policy = evaluation.make_env_and_policy(ENV_ID, spec, FAST)
        policy.reset(seed=7)
        obs, _ = env.reset(seed=7)
        tasks, harvests = [], []
        for _ in range(FAST["horizon"]):
            obs, _, _, truncated, info = env.step(policy.predict(obs)[0])
            tasks.append(info["task"])
            harvests.append(info["harvest"])
        assert truncated
        logs[spec] = (np.array(tasks), np.array(harvests))
        env.close()
    reference = logs["fixed-beta:mu"]
    for spec in ("random", "fo"):
        np.testing.assert_array_equal(logs[spec][0], reference[0])
        np.testing.assert_array_equal(logs[spec][1], reference[1])


def test_evaluate_policies_summary():
    results, traces = evaluation.evaluate_policies(
        ENV_ID, ["fixed-beta:mu", "fl"], 2, seed=4, env_kwargs=FAST, progress=False
    )
    assert [(r.policy, r.seed) for r in results] == [
        ("fixed-beta:mu", 4),
        ("fixed-beta:mu", 5),
        ("fl", 4),
        ("fl", 5),
    ]
    assert set(traces) == {"fixed-beta:mu", "fl"}
    assert np.asarray(traces["fl"]["battery"]).shape == (FAST["horizon"], 4)
    rows = evaluation.summarize(results, oracle="fast")
    assert [row["policy"] for row in rows] == ["fixed-beta:mu", "fl"]
    for row in rows:
        assert set(evaluation.COLUMNS) <= set(row)
        # pooled over the episodes (the counts themselves: tests/agents/test_metrics.py)
        group = [r for r in results if r.policy == row["policy"]]
        assert row["success_rate"] == sum(r.successes for r in group) / sum(r.tasks for r in group)
        assert row["outage_rate"] == sum(r.outages for r in group) / (2 * FAST["horizon"] * 4)
        assert row["episodes"] == 2 and row["decision_ms"] >= 0.0
    assert rows[0]["oracle"] == "fast" and rows[1]["action_mode"] == "allocation"


def test_ci95():
    assert np.isnan(evaluation.ci95([1.0]))
    # two values 0, 2: mean 1, s = sqrt(2), t_{0.975,1} = 12.706
    assert evaluation.ci95([0.0, 2.0]) == pytest.approx(12.7062 * np.sqrt(2) / np.sqrt(2), 1e-4)


def test_yaml_hyperparams_load(tmp_path):
    text = """
env/A-v0:  # comment
  n_envs: 2
  normalize: {norm_obs: true, norm_reward: false}
  learning_rate: 3.0e-4
  policy_kwargs:
    net_arch: [64, 64]
    activation_fn: tanh
  name: "a # b"
default:
  gamma: 0.99
"""
    (tmp_path / "hp.yml").write_text(text)
    parsed = training.load_yaml(tmp_path / "hp.yml")
    assert parsed == {
        "env/A-v0": {
            "n_envs": 2,
            "normalize": {"norm_obs": True, "norm_reward": False},
            "learning_rate": 3e-4,
            "policy_kwargs": {"net_arch": [64, 64], "activation_fn": "tanh"},
            "name": "a # b",
        },
        "default": {"gamma": 0.99},
    }
    for algo in training.ALGO_NAMES:
        hp = training.load_hyperparams(algo, ENV_ID)
        assert hp["policy"] in ("MlpPolicy", *training.CUSTOM_POLICIES) and "normalize" in hp
        assert training.load_hyperparams(algo, "Unknown-v0") == training.load_hyperparams(
            algo, "default"
        )


def test_light_imports():
    """--help of train.py / evaluate.py must not pay for torch or stable-baselines3."""
    code = (
        "import sys, agents, agents.policies, agents.evaluation, agents.training, "
        "agents.tuning; "
        "print(any(m in sys.modules for m in ('torch', 'stable_baselines3', 'matplotlib')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _small_ppo(out, seed=0, timesteps=256, eval_freq=128):
    return training.train(
        ENV_ID,
        "ppo",
        timesteps,
        out,
        seed=seed,
        n_envs=1,
        env_kwargs={"oracle": "fast", "horizon": 32},
        hyperparams={
            "normalize": {"norm_obs": True, "norm_reward": True},
            "n_steps": 64,
            "batch_size": 32,
            "n_epochs": 2,
        },
        eval_freq=eval_freq,
        eval_episodes=1,
        checkpoint_freq=128,
        progress=False,
    )


def test_ppo_smoke_and_sb3_policy(tmp_path):
    result = _small_ppo(tmp_path / "run")
    out = result.out
    assert result.num_timesteps == 256
    for name in (
        "model.zip",
        "vecnormalize.pkl",
        "config.json",
        "command.txt",
        "training_curve.png",
        "best/best_model.zip",
        "eval/evaluations.npz",
    ):
        assert (out / name).is_file(), name
    assert list((out / "logs" / "run_0").glob("progress.csv"))
    progress = (out / "logs" / "run_0" / "progress.csv").read_text().splitlines()[0]
    for key in ("env/reward_energy", "env/reward_drop", "env/weighted_cost", "env/success_rate"):
        assert key in progress

    env = gymnasium.make(ENV_ID, **FAST)
    policy = policies.make_policy(f"ppo:{out / 'model.zip'}", env)
    assert policy.action_mode == "beta" and policy.vec_normalize is not None
    assert not policy.vec_normalize.training
    obs, _ = env.reset(seed=0)
    action, _ = policy.predict(obs)
    assert env.action_space.contains(np.asarray(action, np.float32))
    # the statistics are applied: a different obs_rms changes the action
    policy.vec_normalize.obs_rms.mean = policy.vec_normalize.obs_rms.mean + 5.0
    shifted, _ = policy.predict(obs)
    assert not np.allclose(action, shifted)
    env.close()


def test_same_seed_same_training(tmp_path):
    import torch

    first = _small_ppo(tmp_path / "a", seed=3, timesteps=128, eval_freq=10**6)
    second = _small_ppo(tmp_path / "b", seed=3, timesteps=128, eval_freq=10**6)
    a = training.algo_class("ppo").load(str(first.model_path)).policy.state_dict()
    b = training.algo_class("ppo").load(str(second.model_path)).policy.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("algo", training.ALGO_NAMES)
def test_init_action_bias(beta_env, algo):
    model = training.algo_class(algo)("MlpPolicy", beta_env, seed=0, device="cpu")
    training.init_action_bias(model, -0.5)
    obs, _ = beta_env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(action, -0.5, atol=0.01)


def _batched_policies():
    """Every policy whose ``predict`` maps a batch at once, with constants that make the
    global features (backlog, AP load) matter, on an env of its action mode."""
    beta = gymnasium.make(ENV_ID, **FAST)
    budget = gymnasium.make(ENV_ID, **FAST, action_mode="beta_budget")
    allocation = gymnasium.make(ENV_ID, **FAST, action_mode="allocation")
    heuristic = policies.HeuristicParams(load_exponent=1.0)
    lyapunov = policies.LyapunovParams(gamma_z=0.5)
    lyapunov_budget = policies.LyapunovBudgetParams(gamma_z=0.5, rho=0.5)
    return [
        policies.make_policy("fixed-beta:mu", beta),
        policies.HeuristicPolicy(beta, heuristic),
        policies.LyapunovPolicy(beta, lyapunov),
        policies.make_policy("fo", allocation),
        policies.LyapunovBudgetPolicy(budget, lyapunov_budget),
        policies.make_policy("threshold-budget", budget),
    ]


def test_a_batch_acts_as_its_rows_one_by_one():
    """``predict`` on (n, D) observations (one call when ``batched``) equals the rows'
    single-observation actions: per-UE features stay per row and per UE, and each
    row's global features (backlog, AP load) are that row's."""
    rng = np.random.default_rng(0)
    for policy in _batched_policies():
        assert policy.batched, policy
        observations = rng.uniform(-1.0, 1.0, (7, *policy.observation_space.shape))
        observations = observations.astype(np.float32)
        batch, _ = policy.predict(observations)
        rows = np.stack([policy.predict(row)[0] for row in observations])
        assert batch.dtype == np.float32 and batch.shape == rows.shape
        np.testing.assert_allclose(batch, rows, rtol=0, atol=1e-6, err_msg=policy.name)
        if policy.name not in ("fixed-beta:mu", "FO"):  # the state-dependent ones
            assert np.ptp(batch, axis=0).max() > 0.1, policy.name
