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
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure

from model import constraints, significance
from model.instrument import Instrument
from model.pattern import Pattern

STRAIN_START = 0.003  # c/a − 1 of a trial: 0.01–0.04 Å on a 4–12 Å cell, above SYMPREC, below the 0.5–1.5 % sought
SHIFT_START = 0.01  # fractional z by which a polar trial moves one site: 0.04–0.1 Å, a start the refinement corrects


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
