import csv
import warnings

import numpy as np
import pytest
import spglib
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import Lattice, Structure

from model.density import (
    Density,
    cmed,
    fourier_upsample,
    grid_biso,
    resample_fractional,
)
from model.errors import InputError
from model.structure import load_structure


def shared_structures(shared_data, every):
    """Every ``every``-th real structure of the shared set, skipping the artificial cells."""
    with open(shared_data / "structures" / "manifest.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if float(row["min_distance_A"]) >= 0.9]
    return [(row, shared_data / "structures" / row["file"]) for row in rows[::every]]


def electrons(structure):
    return sum(specie.Z * occ for site in structure for specie, occ in site.species.items())


def triclinic_one_atom(frac=(0.25, 0.5, 0.125)):
    return Structure(Lattice.from_parameters(4.0, 5.0, 6.0, 80, 95, 105), ["Cu"], [frac])


def test_electron_count_on_real_structures(shared_data):
    cases = shared_structures(shared_data, every=6)
    assert len(cases) >= 30
    for row, path in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            density = cmed(load_structure(path))
        assert density.values.shape == (32, 32, 32) and density.values.dtype == np.float32
        assert len(density.structure) == int(row["natoms_conventional"]), row["file"]
        expected = electrons(density.structure)
        assert density.electron_count == pytest.approx(expected, rel=1e-3), row["file"]


def test_density_is_invariant_under_the_space_group(shared_data):
    n = 24  # multiple of 2, 3, 4, 6, 8: every conventional translation lands on the grid
    for row, path in shared_structures(shared_data, every=20):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            density = cmed(load_structure(path), n=n)
        s = density.structure
        numbers = [max(site.species.items(), key=lambda item: item[1])[0].Z for site in s]
        dataset = spglib.get_symmetry_dataset((s.lattice.matrix, s.frac_coords, numbers), symprec=1e-3)
        assert len(dataset.rotations) > 1 or row["spacegroup"] == "1"
        index = np.indices((n, n, n)).reshape(3, -1)
        scale = float(density.values.max())
        for rotation, translation in zip(dataset.rotations, dataset.translations):
            shift = translation * n
            assert np.allclose(shift, np.round(shift), atol=1e-3), (row["file"], translation)
            image = (rotation @ index + np.round(shift).astype(int)[:, None]) % n
            moved = density.values[image[0], image[1], image[2]]
            assert np.abs(moved - density.values.ravel()).max() < 1e-4 * scale, row["file"]


def test_single_atom_peaks_at_its_voxel_in_a_triclinic_cell():
    density = cmed(triclinic_one_atom(), n=24, conventional=False)
    assert np.unravel_index(density.values.argmax(), density.values.shape) == (6, 12, 3)
    assert density.electron_count == pytest.approx(29.0, rel=1e-5)


def test_structure_factors_match_pymatgen_xrd_calculator():
    """|F(hkl)|² read back from the grid reproduces pymatgen's XRD intensities (same form factors)."""
    structure = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"],
                                          [[0, 0, 0], [0.5, 0.5, 0.5]])
    b = 1.5
    density = cmed(structure, n=32, biso=b)
    f_grid = np.fft.fftn(density.values.astype(np.float64)) * density.voxel_volume_A3
    pattern = XRDCalculator("CuKa", debye_waller_factors={"Na": b, "Cl": b}).get_pattern(structure)
    theta = np.radians(pattern.x / 2)
    lp = (1 + np.cos(2 * theta) ** 2) / (np.sin(theta) ** 2 * np.cos(theta))
    ours = np.array([sum(abs(f_grid[tuple(np.array(family["hkl"]) % 32)]) ** 2 * family["multiplicity"]
                         for family in families) for families in pattern.hkls]) * lp
    np.testing.assert_allclose(ours / ours.max() * 100, pattern.y, atol=0.05)


def test_occupancy_weights_and_biso_keep_the_electron_count():
    disordered = Structure(Lattice.cubic(3.6), [{"Fe": 0.5, "Ni": 0.5}], [[0, 0, 0]])
    sharp = cmed(disordered, n=16, biso=0.5, conventional=False)
    blurred = cmed(disordered, n=16, biso=5.0, conventional=False)
    assert sharp.electron_count == pytest.approx(27.0, rel=1e-5)
    assert blurred.electron_count == pytest.approx(27.0, rel=1e-5)
    assert blurred.values.max() < sharp.values.max()


def test_conventional_cell_is_used_by_default():
    fcc = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.61), ["Cu"], [[0, 0, 0]])
    primitive = fcc.get_primitive_structure()
    assert len(primitive) == 1
    density = cmed(primitive, n=16)
    assert len(density.structure) == 4
    np.testing.assert_allclose(np.abs(np.linalg.det(density.lattice)), 3.61**3, rtol=1e-6)
    assert density.electron_count == pytest.approx(4 * 29, rel=1e-5)
    as_given = cmed(primitive, n=16, conventional=False)
    assert as_given.electron_count == pytest.approx(29, rel=1e-5)


def test_default_biso_keeps_the_grid_faithful():
    """With the default B the band-limited grid equals point samples of ρ to within 1 % of the peak."""
    structure = Structure(Lattice.from_parameters(7.0, 8.0, 9.5, 90, 101, 90), ["Pb", "O", "S"],
                          [[0.1, 0.2, 0.3], [0.4, 0.45, 0.9], [0.7, 0.8, 0.05]])
    coarse = cmed(structure, n=16, conventional=False)
    b = grid_biso(structure.lattice.matrix, 16)
    assert b == pytest.approx(8 * np.pi**2 * (9.5 / 16) ** 2)
    fine = cmed(structure, n=64, biso=b, conventional=False).values[::4, ::4, ::4]
    assert np.abs(coarse.values - fine).max() < 0.01 * fine.max()


@pytest.mark.parametrize("n", [3, 513, 0, -8, 16.5, True])
def test_absurd_grid_is_refused(n):
    with pytest.raises(InputError, match="grid size"):
        cmed(triclinic_one_atom(), n=n)


def test_bad_biso_and_unknown_form_factor_are_refused():
    with pytest.raises(InputError, match="Biso"):
        cmed(triclinic_one_atom(), n=8, biso=-1.0)
    with pytest.raises(InputError, match="form factor"):
        cmed(Structure(Lattice.cubic(5), ["Es"], [[0, 0, 0]]), n=8, conventional=False)


def test_density_checks_its_shape():
    with pytest.raises(InputError, match="N×N×N"):
        Density(np.zeros((4, 4, 5)), np.eye(3))
    with pytest.raises(InputError, match="lattice"):
        Density(np.zeros((4, 4, 4)), np.zeros((3, 3)))


def test_fourier_upsample_is_exact_on_the_original_grid():
    density = cmed(triclinic_one_atom(), n=16, conventional=False)
    finer = fourier_upsample(density, 48)
    assert isinstance(finer, Density) and finer.n == 48 and finer.structure is density.structure
    np.testing.assert_allclose(finer.values[::3, ::3, ::3], density.values, atol=1e-5 * density.values.max())
    assert finer.electron_count == pytest.approx(density.electron_count, rel=1e-5)
    bare = fourier_upsample(density.values, 32)
    assert isinstance(bare, np.ndarray) and bare.shape == (32, 32, 32)
    with pytest.raises(InputError, match="upsample"):
        fourier_upsample(density, 8)


def test_fourier_upsample_agrees_with_a_finer_cmed():
    structure = triclinic_one_atom()
    b = grid_biso(structure.lattice.matrix, 16)
    finer = fourier_upsample(cmed(structure, n=16, conventional=False), 32)
    direct = cmed(structure, n=32, biso=b, conventional=False)
    assert np.abs(finer.values - direct.values).max() < 0.01 * direct.values.max()


@pytest.mark.parametrize("n, m", [(16, 25), (16, 40), (15, 25), (16, 16)])
def test_resample_fractional_evaluates_a_band_limited_function_exactly(n, m):
    def field(n_points):
        x, y, z = np.meshgrid(*[np.arange(n_points) / n_points] * 3, indexing="ij")
        nyquist = np.cos(2 * np.pi * (n // 2) * x) if n % 2 == 0 else 0.0
        return (1.0 + np.cos(2 * np.pi * 3 * x) + 0.5 * np.sin(2 * np.pi * (2 * y - 5 * z))
                + 0.25 * np.cos(2 * np.pi * (x + 7 * y)) + 0.2 * nyquist)

    np.testing.assert_allclose(resample_fractional(field(n), m), field(m), atol=1e-10)


def test_resample_fractional_takes_a_batch():
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(2, 3, 10, 10, 10)).astype(np.float32)
    resampled = resample_fractional(batch, 25)
    assert resampled.shape == (2, 3, 25, 25, 25) and resampled.dtype == np.float32
    np.testing.assert_allclose(resampled[1, 2], resample_fractional(batch[1, 2], 25), rtol=1e-6)
    with pytest.raises(InputError, match="3-D"):
        resample_fractional(np.zeros((4, 4)), 8)
