import dataclasses

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from model.pattern import ANODES, Wavelength, kalpha_doublet
from model.preprocess import background, find_peaks
from model.simulate import ProfileParams, simulate_pattern, sticks


@pytest.fixture(scope="module")
def rocksalt():
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _pattern(structure, **kw):
    params = ProfileParams(u=0.0, v=0.0, w=0.003, x=0.02, y=0.0, counts=20000, **kw)
    return simulate_pattern(structure, ANODES["CuKa"], np.arange(10, 90, 0.02), params, rng=np.random.default_rng(3))


def test_peaks_are_kalpha1_positions_with_errors(rocksalt):
    pattern = _pattern(rocksalt)
    peaks = find_peaks(pattern)
    expected = sticks(rocksalt, ANODES["CuKa"], (10, 90))
    strong = expected.two_theta[expected.intensity > 5]
    found = np.array([p.two_theta for p in peaks])
    for position in strong:
        assert np.min(np.abs(found - position)) < 0.02
    # Kα2 shoulders are part of the Kα1 fit, not peaks of their own
    assert len(peaks) <= len(expected.two_theta)
    assert all(0 < p.two_theta_err < 0.02 for p in peaks)


def test_zero_shift_moves_peaks(rocksalt):
    base = np.array([p.two_theta for p in find_peaks(_pattern(rocksalt))])
    shifted = np.array([p.two_theta for p in find_peaks(_pattern(rocksalt, zero=0.1))])
    strongest = base[np.argmin(np.abs(base - 31.7))]
    assert np.min(np.abs(shifted - strongest - 0.1)) < 0.01


def test_background_below_pattern_and_excluded_region(rocksalt):
    pattern = _pattern(rocksalt)
    base = background(pattern)
    assert np.median(pattern.intensity - base) >= -3 * np.sqrt(np.median(pattern.intensity))
    peaks = find_peaks(pattern, excluded=[(31.0, 33.0)])
    assert not any(31.0 <= p.two_theta <= 33.0 for p in peaks)


def test_kalpha_mean_wavelength_is_fitted_as_the_doublet(rocksalt):
    # a Cu Kα1 + Kα2 pattern whose file states only the mean wavelength 1.5418 Å
    pattern = dataclasses.replace(_pattern(rocksalt), wavelength=Wavelength(1.5418))
    found = np.array([p.two_theta for p in find_peaks(pattern)])
    expected = sticks(rocksalt, 1.5418, (10, 90))
    strong = expected.two_theta[expected.intensity > 5]
    # positions for the stated wavelength at every angle, not Kα1 ones where the doublet splits
    assert max(np.min(np.abs(found - position)) for position in strong) < 0.015
    assert len(found) <= len(expected.two_theta)


def test_kalpha2_without_ratio_gets_the_usual_one():
    doublet = kalpha_doublet(Wavelength(1.54056, 1.54439))
    assert doublet.has_doublet and doublet.ratio == 0.5
    assert kalpha_doublet(Wavelength(1.0)) == Wavelength(1.0)
