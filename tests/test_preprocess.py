import dataclasses

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from model.instrument import Instrument
from model.pattern import ANODES, Wavelength
from model.preprocess import background, estimate_instrument, find_peaks
from model.simulate import Sample, simulate_pattern, sticks


@pytest.fixture(scope="module")
def rocksalt():
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _pattern(structure, **kw):
    instrument = Instrument(ANODES["CuKa"], u=0.0, v=0.0, w=0.003, x=0.02, y=0.0, **kw)
    return simulate_pattern(structure, instrument, np.arange(10, 90, 0.02), Sample(counts=20000),
                            rng=np.random.default_rng(3))


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


def test_estimated_instrument_has_the_measured_width(rocksalt):
    pattern = _pattern(rocksalt)
    start = estimate_instrument(pattern)
    assert start.wavelength == pattern.wavelength and start.u == start.v == start.y == 0
    # the simulated peaks are ~0.06° wide around 2θ = 32°; the start's FWHM there is close to it
    assert start.fwhm(31.7) == pytest.approx(Instrument(ANODES["CuKa"], u=0.0, v=0.0, w=0.003, x=0.02,
                                                        y=0.0).fwhm(31.7), rel=0.3)
