"""The Instrument: Bragg's law both ways, zero shift and displacement, the Kα2 rule and the TCH width."""

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from model.errors import InputError
from model.instrument import (
    KA2_RATIO,
    Instrument,
    bragg_d,
    bragg_theta,
    displacement_deg,
    doublet_of,
    kalpha_doublet,
    q_to_two_theta,
)
from model.pattern import ANODES, Wavelength, two_theta_to_q
from model.simulate import Sample, profile, reflections

CU = ANODES["CuKa"]


def test_bragg_both_ways_and_beyond_reach():
    d = np.array([0.9, 1.5, 3.0, 10.0])
    two_theta = np.degrees(2 * bragg_theta(d, CU.ka1))
    assert two_theta == pytest.approx([2 * math.degrees(math.asin(CU.ka1 / (2 * x))) for x in d])
    assert bragg_d(two_theta, CU.ka1) == pytest.approx(d, rel=1e-12)
    assert np.degrees(2 * bragg_theta(0.5, CU.ka1)) == 180.0  # d < λ/2: no line, at the end of reach
    assert q_to_two_theta(two_theta_to_q(two_theta, CU.ka1), CU.ka1) == pytest.approx(two_theta, rel=1e-12)


def test_peak_position_with_zero_and_displacement():
    instrument = Instrument(CU, zero=0.05, displacement=displacement_deg(0.1))
    d = np.array([1.2, 2.0, 3.1])
    theta = bragg_theta(d, CU.ka1)
    expected = np.degrees(2 * theta) + 0.05 + math.degrees(-2 * 0.1 / 240) * np.cos(theta)
    assert instrument.two_theta(d) == pytest.approx(expected, rel=1e-12)
    assert Instrument(CU, zero=0.05).d(Instrument(CU, zero=0.05).two_theta(d)) == pytest.approx(d, rel=1e-12)
    ranged = Instrument(CU, zero=0.05, two_theta_range=(10.0, 90.0))
    assert ranged.two_theta(ranged.d_min) == pytest.approx(90.0)


def test_one_kalpha2_rule():
    assert doublet_of(CU) == (CU.ka2, 0.5)
    assert doublet_of(Wavelength(1.54056, 1.54439)) == (1.54439, KA2_RATIO)  # stated Kα2, ratio not stated
    assert doublet_of(Wavelength(1.54056, 1.54439, 0.0)) is None  # ratio 0: a Kα1 monochromator
    assert doublet_of(Wavelength(1.5406)) is None and Instrument(Wavelength(1.5406)).doublet is None
    # a stated Kα mean is the doublet behind it; a stated Kα2 gets the ratio the rule gives it
    mean = kalpha_doublet(Wavelength(1.5418))
    assert mean.ka1 == pytest.approx(CU.ka1, abs=2e-4) and mean.ka2 - mean.ka1 == pytest.approx(CU.ka2 - CU.ka1)
    assert kalpha_doublet(Wavelength(1.54056, 1.54439)).ratio == KA2_RATIO
    assert kalpha_doublet(Wavelength(1.0)) == Wavelength(1.0)
    assert Instrument(CU).ka2_two_theta(40.0) == pytest.approx(np.degrees(2 * bragg_theta(bragg_d(40.0, CU.ka1),
                                                                                          CU.ka2)))


def test_fwhm_is_the_simulated_peaks_width():
    copper = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.615), ["Cu"], [[0, 0, 0]])
    instrument = Instrument(CU.monochromatic(), u=0.02, v=-0.01, w=0.01, x=0.03, y=0.02)
    two_theta = np.arange(40.0, 46.0, 0.0005)
    y = profile(two_theta, reflections(copper, 1.5), instrument, Sample(background=(), counts=None))
    top = np.argmax(y)
    above = two_theta[y >= y[top] / 2]
    assert above[-1] - above[0] == pytest.approx(instrument.fwhm(two_theta[top]), abs=0.002)


def test_bad_instruments_are_refused():
    with pytest.raises(InputError, match="polarisation"):
        Instrument(CU, polarisation=1.5)
    with pytest.raises(InputError, match="W"):
        Instrument(CU, w=0.0)
    with pytest.raises(InputError, match="range"):
        Instrument(CU, two_theta_range=(50.0, 10.0))
