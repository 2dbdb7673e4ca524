"""Fourier maps from the measured pattern (model.fourier, issue 16): omit map, the true structure's
maps, F000 and absolute scale, exports, sessions, the CIF's residual density and the command line."""

import csv
import io

import numpy as np
import pytest
from helpers import read_xsf
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifParser
from pymatgen.io.common import VolumetricData
from pymatgen.io.vasp import Chgcar

from cmedgui import cli
from cmedgui.commands.solve import drive
from model.constraints import space_group_ops
from model.density import Density, cmed
from model.exporters import BOHR_A, PEAK_COLUMNS, export
from model.fourier import (
    GRID_STEP_A,
    MapPeak,
    charge_flipped,
    find_extrema,
    fourier_data,
    fourier_maps,
    map_sigma,
    with_charge_flipping,
    with_maps,
)
from model.instrument import Instrument
from model.metrics import best_alignment
from model.pattern import ANODES
from model.refine import refine_structure
from model.result import Fit
from model.session import Session, load_session, save_session
from model.simulate import Sample, profile, reflections, simulate_pattern

CU = ANODES["CuKa"]
TWO_THETA = np.arange(10, 90, 0.02)  # a laboratory scan (degrees)
# Ba 1a, Ti 1d, O 2h (½ ½ z) and O 4i (0 ½ z) in P4/mmm: four distinct atoms, a free z each for O
ELEMENTS = ["Ba", "Ti", "O", "O"]
SITES = [[0, 0, 0], [0.5, 0.5, 0.0], [0.5, 0.5, 0.31], [0.0, 0.5, 0.22]]


def layered(elements=ELEMENTS, sites=SITES) -> Structure:
    return Structure.from_spacegroup("P4/mmm", Lattice.tetragonal(3.9, 6.1), elements, sites)


def measured(structure: Structure, seed: int = 0):
    """A lab pattern of ``structure`` (B 0.5 Å², 10⁵ counts at the strongest point)."""
    return simulate_pattern(structure, Instrument(CU), TWO_THETA, Sample(counts=1e5),
                            rng=np.random.default_rng(seed), biso=0.5)


def refined(pattern, structure):
    return drive(refine_structure(pattern, structure), io.StringIO())  # progress to nowhere


@pytest.fixture(scope="module")
def true_result():
    """The layered structure refined on its own simulated pattern, with its maps."""
    return with_maps(refined(measured(layered()), layered()))


def test_omit_map_shows_the_removed_atom():
    """O 2h left out of the model: the difference map's strongest feature is that oxygen."""
    omitted = layered(ELEMENTS[:2] + ELEMENTS[3:], SITES[:2] + SITES[3:])
    result = with_maps(refined(measured(layered(), seed=1), omitted))
    difference = result.maps["difference"]
    top = result.map_peaks[0]
    removed = [site.frac_coords for site in layered() if site.specie.symbol == "O" and site.frac_coords[0] == 0.5]
    distance = difference.structure.lattice.get_all_distances([top.xyz], removed).min()
    sigma = map_sigma(difference)
    print(f"omit map: strongest peak {distance:.3f} Å from the removed O, {top.height:.2f} e/Å³ = "
          f"{top.height / sigma:.1f} σ(rms), {top.significance:.1f} σ(noise)")
    assert distance < 0.5
    assert top.height >= 3 * sigma
    assert top.significance >= 3
    assert top.nearest_atom.startswith(("Ba", "Ti", "O"))


def test_true_structure_maps(true_result):
    """F_obs maxima on every atom heavier than O; no significant difference-map feature."""
    f_obs, difference = true_result.maps["F_obs"], true_result.maps["difference"]
    bare = Density(f_obs.values, f_obs.lattice, kind="F_obs")  # every maximum, not one per orbit
    maxima = np.array([peak.xyz for peak in find_extrema(bare, 500, sign=1)])
    heavy = [site.frac_coords for site in f_obs.structure if site.specie.Z > 8]
    assert len(heavy) == 2
    assert np.all(f_obs.structure.lattice.get_all_distances(heavy, maxima).min(axis=1) < 0.3)
    # σ of a feature is the map's noise where it lies (the pattern's counting statistics): a
    # line's error is shared by all its hkl, so the noise is largest on the atoms
    significance = max(abs(peak.significance) for peak in true_result.map_peaks)
    sigma = map_sigma(difference)
    print(f"true structure: largest difference feature {significance:.2f} σ(noise), "
          f"{np.abs(difference.values).max() / sigma:.2f} σ(rms)")
    assert significance < 3
    light = cmed(f_obs.structure, n=f_obs.n).values.max()
    assert np.abs(difference.values).max() < 0.05 * light
    heights = [abs(peak.height) for peak in true_result.map_peaks]
    assert heights == sorted(heights, reverse=True)
    assert {np.sign(peak.height) for peak in true_result.map_peaks} == {-1.0, 1.0}


def test_f000_absolute_scale_and_grid(true_result):
    cell = true_result.maps["F_obs"].structure
    electrons = sum(site.specie.Z for site in cell)
    for kind, expected in (("F_obs", electrons), ("F_calc", electrons), ("2F_obs-F_calc", electrons),
                           ("difference", 0.0)):
        density = true_result.maps[kind]
        assert density.kind == kind
        assert float(density.values.mean(dtype=np.float64)) * density.volume_A3 == pytest.approx(expected, abs=1e-3)
        assert float(np.linalg.norm(density.lattice, axis=1).max()) / density.n <= GRID_STEP_A
    maps = true_result.maps
    np.testing.assert_allclose(maps["difference"].values, maps["F_obs"].values - maps["F_calc"].values,
                               atol=1e-4 * maps["F_calc"].values.max())
    np.testing.assert_allclose(maps["2F_obs-F_calc"].values, 2 * maps["F_obs"].values - maps["F_calc"].values,
                               atol=1e-4 * maps["F_calc"].values.max())


def test_charge_flipping_map_of_the_observed_intensities(true_result):
    """The data's own map, phased by charge flipping with no model: in the F_obs map's cell and grid,
    F(000) = ΣZ, and at the best origin the space group allows it correlates with the F_calc map."""
    maps = with_charge_flipping(true_result).maps
    flipped, f_calc = maps["charge flipping"], maps["F_calc"]
    assert flipped.kind == "charge flipping"
    assert flipped.structure is maps["F_obs"].structure
    assert flipped.n == maps["F_obs"].n
    np.testing.assert_allclose(flipped.lattice, maps["F_obs"].lattice)
    electrons = sum(site.specie.Z for site in flipped.structure)
    assert float(flipped.values.mean(dtype=np.float64)) * flipped.volume_A3 == pytest.approx(electrons, rel=1e-4)
    ops = space_group_ops(flipped.structure)
    cc = best_alignment(flipped.values, f_calc.values, ops, ops.crystal_system).cc
    print(f"charge flipping vs F_calc: cc {cc:.3f} at the best allowed origin")
    assert cc > 0.5
    # deterministic: the same map again
    again = charge_flipped(flipped.structure, true_result.fit, true_result.refinement.instrument, flipped.n)
    np.testing.assert_array_equal(again.values, flipped.values)


def test_charge_flipping_without_lines_leaves_the_map_out(true_result):
    """A scan that holds no line (10–12° 2θ: d > c): no charge-flipping map, the Fourier maps stay."""
    fit = true_result.fit
    inside = fit.two_theta < 12
    narrow = Fit(*(a[inside] for a in (fit.two_theta, fit.observed, fit.calculated, fit.background)))
    cell = true_result.maps["F_obs"].structure
    assert charge_flipped(cell, narrow, true_result.refinement.instrument, 24) is None


def test_observed_equal_to_calculated_gives_a_flat_difference_map(rocksalt):
    """Without noise or misfit F_obs = F_calc: the partition is exact, whatever the overlaps."""
    instrument = Instrument(CU)
    biso = {"Na": 0.5, "Cl": 0.8}
    structure = rocksalt.copy(site_properties={"biso": [biso[site.specie.symbol] for site in rocksalt]})
    y = profile(TWO_THETA, reflections(structure, 0.9, biso), instrument, Sample(background=()))
    background = np.full_like(y, 3.0)
    data = fourier_data(structure, Fit(TWO_THETA, y + background, y + background, background), instrument, n=24)
    maps = fourier_maps(data)
    assert np.abs(maps["difference"].values).max() < 1e-4 * maps["F_calc"].values.max()
    np.testing.assert_allclose(data.q, 1.0, atol=1e-6)
    # F_calc alone, truncated to the measured lines, still holds every electron of the cell
    assert maps["F_calc"].electron_count == pytest.approx(4 * (11 + 17), rel=1e-5)
    doubled = fourier_maps(fourier_data(structure, Fit(TWO_THETA, 4 * y + background, y + background, background),
                                        instrument, n=24))
    # four times the intensity is twice the amplitude: F_obs − F000/V doubles
    mean = 4 * 28 / structure.volume
    np.testing.assert_allclose(doubled["F_obs"].values - mean, 2 * (maps["F_calc"].values - mean),
                               atol=1e-4 * maps["F_calc"].values.max())


def test_extrema_are_periodic_symmetry_unique_and_labelled(rocksalt):
    density = cmed(rocksalt, n=20)
    peaks = find_extrema(density, 10, sign=1)
    assert [peak.nearest_atom for peak in peaks[:2]] == ["Cl1", "Na1"]  # Cl has more electrons
    assert all(peak.distance_A < 0.05 for peak in peaks[:2])
    # Na on the cell's corner: one peak for the 4 equivalent Na, found across the boundary
    assert sum(peak.nearest_atom == "Na1" and peak.distance_A < 0.05 for peak in peaks) == 1


@pytest.mark.parametrize("name, reader", [("fobs.cube", "cube"), ("fobs.xsf", "xsf"), ("CHGCAR", "chgcar")])
def test_exported_maps_read_back_with_grid_cell_and_units(true_result, tmp_path, name, reader):
    for kind, density in true_result.maps.items():
        path = tmp_path / kind.replace(" ", "_") / name
        path.parent.mkdir()
        export(path, density)
        if reader == "cube":
            read = VolumetricData.from_cube(path)
            values, lattice = read.data["total"] / BOHR_A**3, read.structure.lattice.matrix  # e/Bohr³ → e/Å³
            assert kind in path.read_text().splitlines()[0]
        elif reader == "xsf":
            lattice, _, _, _, grid = read_xsf(path)
            values = grid[:-1, :-1, :-1]
            assert f"{kind} map" in path.read_text().splitlines()[0]
        else:
            read = Chgcar.from_file(str(path))
            values, lattice = read.data["total"] / read.structure.volume, read.structure.lattice.matrix  # ρ·V
            assert read.structure.composition == density.structure.composition
        assert values.shape == density.values.shape
        np.testing.assert_allclose(lattice, density.lattice, atol=1e-5)
        np.testing.assert_allclose(values, density.values, atol=2e-4 * np.abs(density.values).max())


def test_session_keeps_maps_and_peaks(true_result, tmp_path):
    save_session(tmp_path / "s.cmedgui", Session(results=[true_result], current_result=0))
    loaded = load_session(tmp_path / "s.cmedgui").results[0]
    assert set(loaded.maps) == set(true_result.maps)
    for kind, density in true_result.maps.items():
        assert loaded.maps[kind].kind == kind
        np.testing.assert_array_equal(loaded.maps[kind].values, density.values)
        np.testing.assert_allclose(loaded.maps[kind].structure.lattice.matrix, density.structure.lattice.matrix)
    assert all(isinstance(peak, MapPeak) for peak in loaded.map_peaks)
    assert loaded.map_peaks == true_result.map_peaks


def test_cif_states_the_residual_density(true_result, tmp_path):
    export(tmp_path / "refined.cif", true_result)
    block = next(iter(CifParser(tmp_path / "refined.cif").as_dict().values()))
    heights = [peak.height for peak in true_result.map_peaks]
    assert float(block["_refine_diff_density_max"]) == pytest.approx(max(heights), abs=1e-3)
    assert float(block["_refine_diff_density_min"]) == pytest.approx(min(heights), abs=1e-3)
    assert float(block["_refine_diff_density_max"]) == pytest.approx(
        true_result.maps["difference"].values.max(), abs=1e-3)


def test_cli_refine_writes_maps_and_peaks(rocksalt, rocksalt_cif, tmp_path):
    pattern = tmp_path / "nacl.xy"
    assert cli.main(["simulate", str(rocksalt_cif), "--wavelength", "CuKa", "--two-theta", "15", "90",
                     "--counts", "30000", "--seed", "3", "-o", str(pattern)]) == 0
    out = tmp_path / "out"
    assert cli.main(["refine", str(pattern), str(rocksalt_cif), "--out", str(out)]) == 0
    for name in ("nacl_fobs.cube", "nacl_diff.cube", "nacl_peaks.csv"):
        assert (out / name).is_file()
    rows = list(csv.DictReader((out / "nacl_peaks.csv").read_text().splitlines()))
    assert tuple(rows[0]) == PEAK_COLUMNS == ("x", "y", "z", "height", "nearest_atom")
    heights = [float(row["height"]) for row in rows]
    assert rows and [abs(h) for h in heights] == sorted((abs(h) for h in heights), reverse=True)
    assert all(0 <= float(row[axis]) < 1 for row in rows for axis in "xyz")
    assert {row["nearest_atom"] for row in rows} <= {"Na1", "Cl1"}
    fobs = VolumetricData.from_cube(out / "nacl_fobs.cube")
    electrons = fobs.data["total"].mean() / BOHR_A**3 * fobs.structure.volume
    assert electrons == pytest.approx(4 * 28, rel=1e-3)  # F000 included, absolute e/Å³
    diff = VolumetricData.from_cube(out / "nacl_diff.cube").data["total"] / BOHR_A**3
    assert max(abs(diff.max()), abs(diff.min())) == pytest.approx(max(abs(h) for h in heights), abs=1e-3)
    block = next(iter(CifParser(out / "nacl.cif").as_dict().values()))
    assert float(block["_refine_diff_density_max"]) == pytest.approx(max(heights), abs=2e-3)
