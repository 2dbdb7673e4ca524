"""What the networks read: pattern grids, the composition vector, lattice and system features.

Both training (from stored reflections) and prediction (from a measured Pattern) go through these
functions, so the network sees the same representation in both.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pymatgen.core import Element

from model.errors import InputError
from model.instrument import q_to_two_theta
from model.metrics import CRYSTAL_SYSTEMS

N_ELEMENTS = 119  # composition vector index = Z (0 unused), as the seed paper
SEED_TWO_THETA = torch.linspace(0.0, 180.0, 1024)  # the seed's Mo Kα grid, degrees 2θ
SEED_WAVELENGTH_A = 0.709319  # Mo Kα1
Q_GRID = torch.linspace(0.5, 10.0, 1024)  # ours: Å⁻¹; Cu Kα reaches 8.1, Mo Kα 2θ ≤ 70° reaches 10


def composition_vector(composition: dict[str, float], source: str | None = None) -> np.ndarray:
    """Element → fraction or count (any scale) → (119,) fractions indexed by Z."""
    vector = np.zeros(N_ELEMENTS, dtype=np.float32)
    for symbol, amount in composition.items():
        try:
            z = Element(str(symbol).strip()).Z
        except ValueError:
            raise InputError(source, f"unknown element {symbol!r}") from None
        if not (math.isfinite(float(amount)) and float(amount) >= 0):
            raise InputError(source, f"amount of {symbol} must be a non-negative number, got {amount!r}")
        vector[z] += float(amount)
    if vector.sum() <= 0:
        raise InputError(source, "the composition names no element with a positive amount")
    return vector / vector.sum()


def mean_atomic_number(composition: torch.Tensor) -> torch.Tensor:
    """(B, 119) fractions → (B,) mean Z: the density scale both networks predict in units of."""
    return composition @ torch.arange(N_ELEMENTS, dtype=composition.dtype, device=composition.device)


def system_one_hot(systems: torch.Tensor) -> torch.Tensor:
    """(B,) crystal system codes (0 triclinic … 6 cubic) → (B, 7)."""
    return torch.nn.functional.one_hot(systems.long(), len(CRYSTAL_SYSTEMS)).float()


def system_code(crystal_system: str) -> int:
    if crystal_system not in CRYSTAL_SYSTEMS:
        raise InputError(None, f"unknown crystal system {crystal_system!r}; one of {', '.join(CRYSTAL_SYSTEMS)}")
    return CRYSTAL_SYSTEMS.index(crystal_system)


def lattice_features(lattice: torch.Tensor) -> torch.Tensor:
    """(B, 6) a, b, c (Å), α, β, γ (°) → (B, 7): ln a, ln b, ln c, cos α, cos β, cos γ, ln V^(1/3)."""
    lengths, angles = lattice[:, :3], torch.deg2rad(lattice[:, 3:])
    return torch.cat([torch.log(lengths), torch.cos(angles),
                      torch.log(cell_volume(lattice))[:, None] / 3], dim=1)


def cell_volume(lattice: torch.Tensor) -> torch.Tensor:
    """(B, 6) → (B,) Å³."""
    c = torch.cos(torch.deg2rad(lattice[:, 3:]))
    root = 1 - (c ** 2).sum(1) + 2 * c.prod(1)
    return lattice[:, :3].prod(1) * torch.sqrt(torch.clamp(root, min=1e-8))


def reciprocal_metric(lattice: torch.Tensor) -> torch.Tensor:
    """(B, 6) → (B, 3, 3) G* with 1/d² = hᵀ G* h (Å⁻²)."""
    a, b, c = lattice[:, 0], lattice[:, 1], lattice[:, 2]
    ca, cb, cg = torch.cos(torch.deg2rad(lattice[:, 3:])).unbind(1)
    g = torch.stack([torch.stack([a * a, a * b * cg, a * c * cb], 1),
                     torch.stack([a * b * cg, b * b, b * c * ca], 1),
                     torch.stack([a * c * cb, b * c * ca, c * c], 1)], 1)
    return torch.linalg.inv(g)


def half_space_hkl(h_max: int) -> torch.Tensor:
    """(H, 3) integer vectors with |h|,|k|,|l| ≤ h_max, one of each ±pair, no 000."""
    r = torch.arange(-h_max, h_max + 1)
    hkl = torch.cartesian_prod(r, r, r)
    key = hkl[:, 0] * (2 * h_max + 1) ** 2 + hkl[:, 1] * (2 * h_max + 1) + hkl[:, 2]
    return hkl[key > 0]


def intensities_at_hkl(q_pattern: torch.Tensor, lattice: torch.Tensor, hkl: torch.Tensor) -> torch.Tensor:
    """Pattern height at each reflection's Q: (B, 2, G) Q-grid input, (B, 6), (H, 3) → (B, 2, H).

    Channel 0 is the normalised intensity (largest within ±1 bin, so a slightly shifted peak is
    still found), channel 1 whether that Q was measured. Out-of-grid Q reads 0 in both.
    """
    q = 2 * math.pi * torch.sqrt(torch.einsum("hi,bij,hj->bh", hkl.float(), reciprocal_metric(lattice),
                                              hkl.float()))
    grid = Q_GRID.to(q_pattern.device)
    step = grid[1] - grid[0]
    pos = torch.round((q - grid[0]) / step).long()
    inside = (pos >= 0) & (pos < grid.numel())
    pooled = torch.cat([torch.nn.functional.max_pool1d(q_pattern[:, :1], 3, 1, 1), q_pattern[:, 1:]], 1)
    taken = torch.take_along_dim(pooled, pos.clamp(0, grid.numel() - 1)[:, None, :].expand(-1, 2, -1), 2)
    return taken * inside[:, None, :]


def q_grid_input(q: np.ndarray, intensity: np.ndarray) -> torch.Tensor:
    """A pattern (Q in Å⁻¹ increasing, intensity) → (2, G) on Q_GRID: normalised intensity
    (``normalise_measured``) and the measured-range mask."""
    grid = Q_GRID.double().numpy()
    measured = torch.from_numpy(((grid >= q[0]) & (grid <= q[-1])).astype(np.float64))
    values = torch.from_numpy(np.interp(grid, q, intensity))
    return torch.stack([normalise_measured(values, measured), measured]).float()


def seed_grid_input(q: np.ndarray, intensity: np.ndarray) -> torch.Tensor:
    """A pattern (Q in Å⁻¹) → (1, 1024) on the seed's Mo Kα 2θ grid, max 1, 0 outside the scan."""
    mo_two_theta = q_to_two_theta(q, SEED_WAVELENGTH_A)
    grid = SEED_TWO_THETA.double().numpy()
    measured = torch.from_numpy(((grid >= mo_two_theta[0]) & (grid <= mo_two_theta[-1])).astype(np.float64))
    values = torch.from_numpy(np.interp(grid, mo_two_theta, intensity))
    return normalise_measured(values, measured)[None].float()


def normalise_measured(values: torch.Tensor, measured: torch.Tensor) -> torch.Tensor:
    """(…, G) intensities → minimum 0 and maximum 1 over the measured points, 0 elsewhere."""
    big = torch.finfo(values.dtype).max
    low = torch.where(measured > 0, values, torch.full_like(values, big)).amin(-1, keepdim=True)
    shifted = (values - low) * measured
    return shifted / shifted.amax(-1, keepdim=True).clamp_min(1e-12)


