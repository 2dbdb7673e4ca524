"""Pattern preprocessing: background, peak search and peak-profile fits (positions with errors).

Angles in degrees 2θ. Background by pybaselines (SNIP); peaks located by scipy.signal.find_peaks on
the background-subtracted pattern and each fitted by a pseudo-Voigt (as a Kα1 + Kα2 pair where
the wavelength has a doublet, so positions are Kα1 positions and Kα2 shoulders are not peaks).
A single stated wavelength equal to an anode's weighted Kα mean (e.g. 1.5418 Å for Cu) is an
unresolved doublet too: it is fitted as one, and its positions are given for the stated wavelength.
The instrument a refinement starts from is estimated from the fitted widths (``estimate_instrument``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from pybaselines import Baseline
from scipy.optimize import curve_fit
from scipy.signal import find_peaks as _scipy_find_peaks

from model.instrument import Instrument, bragg_d, bragg_theta, kalpha_doublet
from model.pattern import Pattern

MIN_FWHM_STEPS = 1.5  # narrower fits are noise spikes: a diffraction peak spans several points


@dataclass(frozen=True)
class Peak:
    """A fitted peak: Kα1 position ± standard error (deg 2θ), height above background, FWHM (deg)."""

    two_theta: float
    two_theta_err: float
    height: float
    fwhm: float
    eta: float


def background(pattern: Pattern, excluded: Sequence[tuple[float, float]] = ()) -> np.ndarray:
    """SNIP background; the clipping window spans ~2° so peaks (and Kα doublets) are cut off."""
    window = max(round(2.0 / pattern.step), 5)
    fitter = Baseline(pattern.two_theta)
    base, _ = fitter.snip(pattern.intensity, max_half_window=window, decreasing=True, smooth_half_window=1)
    return base


def noise_level(signal: np.ndarray) -> float:
    """Robust standard deviation of point-to-point differences (σ of the noise, same units as ``signal``)."""
    diff = np.diff(signal)
    return float(1.4826 * np.median(np.abs(diff - np.median(diff))) / np.sqrt(2)) or 1e-12


def find_peaks(pattern: Pattern, excluded: Sequence[tuple[float, float]] = (), min_snr: float = 4.0,
               max_peaks: int = 60, background_counts: np.ndarray | None = None) -> list[Peak]:
    """Peaks sorted by 2θ, at most ``max_peaks`` of the strongest, each profile-fitted; positions
    are for the pattern's (Kα1) wavelength. ``background_counts``: the pattern's background where
    the caller has it already (else computed here)."""
    if background_counts is None:
        background_counts = background(pattern, excluded)
    signal = pattern.intensity - background_counts
    keep = pattern.included(excluded)
    sigma = noise_level(signal)
    step = pattern.step
    smooth = np.convolve(signal, np.ones(3) / 3, mode="same")
    index, props = _scipy_find_peaks(np.where(keep, smooth, 0.0), prominence=min_snr * sigma,
                                     distance=max(1, int(0.04 / step)))
    order = np.argsort(props["prominences"])[::-1][: max_peaks * 2]
    wavelength = kalpha_doublet(pattern.wavelength)
    instrument = None if wavelength is None else Instrument(wavelength)
    peaks = [p for p in (_fit_peak(pattern.two_theta, signal, i, step, instrument, sigma) for i in index[order])
             if p is not None]
    peaks = _drop_ka2_shadows(peaks, instrument)
    peaks.sort(key=lambda p: -p.height)
    peaks = sorted(peaks[:max_peaks], key=lambda p: p.two_theta)
    if wavelength is not None and wavelength.ka1 != pattern.wavelength.ka1:
        peaks = [replace(p, two_theta=float(np.degrees(2 * bragg_theta(bragg_d(p.two_theta, wavelength.ka1),
                                                                         pattern.wavelength.ka1))))
                 for p in peaks]
    return peaks


def estimate_instrument(pattern: Pattern) -> Instrument:
    """The instrument a refinement of ``pattern`` starts from: its stated wavelength and widths
    from the median FWHM of the strongest fitted peaks (``Instrument.from_fwhm``)."""
    peaks = sorted(find_peaks(pattern, max_peaks=20), key=lambda p: -p.height)[:10]
    fwhm = float(np.median([p.fwhm for p in peaks])) if peaks else 10 * pattern.step
    return Instrument.from_fwhm(pattern.wavelength, max(fwhm, 2 * pattern.step))


def _pseudo_voigt(x, center, height, fwhm, eta):
    dx = (x - center) / fwhm
    return height * (eta / (1 + 4 * dx**2) + (1 - eta) * np.exp(-4 * np.log(2) * dx**2))


def _fit_peak(x, y, i, step, instrument: Instrument | None, sigma) -> Peak | None:
    doublet = None if instrument is None else instrument.doublet
    half = max(int(0.35 / step), 6)
    lo, hi = max(i - half, 0), min(i + half + 1, x.size)
    xs, ys = x[lo:hi], y[lo:hi]
    if xs.size < 6:
        return None

    def model(xv, center, height, fwhm, eta, c0, c1):
        out = _pseudo_voigt(xv, center, height, fwhm, eta) + c0 + c1 * (xv - x[i])
        if doublet:
            out = out + _pseudo_voigt(xv, instrument.ka2_two_theta(center), height * doublet[1], fwhm, eta)
        return out

    p0 = [x[i], max(y[i], sigma), 4 * step, 0.5, 0.0, 0.0]
    bounds = ([x[i] - 5 * step, 0, step / 2, 0, -np.inf, -np.inf], [x[i] + 5 * step, np.inf, 0.25 / 0.35 * (xs[-1] - xs[0]), 1, np.inf, np.inf])
    try:
        popt, pcov = curve_fit(model, xs, ys, p0=p0, bounds=bounds, maxfev=400)
    except (RuntimeError, ValueError):
        return None
    err = float(np.sqrt(abs(pcov[0, 0]))) if np.all(np.isfinite(pcov)) else step
    if popt[1] < 3 * sigma or popt[2] < MIN_FWHM_STEPS * step:
        return None
    return Peak(float(popt[0]), err, float(popt[1]), float(popt[2]), float(popt[3]))


def _drop_ka2_shadows(peaks: list[Peak], instrument: Instrument | None) -> list[Peak]:
    """Remove duplicates and, for a doublet, peaks sitting at the Kα2 position of a stronger peak.

    A weaker peak within one FWHM of a stronger one is a second fit of the same peak (e.g. from a
    local maximum on its Kα2 shoulder) or not resolved from it, so it is not a line of its own.
    """
    peaks = sorted(peaks, key=lambda p: -p.height)
    kept: list[Peak] = []
    for peak in peaks:
        shadow = False
        for strong in kept:
            if abs(peak.two_theta - strong.two_theta) < strong.fwhm:
                shadow = True
            elif instrument is not None and instrument.doublet:
                ka2 = instrument.ka2_two_theta(strong.two_theta)
                if abs(peak.two_theta - ka2) < 0.5 * strong.fwhm and peak.height < strong.height:
                    shadow = True
        if not shadow:
            kept.append(peak)
    return kept
