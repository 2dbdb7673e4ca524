"""Our network: the seed's variational FiLM design, made wavelength-free and told the cell.

Differences from the seed, each for a reason:
- the pattern is read on a Q grid (Å⁻¹) with a measured-range mask, so any wavelength and a
  truncated 2θ range give the same kind of input;
- the indexed lattice (a, b, c, α, β, γ) and the crystal system condition the density;
- the pattern is also read at the Q of every reflection hkl of that lattice (|h|,|k|,|l| ≤ h_max),
  which hands the network |F(hkl)|²-like numbers instead of making it learn the cell from peaks;
- the query point is encoded by the periodic waves cos/sin 2π h·x of those same hkl, alone and
  weighted by the square root of the pattern height at hkl, so the output is periodic in the cell
  and its Fourier content follows the observed reflections;
- composition carries a flag saying whether fractions are known or only the element set;
- the output is in units of Z̄ electrons per 1/2048 of the cell, so targets do not scale with the
  cell, and passes through a softplus: a density is never negative, and a linear output rings
  (negative ripples around sharp atoms) early in training.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from model.nets.inputs import (
    Q_GRID,
    cell_volume,
    half_space_hkl,
    intensities_at_hkl,
    lattice_features,
    mean_atomic_number,
    system_one_hot,
)
from model.nets.layers import DenseConvEncoder, FiLMRegressor, Variational, mlp


class OursNet(nn.Module):
    kind = "ours"

    def __init__(self, width: int = 256, latent: int = 256, conv_blocks: int = 4,
                 regressor_blocks: int = 3, layers_per_block: int = 2, h_max: int = 3):
        super().__init__()
        self.config = {"width": width, "latent": latent, "conv_blocks": conv_blocks, "regressor_blocks": regressor_blocks,
                       "layers_per_block": layers_per_block, "h_max": h_max}
        self.register_buffer("hkl", half_space_hkl(h_max))
        n_hkl = self.hkl.shape[0]

        def pattern_branch():
            return nn.Sequential(DenseConvEncoder(2, Q_GRID.numel(), conv_blocks, latent), nn.ReLU())

        def reflection_branch():
            return nn.Sequential(*mlp([2 * n_hkl + 14, latent]), nn.Linear(latent, latent))

        def formula_branch():
            return nn.Sequential(*mlp([120, latent]), nn.Linear(latent, latent))

        self.pattern = Variational(pattern_branch(), pattern_branch())
        self.reflections = Variational(reflection_branch(), reflection_branch())
        self.formula = Variational(formula_branch(), formula_branch())
        self.cell = mlp([14, latent, latent])
        self.position = nn.Linear(4 * n_hkl, width)
        self.regressor = FiLMRegressor(4 * latent, width, regressor_blocks, layers_per_block, film_layers=3)

    def density_scale(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,) e/Å³ per unit of output: Z̄ electrons in 1/2048 of the cell, i.e. 16 voxels of 32³.

        An atom then peaks near 1 whatever the cell size, because the CMED's Debye–Waller
        factor makes atoms look alike in grid units (model.density.grid_biso).
        """
        return mean_atomic_number(inputs["composition"]) * 2048 / cell_volume(inputs["lattice"])

    def encode(self, inputs: dict[str, torch.Tensor], sample: bool) -> tuple[torch.Tensor, torch.Tensor]:
        cell = torch.cat([lattice_features(inputs["lattice"]), system_one_hot(inputs["system"])], 1)
        at_hkl = intensities_at_hkl(inputs["pattern_q"], inputs["lattice"], self.hkl)
        zp, klp = self.pattern(inputs["pattern_q"], sample)
        zr, klr = self.reflections(torch.cat([at_hkl.flatten(1), cell], 1), sample)
        zf, klf = self.formula(torch.cat([inputs["composition"], inputs["composition_known"][:, None]], 1), sample)
        return torch.cat([zp, zr, zf, self.cell(cell)], 1), klp + klr + klf

    def decode(self, cond: torch.Tensor, inputs: dict[str, torch.Tensor], points: torch.Tensor) -> torch.Tensor:
        amplitude = torch.sqrt(intensities_at_hkl(inputs["pattern_q"], inputs["lattice"], self.hkl)[:, 0]
                               .clamp(min=0))
        # position = Linear([cos, sin, A·cos, A·sin]); folding A into per-crystal weights halves the work
        w_cos, w_sin, w_acos, w_asin = self.position.weight.chunk(4, dim=1)
        weight = torch.cat([w_cos + w_acos * amplitude[:, None, :], w_sin + w_asin * amplitude[:, None, :]], 2)
        phase = 2 * math.pi * points @ self.hkl.to(points.dtype).T
        waves = torch.cat([torch.cos(phase), torch.sin(phase)], -1)
        pos = torch.einsum("bpk,bwk->bpw", waves, weight.to(waves.dtype)) + self.position.bias
        return nn.functional.softplus(self.regressor(cond, pos))
