import pytest
from pymatgen.core import Lattice, Structure

from model import constraints
from model.bond_valence import assignments, instability

VALENCES = {"K": 1, "Ca": 2, "C": 4, "O": -2, "F": -1}


@pytest.fixture(scope="module")
def kcaco3f():
    """KCaCO3F (P-6m2): K⁺ and Ca²⁺ have 18 electrons each, O²⁻ and F⁻ 10 each."""
    return Structure.from_spacegroup("P-6m2", Lattice.hexagonal(5.101, 4.455), ["K", "C", "Ca", "O", "F"],
                                     [[0, 0, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, 0.5], [0.812, 0.188, 0.5],
                                      [1 / 3, 2 / 3, 0]])


def _orbits(structure):
    orbit_of = {}
    for n, orbit in enumerate(constraints.site_orbits(structure, constraints.space_group_ops(structure))):
        orbit_of.update({int(i): n for i in orbit.atom_indices})
    return [orbit_of[i] for i in range(len(structure))]


def test_alike_ions_of_equal_orbits_are_exchanged(kcaco3f):
    options = assignments(kcaco3f, _orbits(kcaco3f), VALENCES)
    # K and Ca (1 site each) exchange; O (3 sites) and F (1 site) cannot without changing the formula
    assert len(options) == 2 and options[0] == kcaco3f
    swapped = {site.specie.symbol: tuple(site.frac_coords) for site in options[1] if site.specie.symbol in ("K", "Ca")}
    given = {site.specie.symbol: tuple(site.frac_coords) for site in kcaco3f if site.specie.symbol in ("K", "Ca")}
    assert swapped == {"K": given["Ca"], "Ca": given["K"]}
    assert all(a.frac_coords.tolist() == b.frac_coords.tolist() for a, b in zip(options[1], kcaco3f))


def test_the_published_assignment_has_the_better_bond_valence_agreement(kcaco3f):
    given, swapped = assignments(kcaco3f, _orbits(kcaco3f), VALENCES)
    # measured: 0.11 v.u. as published, 1.0 v.u. with K on the short Ca–F bond (2.23 Å)
    assert instability(given, VALENCES) < 0.2
    assert instability(swapped, VALENCES) > 0.8


def test_ions_of_different_electron_counts_are_not_exchanged(kcaco3f):
    options = assignments(kcaco3f, _orbits(kcaco3f), {**VALENCES, "Ca": 3})
    assert options == [kcaco3f]


def test_elements_without_bond_valence_parameters_keep_their_assignment():
    # Au⁺ and Hg²⁺ have 78 electrons each, but pymatgen has no bond-valence parameters for Au
    structure = Structure.from_spacegroup("Pm-3m", Lattice.cubic(4.0), ["Au", "Hg", "F"],
                                          [[0, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0.5]])
    assert assignments(structure, _orbits(structure), {"Au": 1, "Hg": 2, "F": -1}) == [structure]
