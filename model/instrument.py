"""The instrument: radiation, where a spacing d diffracts, and the shape of its peak.

One value for everything that turns d (Å) into a peak at degrees 2θ: the simulator, the peak
fits, the indexing, the Wyckoff search and the Rietveld refinement (as GSAS-II keeps one
instrument-parameter record with one pair of d ↔ position conversions for simulation and
refinement alike). Bragg's law is written once for NumPy here (``bragg_theta``, ``bragg_d``); its
one torch twin is model.simulate's (the differentiable profile model). No torch here: the app's
pattern view and the peak fits use this module without loading it.

A peak of spacing d sits at 2θ = 2·asin(λ/2d) + zero + displacement·cos θ (degrees): the zero
shift moves every peak alike, a sample off the goniometer axis by s mm on radius R mm moves each
by −2·s·cos θ / R radians (``displacement_deg``). Its width is Thompson–Cox–Hastings'
pseudo-Voigt: Gaussian FWHM² = U·tan²θ + V·tanθ + W (deg²), Lorentzian FWHM = X/cosθ + Y·tanθ (deg).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from model.errors import InputError
from model.pattern import ANODES, Wavelength

GONIOMETER_RADIUS_MM = 240.0  # a laboratory Bragg–Brentano goniometer
KA2_RATIO = 0.5  # I(Kα2)/I(Kα1) of an X-ray tube
KA_MEAN_TOLERANCE_A = 3e-4  # stated Kα means differ by this much (1.5418, 1.54178, 1.54184 Å for Cu)


def bragg_theta(d_A, wavelength_A):
    """Bragg's law: θ (radians) where spacing d (Å) diffracts at λ (Å); a spacing beyond reach
    (d < λ/2) at θ = 90°. NumPy arrays or floats."""
    return np.arcsin(np.minimum(wavelength_A / (2 * np.asarray(d_A, dtype=float)), 1.0))


def bragg_d(two_theta_deg, wavelength_A):
    """Bragg's law inverted: d (Å) of a line at 2θ (degrees) for λ (Å); infinite at 2θ = 0."""
    with np.errstate(divide="ignore"):
        return wavelength_A / (2 * np.sin(np.radians(two_theta_deg) / 2))


def q_to_two_theta(q_inv_A, wavelength_A):
    """Degrees 2θ of Q = 2π/d (Å⁻¹) at λ (Å); a Q beyond 4π/λ at 180°."""
    with np.errstate(divide="ignore"):
        return np.degrees(2 * bragg_theta(2 * np.pi / np.asarray(q_inv_A, dtype=float), wavelength_A))


def displacement_deg(displacement_mm: float, radius_mm: float = GONIOMETER_RADIUS_MM) -> float:
    """A sample displacement of s mm (towards the source positive) on a goniometer of radius R mm as
    the Instrument's displacement: the 2θ shift (degrees) at cos θ = 1, −2·s/R radians."""
    return math.degrees(-2 * displacement_mm / radius_mm)


def tch_components(tan_theta, cos_theta, u, v, w, x, y):
    """The TCH Gaussian FWHM² U·tan²θ + V·tanθ + W (deg²) and Lorentzian FWHM X/cosθ + Y·tanθ
    (deg); NumPy or torch (the caller clamps them to ≥ 0)."""
    return u * tan_theta ** 2 + v * tan_theta + w, x / cos_theta + y * tan_theta


def tch(fwhm_g, fwhm_l):
    """Thompson–Cox–Hastings total FWHM and Lorentzian fraction η of the pseudo-Voigt of a
    Gaussian and a Lorentzian FWHM (NumPy arrays or torch tensors)."""
    g, l = fwhm_g, fwhm_l
    fwhm = (g ** 5 + 2.69269 * g ** 4 * l + 2.42843 * g ** 3 * l ** 2 + 4.47163 * g ** 2 * l ** 3
            + 0.07842 * g * l ** 4 + l ** 5) ** 0.2
    q = l / fwhm
    return fwhm, 1.36603 * q - 0.47719 * q ** 2 + 0.11116 * q ** 3


def doublet_of(wavelength: Wavelength | None) -> tuple[float, float] | None:
    """The one rule for a Kα2: (λ(Kα2) Å, I(Kα2)/I(Kα1)) where the radiation has one, else None.

    A Kα2 stated without its intensity was measured with it, at the tube's KA2_RATIO; a ratio of
    0 states that there is none (a Kα1 monochromator)."""
    if wavelength is None or wavelength.ka2 is None or wavelength.ratio == 0:
        return None
    return wavelength.ka2, KA2_RATIO if wavelength.ratio is None else wavelength.ratio


def kalpha_doublet(wavelength: Wavelength | None) -> Wavelength | None:
    """The Kα1 + Kα2 doublet a pattern measured at ``wavelength`` has, its ratio stated.

    A Kα2 stated without an intensity ratio gets the tube's KA2_RATIO (``doublet_of``). A single
    wavelength that is an anode's weighted Kα mean (ka1 + ratio·ka2) / (1 + ratio) is an
    unmonochromated doublet whose mean is the stated value: at high angles its peaks split, and a
    single-peak fit would give Kα1 positions there and mean positions below. Any other wavelength
    is returned as it is.
    """
    if wavelength is None:
        return None
    doublet = doublet_of(wavelength)
    if doublet is not None:
        return replace(wavelength, ratio=doublet[1])
    if wavelength.ka2 is not None:
        return wavelength
    for anode in ANODES.values():
        if doublet_of(anode) is None:
            continue
        weight = anode.ratio / (1 + anode.ratio)
        mean = anode.ka1 + weight * (anode.ka2 - anode.ka1)
        if abs(wavelength.ka1 - mean) <= KA_MEAN_TOLERANCE_A:
            ka1 = wavelength.ka1 - weight * (anode.ka2 - anode.ka1)
            return Wavelength(ka1, ka1 + anode.ka2 - anode.ka1, anode.ratio, anode.label)
    return wavelength


@dataclass(frozen=True)
class Instrument:
    """A diffractometer: radiation, zero shift and sample displacement (degrees 2θ; the
    displacement's shift is this × cos θ), TCH widths U, V, W (deg²) and X, Y (deg),
    Bérar–Baldinozzi asymmetry (P1, P2) of the factor 1 + (P1·Fa(z) + P2·Fb(z))/tanθ on each peak
    (z = Δ2θ/FWHM; P1 < 0 puts a tail on the low-angle side, as axial divergence does), the
    fraction of the incident beam polarised in the diffraction plane (0.5: an unpolarised tube,
    near 0 for synchrotron light diffracted vertically) and the measured 2θ range (degrees).
    A Kα1-monochromated instrument at an anode has the anode's wavelength with ratio 0.

    The defaults are a typical laboratory instrument (the simulator's)."""

    wavelength: Wavelength
    u: float = 0.01
    v: float = -0.005
    w: float = 0.004
    x: float = 0.02
    y: float = 0.01
    zero: float = 0.0
    displacement: float = 0.0
    asymmetry: tuple[float, float] = (0.0, 0.0)
    polarisation: float = 0.5
    two_theta_range: tuple[float, float] = (0.0, 180.0)

    def __post_init__(self):
        values = [self.u, self.v, self.w, self.x, self.y, self.zero, self.displacement, self.polarisation,
                  *self.asymmetry, *self.two_theta_range]
        if not all(math.isfinite(v) for v in values):
            raise InputError(None, "instrument parameters must be finite")
        if self.w <= 0 or self.u < 0:
            raise InputError(None, f"U {self.u:g} must be ≥ 0 and W {self.w:g} > 0")
        if self.x < 0 or self.y < 0:
            raise InputError(None, "Lorentzian widths X, Y must be ≥ 0")
        if not 0 <= self.polarisation <= 1:
            raise InputError(None, f"polarisation {self.polarisation:g} is a fraction: 0–1")
        if len(self.asymmetry) != 2:
            raise InputError(None, "asymmetry takes two Bérar–Baldinozzi coefficients (P1, P2)")
        low, high = self.two_theta_range
        if not 0 <= low < high <= 180:
            raise InputError(None, f"2θ range {low:g}–{high:g}° must satisfy 0 ≤ min < max ≤ 180")

    @classmethod
    def from_fwhm(cls, wavelength: Wavelength, fwhm_deg: float, zero: float = 0.0, **fields) -> Instrument:
        """Gaussian (W) and Lorentzian (X/cosθ) widths that together give about the measured FWHM,
        no angle dependence otherwise: a start for refinement from fitted peaks."""
        return cls(wavelength, u=0.0, v=0.0, w=(0.7 * fwhm_deg) ** 2, x=0.45 * fwhm_deg, y=0.0, zero=zero,
                   **fields)

    @property
    def doublet(self) -> tuple[float, float] | None:
        """(λ(Kα2) Å, I(Kα2)/I(Kα1)) where the radiation has a Kα2 (``doublet_of``), else None."""
        return doublet_of(self.wavelength)

    @property
    def d_min(self) -> float:
        """The smallest spacing (Å) whose Kα1 line falls inside the range, zero shift included."""
        return float(bragg_d(self.two_theta_range[1] - self.zero, self.wavelength.ka1))

    def two_theta(self, d_A, wavelength_A: float | None = None):
        """Degrees 2θ of the peak of spacing d (Å), zero shift and displacement included; at Kα1
        unless another λ (Å) is given."""
        theta = bragg_theta(d_A, self.wavelength.ka1 if wavelength_A is None else wavelength_A)
        return np.degrees(2 * theta) + self.zero + self.displacement * np.cos(theta)

    def d(self, two_theta_deg):
        """Spacing (Å) of the Kα1 line at 2θ (degrees), the zero shift taken off (the displacement's
        shift, a fraction of the zero's in the fits that use this, is not)."""
        return bragg_d(np.asarray(two_theta_deg, dtype=float) - self.zero, self.wavelength.ka1)

    def ka2_two_theta(self, two_theta_deg):
        """Degrees 2θ of the Kα2 line of the Kα1 line at 2θ (the same where there is no Kα2)."""
        doublet = self.doublet
        if doublet is None:
            return np.asarray(two_theta_deg, dtype=float)
        return np.degrees(2 * bragg_theta(self.d(two_theta_deg), doublet[0])) + self.zero

    def fwhm(self, two_theta_deg):
        """Total TCH FWHM (degrees) of a peak at 2θ (degrees), as the profile model draws it."""
        theta = np.radians(np.asarray(two_theta_deg, dtype=float)) / 2
        gaussian2, lorentzian = tch_components(np.tan(theta), np.cos(theta), self.u, self.v,
                                                                   self.w, self.x, self.y)
        return tch(np.sqrt(np.maximum(gaussian2, 1e-10)), np.maximum(lorentzian, 0.0))[0]
