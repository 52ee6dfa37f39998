"""A permutation-equivariant, K-agnostic actor-critic for per-UE decisions (SB3 policy).

The ISCC observation is feature-major: ``F`` per-UE features, each a block of K values,
then ``G`` global ones (``[battery_1..K, harvest_1..K, ..., backlog, slot]``). The action
is also per-UE, ``A`` blocks of K values (``A = 1`` in beta mode: beta_k; ``A = 2`` in
beta-budget mode: beta_k then the budget fraction).

Architecture (Deep Sets / PointNet-style equivariant layers, shared weights):

* ``h_k = phi([x_k, g])`` -- each UE's features ``x_k`` with the globals ``g``;
* ``z_k = rho([h_k, mean_j h_j])`` -- each UE sees the pooled state of all UEs;
* actor: ``mu_k = W z_k + b`` (one head shared by the UEs), with one log-std per
  action type, shared by the UEs;
* critic: ``V = v(mean_k z_k)``.

Permuting the UEs permutes the actions and leaves the value unchanged, and no weight
depends on K: the same network acts for any number of UEs.
"""

from __future__ import annotations

from functools import partial

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(fan_in, fan_out), nn.Tanh()]
    return nn.Sequential(*layers)


class UESetExtractor(BaseFeaturesExtractor):
    """Flat observation -> per-UE embeddings ``z`` (K * D, UE-major) and their mean (D)."""

    def __init__(
        self, observation_space: spaces.Box, num_ues: int, ue_features: int, embed: int = 64
    ):
        self.num_ues, self.ue_features, self.embed = num_ues, ue_features, embed
        self.global_features = int(observation_space.shape[0]) - num_ues * ue_features
        if self.global_features < 0:
            raise ValueError(
                f"observation of size {observation_space.shape[0]} is smaller than "
                f"num_ues * ue_features = {num_ues * ue_features}"
            )
        super().__init__(observation_space, features_dim=(num_ues + 1) * embed)
        self.phi = _mlp([ue_features + self.global_features, embed, embed])
        self.rho = _mlp([2 * embed, embed])

    def per_ue(self, obs: th.Tensor) -> th.Tensor:
        """(B, K, D) embeddings of a flat (B, F K + G) observation."""
        batch, K, F = obs.shape[0], self.num_ues, self.ue_features
        ues = obs[:, : F * K].reshape(batch, F, K).transpose(1, 2)  # (B, K, F)
        shared = obs[:, F * K :].unsqueeze(1).expand(batch, K, self.global_features)
        h = self.phi(th.cat((ues, shared), dim=2))
        pooled = h.mean(dim=1, keepdim=True).expand_as(h)
        return self.rho(th.cat((h, pooled), dim=2))

    def forward(self, obs: th.Tensor) -> th.Tensor:
        z = self.per_ue(obs)
        return th.cat((z.flatten(1), z.mean(dim=1)), dim=1)


class _PerUEHead(nn.Module):
    """``mu_k = W z_k + b`` for every UE, laid out action-type-major (A blocks of K)."""

    def __init__(self, num_ues: int, embed: int, actions_per_ue: int):
        super().__init__()
        self.num_ues, self.embed = num_ues, embed
        self.linear = nn.Linear(embed, actions_per_ue)

    def forward(self, latent: th.Tensor) -> th.Tensor:
        z = latent[:, : self.num_ues * self.embed].reshape(-1, self.num_ues, self.embed)
        return self.linear(z).transpose(1, 2).flatten(1)  # (B, A * K)


class _PooledValue(nn.Module):
    """``V = v(mean_k z_k)``: reads only the pooled block of the features."""

    def __init__(self, embed: int):
        super().__init__()
        self.embed = embed
        self.linear = nn.Linear(embed, 1)

    def forward(self, latent: th.Tensor) -> th.Tensor:
        return self.linear(latent[:, -self.embed :])


class EquivariantPolicy(ActorCriticPolicy):
    """SB3 ``ActorCriticPolicy`` with :class:`UESetExtractor` and per-UE shared heads.

    ``policy_kwargs``: ``num_ues`` (K), ``ue_features`` (F), ``embed`` (D, default 64).
    The number of action types is ``action_dim / K``. Works with PPO and A2C.
    """

    def __init__(
        self,
        observation_space,
        action_space,
        lr_schedule,
        *,
        num_ues: int,
        ue_features: int,
        embed: int = 64,
        **kwargs,
    ):
        if action_space.shape[0] % num_ues:
            raise ValueError(
                f"action size {action_space.shape[0]} is not a multiple of K = {num_ues}"
            )
        self.num_ues, self.embed = num_ues, embed
        self.actions_per_ue = action_space.shape[0] // num_ues
        kwargs.update(
            features_extractor_class=UESetExtractor,
            features_extractor_kwargs=dict(num_ues=num_ues, ue_features=ue_features, embed=embed),
            net_arch=[],  # the extractor's output is the latent of both heads
        )
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        self.action_net = _PerUEHead(self.num_ues, self.embed, self.actions_per_ue)
        self.value_net = _PooledValue(self.embed)
        del self.log_std  # one log-std per action type, shared by the UEs
        self.log_std_per_type = nn.Parameter(
            th.full((self.actions_per_ue,), float(self.log_std_init))
        )
        if self.ortho_init:
            self.action_net.apply(partial(self.init_weights, gain=0.01))
            self.value_net.apply(partial(self.init_weights, gain=1.0))
        self.optimizer = self.optimizer_class(
            self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )

    def _get_action_dist_from_latent(self, latent_pi: th.Tensor):
        log_std = self.log_std_per_type.repeat_interleave(self.num_ues)
        return self.action_dist.proba_distribution(self.action_net(latent_pi), log_std)


def iscc_policy_kwargs(env) -> dict:
    """``policy_kwargs`` of :class:`EquivariantPolicy` for an ISCC-v0 env (K, F from it)."""
    base = env.unwrapped
    ue_features = sum(1 for index in base.observation_index.values() if isinstance(index, slice))
    return dict(num_ues=int(base.K), ue_features=int(ue_features))


__all__ = ["EquivariantPolicy", "UESetExtractor", "iscc_policy_kwargs"]
