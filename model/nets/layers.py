"""Building blocks shared by the seed network and ours."""

from __future__ import annotations

import itertools

import torch
from torch import nn


def mlp(sizes: list[int], final_activation: bool = True) -> nn.Sequential:
    """Linear → BatchNorm → ReLU per step (the seed's block); the last ReLU is optional."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b)]
        if final_activation or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class DenseConvEncoder(nn.Module):
    """Densely connected 1D convolutions (the seed's pattern encoder), any channel count and length.

    Two dense groups of ``blocks`` 3-wide convolutions (growth 8, LayerNorm, ReLU), a 1×1
    transition halving the length, then a 1×1 convolution to one channel and a linear layer.
    """

    def __init__(self, channels: int, length: int, blocks: int, out_features: int, growth: int = 8):
        super().__init__()
        width = growth * channels

        def conv(c_in, c_out, n, k=3):
            return nn.Sequential(nn.Conv1d(c_in, c_out, k, padding=k // 2, bias=False),
                                 nn.LayerNorm([c_out, n]), nn.ReLU())

        self.first = conv(channels, width, length)
        self.group1 = nn.ModuleList(conv(width + growth * i, growth, length) for i in range(blocks))
        c1 = width + growth * blocks
        self.transition = nn.Sequential(conv(c1, 2 * width, length, k=1), nn.AvgPool1d(2))
        self.group2 = nn.ModuleList(conv(2 * width + growth * i, growth, length // 2)
                                    for i in range(blocks))
        c2 = 2 * width + growth * blocks
        self.last = nn.Sequential(nn.Conv1d(c2, 1, 1), nn.Flatten(1),
                                  nn.Linear(length // 2, out_features), nn.BatchNorm1d(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        history = [self.first(x)]
        for block in self.group1:
            history.append(block(torch.cat(history, dim=1)))
        history = [self.transition(torch.cat(history, dim=1))]
        for block in self.group2:
            history.append(block(torch.cat(history, dim=1)))
        return self.last(torch.cat(history, dim=1))


class FiLMRegressor(nn.Module):
    """Density at query points from position features, FiLM-conditioned on a per-crystal vector.

    scale(c) ⊙ pos + shift(c), then an MLP whose later blocks see that input again (skips).
    Conditioning runs once per crystal and is broadcast over its points, which gives the same
    BatchNorm statistics as repeating it per point.
    """

    def __init__(self, cond_dim: int, width: int, blocks: int, layers_per_block: int = 4,
                 film_layers: int = 4):
        super().__init__()
        film = [cond_dim] * film_layers + [width]
        self.scale = mlp(film)
        self.shift = mlp(film)
        self.first = mlp([width] * (layers_per_block + 1))
        self.blocks = nn.ModuleList(mlp([2 * width] + [width] * layers_per_block)
                                    for _ in range(blocks - 1))
        self.out = nn.Linear(width, 1)

    def forward(self, cond: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """cond (B, C), pos (B, P, W) → (B, P)."""
        b, p, w = pos.shape
        x_in = (self.scale(cond)[:, None, :] * pos + self.shift(cond)[:, None, :]).reshape(b * p, w)
        x = self.first(x_in)
        for block in self.blocks:
            x = block(torch.cat([x, x_in], dim=1))
        return self.out(x).reshape(b, p)


class Variational(nn.Module):
    """A branch that outputs a mean and a std; samples by reparameterisation (the seed's scheme)."""

    def __init__(self, mean: nn.Module, std: nn.Module):
        super().__init__()
        self.mean = mean
        self.std = std

    def forward(self, x: torch.Tensor, sample: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """→ (latent, KL term). The KL is the seed's: −mean(1 + log(σ² + 1e-4) − μ² − σ²)."""
        mu, sigma = self.mean(x), self.std(x)
        kl = -torch.mean(1 + torch.log(sigma ** 2 + 1e-4) - mu ** 2 - sigma ** 2)
        z = mu + torch.randn_like(sigma) * sigma if sample else mu
        return z, kl
