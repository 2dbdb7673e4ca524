from dataclasses import replace

import numpy as np
import pytest
from helpers import read_xsf
from pymatgen.core import Lattice, Structure
from pymatgen.io.common import VolumetricData
from pymatgen.io.vasp import Chgcar
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from model.density import MAP_KINDS, Density, cmed
from model.errors import InputError
from model.exporters import (
    BOHR_A,
    EXPORTERS,
    export,
    exporter_for,
    file_filter,
    kind_of,
)
from model.pattern import ANODES, Pattern, Provenance
from model.result import Fit, Site, SolveResult

N = 12
PEAK = (3, 6, 9)  # Cu at fractional (0.25, 0.5, 0.75) on a 12³ grid


@pytest.fixture(scope="module")
def density():
    """A triclinic cell, so a swapped axis or a transposed lattice shows up."""
    structure = Structure(Lattice.from_parameters(4.0, 5.0, 6.0, 80, 95, 105), ["Cu", "O"],
                          [[0.25, 0.5, 0.75], [0.6, 0.1, 0.3]])
    return cmed(structure, n=N, conventional=False)


def peak(values):
    return tuple(int(i) for i in np.unravel_index(np.argmax(values), values.shape))


def no_leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".part")] == []


def test_cube_round_trip_with_pymatgen(density, tmp_path):
    path = tmp_path / "rho.cube"
    assert export(path, density).name == "Gaussian cube"
    read = VolumetricData.from_cube(path)
    values = read.data["total"] / BOHR_A**3  # e/Bohr³ → e/Å³
    np.testing.assert_allclose(values, density.values, atol=1e-4 * density.values.max())
    assert peak(values) == PEAK
    np.testing.assert_allclose(read.structure.lattice.matrix, density.lattice, atol=1e-5)
    np.testing.assert_allclose(read.structure.frac_coords, density.structure.frac_coords, atol=1e-5)
    assert [s.symbol for s in read.structure.species] == ["Cu", "O"]


def test_xsf_round_trip(density, tmp_path):
    path = tmp_path / "rho.xsf"
    export(path, density)
    primvec, atoms, origin, span, grid = read_xsf(path)
    assert grid.shape == (N + 1,) * 3
    np.testing.assert_allclose(primvec, density.lattice, atol=1e-6)
    np.testing.assert_allclose(span, density.lattice, atol=1e-6)
    np.testing.assert_allclose(origin, 0)
    assert [z for z, _ in atoms] == [29, 8]
    np.testing.assert_allclose(atoms[0][1], density.structure[0].coords, atol=1e-6)
    np.testing.assert_allclose(grid[:N, :N, :N], density.values, atol=1e-4 * density.values.max())
    np.testing.assert_array_equal(grid[N], grid[0])  # periodic grid: last plane repeats the first
    np.testing.assert_array_equal(grid[:, :, N], grid[:, :, 0])
    assert peak(grid[:N, :N, :N]) == PEAK


@pytest.mark.parametrize("name", ["CHGCAR", "rho.vasp", "Cu_O.chgcar"])
def test_chgcar_round_trip_with_pymatgen(density, tmp_path, name):
    path = tmp_path / name
    assert export(path, density).name == "VASP CHGCAR"
    read = Chgcar.from_file(str(path))
    values = read.data["total"] / read.structure.volume  # VASP stores ρ·V
    np.testing.assert_allclose(values, density.values, rtol=1e-6, atol=1e-6 * density.values.max())
    assert peak(values) == PEAK
    np.testing.assert_allclose(read.structure.lattice.matrix, density.lattice, atol=1e-6)
    assert read.structure.composition == density.structure.composition


def test_npz_round_trip_with_cell_atoms_and_kind(density, tmp_path):
    export(tmp_path / "rho.npz", density)
    with np.load(tmp_path / "rho.npz") as archive:
        np.testing.assert_array_equal(archive["values"], density.values)
        np.testing.assert_array_equal(archive["lattice"], density.lattice)
        assert list(archive["species"]) == ["Cu", "O"] and str(archive["kind"]) == "calculated"
        np.testing.assert_allclose(archive["frac_coords"], density.structure.frac_coords)
        assert str(archive["description"]) == density.description


def test_a_bare_grid_is_not_an_export(density, tmp_path):
    # a .npy holds neither the cell nor the atoms nor which map it is
    with pytest.raises(InputError, match="use an ending among"):
        export(tmp_path / "rho.npy", density)


@pytest.mark.parametrize("kind", ["network", "difference", "calculated"])
@pytest.mark.parametrize("name", ["rho.cube", "rho.xsf", "CHGCAR"])
def test_every_density_format_says_which_map_it_holds(density, tmp_path, kind, name):
    export(tmp_path / name, replace(density, kind=kind))
    head = (tmp_path / name).read_text().splitlines()[0]
    assert f"{kind} map, {MAP_KINDS[kind]}: CuO, cell 4.00000 5.00000 6.00000 Å 80.000 95.000 105.000°" in head


def test_a_map_refuses_atoms_of_another_cell(density):
    # the bug behind this: a solution's cubic atoms exported with a candidate's tetragonal grid
    other = Structure(Lattice.cubic(4.0), ["Cu"], [[0, 0, 0]])
    with pytest.raises(ValueError, match="atoms must lie in its own cell"):
        Density(density.values, density.lattice, other)
    with pytest.raises(ValueError, match="map kind 'IAM'"):
        Density(density.values, density.lattice, kind="IAM")


def test_density_without_atoms(density, tmp_path):
    bare = Density(density.values, density.lattice)
    export(tmp_path / "bare.cube", bare)
    np.testing.assert_allclose(VolumetricData.from_cube(tmp_path / "bare.cube").data["total"] / BOHR_A**3,
                               density.values, atol=1e-4 * density.values.max())
    export(tmp_path / "bare.xsf", bare)
    assert "PRIMCOORD" not in (tmp_path / "bare.xsf").read_text()
    with pytest.raises(InputError, match="CHGCAR needs the atoms"):
        export(tmp_path / "CHGCAR", bare)
    assert not (tmp_path / "CHGCAR").exists() and no_leftovers(tmp_path)


def test_partial_occupancy_written_as_majority_element(tmp_path):
    structure = Structure(Lattice.cubic(3.6), [{"Cu": 0.75, "Au": 0.25}], [[0, 0, 0]])
    density = cmed(structure, n=8, conventional=False)
    export(tmp_path / "CHGCAR", density)
    assert Chgcar.from_file(str(tmp_path / "CHGCAR")).structure.composition.reduced_formula == "Cu"
    export(tmp_path / "alloy.cube", density)
    assert VolumetricData.from_cube(tmp_path / "alloy.cube").structure.species[0].symbol == "Cu"


@pytest.fixture
def pattern():
    two_theta = np.linspace(10, 80, 71)
    return Pattern(two_theta, 100 + 50 * np.sin(two_theta), sigma=np.full(71, 3.0),
                   wavelength=ANODES["CuKa"], provenance=Provenance("scan.raw", "bruker"))


def test_pattern_xy_and_csv(pattern, tmp_path):
    export(tmp_path / "p.xy", pattern)
    text = (tmp_path / "p.xy").read_text()
    assert "# wavelength_A: 1.540593" in text and "scan.raw" in text
    table = np.loadtxt(tmp_path / "p.xy")
    np.testing.assert_allclose(table, np.column_stack([pattern.two_theta, pattern.intensity, pattern.sigma]),
                               rtol=1e-9)
    export(tmp_path / "p.csv", pattern)
    table = np.genfromtxt(tmp_path / "p.csv", delimiter=",", names=True)
    assert table.dtype.names == ("two_theta", "intensity", "sigma")
    np.testing.assert_allclose(table["intensity"], pattern.intensity, rtol=1e-9)


def test_fit_xy_and_csv(tmp_path):
    x = np.linspace(5, 60, 56)
    fit = Fit(x, np.cos(x) + 2, np.cos(x) + 1.9, np.full(56, 0.5))
    export(tmp_path / "fit.csv", fit)
    table = np.genfromtxt(tmp_path / "fit.csv", delimiter=",", names=True)
    assert table.dtype.names == ("two_theta", "obs", "calc", "background", "diff")
    np.testing.assert_allclose(table["diff"], fit.difference, rtol=1e-9, atol=1e-12)
    export(tmp_path / "fit.xy", fit)
    table = np.loadtxt(tmp_path / "fit.xy")
    assert table.shape == (56, 5)
    np.testing.assert_allclose(table[:, 2], fit.calculated, rtol=1e-9)


def test_cif_keeps_the_symmetry(tmp_path):
    structure = Structure.from_spacegroup("P6_3/mmc", Lattice.hexagonal(3.2, 5.2), ["Mg"],
                                          [[1 / 3, 2 / 3, 0.25]])
    export(tmp_path / "mg.cif", structure)
    text = (tmp_path / "mg.cif").read_text()
    assert "P6_3/mmc" in text
    read = Structure.from_file(tmp_path / "mg.cif")
    assert SpacegroupAnalyzer(read).get_space_group_number() == 194
    assert read.composition == structure.composition


def _cell(lattice: Lattice, atoms: list[Site]) -> Structure:
    """The structure a solve stores beside its sites (occupancies, B as the "biso" site property)."""
    return Structure(lattice, [{a.element: a.occupancy} for a in atoms], [a.xyz for a in atoms],
                     site_properties={"biso": [a.biso for a in atoms]})


def test_solve_result_without_a_structure_is_refused(tmp_path):
    empty = SolveResult((5.64, 5.64, 5.64, 90, 90, 90), "", 0, "", [], rwp=float("nan"), rp=float("nan"), gof=0.0)
    with pytest.raises(InputError, match="no atoms"):
        export(tmp_path / "none.cif", empty)


def test_cif_from_solve_result(tmp_path):
    atoms = [Site("Na", (0, 0, 0)), Site("Cl", (0.5, 0.5, 0.5), occupancy=0.5)]
    result = SolveResult((5.64, 5.64, 5.64, 90, 90, 90), "Fm-3m", 225, "cubic", atoms, rwp=9.0, rp=7.0, gof=1.1,
                         structure=_cell(Lattice.cubic(5.64), atoms))
    export(tmp_path / "solved.cif", result)
    read = Structure.from_file(tmp_path / "solved.cif")
    assert read.lattice.a == pytest.approx(5.64)
    assert read.composition.get_el_amt_dict() == {"Na": 1.0, "Cl": 0.5}


def test_registry_choices_and_errors(density, pattern, tmp_path):
    assert {e.kind for e in EXPORTERS} == {"density", "pattern", "structure", "peaks"}
    assert exporter_for("x/y/CHGCAR", "density").name == "VASP CHGCAR"
    assert exporter_for("RHO.CUBE", "density").name == "Gaussian cube"
    assert kind_of(density) == "density" and kind_of(pattern) == "pattern"
    with pytest.raises(TypeError):
        kind_of(object())
    with pytest.raises(InputError, match=r"\.cube"):
        export(tmp_path / "rho.png", density)
    with pytest.raises(InputError, match="pattern"):
        export(tmp_path / "p.cube", pattern)
    with pytest.raises(InputError, match="export kind"):
        exporter_for("a.cube", "figure")
    (tmp_path / "folder.cube").mkdir()
    with pytest.raises(InputError, match="cannot write"):
        export(tmp_path / "folder.cube", density)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.cube"]


def test_file_filter():
    assert file_filter("density").split(";;")[0] == "Gaussian cube (*.cube)"
    assert "VASP CHGCAR (*.vasp *CHGCAR)" in file_filter("density")
    assert file_filter("structure") == "CIF (*.cif)"
    with pytest.raises(InputError):
        file_filter("nothing")


def test_failed_write_leaves_the_old_file(density, tmp_path):
    path = tmp_path / "CHGCAR"
    path.write_text("previous")
    with pytest.raises(InputError):
        export(path, Density(density.values, density.lattice))
    assert path.read_text() == "previous" and no_leftovers(tmp_path)


def test_pattern_files_read_back_with_the_app_readers(pattern, tmp_path):
    from model.readers import read_patterns

    for name in ("p.xy", "p.csv"):
        export(tmp_path / name, pattern)
        (read,) = read_patterns(tmp_path / name)
        np.testing.assert_allclose(read.two_theta, pattern.two_theta, rtol=1e-9)
        np.testing.assert_allclose(read.intensity, pattern.intensity, rtol=1e-9)
    doublet = read_patterns(tmp_path / "p.xy")[0].wavelength  # Kα2 survives: the solve needs it
    assert (doublet.ka1, doublet.ka2, doublet.ratio) == pytest.approx(
        (pattern.wavelength.ka1, pattern.wavelength.ka2, pattern.wavelength.ratio))


def test_cif_writes_biso_and_occupancy_that_pymatgen_reads_back(tmp_path):
    from pymatgen.io.cif import CifParser

    atoms = [Site("Ba", (0, 0, 0), biso=0.61, orbit=0), Site("Ti", (0.5, 0.5, 0.5), occupancy=0.9, biso=0.35, orbit=1)]
    atoms += [Site("O", xyz, biso=1.25, orbit=2) for xyz in ((0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5))]
    result = SolveResult((4.0, 4.0, 4.0, 90, 90, 90), "Pm-3m", 221, "cubic", atoms, rwp=5.0, rp=4.0, gof=1.2,
                         structure=_cell(Lattice.cubic(4.0), atoms))
    export(tmp_path / "perovskite.cif", result)
    block = next(iter(CifParser(tmp_path / "perovskite.cif").as_dict().values()))
    rows = {symbol: (float(b), float(occ)) for symbol, b, occ in
            zip(block["_atom_site_type_symbol"], block["_atom_site_B_iso_or_equiv"], block["_atom_site_occupancy"])}
    assert rows == {"Ba": (0.61, 1.0), "Ti": (0.35, 0.9), "O": (1.25, 1.0)}
    assert set(block["_atom_site_adp_type"]) == {"Biso"}
    read = Structure.from_file(tmp_path / "perovskite.cif")
    assert read.composition.get_el_amt_dict() == {"Ba": 1.0, "Ti": 0.9, "O": 3.0}
    assert SpacegroupAnalyzer(read).get_space_group_number() == 221


def test_refined_cif_round_trip(tmp_path):
    """A refinement's CIF: pymatgen reads the same cell, atoms and each orbit's refined B."""
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.io.cif import CifParser, str2float

    from model.instrument import Instrument
    from model.refine import Rietveld
    from model.refinement import to_solve_result
    from model.simulate import simulate_pattern

    structure = Structure.from_spacegroup("P4/mmm", Lattice.tetragonal(3.9, 6.1), ["Ba", "Ti", "O", "O"],
                                          [[0, 0, 0], [0.5, 0.5, 0.0], [0.5, 0.5, 0.31], [0.0, 0.5, 0.22]])
    pattern = simulate_pattern(structure, Instrument(ANODES["CuKa"]), np.arange(15, 90, 0.03),
                               biso={"Ba": 0.4, "Ti": 0.8, "O": 1.5})
    problem = Rietveld(pattern, structure)
    for _ in problem.fit(stages=[("scale", "bkg", "biso")], max_nfev=10):
        pass
    result = to_solve_result(problem.result())
    export(tmp_path / "refined.cif", result)
    block = next(iter(CifParser(tmp_path / "refined.cif").as_dict().values()))
    written = dict(zip(block["_atom_site_type_symbol"], block["_atom_site_B_iso_or_equiv"]))
    for site in result.sites:  # "0.41(7)": rounded to its esd's last digit
        decimals = len(written[site.element].split("(")[0].split(".")[1])
        assert str2float(written[site.element]) == pytest.approx(site.biso, abs=0.51 * 10**-decimals)
    assert all("(" in b for b in written.values())
    assert len(set(written.values())) == 3  # one refined B per element
    assert StructureMatcher().fit(Structure.from_file(tmp_path / "refined.cif"), structure)
