"""Pseudo-symmetry: the tetragonal subcells of a cubic solution, refined and kept only where the
profile fits significantly better than the cubic parent (model.significance, Hamilton's test).

A polar tetragonal distortion of a cubic cell (ferroelectric perovskites: c/a ≈ 1.01, a cation
moved 0.02–0.05 along c) splits or broadens lines by about their width: the peak search and the
indexing may see the cubic cell, and only a refinement of the whole profile can tell. The trials
start from the refined cubic structure with c stretched or squeezed by STRAIN_START and, for the
polar ones, one symmetry-distinct site moved along c by SHIFT_START: far enough for spglib
(model.constraints.SYMPREC) to see the subgroup, whose free cell and coordinates the refinement
then fits. The trials are in the cubic conventional cell, so every tetragonal (or, for the
point groups 23 and m-3 without a fourfold axis, orthorhombic) subgroup along c is one of them.

Pseudo-inversion: where the heavy atoms of a non-centrosymmetric structure sit centrosymmetrically
(Pb at the origin of P4mm PbVO3), their interference with a light atom at x and at its image through
the heavy atoms' centre is the same, so the pattern tells a light site from its image only by the
weak light–light terms, and the search may place some light sites on their images (measured: PbVO3's
equatorial O on −z, Rwp 1.06 % against the truth's 1.01 %, a Hamilton ratio 1.04 where 1.0035 is
significant). ``pseudo_inverted`` gives those images for the refinement to compare.
"""

from __future__ import annotations

import itertools

import numpy as np
from pymatgen.core import Lattice, Structure

from model import constraints, significance
from model.instrument import Instrument
from model.pattern import Pattern

STRAIN_START = 0.003  # c/a − 1 of a trial: 0.01–0.04 Å on a 4–12 Å cell, above SYMPREC, below the 0.5–1.5 % sought
SHIFT_START = 0.01  # fractional z by which a polar trial moves one site: 0.04–0.1 Å, a start the refinement corrects
HEAVY_SHARE = 0.5  # of Σ Z² (X-ray scattering power): the heaviest element's atoms above this dominate the pattern
MAX_IMAGES = 7  # pseudo-inverted structures tried at most (all of 3 light sites' choices of side)


def stretched(structure: Structure, strain: float) -> Structure:
    """``structure`` with its c axis longer by the fraction ``strain`` (shorter where negative), the
    fractional coordinates kept."""
    a, b, c, alpha, beta, gamma = structure.lattice.parameters
    lattice = Lattice.from_parameters(a, b, c * (1 + strain), alpha, beta, gamma)
    return Structure(lattice, structure.species, structure.frac_coords)


def polar_trials(structure: Structure) -> list[Structure]:
    """``structure`` with one symmetry-distinct site moved along +c by SHIFT_START, one trial per
    subgroup reached: in a polar group every z is free, and the refinement finds the same fit from
    any site's start (measured: the four sites of tetragonal CsSnBr3, Rwp equal to 0.01 %); a site
    that is all the atoms would move the origin only."""
    trials: dict[int, Structure] = {}
    for orbit in constraints.site_orbits(structure, constraints.space_group_ops(structure)):
        if len(orbit.atom_indices) < len(structure):
            frac = structure.frac_coords.copy()
            frac[orbit.atom_indices, 2] += SHIFT_START
            trial = Structure(structure.lattice, structure.species, frac)
            trials.setdefault(constraints.space_group_ops(trial).number, trial)
    return list(trials.values())


def pseudo_inverted(structure: Structure) -> list[Structure]:
    """The non-centrosymmetric ``structure`` with some of its light sites (symmetry-distinct orbits
    of other elements than the heaviest) replaced by their images through an inversion centre of the
    heaviest element's atoms, where those scatter more than HEAVY_SHARE of Σ Z²; one structure per
    choice of sites, up to MAX_IMAGES, fewest sites moved first. Empty where the group has an
    inversion centre or the heavy atoms none. Inverting every light site inverts the whole structure
    (the same pattern), so a choice and its complement are one image: the first light site stays."""
    ops = constraints.space_group_ops(structure)
    if _inverts(ops.rotations).any():
        return []
    electrons = np.array([sum(e.Z * amount for e, amount in site.species.items()) for site in structure])
    heaviest = max(structure.composition.elements, key=lambda e: e.Z)
    heavy = np.array([site.species.get(heaviest, 0.0) > 0.5 for site in structure])
    if np.sum(electrons[heavy] ** 2) <= HEAVY_SHARE * np.sum(electrons ** 2) or heavy.all():
        return []
    substructure = Structure(structure.lattice, [structure[i].species for i in np.flatnonzero(heavy)],
                             structure.frac_coords[heavy])
    inner = constraints.space_group_ops(substructure)
    centres = inner.translations[_inverts(inner.rotations)]
    frac = structure.frac_coords
    images = []
    for t in centres:
        moving = [orbit.atom_indices for orbit in constraints.site_orbits(structure, ops)
                  if not heavy[orbit.atom_indices].any() and not _same_sites(frac[orbit.atom_indices],
                                                                             t - frac[orbit.atom_indices])]
        for size in range(1, len(moving)):
            for chosen in itertools.combinations(moving[1:], size):
                moved = frac.copy()
                for indices in chosen:
                    moved[indices] = t - frac[indices]
                images.append(Structure(structure.lattice, structure.species_and_occu, moved))
    return images[:MAX_IMAGES]


def _inverts(rotations: np.ndarray) -> np.ndarray:
    """Which of the (n, 3, 3) rotations are the inversion."""
    return np.all(rotations == -np.eye(3, dtype=int), axis=(1, 2))


def _same_sites(a: np.ndarray, b: np.ndarray, tolerance: float = 1e-3) -> bool:
    """Whether the fractional positions ``b`` are those of ``a`` in some order, modulo the lattice."""
    offset = b[:, None, :] - a[None, :, :]
    return bool(np.all(np.any(np.all(np.abs(offset - np.round(offset)) < tolerance, axis=2), axis=1)))


def observations(pattern: Pattern, instrument: Instrument) -> int:
    """Independent observations in ``pattern`` (model.significance.effective_observations) at the
    median FWHM (degrees 2θ) of ``instrument``'s lines over the pattern."""
    two_theta = pattern.two_theta
    fwhm = float(np.median(instrument.fwhm(two_theta)))
    return significance.effective_observations(two_theta.size, float(np.median(np.diff(two_theta))), fwhm)


def lower_is_better(parent_rwp: float, parent_parameters: int, lower_rwp: float, lower_parameters: int,
                    observations_count: int) -> bool:
    """Whether a lower-symmetry fit (Rwp, %, with its count of refined parameters) beats its
    parent's by more than its extra parameters buy from noise (Hamilton's test)."""
    return significance.richer_is_better(parent_rwp, lower_rwp, lower_parameters - parent_parameters,
                                         observations_count, lower_parameters)
