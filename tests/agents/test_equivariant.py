"""The permutation-equivariant, K-agnostic actor-critic (agents/equivariant.py)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO

import isac_gym  # noqa: F401  (registers the ids)
from agents.equivariant import EquivariantPolicy, iscc_policy_kwargs


def build(K: int, actions_per_ue: int = 1, seed: int = 0):
    F, G = 6, 2
    obs_space = gym.spaces.Box(-1.0, 1.0, (F * K + G,), np.float32)
    act_space = gym.spaces.Box(-1.0, 1.0, (actions_per_ue * K,), np.float32)
    th.manual_seed(seed)
    return EquivariantPolicy(obs_space, act_space, lambda _: 3e-4, num_ues=K, ue_features=F)


def permute_obs(obs: np.ndarray, order: np.ndarray, K: int, F: int = 6) -> np.ndarray:
    ues = obs[: F * K].reshape(F, K)[:, order].ravel()
    return np.concatenate((ues, obs[F * K :]))


@pytest.mark.parametrize("actions_per_ue", [1, 2])
def test_permuting_the_ues_permutes_the_actions_and_keeps_the_value(actions_per_ue):
    K = 4
    policy = build(K, actions_per_ue)
    rng = np.random.default_rng(1)
    obs = rng.uniform(-1, 1, 6 * K + 2).astype(np.float32)
    order = np.array([2, 0, 3, 1])
    with th.no_grad():
        tensor = th.as_tensor(np.stack((obs, permute_obs(obs, order, K))))
        dist = policy.get_distribution(tensor)
        mean = dist.distribution.mean.numpy().reshape(2, actions_per_ue, K)
        std = dist.distribution.stddev.numpy()
        value = policy.predict_values(tensor).numpy().ravel()
    np.testing.assert_allclose(mean[1], mean[0][:, order], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(std[0], std[1])
    assert value[0] == pytest.approx(value[1], rel=1e-5, abs=1e-7)
    assert not np.allclose(mean[0][:, 0], mean[0][:, 1])  # the UEs are not all alike


def test_no_weight_depends_on_the_number_of_ues():
    small, large = build(2, seed=3), build(7, seed=3)
    shapes = {name: p.shape for name, p in small.named_parameters()}
    assert shapes == {name: p.shape for name, p in large.named_parameters()}
    large.load_state_dict(small.state_dict())  # a K = 2 policy acts for K = 7


def test_ppo_trains_a_few_steps_on_iscc_with_it():
    env = gym.make("isac_gym/ISCC-v0", oracle="fast", horizon=20)
    model = PPO(
        EquivariantPolicy,
        env,
        n_steps=32,
        batch_size=16,
        n_epochs=1,
        policy_kwargs=iscc_policy_kwargs(env),
        seed=0,
        device="cpu",
    )
    model.learn(64)
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert action.shape == (env.unwrapped.K,)
