"""Pattern preprocessing: background, peak search and peak-profile fits (positions with errors).

Angles in degrees 2θ. Background by pybaselines (SNIP); peaks located by scipy.signal.find_peaks on
the background-subtracted pattern (maxima standing out of the noise) and on its smoothed second
derivative (shoulders and weak lines: curvature minima, the smoothing window one measured FWHM),
fitted together where they overlap as pseudo-Voigts (as Kα1 + Kα2 pairs where the wavelength has a
doublet, so positions are Kα1 positions and Kα2 shoulders are not peaks), and kept where a peak's
net counts within its FWHM exceed SIGNIFICANCE_SIGMA σ of the counting noise there. Windows are in
units of the measured FWHM and the step, not degrees: a diamond-anvil-cell scan at 0.4 Å has a few
hundred points and lines 3–8 steps wide, a lab scan thousands of points.
A single stated wavelength equal to an anode's weighted Kα mean (e.g. 1.5418 Å for Cu) is an
unresolved doublet too: it is fitted as one, and its positions are given for the stated wavelength.
The instrument a refinement starts from is estimated from the fitted widths (``estimate_instrument``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from pybaselines import Baseline
from scipy.ndimage import gaussian_filter1d
from scipy.optimize import curve_fit
from scipy.signal import find_peaks as _scipy_find_peaks
from scipy.signal import peak_widths

from model.instrument import Instrument, bragg_d, bragg_theta, kalpha_doublet
from model.pattern import Pattern

MIN_FWHM_STEPS = 1.5  # narrower fits are noise spikes: a diffraction peak spans several points
# a peak's net counts within ±FWHM/2 against √(variance of the counts there): 5σ leaves about one
# noise peak in 10⁶ windows, a scan has ~10³ FWHM-wide windows
SIGNIFICANCE_SIGMA = 5.0
GAUSSIAN_FWHM_SIGMA = 2.3548  # a Gaussian's FWHM in units of its σ
CURVATURE_SIGMA = 3.0  # second-derivative minima this far below its noise are candidate peaks
WIDTH_PEAKS = 10  # most prominent maxima whose half-height widths give the working FWHM
FIT_HALF_FWHM = 3.5  # a fit window reaches this many FWHM beyond its outermost peak (lab: ~0.35°)
CLUSTER_FWHM = 2.5  # peaks closer than this many FWHM overlap and are fitted together
MIN_FIT_POINTS = 6  # a fit window has at least this many points on each side
PINNED_STEPS = 0.01  # a fitted centre this close (in steps) to the bound of its move is pinned there
MAX_FITTED_TOGETHER = 3  # overlapping peaks fitted together at most; a dense pattern's runs are cut


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
    if index.size == 0:
        return []
    prominent = index[np.argsort(props["prominences"])[::-1]]
    width_points = max(float(np.median(peak_widths(smooth, prominent[:WIDTH_PEAKS])[0])), 2.0)
    variance = _counting_variance(pattern.intensity)
    wavelength = kalpha_doublet(pattern.wavelength)
    instrument = None if wavelength is None else Instrument(wavelength)
    centres = np.sort(prominent[: max_peaks * 2])
    if instrument is None or instrument.doublet is None:
        # a Kα2 puts a shoulder on every line: shoulders are looked for in monochromatic patterns only
        centres = _with_shoulders(signal, variance, keep, centres, width_points)
    peaks = []
    for cluster in _clusters(pattern.two_theta[centres], CLUSTER_FWHM * width_points * step):
        # the window stops halfway to the candidates outside the cluster: a neighbour's line inside
        # it, unmodelled, would be fitted as background slope and drag the widths
        reach = ((centres[cluster[0] - 1] + centres[cluster[0]]) // 2 if cluster[0] > 0 else 0,
                 (centres[cluster[-1]] + centres[cluster[-1] + 1]) // 2 if cluster[-1] + 1 < centres.size
                 else pattern.two_theta.size - 1)
        fitted = _fit_peaks(pattern.two_theta, signal, centres[cluster], reach, step, width_points * step,
                            instrument, sigma)
        peaks += [p for p in fitted if _significant(p, pattern.two_theta, variance)]
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


def _with_shoulders(signal: np.ndarray, variance: np.ndarray, keep: np.ndarray, maxima: np.ndarray,
                    width_points: float) -> np.ndarray:
    """Point indices of the ``maxima`` and, more than half a FWHM from any of them, the minima of
    the second derivative of the signal smoothed by a Gaussian of the peaks' own width (a matched
    Laplacian-of-Gaussian filter) deeper than CURVATURE_SIGMA of the counting noise's response
    there: weak lines, and shoulders that curve down without a maximum of their own."""
    spread = width_points / GAUSSIAN_FWHM_SIGMA
    kernel = gaussian_filter1d(np.eye(1, 8 * int(spread + 1) + 1, 4 * int(spread + 1))[0], spread, order=2)
    curvature = -gaussian_filter1d(signal, spread, order=2) / np.sqrt(gaussian_filter1d(variance, spread)
                                                                     * (kernel**2).sum())
    bent, _ = _scipy_find_peaks(np.where(keep, curvature, 0.0), height=CURVATURE_SIGMA,
                                distance=max(1, int(width_points / 2)))
    bent = bent[np.argsort(curvature[bent])[::-1]]
    taken = list(maxima)
    for i in bent:
        if np.min(np.abs(np.array(taken) - i)) > width_points / 2:
            taken.append(i)
    return np.sort(np.array(taken, dtype=int))


def _clusters(positions: np.ndarray, reach_deg: float) -> list[np.ndarray]:
    """Indices into the increasing ``positions`` (degrees), split where neighbours are more than
    ``reach_deg`` apart, in runs of at most MAX_FITTED_TOGETHER (the fit's cost grows fast with them)."""
    breaks = np.flatnonzero(np.diff(positions) > reach_deg) + 1
    runs = np.split(np.arange(positions.size), breaks)
    return [run[i:i + MAX_FITTED_TOGETHER] for run in runs for i in range(0, run.size, MAX_FITTED_TOGETHER)]


def _counting_variance(intensity: np.ndarray) -> np.ndarray:
    """Per-point variance of the counts: Poisson, ∝ the counts, scaled by the measured scatter of
    the second differences about √counts (1 for raw counts; a pattern stored in other units keeps
    its own noise). Second differences: a broad peak's slope does not count as noise."""
    level = np.maximum(intensity, max(float(np.median(intensity)) * 1e-2, 1e-12))
    scaled = (intensity[1:-1] - (intensity[:-2] + intensity[2:]) / 2) / np.sqrt(1.5 * level[1:-1])
    gain = 1.4826 * np.median(np.abs(scaled - np.median(scaled))) if scaled.size else 1.0
    return (gain or 1.0) ** 2 * level


def _significant(peak: Peak, two_theta: np.ndarray, variance: np.ndarray) -> bool:
    """Whether the peak's net counts within ±FWHM/2 exceed SIGNIFICANCE_SIGMA √(variance there)."""
    inside = np.abs(two_theta - peak.two_theta) <= peak.fwhm / 2
    if not inside.any():
        return False
    net = _pseudo_voigt(two_theta[inside], peak.two_theta, peak.height, peak.fwhm, peak.eta).sum()
    return bool(net > SIGNIFICANCE_SIGMA * np.sqrt(variance[inside].sum()))


def _pseudo_voigt(x, center, height, fwhm, eta):
    dx = (x - center) / fwhm
    return height * (eta / (1 + 4 * dx**2) + (1 - eta) * np.exp(-4 * np.log(2) * dx**2))


def _fit_peaks(x, y, centres, reach, step, fwhm, instrument: Instrument | None, sigma) -> list[Peak]:
    """The peaks at point indices ``centres`` fitted together as pseudo-Voigts of one η on a
    straight background, within FIT_HALF_FWHM FWHM beyond the outermost (``fwhm`` degrees, the
    working width) but not beyond the point indices ``reach`` (first, last), nor closer than
    MIN_FIT_POINTS to the outermost; each centre may move half a FWHM (at least 5 steps)."""
    doublet = None if instrument is None else instrument.doublet
    half = max(int(FIT_HALF_FWHM * fwhm / step), MIN_FIT_POINTS)
    lo = max(min(max(centres[0] - half, reach[0]), centres[0] - MIN_FIT_POINTS), 0)
    hi = min(max(min(centres[-1] + half, reach[1]), centres[-1] + MIN_FIT_POINTS) + 1, x.size)
    xs, ys = x[lo:hi], y[lo:hi]
    if xs.size < MIN_FIT_POINTS:
        return []
    origin = x[centres[0]]

    def model(xv, c0, c1, eta, *lines):
        out = c0 + c1 * (xv - origin)
        for center, height, width in zip(lines[0::3], lines[1::3], lines[2::3]):
            out = out + _pseudo_voigt(xv, center, height, width, eta)
            if doublet:
                out = out + _pseudo_voigt(xv, instrument.ka2_two_theta(center), height * doublet[1], width, eta)
        return out

    move = max(5 * step, fwhm / 2)
    widest = max(5 * fwhm, 0.25 / 0.35 * (xs[-1] - xs[0]) / len(centres))
    p0, low, high = [0.0, 0.0, 0.5], [-np.inf, -np.inf, 0.0], [np.inf, np.inf, 1.0]
    for i in centres:
        p0 += [x[i], max(y[i], sigma), min(max(fwhm, step), widest / 2)]
        low += [x[i] - move, 0.0, step / 2]
        high += [x[i] + move, np.inf, widest]
    try:
        popt, pcov = curve_fit(model, xs, ys, p0=p0, bounds=(low, high), maxfev=400 * len(centres))
    except (RuntimeError, ValueError):
        return []
    errors = np.sqrt(np.abs(np.diag(pcov))) if np.all(np.isfinite(pcov)) else np.full(len(popt), step)
    # a centre pinned at the bound of its move was pulled off its maximum by the misfit of a
    # neighbour's tail (a lab line's Kα2 and Lorentzian wings): its position is not measured
    free = np.minimum(popt - low, high - popt) > PINNED_STEPS * step
    return [Peak(float(popt[k]), float(errors[k]), float(popt[k + 1]), float(popt[k + 2]), float(popt[2]))
            for k in range(3, len(popt), 3) if popt[k + 2] >= MIN_FWHM_STEPS * step and free[k]]


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
