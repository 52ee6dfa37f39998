"""ISCC-v0 action_mode="beta_budget": checkers, budgets, the budget drop cause, common
random numbers across modes, determinism, and the outage floor of the other modes."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import isac_gym  # noqa: F401  (registers the ids)
from isac_gym.envs.allocation import DROP_CAUSES
from isac_gym.envs.vector import ISCCVectorEnv

ENV_ID = "isac_gym/ISCC-v0"
FAST = dict(oracle="fast", horizon=30)
#: batteries that start low and barely recharge: budgets and floors bind
DRAINING = dict(
    oracle="fast",
    horizon=6,
    b_init=(0.07, 0.2),
    harvest_rate_on=2.0,
    harvest_rate_off=0.0,
    task_probability=1.0,
)
BUDGET_CODE = 1 + DROP_CAUSES.index("budget")


def make(**kwargs):
    return gym.make(ENV_ID, **{**FAST, "action_mode": "beta_budget", **kwargs})


def random_actions(steps, size, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (steps, size)).astype(np.float32)


def test_checkers_pass_without_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(make(horizon=5).unwrapped)
        sb3_check_env(make(horizon=5).unwrapped)
    assert [str(w.message) for w in caught if w.category is not ResourceWarning] == []


def test_action_has_2k_entries_and_wrong_shapes_raise():
    env = make(K=3)
    assert env.action_space.shape == (6,)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(6,\) in action_mode 'beta_budget'"):
        env.step(np.zeros(3))
    assert "beta_budget" in str(pytest.raises(ValueError, make, action_mode="budget").value)


def test_ue_energy_respects_the_budget_fraction_of_the_usable_battery():
    env = make(**DRAINING)
    cfg, K = env.unwrapped.config, 4
    slots = 0
    for seed in (0, 1):
        env.reset(seed=seed)
        for action in random_actions(cfg.horizon, 2 * K, seed=seed):
            _, _, _, _, info = env.step(action)
            usable = np.maximum((1 - cfg.leakage) * info["battery_before"] - cfg.b_min, 0.0)
            fraction = (action[K:].astype(float) + 1.0) / 2.0
            budget = fraction * usable  # the oracle solves under budget less 1e-6 relative
            np.testing.assert_allclose(info["energy_budget"], budget, rtol=2e-6, atol=2e-12)
            assert (info["energy_ue"] <= budget).all()
            slots += int((info["energy_ue"] > 0.5 * info["energy_budget"]).sum())
    assert slots > 0  # the budgets were nearly used, not slack everywhere


def budget_slot(fraction_action):
    """The first slot of seed 3 (every UE has a task and a full-enough battery)."""
    env = make(task_probability=1.0, b_init=(0.5, 0.6))
    env.reset(seed=3)
    action = np.r_[np.zeros(4), np.full(4, fraction_action)]
    return env.step(action)[4]


def test_a_zero_budget_drops_every_task_with_cause_budget():
    info = budget_slot(-1.0)  # fraction 0: no UE energy at all (sensing needs some)
    assert info["task"].all()
    np.testing.assert_array_equal(info["drop_cause"], np.full(4, BUDGET_CODE))
    assert info["drops"] == {"battery": 0, "ap_capacity": 0, "deadline": 0, "budget": 4}
    np.testing.assert_array_equal(info["energy_ue"], np.zeros(4))
    full = budget_slot(1.0)  # the other side: the whole battery serves them all
    assert full["success"].all() and sum(full["drops"].values()) == 0


def test_a_task_the_full_battery_cannot_serve_is_a_battery_drop_not_budget():
    env = make(task_probability=1.0, b_init=(0.05, 0.05))  # nothing above b_min
    env.reset(seed=3)
    info = env.step(np.r_[np.zeros(4), np.full(4, -1.0)])[4]
    assert info["drops"]["budget"] == 0 and info["drops"]["battery"] == 4


def exogenous_trace(action_mode, steps=6):
    env = gym.make(ENV_ID, **{**FAST, "action_mode": action_mode})
    obs, _ = env.reset(seed=11)
    index = env.unwrapped.observation_index
    keys = ("task_size", "deadline", "cpu", "channel")
    trace = [np.concatenate([obs[index[key]] for key in keys])]
    actions = random_actions(steps, env.action_space.shape[0], seed=len(action_mode))
    for action in actions:
        obs, _, _, _, info = env.step(action)
        unwrapped = env.unwrapped
        trace += [np.concatenate([obs[index[key]] for key in keys]), info["task"], info["harvest"]]
        trace += [unwrapped._snapshot.H, np.array([unwrapped._arrivals])]
    return trace


def test_exogenous_draws_are_equal_across_action_modes():
    reference = exogenous_trace("beta")
    for mode in ("allocation", "beta_budget"):
        for ours, theirs in zip(exogenous_trace(mode), reference, strict=True):
            np.testing.assert_array_equal(ours, theirs)


def assert_close(a, b, rtol=1e-9):
    """Nested equality: floats to ``rtol`` (batched and per-slot oracles agree to 1e-9)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_close(a[key], b[key], rtol)
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_close(x, y, rtol)
    elif isinstance(a, np.ndarray) and a.dtype.kind == "f":
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0)
    elif isinstance(a, np.ndarray) and a.dtype == object:
        for x, y in zip(a, b, strict=True):
            assert_close(x, y, rtol)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, float):
        assert a == b or a == pytest.approx(b, rel=rtol, abs=0)
    else:
        assert a == b


def run(envs, actions, seed):
    trace = [envs.reset(seed=seed)]
    trace += [envs.step(action) for action in actions]
    envs.close()
    return trace


def test_native_vector_env_equals_sync_vector_env_and_is_seeded():
    kwargs = dict(num_envs=2, action_mode="beta_budget", **DRAINING)
    actions = np.random.default_rng(4).uniform(-1, 1, (7, 2, 8)).astype(np.float32)
    actions[..., 4:] = -1.0 + 0.1 * (actions[..., 4:] + 1.0)  # fractions <= 0.1: drops
    native = gym.make_vec(ENV_ID, vectorization_mode="vector_entry_point", **kwargs)
    sync = gym.make_vec(ENV_ID, vectorization_mode="sync", **kwargs)
    assert isinstance(native, ISCCVectorEnv) and native.action_space.shape == (2, 8)
    ours = run(native, actions, seed=[5, 9])
    assert_close(ours, run(sync, actions, seed=[5, 9]))
    assert_close(ours, run(ISCCVectorEnv(**kwargs), actions, seed=[5, 9]), rtol=0)
    causes = [step[4]["drop_cause"].ravel() for step in ours[1:] if "drop_cause" in step[4]]
    assert BUDGET_CODE in np.concatenate(causes)  # the comparison saw budget drops
    assert np.array([step[3] for step in ours[1:]]).sum() == 2  # and the episodes' ends


def test_single_env_is_deterministic():
    actions = random_actions(6, 8, seed=2)
    traces = []
    for _ in range(2):
        env = make(**DRAINING)
        traces.append([env.reset(seed=7)] + [env.step(action) for action in actions])
    assert_close(traces[0], traces[1], rtol=0)


@pytest.mark.parametrize("action_mode", ["beta", "allocation"])
def test_the_oracle_alone_never_spends_into_outage(action_mode):
    """Without leakage a UE ends a slot in outage only if it started it in outage: the
    oracle's budget is the energy above b_min + outage_margin (beta, allocation modes)."""
    settings = {**DRAINING, "horizon": 12, "b_init": (0.05, 0.085)}  # some start in outage
    env = gym.make(ENV_ID, action_mode=action_mode, leakage=0.0, **settings)
    cfg = env.unwrapped.config
    threshold = cfg.b_min + cfg.outage_margin
    binding = outages = 0
    env.reset(seed=0)  # three UEs start below b_out, one above
    for action in random_actions(cfg.horizon, 4, seed=5):
        info = env.step(action)[4]
        before = info["battery_before"]
        floor = np.maximum(before - threshold, 0.0)
        np.testing.assert_allclose(info["energy_budget"], floor, rtol=2e-6, atol=2e-12)
        np.testing.assert_array_equal(info["outage"], info["battery"] < threshold)
        assert not (info["outage"] & (before >= threshold)).any()
        # slots where the floor mattered: energy was spent from a battery near it
        binding += int(((before >= threshold) & (before < threshold + 0.02)).sum())
        outages += int(info["outage"].sum())
    assert binding > 0 and outages > 0
