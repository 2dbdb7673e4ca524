"""Similarity of two CMED grids, and the equivalences under which two grids are the same crystal.

A CMED grid is indexed [i, j, k] at fractional (i/N, j/N, k/N) of the conventional cell. Two grids
describe the same crystal when they differ by an origin shift (at least the 8 half-cell shifts) or
by an operation of the lattice's holohedry (inversion; axis permutations for cubic cells, a↔b for
tetragonal, the hexagonal rotations for trigonal/hexagonal cells). Metrics and losses take the best
value over those candidates, as the seed paper did over cube rotations.

SSIM follows skimage.metrics.structural_similarity (7³ uniform window, K1 = 0.01, K2 = 0.03,
sample covariance, border of 3 voxels cropped); it is re-implemented in torch only so that the
hundreds of equivalent candidates are scored in one batched call (tests check it against skimage).
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
import torch

from model.data.systems import CRYSTAL_SYSTEMS

METRIC_GRID = 25  # the seed paper's evaluation grid (25³)
_WINDOW = 7
_K1, _K2 = 0.01, 0.03


def _close_group(generators: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    group = {np.eye(3, dtype=int).tobytes(): np.eye(3, dtype=int)}
    frontier = list(group.values())
    while frontier:
        new = []
        for g in frontier:
            for h in generators:
                m = g @ h
                if m.tobytes() not in group:
                    group[m.tobytes()] = m
                    new.append(m)
        frontier = new
    return tuple(sorted(group.values(), key=lambda m: m.tobytes()))


@cache
def point_operations(crystal_system: str) -> tuple[np.ndarray, ...]:
    """Integer matrices M (fractional x → M x) of the holohedry of the conventional lattice."""
    inversion = -np.eye(3, dtype=int)
    diag = [np.diag(s) for s in itertools.product((1, -1), repeat=3)]
    swap_ab = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    generators = {
        "triclinic": [inversion],
        "monoclinic": [inversion, np.diag((-1, 1, -1))],  # b unique, the standard setting
        "orthorhombic": diag,
        "tetragonal": diag + [swap_ab],
        "trigonal": [inversion, np.array([[1, -1, 0], [1, 0, 0], [0, 0, 1]]),
                     np.array([[0, 1, 0], [1, 0, 0], [0, 0, -1]])],
        "cubic": diag + [swap_ab, np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]])],
    }
    generators["hexagonal"] = generators["trigonal"]
    if crystal_system not in generators:
        raise ValueError(f"unknown crystal system {crystal_system!r}; one of {CRYSTAL_SYSTEMS}")
    return _close_group(generators[crystal_system])


@cache
def equivalent_index_maps(crystal_system: str, n: int) -> torch.Tensor:
    """(E, n³) flat indices: candidate e of a grid g is g.flatten()[maps[e]].reshape(n, n, n).

    Candidates are every point operation combined with every half-cell origin shift; n must be
    even so the half-cell shifts fall on grid points.
    """
    if n % 2:
        raise ValueError(f"grid size {n} is odd; half-cell shifts need an even grid")
    ijk = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    maps = []
    for m in point_operations(crystal_system):
        rotated = ijk @ m.T
        for shift in itertools.product((0, n // 2), repeat=3):
            idx = (rotated + np.array(shift)) % n
            maps.append((idx[:, 0] * n + idx[:, 1]) * n + idx[:, 2])
    return torch.as_tensor(np.stack(maps), dtype=torch.long)


def equivalents(values: torch.Tensor, crystal_system: str) -> torch.Tensor:
    """(..., n, n, n) → (..., E, n, n, n): every equivalent description of the grid(s)."""
    n = values.shape[-1]
    maps = equivalent_index_maps(crystal_system, n).to(values.device)
    flat = values.reshape(*values.shape[:-3], 1, n ** 3)
    return torch.take_along_dim(flat, maps.reshape(-1, n ** 3).expand(*flat.shape[:-2], -1, -1),
                                dim=-1).reshape(*values.shape[:-3], -1, n, n, n)


def resample_grid(values: torch.Tensor, n: int) -> torch.Tensor:
    """Periodic Fourier resampling of (..., m, m, m) grids to (..., n, n, n), odd n < m, at fractional i/n.

    The same values as scipy.signal.resample along each axis for odd n; done in one batched torch
    FFT because the metric resamples hundreds of candidates per structure.
    """
    m = values.shape[-1]
    if n > m or (n < m and n % 2 == 0):
        raise ValueError(f"resample_grid reduces grids to an odd size (asked {m} → {n})")
    if n == m:
        return values
    k = torch.arange(n) - n // 2
    keep = torch.roll(k % m, -(n // 2))  # frequencies 0, 1, …, −1 in FFT order
    spectrum = torch.fft.rfftn(values, dim=(-3, -2, -1))
    spectrum = spectrum[..., keep, :, :][..., :, keep, :][..., :, :, : n // 2 + 1]
    return torch.fft.irfftn(spectrum, s=(n, n, n), dim=(-3, -2, -1)) * (n / m) ** 3


def _box_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean over every fully-inside 7³ window of (..., n, n, n), separably by cumulative sums."""
    for dim in (-3, -2, -1):
        c = torch.cumsum(t, dim=dim)
        c = torch.cat([torch.zeros_like(c.narrow(dim, 0, 1)), c], dim=dim)
        n = c.shape[dim] - _WINDOW
        t = (c.narrow(dim, _WINDOW, n) - c.narrow(dim, 0, n)) / _WINDOW
    return t


def ssim3d(pred: torch.Tensor, truth: torch.Tensor, data_range: torch.Tensor | float) -> torch.Tensor:
    """Mean 3D SSIM over (..., n, n, n) grids (broadcast, in their dtype); data_range broadcasts
    over the leading dims."""
    x, y = torch.broadcast_tensors(pred, truth)
    mx, my = _box_mean(x), _box_mean(y)
    cov_norm = _WINDOW ** 3 / (_WINDOW ** 3 - 1)
    vx = cov_norm * (_box_mean(x * x) - mx * mx)
    vy = cov_norm * (_box_mean(y * y) - my * my)
    vxy = cov_norm * (_box_mean(x * y) - mx * my)
    dr = torch.as_tensor(data_range, dtype=x.dtype)[..., None, None, None]
    c1, c2 = (_K1 * dr) ** 2, (_K2 * dr) ** 2
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(dim=(-3, -2, -1))


def psnr(pred: torch.Tensor, truth: torch.Tensor, data_range: torch.Tensor | float) -> torch.Tensor:
    """PSNR in dB, 10 log10(range² / MSE), over the last three dims."""
    mse = ((pred.double() - truth.double()) ** 2).mean(dim=(-3, -2, -1))
    return 10.0 * torch.log10(torch.as_tensor(data_range, dtype=torch.float64) ** 2 / mse)


def best_equivalent_ssim(pred: np.ndarray | torch.Tensor, truth: np.ndarray | torch.Tensor,
                         crystal_system: str, n_metric: int = METRIC_GRID) -> tuple[float, float]:
    """(SSIM, PSNR dB) of pred against the best-matching equivalent of truth, both on n_metric³.

    truth is a CMED grid (e/Å³) of even size; pred the same size, or (S, n, n, n) several
    predictions (latent samples), of which the best counts. The data range is that of truth;
    PSNR is reported for the pair with the best SSIM.
    """
    truth = torch.as_tensor(np.asarray(truth, dtype=np.float32))
    candidates = resample_grid(equivalents(truth, crystal_system), n_metric).float()
    preds = resample_grid(torch.as_tensor(np.asarray(pred, dtype=np.float32)), n_metric).float()
    preds = preds.reshape(-1, 1, n_metric, n_metric, n_metric)
    data_range = float(candidates[0].max() - candidates[0].min())
    scores = ssim3d(preds, candidates, data_range)
    s, e = divmod(int(torch.argmax(scores)), scores.shape[1])
    return float(scores[s, e]), float(psnr(preds[s, 0], candidates[e], data_range))
