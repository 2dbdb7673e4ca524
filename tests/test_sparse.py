"""Sparse diamond-anvil-cell patterns: short wavelength, 2θ to ~16–20°, a coarse step, broad
lines, a pressure medium's line among them. The peak search finds every line, weak ones too, and
the indexing gets the cell with the medium's line left unindexed."""

import dataclasses

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from model.index import index, undecided
from model.instrument import Instrument
from model.pattern import Pattern, Wavelength
from model.preprocess import find_peaks
from model.simulate import Sample, simulate_pattern, sticks

WAVELENGTH = Wavelength(0.4)
A = 4.12  # Å, CsCl: 7 lines between 4° and 16.3° 2θ at 0.4 Å
RANGE = (4.0, 16.3)
NEON_A = 3.9  # Å, compressed Ne (fcc) as the pressure medium: its 111 line at 10.2°


@pytest.fixture(scope="module")
def sparse():
    cscl = Structure.from_spacegroup("Pm-3m", Lattice.cubic(A), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    neon = Structure.from_spacegroup("Fm-3m", Lattice.cubic(NEON_A), ["Ne"], [[0, 0, 0]])
    # strain-broadened lines ≈ 0.1° wide on a 0.025° step: 4 points per FWHM, 492 points in all
    instrument = Instrument(WAVELENGTH, u=0.2, v=0.0, w=0.006, x=0.02, y=0.1, polarisation=0.05)
    grid = np.arange(*RANGE, 0.025)
    sample = simulate_pattern(cscl, instrument, grid, Sample(background=(0.3, -0.05)))
    medium = simulate_pattern(neon, instrument, np.arange(*RANGE, 0.025), Sample(background=(0.0,), scale=60.0))
    keep = medium.two_theta < 11.0  # the medium's strongest line only
    counts = np.random.default_rng(7).poisson(5 * (sample.intensity + np.where(keep, medium.intensity, 0.0)))
    pattern = Pattern(grid, counts.astype(float), wavelength=WAVELENGTH)
    return pattern, sticks(cscl, WAVELENGTH, RANGE), sticks(neon, WAVELENGTH, (RANGE[0], 11.0))


def test_peak_search_finds_every_line_of_a_sparse_pattern(sparse):
    pattern, lines, medium = sparse
    assert len(lines) == 7 and len(medium) == 1
    assert min(lines.intensity) < 15  # weak lines: 9.6° at 13 % of the strongest
    found = np.array([p.two_theta for p in find_peaks(pattern)])
    assert len(found) == 8
    assert max(np.min(np.abs(found - position)) for position in [*lines.two_theta, *medium.two_theta]) < 0.02


def test_seven_lines_and_a_medium_line_index_the_cubic_cell(sparse):
    pattern, _, _ = sparse
    positions = [p.two_theta for p in find_peaks(pattern)]
    best = index(positions, WAVELENGTH.ka1, systems=("cubic", "tetragonal", "hexagonal"))[0]
    assert best.crystal_system == "cubic"
    assert best.lattice[0] == pytest.approx(A, abs=0.01)
    assert (best.n_indexed, best.n_lines) == (7, 8)


def test_what_the_positions_cannot_decide_is_said(sparse):
    pattern, _, _ = sparse
    positions = [p.two_theta for p in find_peaks(pattern)]
    cells = index(positions, WAVELENGTH.ka1, systems=("cubic", "tetragonal", "hexagonal"))
    assert undecided(cells) == ""  # the cubic cell stands alone
    best = cells[0]
    rival = dataclasses.replace(best, crystal_system="tetragonal", lattice=(A, A, 1.01 * A, 90.0, 90.0, 90.0),
                                merit=0.8 * best.merit)
    said = undecided([best, rival])
    assert "8 lines" in said and "cubic a 4.1" in said and "tetragonal" in said
