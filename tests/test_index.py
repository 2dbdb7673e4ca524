import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from model import index
from model.errors import InputError
from model.pattern import ANODES
from model.simulate import sticks

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
    groups = index.space_group_candidates(best, lines, CU)
    assert groups[0].unexplained == 0
    assert "Fm-3m" in [g.symbol for g in groups[:8]]
    assert all(g.symbol[0] == "F" for g in groups[:5])


def test_too_few_peaks_is_input_error():
    with pytest.raises(InputError):
        index.index([20.0, 30.0], CU)
