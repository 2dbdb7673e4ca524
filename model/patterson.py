"""The Patterson map of a cell estimated from a powder pattern: a density-like map with no phases.

P(u) = Σ_h I_h cos 2π h·u is the autocorrelation of the density. For small, high-symmetry cells
(a heavy atom on the origin) it already resembles the density itself, so it is the reference any
network must beat: a prediction that does no better than the pattern's own Patterson map has
learned no phases. I_h is read from the pattern like the networks read it (model.nets.inputs:
normalised height on the Q grid at each reflection's Q), shared among the reflections that fall
in the same Q bin (powder overlap, multiplicity included), Lorentz-corrected by Q² and damped by a
Debye–Waller factor so the map has the CMED's smoothness.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from model.nets.inputs import Q_GRID, reciprocal_metric

H_MAX = 10  # |h|, |k|, |l| ≤ 10: d ≥ a/10, finer than a 32³ grid resolves for cells up to ~20 Å
DAMPING_A2 = 5.0  # Å², B of the exp(−B s²) damping (s = Q/4π); best of 0, 5, 10 on the shared set


def patterson_map(pattern_q: torch.Tensor, lattice: tuple[float, ...], n: int = 32,
                  mean_density: float = 1.0) -> np.ndarray:
    """(2, G) Q-grid input (model.nets.inputs.q_grid_input) and a, b, c (Å), α, β, γ (°) → (n, n, n)
    map on fractional i/n, shifted to minimum 0 and scaled to ``mean_density`` (e.g. ΣZ/V in e/Å³)."""
    r = torch.arange(-H_MAX, H_MAX + 1)
    hkl = torch.cartesian_prod(r, r, r)
    hkl = hkl[(hkl != 0).any(1)]
    metric = reciprocal_metric(torch.tensor([lattice], dtype=torch.float64))[0]
    q = 2 * math.pi * torch.sqrt(torch.einsum("hi,ij,hj->h", hkl.double(), metric, hkl.double()))
    grid = Q_GRID.double()
    position = torch.round((q - grid[0]) / (grid[1] - grid[0])).long()
    inside = ((position >= 0) & (position < grid.numel())).double()
    position = position.clamp(0, grid.numel() - 1)
    height = torch.nn.functional.max_pool1d(pattern_q[None, :1].double(), 3, 1, 1)[0, 0]
    measured = pattern_q[1].double()
    sharing = torch.zeros(grid.numel(), dtype=torch.float64).index_add_(0, position, inside)
    intensity = (height[position] * measured[position] * inside / sharing[position].clamp(min=1)
                 * q ** 2 * torch.exp(-DAMPING_A2 * (q / (4 * math.pi)) ** 2))
    spectrum = torch.zeros((n, n, n), dtype=torch.float64)
    index = hkl % n
    spectrum.index_put_((index[:, 0], index[:, 1], index[:, 2]), intensity, accumulate=True)
    values = torch.fft.ifftn(spectrum).real.numpy()
    values = values - values.min()
    return values * (mean_density / max(float(values.mean()), 1e-30))
