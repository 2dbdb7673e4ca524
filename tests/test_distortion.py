import numpy as np
import pytest
from helpers import finished
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from model import distortion
from model.instrument import Instrument
from model.pattern import ANODES
from model.refine import refine
from model.simulate import Sample, simulate_pattern
from model.solve import _lower_symmetry, _pseudo_inversions

A = 5.795  # Å, CsSnBr3's cubic cell


def _perovskite(c_over_a: float, tin_shift: float) -> Structure:
    """CsSnBr3 (cubic perovskite) with c stretched to ``c_over_a`` and Sn moved ``tin_shift`` along z:
    the ferroelectric distortion of BaTiO3."""
    cubic = Structure.from_spacegroup("Pm-3m", Lattice.cubic(A), ["Cs", "Sn", "Br"],
                                      [[0, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0.5]])
    frac = cubic.frac_coords + np.outer([str(s) == "Sn" for s in cubic.species], [0, 0, tin_shift])
    return Structure(Lattice.tetragonal(A, A * c_over_a), cubic.species, frac)


def _pbvo3(equatorial_z: float) -> Structure:
    """Tetragonal PbVO3 (P4mm, c/a 1.23): VO5 pyramids between Pb layers, the equatorial O at
    ``equatorial_z`` (the true 0.6915 above the V, or its image through Pb, 0.3085, below it)."""
    return Structure(Lattice.tetragonal(3.807, 4.698), ["Pb", "V", "O", "O", "O"],
                     [[0, 0, 0], [0.5, 0.5, 0.5674], [0, 0.5, equatorial_z], [0.5, 0, equatorial_z],
                      [0.5, 0.5, 0.2102]])


def _cubic_solution_and_outcome(truth: Structure):
    """The cubic parent refined against ``truth``'s pattern (as the solve has it before the stage),
    and what the solve's pseudo-symmetry stage makes of it."""
    instrument = Instrument(ANODES["CuKa"], u=0.01, w=0.008, zero=0.02)
    pattern = simulate_pattern(truth, instrument, np.arange(10, 90, 0.02), Sample(counts=20000),
                               rng=np.random.default_rng(3))
    best = refine(pattern, _perovskite(1.0, 0.0))
    return best, finished(_lower_symmetry(pattern, best))


def test_one_percent_tetragonal_split_is_found():
    best, outcome = _cubic_solution_and_outcome(_perovskite(1.01, 0.03))
    assert best.space_group.crystal_system == "cubic"
    assert outcome.space_group.crystal_system == "tetragonal" and outcome.rwp < best.rwp
    a, _, c = outcome.structure.lattice.abc
    assert c / a == pytest.approx(1.01, abs=1e-3)


def test_undistorted_cubic_pattern_stays_cubic():
    best, outcome = _cubic_solution_and_outcome(_perovskite(1.0, 0.0))
    assert outcome is best and outcome.space_group.symbol == "Pm-3m"


def test_polar_trials_reach_each_polar_subgroup_once():
    trials = distortion.polar_trials(distortion.stretched(_perovskite(1.0, 0.0), distortion.STRAIN_START))
    # Cs, Sn or either Br site of P4/mmm moved along c: all give P4mm, whose z are all free
    assert [t.get_space_group_info(symprec=1e-3)[1] for t in trials] == [99]


def test_pseudo_inverted_images_move_light_sites_through_the_heavy_atoms():
    images = distortion.pseudo_inverted(_pbvo3(0.3085))
    # three light orbits (V, equatorial O, apical O): the V kept, the others' choices of side
    assert len(images) == 3
    assert any(StructureMatcher().fit(image, _pbvo3(0.6915)) for image in images)
    # a centrosymmetric structure has no such images
    assert distortion.pseudo_inverted(_perovskite(1.0, 0.0)) == []


def test_light_sites_on_their_images_are_refined_back_to_the_truth():
    # the heavy Pb scatters 90 % of Σ Z²: the wrong side of the equatorial O fits to within a few
    # percent of Rwp; the solve's stage refines the images and keeps the truth
    truth = _pbvo3(0.6915)
    instrument = Instrument(ANODES["CuKa"], u=0.01, w=0.008, zero=0.02)
    pattern = simulate_pattern(truth, instrument, np.arange(10, 90, 0.02), Sample(counts=20000),
                               rng=np.random.default_rng(3))
    wrong = refine(pattern, _pbvo3(0.3085))
    outcome = finished(_pseudo_inversions(pattern, wrong))
    assert outcome.rwp < wrong.rwp and StructureMatcher(stol=0.1).fit(outcome.structure, truth)
    assert not StructureMatcher(stol=0.1).fit(wrong.structure, truth)
