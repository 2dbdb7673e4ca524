"""Space-group constraints for refinement: free cell metric, free Wyckoff coordinates, hkl families.

Everything is in the setting of the structure as given (spglib returns its operations in the
input basis), so a published CIF is refined in its own setting. Fractional coordinates are
dimensionless, the metric tensor G is in Å², d-spacings in Å.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import spglib
from pymatgen.core import Structure

from model.errors import InputError

SYMPREC = 1e-3  # Å; refined and published cells are exact to far better than this


@dataclass(frozen=True)
class SpaceGroupOps:
    """Operations x' = R x + t (fractional, input basis), with the group's number and symbol."""

    rotations: np.ndarray  # (n, 3, 3) int
    translations: np.ndarray  # (n, 3)
    number: int
    symbol: str

    @property
    def crystal_system(self) -> str:
        return crystal_system(self.number)


@dataclass(frozen=True)
class SiteOrbit:
    """One symmetry-distinct site: representative x0, free directions, and the ops building its orbit.

    Atom j of the orbit sits at rotations[j] @ (x0 + basis @ p) + translations[j], where p are the
    free coordinates (len = basis.shape[1]); translations include the lattice offset that keeps each
    atom where the input structure had it.
    """

    x0: np.ndarray  # (3,)
    basis: np.ndarray  # (3, k)
    rotations: np.ndarray  # (m, 3, 3)
    translations: np.ndarray  # (m, 3)
    atom_indices: np.ndarray  # (m,) indices into the structure
    wyckoff: str


def space_group_ops(structure: Structure, symprec: float = SYMPREC) -> SpaceGroupOps:
    dataset = spglib.get_symmetry_dataset(_spglib_cell(structure), symprec=symprec)
    if dataset is None:
        raise InputError(None, "spglib found no symmetry for this structure (overlapping atoms?)")
    return SpaceGroupOps(np.asarray(dataset.rotations), np.asarray(dataset.translations),
                         int(dataset.number), str(dataset.international))


def site_orbits(structure: Structure, ops: SpaceGroupOps, symprec: float = SYMPREC) -> list[SiteOrbit]:
    """Group the atoms into orbits and find each orbit's free coordinate directions."""
    frac = structure.frac_coords
    dataset = spglib.get_symmetry_dataset(_spglib_cell(structure), symprec=symprec)
    tol = symprec / min(structure.lattice.abc) * 10
    orbits = []
    for rep in np.unique(dataset.equivalent_atoms):
        x0 = frac[rep]
        images = np.einsum("nij,j->ni", ops.rotations, x0) + ops.translations
        stabiliser = ops.rotations[_is_lattice_vector(images - x0, tol)]
        basis = _invariant_basis(stabiliser)
        members = np.flatnonzero(dataset.equivalent_atoms == rep)
        rots, trans = [], []
        for j in members:
            offset = frac[j] - images
            k = int(np.argmax(_is_lattice_vector(offset, tol)))
            rots.append(ops.rotations[k])
            trans.append(ops.translations[k] + np.round(offset[k]))
        orbits.append(SiteOrbit(x0, basis, np.array(rots), np.array(trans), members,
                                str(dataset.wyckoffs[rep])))
    return orbits


def metric_basis(ops: SpaceGroupOps) -> np.ndarray:
    """(K, 3, 3) symmetric matrices spanning the metric tensors G with Rᵀ G R = G for every op."""
    units = []
    for i in range(3):
        for j in range(i, 3):
            e = np.zeros((3, 3))
            e[i, j] = e[j, i] = 1.0
            units.append(e)
    rots = ops.rotations.astype(float)
    projected = np.array([np.mean(np.einsum("nji,jk,nkl->nil", rots, e, rots), axis=0) for e in units])
    flat = projected.reshape(6, 9)
    _, s, vt = np.linalg.svd(flat)
    rank = int(np.sum(s > 1e-8))
    return vt[:rank].reshape(rank, 3, 3)


def hkl_families(metric: np.ndarray, ops: SpaceGroupOps, d_min_A: float) -> tuple[np.ndarray, np.ndarray]:
    """Representative hkl (n, 3) and multiplicity (n,) of the Laue-equivalent families with d ≥ d_min.

    Systematically absent families (space-group extinctions) are left out.
    """
    recip = np.linalg.inv(metric)
    limits = np.floor(np.sqrt(np.diag(metric)) / d_min_A).astype(int) + 1
    grid = np.stack(np.meshgrid(*[np.arange(-n, n + 1) for n in limits], indexing="ij"), -1).reshape(-1, 3)
    grid = grid[np.any(grid != 0, axis=1)]
    inv_d2 = np.einsum("ni,ij,nj->n", grid, recip, grid)
    grid = grid[inv_d2 <= 1.0 / d_min_A**2]
    grid = grid[~systematically_absent(grid, ops)]
    laue = np.concatenate([ops.rotations, -ops.rotations])
    images = np.einsum("ri,nij->rnj", grid, laue)  # every hkl's Laue-equivalent images
    span = 2 * int(np.abs(images).max()) + 1
    keys = ((images[..., 0] + span // 2) * span + images[..., 1] + span // 2) * span + images[..., 2] + span // 2
    # the family's representative is its lexicographically largest member (largest key);
    # the grid is a full sphere, so each family's count in it is its multiplicity
    rep_keys, multiplicity = np.unique(keys.max(axis=1), return_counts=True)
    half = span // 2
    reps = np.stack([rep_keys // (span * span) - half, (rep_keys // span) % span - half, rep_keys % span - half], 1)
    return reps.astype(int).reshape(-1, 3), multiplicity.astype(float)


def systematically_absent(hkl: np.ndarray, ops: SpaceGroupOps) -> np.ndarray:
    """True where an op with h·R = h carries a phase h·t that is not an integer (extinction)."""
    hkl = np.atleast_2d(hkl)
    mapped = np.einsum("ri,nij->rnj", hkl, ops.rotations)
    fixed = np.all(mapped == hkl[:, None, :], axis=2)
    phase = np.einsum("ri,ni->rn", hkl, ops.translations)
    off = np.abs(phase - np.round(phase)) > 1e-6
    return np.any(fixed & off, axis=1)


def crystal_system(number: int) -> str:
    for upper, name in ((2, "triclinic"), (15, "monoclinic"), (74, "orthorhombic"), (142, "tetragonal"),
                        (167, "trigonal"), (194, "hexagonal"), (230, "cubic")):
        if number <= upper:
            return name
    raise InputError(None, f"space group number {number} is outside 1–230")


def _spglib_cell(structure: Structure):
    return (structure.lattice.matrix, structure.frac_coords, [site.specie.Z for site in structure])


def _is_lattice_vector(v: np.ndarray, tol: float) -> np.ndarray:
    return np.all(np.abs(v - np.round(v)) < tol, axis=-1)


def _invariant_basis(stabiliser: np.ndarray) -> np.ndarray:
    """Orthonormal basis of the displacements that every site-symmetry rotation leaves unchanged."""
    projector = np.mean(stabiliser.astype(float), axis=0)
    u, s, _ = np.linalg.svd(projector)
    return u[:, s > 0.5]
