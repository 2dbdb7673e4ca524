"""Bond-valence agreement of a structure, and the other assignments of X-ray-alike ions to its sites.

X-rays see electrons: ions with the same electron count (K⁺ and Ca²⁺, Na⁺ and Mg²⁺, O²⁻ and F⁻)
scatter alike, so a powder fit cannot tell which of their sites holds which. Crystal chemistry can:
the bond valence sum of each ion (Brown's bond valence model with Brese & O'Keeffe's parameters, as
pymatgen computes it) should equal its valence.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
from pymatgen.analysis.bond_valence import BV_PARAMS, calculate_bv_sum
from pymatgen.core import Element, Structure

BOND_REACH_A = 4.0  # Å, bonds counted up to this length (a 4 Å bond carries ~0.01 valence units)
MAX_ASSIGNMENTS = 64  # assignments compared at most (small cells have a handful)


def instability(structure: Structure, valences: Mapping[str, float]) -> float:
    """Global instability index (valence units): the RMS over the atoms of bond valence sum − valence."""
    deviations = [calculate_bv_sum(site, neighbours) - valences[site.specie.symbol]
                  for site, neighbours in zip(structure, structure.get_all_neighbors(BOND_REACH_A))]
    return float(np.sqrt(np.mean(np.square(deviations))))


def assignments(structure: Structure, orbits: Sequence[int], valences: Mapping[str, float]) -> list[Structure]:
    """The structure with the elements of its orbits (``orbits[i]``: atom i's orbit) permuted among
    orbits of equal size holding ions of equal electron count, the given assignment first; the given
    one alone where bond-valence parameters lack for an element (e.g. Au, Pt: nothing to compare)."""
    if any(element not in BV_PARAMS for element in structure.composition.elements):
        return [structure]
    elements = {orbit: structure[i].specie.symbol for i, orbit in enumerate(orbits)}
    sizes = {orbit: list(orbits).count(orbit) for orbit in elements}

    def electrons(symbol: str) -> float:
        return Element(symbol).Z - valences[symbol]

    classes: dict[tuple[int, float], list[int]] = {}
    for orbit, symbol in elements.items():
        classes.setdefault((sizes[orbit], round(electrons(symbol), 6)), []).append(orbit)
    # each class: the distinct orders of its elements over its orbits (the given order first)
    orders = []
    for members in classes.values():
        given = tuple(elements[o] for o in members)
        orders.append([dict(zip(members, given))] + [dict(zip(members, p)) for p in
                                                     sorted(set(itertools.permutations(given)) - {given})])
    result = []
    for choice in itertools.islice(itertools.product(*orders), MAX_ASSIGNMENTS):
        relabel = {orbit: symbol for part in choice for orbit, symbol in part.items()}
        result.append(Structure(structure.lattice, [relabel[o] for o in orbits], structure.frac_coords))
    return result
