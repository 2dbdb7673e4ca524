"""model.slices: planes through a periodic map, their contours, atoms in them, σ and extrema."""

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from model.density import cmed
from model.fourier import map_sigma
from model.slices import (
    atoms_on_plane,
    contour_levels,
    contour_lines,
    in_plane_vectors,
    plane_slice,
)


@pytest.fixture(scope="module")
def ceria():
    structure = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.411), ["Ce", "O"],
                                          [[0, 0, 0], [0.25, 0.25, 0.25]])
    return structure, cmed(structure, n=32, conventional=False)


def test_001_slice_is_the_grid_plane():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(12, 12, 12))
    lattice = np.diag([4.0, 5.0, 6.0])
    piece = plane_slice(values, lattice, (0, 0, 1), offset=0.25)  # z = 3/12: a grid plane
    assert piece.values.shape == (13, 13)
    assert np.allclose(piece.values[:-1, :-1], values[:, :, 3], atol=1e-9)
    assert np.allclose(piece.values[-1, :-1], values[0, :, 3], atol=1e-9)  # the mesh closes periodically
    assert np.allclose(piece.frame, [[4.0, 0.0], [0.0, 5.0]])


def test_in_plane_vectors_span_the_plane():
    for hkl in [(1, 1, 0), (1, 1, 1), (2, 1, 0), (1, 0, 2)]:
        u, v = in_plane_vectors(hkl)
        assert np.dot(u, hkl) == 0 and np.dot(v, hkl) == 0
        assert np.array_equal(np.abs(np.cross(u, v)), np.abs(hkl) // np.gcd.reduce(hkl))
    with pytest.raises(ValueError):
        in_plane_vectors((0, 0, 0))


def test_110_slice_passes_through_the_atoms(ceria):
    structure, density = ceria
    piece = plane_slice(density.values, density.lattice, (1, 1, 0))
    assert piece.frame[0, 0] == pytest.approx(5.411) and piece.frame[1, 1] == pytest.approx(5.411 * np.sqrt(2))
    where, source = atoms_on_plane(piece, structure.frac_coords)
    symbols = [structure[i].specie.symbol for i in source]
    assert symbols.count("Ce") >= 4 and symbols.count("O") >= 2  # the (110) plane holds Ce and O rows
    steps = np.array(piece.values.shape) - 1
    for (x, y), symbol in zip(where, symbols):
        ij = np.linalg.solve(piece.frame.T, [x, y]) * steps  # back to sample indices
        i, j = np.round(ij).astype(int)
        # an atom in the plane sits on a maximum of the slice, well above the map's mean
        assert piece.values[i, j] > density.values.mean() + 2 * map_sigma(density), symbol
        around = piece.values[max(i - 2, 0):i + 3, max(j - 2, 0):j + 3]
        assert piece.values[i, j] == pytest.approx(around.max(), rel=1e-4), symbol
    heaviest = piece.values.max()
    assert heaviest == pytest.approx(density.values.max(), rel=1e-3)  # Ce's peak lies in the plane


def test_contours_and_levels(ceria):
    _, density = ceria
    piece = plane_slice(density.values, density.lattice, (0, 0, 1))
    levels = contour_levels(piece.values, map_sigma(density), signed=False)
    assert len(levels) == 8 and levels[-1] < piece.values.max()
    lines = contour_lines(piece, levels)
    assert len(lines) >= 8
    for _, line in lines:  # in the drawn mesh, in Å
        assert line.min() >= -1e-6 and line.max() <= 5.411 + 1e-6
    difference = density.values - density.values.mean()
    signed = contour_levels(difference, float(np.std(difference)), signed=True)
    assert min(signed) < 0 < max(signed) and sorted(signed) == signed
    assert np.allclose(np.sort(np.abs(signed[: len(signed) // 2])), np.abs(signed[len(signed) // 2:]))
