"""Long environment runs (``pytest -m slow``): robustness and the long-horizon trade-off."""

import gymnasium as gym
import numpy as np
import pytest

import isac_gym  # noqa: F401

pytestmark = pytest.mark.slow


def test_20000_random_steps_with_bound_actions_stay_finite():
    env = gym.make("isac_gym/ISCC-v0", oracle="fast")
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for step in range(20_000):
        action = rng.uniform(-1, 1, 4)
        bound = rng.random(4) < 0.3
        action[bound] = rng.choice([-1.0, 1.0], bound.sum())
        obs, reward, terminated, truncated, info = env.step(action.astype(np.float32))
        assert np.all(np.isfinite(obs)) and np.isfinite(reward), step
        for key in ("energy_ue", "energy_ap", "alpha", "beta", "battery", "harvest"):
            assert np.all(np.isfinite(info[key])), (step, key)
        assert all(np.isfinite(v) for v in info["rewards"].values()), step
        if terminated or truncated:
            env.reset()


def test_myopic_beta_drops_tasks_or_drains_batteries_on_the_default_preset():
    """beta = mu (the per-slot optimum) is not the long-horizon optimum."""
    env = gym.make("isac_gym/ISCC-v0", oracle="fast")
    env.reset(seed=0)
    action = env.unwrapped.beta_to_action(np.full(4, env.unwrapped.config.mu))
    drops = outages = 0
    start = env.unwrapped._battery.copy()
    truncated = False
    while not truncated:
        _, _, _, truncated, info = env.step(action)
        drops += sum(info["drops"].values())
        outages += int(info["outage"].sum())
    assert drops > 0.02 * 500 * 4 * 0.9 or np.any(info["battery"] < start - 0.1)
