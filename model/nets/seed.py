"""The seed network (Guo et al., arXiv:2312.15136): variational, query-based, multi-branch.

Re-implemented from the paper and its public code (read, not copied): a densely connected 1D-conv
encoder of the Mo Kα pattern (2θ 0–180° in 1024 bins, max 1) and a composition MLP (119 fractions),
each with separate mean and std branches sampled by reparameterisation; random Fourier features of
the query point (fixed Gaussian frequencies, σ = 3, 128 of them) through an MLP; FiLM scale and
shift from the concatenated latents; an MLP with skip connections regresses the density.
Defaults are the paper's sizes (width 512); smaller widths are for CPU training.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from model.nets.inputs import mean_atomic_number
from model.nets.layers import DenseConvEncoder, FiLMRegressor, Variational, mlp


class SeedNet(nn.Module):
    kind = "seed"

    def __init__(self, width: int = 512, conv_blocks: int = 4, formula_blocks: int = 3,
                 regressor_blocks: int = 3, num_freq: int = 128, sigma: float = 3.0, length: int = 1024):
        super().__init__()
        self.config = {"width": width, "conv_blocks": conv_blocks, "formula_blocks": formula_blocks, "regressor_blocks": regressor_blocks,
                       "num_freq": num_freq, "sigma": sigma, "length": length}

        def pattern_branch():
            return DenseConvEncoder(1, length, conv_blocks, width)

        def formula_branch():
            return nn.Sequential(nn.Linear(119, width), nn.BatchNorm1d(width),
                                 *[nn.Sequential(nn.ReLU(), nn.Linear(width, width), nn.BatchNorm1d(width))
                                   for _ in range(formula_blocks - 1)])

        self.pattern = Variational(pattern_branch(), pattern_branch())
        self.formula = Variational(formula_branch(), formula_branch())
        # fixed random frequencies: a buffer, so they travel with the weights
        self.register_buffer("frequencies", torch.randn(num_freq, 3) * sigma)
        self.position = nn.Sequential(*mlp([2 * num_freq, width]), nn.Linear(width, width))
        self.regressor = FiLMRegressor(2 * width, width, regressor_blocks)

    def density_scale(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,) e/Å³ per unit of output: the mean atomic number (the seed knows no cell)."""
        return mean_atomic_number(inputs["composition"])

    def encode(self, inputs: dict[str, torch.Tensor], sample: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """→ (conditioning (B, 2·width), KL)."""
        zp, klp = self.pattern(inputs["pattern"], sample)
        zf, klf = self.formula(inputs["composition"], sample)
        return torch.cat([zp, zf], dim=1), klp + klf

    def decode(self, cond: torch.Tensor, inputs: dict[str, torch.Tensor], points: torch.Tensor) -> torch.Tensor:
        """points (B, P, 3) fractional → (B, P) density in units of ``density_scale``."""
        phase = 2 * math.pi * (points - 0.5) @ self.frequencies.T
        feats = torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1)
        b, p, _ = feats.shape
        pos = self.position(feats.reshape(b * p, -1)).reshape(b, p, -1)
        return self.regressor(cond, pos)
