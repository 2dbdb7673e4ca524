import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from model.charge_flipping import (
    amplitudes_from_pattern,
    amplitudes_from_structure,
    charge_flip,
)
from model.constraints import space_group_ops
from model.density import cmed
from model.instrument import Instrument
from model.metrics import Alignment, aligned, best_alignment, site_scores
from model.pattern import ANODES
from model.preprocess import background, find_peaks
from model.simulate import Sample, simulate_pattern
from model.structure import conventional_standard


@pytest.fixture(scope="module")
def rutile():
    """TiO2, P4_2/mnm: a free O coordinate and operations with (½, ½, ½) translations."""
    return conventional_standard(Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.594, 2.959),
                                                           ["Ti", "O"], [[0, 0, 0], [0.305, 0.305, 0]]))


def _scores(values, structure):
    ops = space_group_ops(structure)
    truth = cmed(structure, n=32, conventional=False).values
    alignment = best_alignment(values, truth, ops, ops.crystal_system)
    return alignment.cc, site_scores(aligned(values, alignment, 32), structure)


@pytest.mark.parametrize("name", ["rocksalt", "rutile"])
def test_ideal_powder_amplitudes_give_the_structure(name, request):
    structure = conventional_standard(request.getfixturevalue(name))
    electrons = sum(site.specie.Z for site in structure)
    result = charge_flip(amplitudes_from_structure(structure, 0.9), structure.lattice.matrix,
                         space_group_ops(structure), electrons=electrons)
    cc, sites = _scores(result.values, structure)
    assert cc > 0.7
    assert sites.recall == 1.0 and sites.precision == 1.0
    # F(000) = ΣZ: the map holds the cell's electrons
    assert result.values.mean() * structure.volume == pytest.approx(electrons, rel=1e-4)
    assert len(result.phases) == len(result.fom) == len(amplitudes_from_structure(structure, 0.9).hkl)
    assert result.r_factor in result.r_factors and 0.8 < result.symmetry_fom <= 1.0


def test_result_obeys_the_space_group(rutile):
    result = charge_flip(amplitudes_from_structure(rutile, 0.9), rutile.lattice.matrix, space_group_ops(rutile),
                         starts=1, cycles=100)
    ops = space_group_ops(rutile)
    for rotation, translation in zip(ops.rotations, ops.translations):
        image = aligned(result.values, Alignment(1.0, rotation.astype(np.int64), translation))
        np.testing.assert_allclose(image, result.values, atol=1e-4 * np.abs(result.values).max())
    # centrosymmetric with the inversion centre at the origin: phases 0 or π
    assert np.allclose(np.sin(result.phases[result.fom > 1e-6]), 0, atol=1e-6)
    assert np.all((result.fom >= 0) & (result.fom <= 1 + 1e-9))


def test_start_map_gives_the_first_phases(rutile):
    truth = cmed(rutile, n=24, conventional=False).values
    amplitudes = amplitudes_from_structure(rutile, 0.9)
    ops = space_group_ops(rutile)
    unflipped = charge_flip(amplitudes, rutile.lattice.matrix, ops, starts=1, cycles=0, start=truth)
    true_phases = np.angle(np.conj(np.fft.fftn(truth))[tuple((amplitudes.hkl % 24).T)])
    # the same phases, up to the origin shift by (½, ½, ½) the group allows
    assert np.all(np.abs(np.cos(unflipped.phases - true_phases)) > 0.99)
    assert unflipped.symmetry_fom == pytest.approx(1.0)
    assert _scores(unflipped.values, rutile)[0] > 0.8
    flipped = charge_flip(amplitudes, rutile.lattice.matrix, ops, starts=1, cycles=5, start=truth)
    assert flipped.symmetry_fom > 0.99


def test_amplitudes_extracted_from_a_lab_pattern(rutile):
    two_theta = np.arange(10.0, 120.0, 0.02)
    rng = np.random.default_rng(1)
    pattern = simulate_pattern(rutile, Instrument(ANODES["CuKa"]), two_theta, Sample(counts=1e5), rng)
    net = pattern.intensity - background(pattern)
    peaks = find_peaks(pattern)
    slope, intercept = np.polyfit([p.two_theta for p in peaks], [p.fwhm for p in peaks], 1)
    composition = {el.symbol: n for el, n in rutile.composition.element_composition.items()}
    extracted = amplitudes_from_pattern(pattern, net, rutile.lattice, space_group_ops(rutile).number, 0.0,
                                        np.array([slope, intercept]), composition)
    d_min = float(extracted.d.min())
    ideal = amplitudes_from_structure(rutile, d_min - 1e-6)
    f_ideal = dict(zip(map(tuple, ideal.hkl), ideal.f_obs))
    pairs = np.array([(f, f_ideal[tuple(h)]) for h, f in zip(extracted.hkl, extracted.f_obs) if tuple(h) in f_ideal])
    assert len(pairs) >= 0.9 * len(extracted.hkl)
    assert np.corrcoef(pairs.T ** 2)[0, 1] > 0.9
    # Wilson scaling puts them on the absolute scale (ideal: B = 0, the pattern has its own B)
    assert 0.6 < np.median(pairs[:, 0] / pairs[:, 1]) < 1.5
    result = charge_flip(extracted, rutile.lattice.matrix, space_group_ops(rutile),
                         electrons=sum(site.specie.Z for site in rutile))
    _, sites = _scores(result.values, rutile)
    # the Ti sites always; the O sites in about half the random starts (seeds 0-5 of this pattern: recall
    # 1/3 or 1), so only the heavy atoms are asserted: O beside Ti is at the edge of what flipping
    # lab-pattern amplitudes of 0.9 Å gives
    assert sites.recall_z >= 44 / 76  # 2 Ti (Z 22) of ΣZ 76
