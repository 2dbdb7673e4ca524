"""Second phases (model.phases): a Si standard in a simulated CsSnBr3 pattern is found, named and
weighed; a single-phase pattern gets no extra phase."""

from pathlib import Path

import numpy as np
import pytest
from helpers import finished
from pymatgen.core import Lattice, Structure

from model.errors import InputError
from model.instrument import Instrument
from model.pattern import ANODES
from model.phases import bundled, candidates, second_phases, unexplained, user_phases
from model.preprocess import find_peaks
from model.refine import refine
from model.scattering import phase_scales, weight_fractions
from model.simulate import Sample, simulate_pattern, sticks

EXAMPLE = Path(__file__).resolve().parents[1] / "resources" / "examples" / "CeO2_CuKa.xy"
TWO_THETA = np.arange(10.0, 90.0, 0.02)
INSTRUMENT = Instrument(ANODES["CuKa"], u=0.004, v=-0.002, w=0.004, x=0.03, zero=0.02)
ELEMENTS = ["Cs", "Sn", "Br"]


def _perovskite() -> Structure:
    """CsSnBr3, Pm-3m (the shared spglib-221-2 structure)."""
    return Structure.from_spacegroup("Pm-3m", Lattice.cubic(5.795), ["Cs", "Sn", "Br"],
                                     [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0]])


def _main_refined(pattern):
    """The pattern refined with the main phase alone, as the solve's refine stage leaves it."""
    return refine(pattern, _perovskite(), Instrument.from_fwhm(pattern.wavelength, 0.1), max_nfev=20)



def test_a_silicon_standard_is_named_and_weighed():
    silicon = bundled("Si").structure
    pattern = simulate_pattern([_perovskite(), silicon], INSTRUMENT, TWO_THETA, Sample(counts=20000),
                               rng=np.random.default_rng(1), weight_fractions=[0.9, 0.1])
    peaks = find_peaks(pattern)
    alone = _main_refined(pattern)
    assert unexplained(peaks, alone)  # Si's lines are left in the difference curve
    mixture = finished(second_phases(pattern, peaks, alone, ELEMENTS))
    assert [p.structure.composition.reduced_formula for p in mixture.phases] == ["CsSnBr3", "Si"]
    assert mixture.phases[1].weight_fraction == pytest.approx(0.1, abs=0.03)
    assert mixture.rwp < alone.rwp
    assert not unexplained(peaks, mixture)


def test_a_single_phase_pattern_gets_no_extra_phase():
    pattern = simulate_pattern(_perovskite(), INSTRUMENT, TWO_THETA, Sample(counts=20000),
                               rng=np.random.default_rng(2))
    peaks = find_peaks(pattern)
    alone = _main_refined(pattern)
    assert finished(second_phases(pattern, peaks, alone, ELEMENTS)) is alone


def test_cli_refuses_a_bad_phase_folder_in_one_line(tmp_path, capsys):
    from cmedgui.cli import main

    assert main(["solve", str(EXAMPLE), "--elements", "Ce", "O", "--phases", str(tmp_path / "absent"),
                 "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "absent" in error


def test_candidates_are_the_standards_and_the_users_elements_and_binaries(tmp_path):
    names = {p.name for p in candidates(["Mg", "O"])}
    assert {"Si", "LaB6", "CeO2", "MgO", "Al2O3", "ZnO", "Mg"} <= names
    assert not any("Fe" in name for name in names)
    _perovskite().to(filename=str(tmp_path / "mine.cif"))
    assert [p.name for p in user_phases(tmp_path)] == ["CsSnBr3"]
    (tmp_path / "broken.cif").write_text("data_x\n_cell_length_a 3\n")
    with pytest.raises(InputError, match="broken.cif"):
        user_phases(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        user_phases(tmp_path / "absent")


@pytest.mark.parametrize("formula, strong_deg", [("Si", (28.44, 47.30)), ("LaB6", (21.36, 30.38)),
                                                 ("CeO2", (28.55, 47.48)), ("Al2O3", (35.15, 43.36)),
                                                 ("ZnO", (31.77, 36.25)), ("MgO", (42.92, 62.30))])
def test_bundled_standards_have_their_reference_lines(formula, strong_deg):
    """The standards' strong lines at Cu Kα1 where the powder diffraction file puts them (±0.03°)."""
    lines = sticks(bundled(formula).structure, ANODES["CuKa"].ka1, (10, 90))
    strong = lines.two_theta[lines.intensity >= 30]
    assert all(np.min(np.abs(strong - t)) < 0.03 for t in strong_deg)


def test_hill_howard_scales_and_weight_fractions_are_inverse():
    structures = [_perovskite(), bundled("Si").structure, bundled("Al2O3").structure]
    fractions = np.array([0.7, 0.1, 0.2])
    assert np.allclose(weight_fractions(phase_scales(fractions, structures), structures), fractions)
