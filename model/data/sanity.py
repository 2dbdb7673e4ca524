"""Physical sanity of a candidate training structure: distances, density, order.

Rules (each rejection names the rule):
- ordered sites only: a site with partial or mixed occupancy is rejected, since the network target
  is one atom per site (a CIF with disorder is skipped, not averaged);
- no two atoms (periodic images included) closer than MIN_DISTANCE_FRACTION × the sum of their
  covalent radii (Cordero 2008, via pymatgen), and never closer than MIN_DISTANCE_A — this also
  catches overlapping sites;
- mass density within DENSITY_RANGE_G_CM3 (lightest molecular solids to osmium, with margin);
- conventional cell with at most MAX_ATOMS atoms (finer detail is not resolvable on a 32³ grid).
"""

from __future__ import annotations

import numpy as np
from pymatgen.analysis.molecule_structure_comparator import CovalentRadius
from pymatgen.core import Structure

MIN_DISTANCE_FRACTION = 0.6
MIN_DISTANCE_A = 0.7
DENSITY_RANGE_G_CM3 = (0.5, 25.0)
MAX_ATOMS = 100
_FALLBACK_RADIUS_A = 1.8  # elements beyond Cm, absent from the covalent-radius table


def covalent_radius(symbol: str) -> float:
    """Covalent radius in Å."""
    return CovalentRadius.radius.get(symbol, _FALLBACK_RADIUS_A)


def sanity_problem(structure: Structure) -> str | None:
    """Why ``structure`` is not a sane training target ("rule: details"), or None when it passes."""
    if not structure.is_ordered:
        return "order: partial or mixed occupancy"
    if len(structure) > MAX_ATOMS:
        return f"size: {len(structure)} atoms > {MAX_ATOMS}"
    density = structure.density
    if not DENSITY_RANGE_G_CM3[0] <= density <= DENSITY_RANGE_G_CM3[1]:
        return f"density: {density:.2f} g/cm³ outside {DENSITY_RANGE_G_CM3}"
    radii = np.array([covalent_radius(site.specie.symbol) for site in structure])
    cutoff = max(MIN_DISTANCE_A, MIN_DISTANCE_FRACTION * 2 * radii.max())
    # numerical_tol=0 keeps zero-distance pairs, so two sites on the same point are seen.
    centers, neighbors, images, distances = structure.get_neighbor_list(cutoff, numerical_tol=0.0)
    is_self = (centers == neighbors) & ~images.any(axis=1)
    centers, neighbors, distances = centers[~is_self], neighbors[~is_self], distances[~is_self]
    limits = np.maximum(MIN_DISTANCE_A, MIN_DISTANCE_FRACTION * (radii[centers] + radii[neighbors]))
    too_close = distances < limits
    if too_close.any():
        worst = np.argmin(distances - limits)
        return (f"distance: atoms {structure[centers[worst]].specie}–{structure[neighbors[worst]].specie} "
                f"{distances[worst]:.2f} Å apart (< {limits[worst]:.2f} Å)")
    return None
