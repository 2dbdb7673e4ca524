import numpy as np
import pytest
from helpers import finished
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from model import extraction, search, wyckoff
from model.instrument import Instrument
from model.pattern import ANODES
from model.preprocess import background, find_peaks
from model.scoring import Arm
from model.simulate import Sample, simulate_pattern
from model.solve import fwhm_poly


@pytest.fixture(scope="module")
def rutile():
    """TiO2 rutile (P4_2/mnm, O on 4f x,x,0) measured with Kα2, texture along c, background and noise."""
    structure = Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"],
                                          [[0, 0, 0], [0.3053, 0.3053, 0]])
    instrument = Instrument(ANODES["CuKa"], w=0.006, zero=0.03)
    sample = Sample(po_ratio=1.25, po_direction=(0, 0, 1), counts=30000)
    pattern = simulate_pattern(structure, instrument, np.arange(15, 100, 0.02), sample,
                               rng=np.random.default_rng(3))
    return structure, pattern


def test_orbits_are_the_wyckoff_positions():
    table = {orbit.label: orbit for orbit in wyckoff.orbits(136)}  # P4_2/mnm
    assert table["2a"].dof == 0 and table["4f"].dof == 1 and table["16k"].dof == 3
    rng = np.random.default_rng(0)
    for orbit in table.values():
        frac = (orbit.offsets + np.einsum("mip,p->mi", orbit.basis, rng.random(orbit.dof))) % 1.0
        delta = frac[:, None] - frac[None]
        delta -= np.round(delta)
        distinct = np.abs(delta).max(axis=2) > 1e-6
        assert distinct.sum() == len(frac) * (len(frac) - 1)  # as many atoms as the multiplicity


def test_fixed_positions_hold_one_orbit():
    assert wyckoff.feasible(221, [1, 1, 3])  # CsSnBr3 in Pm-3m: 1a, 1b, 3c/3d
    assert not wyckoff.feasible(221, [1, 1, 1])  # three one-atom orbits where there are two
    assert not wyckoff.feasible(225, [1])  # Fm-3m has no position with fewer than 4 atoms
    labels = {tuple(sorted(wyckoff.orbits(221)[k].label for k in option)) for option in wyckoff.fillings(221, 2)}
    assert labels == {("1a", "1b")}  # two one-atom orbits, never one of them twice


def test_forbidden_lattice_reflections_count_as_unexplained(rocksalt):
    pattern = simulate_pattern(rocksalt, Instrument(ANODES["CuKa"], w=0.004), np.arange(20, 90, 0.02))
    signal = pattern.intensity - background(pattern)
    widths = fwhm_poly(find_peaks(pattern))
    primitive = extraction.clusters(pattern, signal, rocksalt.lattice, 221, 0.0, widths)
    centred = extraction.clusters(pattern, signal, rocksalt.lattice, 225, 0.0, widths)
    assert primitive.observed.size == primitive.group.max() + 1  # Pm-3m forbids nothing
    gaps = centred.observed[centred.group.max() + 1:]  # windows of the mixed-parity hkl Fm-3m forbids
    assert gaps.size > 0 and np.all(np.abs(gaps) < 0.01 * centred.observed.max())
    assert centred.background.shape == (centred.observed.size, extraction.BACKGROUND_TERMS)


def test_search_finds_rutile_and_ranks_the_true_group_first(rutile):
    structure, pattern = rutile
    signal = pattern.intensity - background(pattern)
    arms = [Arm(structure.lattice, 0.03, group, ("O", "Ti"), (4, 2)) for group in (136, 123)]
    candidates = finished(search.search(pattern, signal, arms, fwhm_poly(find_peaks(pattern)),
                                    np.random.default_rng(0)))
    best = candidates[0]
    assert best.space_group == 136 and len(best.wyckoffs) == 2  # Ti and O, one orbit each
    assert StructureMatcher().fit(structure, best.structure)
    assert best.score < min(c.score for c in candidates if c.space_group == 123)


def test_search_can_be_cancelled(rutile):
    structure, pattern = rutile
    arms = [Arm(structure.lattice, 0.0, 136, ("O", "Ti"), (4, 2))]
    job = search.search(pattern, pattern.intensity - background(pattern), arms, [0.0, 0.1],
                        np.random.default_rng(0))
    for _ in range(5):
        next(job)
    job.close()


def test_first_look_ranks_arms_at_their_polished_best():
    """CO2 (Pa-3, O on 8c x,x,x): among a dozen cubic arms the true one is kept past the first look
    (unpolished random samples put its O a few tenths of an Å off, and it lost to wrong groups)."""
    structure = Structure.from_spacegroup("Pa-3", Lattice.cubic(5.624), ["C", "O"], [[0, 0, 0], [0.1185] * 3])
    instrument = Instrument(ANODES["CuKa"], u=0.01, w=0.005)
    pattern = simulate_pattern(structure, instrument, np.arange(10, 90, 0.02), Sample(counts=20000),
                               rng=np.random.default_rng(1))
    signal = pattern.intensity - background(pattern)
    arms = [Arm(structure.lattice, 0.0, group, ("C", "O"), counts)
            for group in (205, 198, 208, 207, 215, 221, 195, 200) for counts in ((4, 8), (8, 16))
            if wyckoff.feasible(group, counts)]
    candidates = finished(search.search(pattern, signal, arms, fwhm_poly(find_peaks(pattern)),
                                    np.random.default_rng(0)))
    assert StructureMatcher().fit(structure, candidates[0].structure)
