import dataclasses

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from model import index, spacegroups
from model.errors import InputError
from model.instrument import Instrument
from model.pattern import ANODES
from model.preprocess import Peak, find_peaks
from model.readers import read_patterns
from model.simulate import Sample, simulate_pattern, sticks
from model.spacegroups import index_cells

CU = ANODES["CuKa"].ka1


def _lines(structure, zero=0.0, n=20):
    s = sticks(structure, CU, (10, 100))
    return s.two_theta[s.intensity > 0.5][:n] + zero


CASES = [
    ("cubic", Structure.from_spacegroup("Fm-3m", Lattice.cubic(6.35), ["Mg", "Si"], [[0.25] * 3, [0, 0, 0]])),
    ("tetragonal", Structure.from_spacegroup("P4/mmm", Lattice.tetragonal(3.9, 5.2), ["Ba", "Ti", "O"],
                                             [[0, 0, 0], [0.5, 0.5, 0.4], [0.5, 0, 0.3]])),
    ("hexagonal", Structure.from_spacegroup("P6_3/mmc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"],
                                            [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.38]])),
    ("orthorhombic", Structure.from_spacegroup("Pmmm", Lattice.orthorhombic(3.1, 4.3, 5.6), ["Cu", "O"],
                                               [[0, 0, 0], [0.5, 0.5, 0.5]])),
]


@pytest.mark.parametrize("system,structure", CASES, ids=[c[0] for c in CASES])
def test_index_recovers_cell_and_zero(system, structure):
    cells = index.index(_lines(structure, zero=0.03), CU, systems=(system,))
    best = cells[0]
    assert best.crystal_system == system
    assert np.allclose(sorted(best.lattice[:3]), sorted(structure.lattice.abc), rtol=2e-3)
    assert abs(best.zero - 0.03) < 0.01
    assert best.m20 > 10 and best.f_n > 10


def test_auto_prefers_the_true_cubic_cell_and_its_extinctions():
    structure = CASES[0][1]
    lines = _lines(structure)
    best = index.index(lines, CU)[0]
    assert best.crystal_system == "cubic"
    groups = spacegroups.space_group_candidates(best, lines, CU)
    assert groups[0].unexplained == 0
    assert "Fm-3m" in [g.symbol for g in groups[:8]]
    assert all(g.symbol[0] == "F" for g in groups[:5])


def test_too_few_peaks_is_input_error():
    with pytest.raises(InputError):
        index.index([20.0, 30.0], CU)


def test_impurity_lines_and_zero_shift_still_give_the_cell():
    structure = CASES[1][1]
    lines = np.sort(_lines(structure, zero=0.08, n=18))
    # two lines of another phase, each well away from every line the true cell allows
    impurities = [25.6, 44.1]
    calc = sticks(structure, CU, (10, 100)).two_theta + 0.08
    assert all(np.min(np.abs(calc - x)) > 0.3 for x in impurities)
    best = index.index(np.concatenate([lines, impurities]), CU)[0]
    assert best.crystal_system == "tetragonal"
    assert np.allclose(best.lattice[:3], structure.lattice.abc, rtol=2e-3)
    assert abs(best.zero - 0.08) < 0.01
    assert (best.n_indexed, best.n_lines) == (18, 20)


def test_orthorhombic_group_is_offered_in_its_standard_setting():
    # Pnma with b the longest axis: the indexer reports a ≤ b ≤ c, so the group's setting needs
    # the axes reordered
    structure = Structure.from_spacegroup("Pnma", Lattice.orthorhombic(5.5, 7.8, 5.4), ["Ca", "Ti", "O", "O"],
                                          [[0.03, 0.25, 0.99], [0, 0, 0.5], [0.48, 0.25, 0.08], [0.29, 0.04, 0.71]])
    lines = _lines(structure)
    best = index.index(lines, CU, systems=("orthorhombic",))[0]
    assert np.allclose(best.lattice[:3], (5.4, 5.5, 7.8), rtol=2e-3)
    groups = spacegroups.space_group_candidates(best, lines, CU)
    pnma = [g for g in groups if g.number == 62 and g.unexplained == 0]
    assert pnma
    assert any(np.allclose(index.in_setting(best, g.axes).lattice[:3], (5.5, 7.8, 5.4), rtol=2e-3) for g in pnma)


def test_klatio4_lab_pattern_indexes_to_its_published_cell(shared_data):
    # Cu Kα stated as the mean 1.54178 Å, Kα2 unresolved at low angles and resolved at high ones
    pattern = read_patterns(shared_data / "experimental" / "wm2446Isup2.rtv.combined.cif")[0]
    ranked, _, plans = index_cells(find_peaks(pattern), pattern.wavelength.ka1)
    best = ranked[0]
    assert best.crystal_system == "tetragonal"
    assert np.allclose(best.lattice[:3], (3.8416, 3.8416, 13.4695), rtol=1e-3)
    assert best.n_indexed == best.n_lines
    assert 129 in [g.number for cell, g in plans if cell is best]  # P4/nmm


def test_long_axis_cell_whose_first_lines_are_all_hk0(shared_data):
    # U(WC)2, P-4, a = 8.33, c = 3.13 Å: the low-angle lines are hk0, so the trial cells that fix c
    # come with a zero-shift error that puts the dense high-angle lines tenths of a degree off
    structure = Structure.from_file(shared_data / "structures" / "tetragonal" / "spglib-083.cif")
    s = sticks(structure, CU, (10, 90))
    lines = np.sort(s.two_theta[np.argsort(-s.intensity)[:20]]) + 0.05
    best = index.index(lines, CU)[0]
    assert best.crystal_system == "tetragonal"
    assert np.allclose(best.lattice[:3], structure.lattice.abc, rtol=1e-3)
    assert best.n_indexed == 20


def test_eight_lines_index_a_tetragonal_cell():
    # a weak pattern whose peak search finds 8 lines still gives its cell (2 coefficients and the zero)
    structure = CASES[1][1]
    lines = _lines(structure, zero=0.03)[:8]
    best = index.index(lines, CU, systems=("tetragonal",))[0]
    assert np.allclose(best.lattice[:3], structure.lattice.abc, rtol=2e-3)
    assert best.n_indexed == 8


def test_extinctions_are_counted_on_line_positions_not_hkl_families():
    # P4_2/n (hk0: h+k = 2n, 00l: l = 2n) has more extinctions than P4/nmm (hk0: h+k = 2n) but, in
    # the lower Laue class 4/m, more hkl families: it must still rank first
    structure = Structure.from_spacegroup("P4_2/n", Lattice.tetragonal(6.4, 4.3), ["Zr", "O"],
                                          [[0.1, 0.2, 0.3], [0.35, 0.05, 0.15]])
    lines = _lines(structure)
    best = index.index(lines, CU, systems=("tetragonal",))[0]
    groups = spacegroups.space_group_candidates(best, lines, CU)
    assert [g.number for g in groups[:2]] == [86, 129]
    assert groups[0].unexplained == 0


def test_enantiomorphic_groups_are_offered_once():
    # α-quartz-like P3_221: its mirror image in P3_121 gives the same powder pattern; the screw
    # extinctions (00l: l = 3n) are shared by ten groups, five pairs of mirror images
    structure = Structure.from_spacegroup("P3_221", Lattice.hexagonal(4.91, 5.40), ["Si", "O"],
                                          [[0.47, 0, 1 / 6], [0.41, 0.27, 0.21]])
    lines = _lines(structure)
    best = index.index(lines, CU, systems=("hexagonal",))[0]
    numbers = [g.number for g in spacegroups.space_group_candidates(best, lines, CU)]
    assert 152 in numbers and 154 not in numbers  # P3_121 stands for the pair
    pairs = [(76, 78), (91, 95), (92, 96), (144, 145), (151, 153), (152, 154), (169, 170), (171, 172),
             (178, 179), (180, 181), (212, 213)]
    assert not any(a in numbers and b in numbers for a, b in pairs)


def test_a_cubic_cell_behind_lower_cells_on_merit_is_searched():
    # the eight peaks found in a lab pattern of Ag2O3 (Pn-3m, a = 4.904 Å, fcc-like): hexagonal and
    # tetragonal cells whose lines include all of the cubic ones fit the positions with more
    # parameters and outrank it on M20
    two_theta = [31.549, 36.597, 52.728, 62.769, 65.900, 77.839, 86.390, 89.223]
    heights = [1170, 337, 428, 340, 69, 68, 93, 61]
    ranked, searched, _ = index_cells([Peak(x, 0.002, h, 0.1, 0.5) for x, h in zip(two_theta, heights)], CU)
    assert ranked[0].crystal_system == "hexagonal"
    assert all(c.crystal_system != "cubic" for c in ranked[:5])
    assert any(c.crystal_system == "cubic" and np.isclose(c.lattice[0], 4.904, rtol=1e-3) for c in searched)


def _reduced(lattice):
    return Lattice.from_parameters(*lattice).get_niggli_reduced_lattice()


def _same_lattice(cell, truth, rtol=2e-3):
    """Reduced (Niggli) cells within rtol in a, b, c, their angles within 0.3°: the setting the
    indexer reports (axis order, β or 180° − β, the cell choice) does not matter."""
    found, true = _reduced(cell.lattice), truth.get_niggli_reduced_lattice()
    return (np.allclose(found.abc, true.abc, rtol=rtol) and np.allclose(found.angles, true.angles, atol=0.3)
            and abs(cell.volume - truth.volume) <= rtol * truth.volume)


P21C = Structure.from_spacegroup("P2_1/c", Lattice.monoclinic(5.6, 7.3, 8.9, 104.0), ["Zn", "O"],
                                 [[0.12, 0.23, 0.31], [0.35, 0.08, 0.12]])


def test_monoclinic_p21c_simulated_pattern_indexes_to_its_cell():
    # a Cu Kα1 lab pattern of a P2_1/c cell (its c glide and 2_1 screw hide h0l l odd and 0k0 k odd,
    # so two basis vectors show only at 2c*, 2b*), peaks found by the peak search, zero shift 0.03°
    instrument = dataclasses.replace(Instrument(ANODES["CuKa1"]), zero=0.03)
    pattern = simulate_pattern(P21C, instrument, np.arange(8.0, 90.0, 0.02), Sample(counts=1e5),
                               np.random.default_rng(0))
    peaks = sorted(find_peaks(pattern), key=lambda p: -p.height)[:20]
    cells = index.index([p.two_theta for p in peaks], CU)
    best = cells[0]
    assert best.crystal_system == "monoclinic"
    assert _same_lattice(best, P21C.lattice)
    assert abs(best.zero - 0.03) < 0.02
    assert best.m20 > 20 and best.f_n > 20


def test_monoclinic_lines_with_an_impurity_line():
    lines = _lines(P21C, zero=0.02, n=19) + np.random.default_rng(2).normal(0, 0.008, 19)
    # a line of another phase in the widest gap between the cell's lines (weak ones too) at 25–45°
    calc = np.sort(sticks(P21C, CU, (10, 100)).two_theta) + 0.02
    calc = calc[(calc > 25) & (calc < 45)]
    widest = int(np.argmax(np.diff(calc)))
    impurity = (calc[widest] + calc[widest + 1]) / 2
    assert calc[widest + 1] - calc[widest] > 0.4
    best = index.index(np.append(lines, impurity), CU)[0]
    assert best.crystal_system == "monoclinic"
    assert _same_lattice(best, P21C.lattice)
    assert (best.n_indexed, best.n_lines) == (19, 20)


def test_triclinic_cell_indexed_from_its_lines():
    structure = Structure.from_spacegroup("P-1", Lattice.from_parameters(5.2, 6.1, 7.3, 80, 95, 105), ["Cu", "O"],
                                          [[0.12, 0.23, 0.31], [0.35, 0.08, 0.42]])
    lines = _lines(structure, zero=0.02) + np.random.default_rng(1).normal(0, 0.008, 20)
    best = index.index(lines, CU)[0]
    assert best.crystal_system == "triclinic"
    assert _same_lattice(best, structure.lattice)
    groups = spacegroups.space_group_candidates(best, lines, CU)
    assert [g.symbol for g in groups] == ["P-1", "P1"]


def _indexed_strongest_lines(structure):
    """The ranked cells and plans of the 20 strongest Cu Kα1 lines of ``structure`` (10–100° 2θ),
    shifted 0.02° and jittered by 0.008°."""
    s = sticks(structure, CU, (10, 100))
    strong = np.argsort(-s.intensity)[:20]
    two_theta = s.two_theta[strong] + 0.02 + np.random.default_rng(3).normal(0, 0.008, 20)
    peaks = [Peak(x, 0.002, h, 0.1, 0.5) for x, h in zip(two_theta, s.intensity[strong])]
    ranked, _, plans = index_cells(peaks, CU)
    return ranked, plans


def test_c_centred_monoclinic_cell_plans_the_c_groups():
    structure = Structure.from_spacegroup("C2/c", Lattice.monoclinic(9.8, 8.9, 5.3, 105.0), ["Ca", "O"],
                                          [[0, 0.3, 0.25], [0.2, 0.1, 0.4]])
    ranked, plans = _indexed_strongest_lines(structure)
    assert ranked[0].crystal_system == "monoclinic"
    assert _same_lattice(ranked[0], structure.lattice)
    planned = [g.symbol for cell, g in plans if cell.crystal_system == "monoclinic"]
    assert {"C2/c", "Cc", "C2/m", "Cm"} <= set(planned)
    assert "P2_1/c" not in planned
    assert planned[:2] == ["C2/c", "Cc"]  # the c glide's extinctions: most first


def test_c_centred_monoclinic_cell_without_a_glide_plans_c2m_cm_c2_first():
    # C-centring alone (no c glide): the three C groups allow the same lines and come before every
    # primitive group; with the C2/c test above, all five C-centred monoclinic groups are offered
    structure = Structure.from_spacegroup("C2/m", Lattice.monoclinic(9.8, 8.9, 5.3, 105.0), ["Ca", "O"],
                                          [[0.2, 0.5, 0.3], [0.3, 0.2, 0.1]])
    ranked, plans = _indexed_strongest_lines(structure)
    assert _same_lattice(ranked[0], structure.lattice)
    planned = [g.symbol for cell, g in plans if cell.crystal_system == "monoclinic"]
    assert planned[:3] == ["C2/m", "Cm", "C2"]


def test_p21c_extinctions_put_p21c_first_in_one_cell_choice():
    lines = _lines(P21C)
    best = index.index(lines, CU, systems=("monoclinic",))[0]
    groups = spacegroups.space_group_candidates(best, lines, CU)
    assert groups[0].symbol == "P2_1/c" and groups[0].unexplained == 0
    setting = index.in_setting(best, groups[0].axes, groups[0].choice)
    assert np.allclose(setting.lattice, P21C.lattice.parameters, rtol=2e-3)  # c along the glide


def test_low_symmetry_is_not_tried_when_a_cubic_cell_explains_every_line(monkeypatch):
    called = []
    monkeypatch.setattr(index.zones, "low_symmetry_cells", lambda *args: called.append(args) or [])
    best = index.index(_lines(CASES[0][1]), CU)[0]
    assert best.crystal_system == "cubic" and not called


def test_a_polar_group_is_offered_on_each_axis_that_allows_the_same_lines():
    # Pmm2 with its twofold along a, b or c allows every line of the P cell: one extinction class,
    # three structure models; Pmmm, the same on any axes, once
    structure = CASES[3][1]
    lines = _lines(structure)
    best = index.index(lines, CU, systems=("orthorhombic",))[0]
    groups = spacegroups.space_group_candidates(best, lines, CU)
    pmm2 = [g for g in groups if g.symbol == "Pmm2"]
    assert sorted(g.orientation for g in pmm2) == [0, 1, 2]
    assert np.allclose(sorted(index.in_setting(best, g.axes).lattice[2] for g in pmm2), (3.1, 4.3, 5.6), rtol=2e-3)
    assert len([g for g in groups if g.symbol == "Pmmm"]) == 1
    _, _, plans = index_cells([Peak(x, 0.002, 1.0, 0.1, 0.5) for x in lines], CU, systems=("orthorhombic",))
    polar = {cell.lattice[2] for cell, g in plans if g.symbol == "Pmm2"}
    assert len(polar) == 3  # all three orientations planned together


def test_a_primitive_monoclinic_setting_has_a_reduced_against_c():
    # P2/c with its glide along a + c of the indexed cell (a 8.01, c 9.70 Å, β 93.6°): cell choice 2
    # puts c along it, a the shorter of the other two, as the standard setting (a 8.01, β 127.4°)
    cell = index.Cell("monoclinic", (8.011, 6.57, 9.704, 90.0, 93.608, 90.0), 0.0, 50.0, 50.0, 20, 20, 35.0)
    setting = index.in_setting(cell, (0, 1, 2), 1, reduced=True)
    assert np.allclose(setting.lattice, (8.011, 6.57, 12.188, 90.0, 127.38, 90.0), atol=0.01)
    assert np.isclose(setting.volume, cell.volume)
