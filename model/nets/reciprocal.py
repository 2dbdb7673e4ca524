"""Crystallography in reciprocal space for learned phasing: reflection families of a space group,
their structure factors, the origins a phase set is defined up to, and Fourier synthesis.

Conventions: hkl are rows, a symmetry operation maps x → R x + t (fractional), and
F(h) = Σⱼ fⱼ exp(2πi h·xⱼ), so F(h R) = F(h) exp(−2πi h·t) and ρ(x) = (1/V) Σ_h F(h) exp(−2πi h·x).
Every space group is taken in its standard setting (spglib's first Hall number), which is the
setting of the conventional standard cells the data sets store.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import spglib
import torch
from pymatgen.core import Structure

from model import constraints
from model.scattering import form_factor_coeffs, form_factors_torch
from model.spacegroups import standard_hall_numbers

# Origin shifts are searched on this grid (per axis, fractions of the cell): it holds every
# discrete origin of the standard settings (multiples of 1/2, 1/3, 1/4, 1/6, 1/8) and samples a
# polar axis's continuous freedom every 1/24 of the cell.
SHIFT_STEPS = 24


@functools.cache
def space_group_ops(space_group: int) -> constraints.SpaceGroupOps:
    """Operations (centring translations included) of the standard setting of a space group."""
    if not 1 <= space_group <= 230:
        raise ValueError(f"space group {space_group} is outside 1–230")
    hall = _standard_halls()[space_group]
    symmetry = spglib.get_symmetry_from_database(hall)
    return constraints.SpaceGroupOps(np.asarray(symmetry["rotations"]), np.asarray(symmetry["translations"]),
                                     space_group, spglib.get_spacegroup_type(hall).international_short)


@functools.cache
def _standard_halls() -> dict[int, int]:
    return standard_hall_numbers()


def families(lattice: np.ndarray, space_group: int, d_min_A: float, limit: int | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetry-independent, not systematically absent reflections with d ≥ d_min_A, by decreasing
    d (ties by hkl): representative hkl (R, 3) int, multiplicity (R,) int (Friedel mates counted),
    d (R,) Å. ``lattice``: (3, 3) row vectors in Å. ``limit`` keeps the first (lowest-angle) ones."""
    metric = lattice @ lattice.T
    hkl, mult = constraints.hkl_families(metric, space_group_ops(space_group), d_min_A)
    hkl = hkl.astype(int)
    d = 1.0 / np.sqrt(np.einsum("ri,ij,rj->r", hkl, np.linalg.inv(metric), hkl))
    order = np.lexsort((-hkl[:, 2], -hkl[:, 1], -hkl[:, 0], -np.round(d, 6)))[:limit]
    return hkl[order], mult[order].astype(int), d[order]


def centric(hkl: np.ndarray, space_group: int) -> np.ndarray:
    """(R,) True where some rotation maps h onto −h: the phase is then restricted to two values."""
    mapped = np.einsum("ri,nij->rnj", np.atleast_2d(hkl), space_group_ops(space_group).rotations)
    return np.any(np.all(mapped == -np.atleast_2d(hkl)[:, None, :], axis=2), axis=1)


def structure_factors(structure: Structure, hkl: np.ndarray, d: np.ndarray) -> np.ndarray:
    """(R,) complex F(h) in electrons of the ordered structure (no thermal motion)."""
    symbols = [site.specie.symbol for site in structure]
    with torch.no_grad():
        f = form_factors_torch(torch.from_numpy(np.asarray(d, dtype=float)),
                               torch.from_numpy(form_factor_coeffs(symbols))).numpy()
    phase = 2 * math.pi * np.asarray(hkl, dtype=float) @ structure.frac_coords.T
    return (f * np.exp(1j * phase)).sum(axis=1)


def obeys(structure: Structure, space_group: int, tolerance: float = 1e-3) -> bool:
    """Whether the standard-setting operations of ``space_group`` map the structure onto itself."""
    ops = space_group_ops(space_group)
    frac = structure.frac_coords % 1.0
    z = np.array([site.specie.Z for site in structure])
    images = np.einsum("nij,aj->nai", ops.rotations, frac) + ops.translations[:, None, :]
    delta = images[:, :, None, :] - frac[None, None, :, :]  # (ops, atom, atom, 3)
    same = np.all(np.abs(delta - np.round(delta)) < tolerance, axis=-1) & (z[None, :, None] == z[None, None, :])
    return bool(np.all(same.any(axis=2)))


@functools.cache
def origin_choices(space_group: int) -> np.ndarray:
    """(K, 4) float rows (σ, sx, sy, sz): the descriptions of a structure that have the same
    intensities and the same space group in the same setting. σ = +1 keeps the hand, −1 inverts
    (x → −x); s is the origin shift (fractions of the cell, on the SHIFT_STEPS grid). The phases
    of such a description are σ·φ(h) + 2π h·s."""
    ops = space_group_ops(space_group)
    r = np.arange(SHIFT_STEPS) / SHIFT_STEPS
    shifts = np.stack(np.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    rows = []
    for sign in (1.0, -1.0):
        allowed = np.ones(len(shifts), dtype=bool)
        for rotation, translation in zip(ops.rotations, ops.translations):
            same = np.all(ops.rotations == rotation, axis=(1, 2))
            moved = sign * translation + shifts @ (np.eye(3) - rotation).T  # (S, 3)
            delta = moved[:, None, :] - ops.translations[same][None, :, :]
            allowed &= np.any(np.all(np.abs(delta - np.round(delta)) < 1e-6, axis=2), axis=1)
        rows.append(np.column_stack([np.full(allowed.sum(), sign), shifts[allowed]]))
    return np.concatenate(rows)


def expand(hkl: np.ndarray, f: np.ndarray, space_group: int) -> tuple[np.ndarray, np.ndarray]:
    """Every member h R of each family and its F (Friedel mates included): (M, 3) int, (M,) complex."""
    ops = space_group_ops(space_group)
    members = np.einsum("ri,nij->rnj", hkl, ops.rotations).reshape(-1, 3)
    values = (f[:, None] * np.exp(-2j * math.pi * (hkl @ ops.translations.T))).reshape(-1)
    members = np.concatenate([members, -members])
    values = np.concatenate([values, values.conj()])
    _, first = np.unique(members, axis=0, return_index=True)
    return members[first], values[first]


def synthesis(hkl: np.ndarray, f: np.ndarray, space_group: int, shape: tuple[int, int, int],
              volume_A3: float, f000: float) -> np.ndarray:
    """ρ (e/Å³) on a grid of ``shape`` from family representatives hkl (R, 3) and their F (R,)
    complex; members beyond the grid's Nyquist limit (|h| ≥ n/2 on an axis) are left out."""
    members, values = expand(np.asarray(hkl, dtype=int), np.asarray(f, dtype=complex), space_group)
    n = np.array(shape)
    inside = np.all(np.abs(members) < n / 2, axis=1)
    grid = np.zeros(shape, dtype=complex)
    grid[0, 0, 0] = f000
    index = members[inside] % n
    grid[index[:, 0], index[:, 1], index[:, 2]] = values[inside]
    return np.fft.fftn(grid).real / volume_A3
