"""Intensity extraction: the observed integrated intensity of each group of overlapping reflections.

The background-subtracted pattern is integrated over windows (a few FWHM, widening with 2θ, with
room for the Kα2 line) around groups of overlapping reflections of a cell and space group. Windows
around reflections of the lattice that the space group forbids count as clusters of their own,
which the structure cannot explain, so the groups of one cell are scored on the same observed
intensity. The background estimate's smooth error is left to the score to fit: each cluster also
carries the integrals of a few Chebyshev polynomials of 2θ over its window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Lattice

from model import constraints, simulate
from model.instrument import Instrument
from model.pattern import Pattern
from model.spacegroups import standard_ops

BACKGROUND_TERMS = 6  # Chebyshev terms of the background error fitted with the scale
WINDOW_FWHM = 1.5  # a cluster integrates this many FWHM either side of its reflections


@dataclass(frozen=True)
class Clusters:
    """Reflections grouped where they overlap, with the observed integrated intensity of each group.

    Clusters without reflections are the windows of forbidden lattice reflections (calculated 0).
    The background-subtracted pattern keeps a smooth error of the background estimate; the score
    fits it as a combination of the ``background`` columns.
    """

    hkl: np.ndarray  # (R, 3)
    d: np.ndarray  # (R,) Å
    weight: np.ndarray  # (R,) multiplicity × LP
    group: np.ndarray  # (R,) cluster index of each reflection
    observed: np.ndarray  # (C,) integrated intensity above the background
    background: np.ndarray  # (C, B) integrals of smooth functions of 2θ over each cluster's window


def clusters(pattern: Pattern, signal: np.ndarray, lattice: Lattice, space_group: int, zero: float,
             fwhm_poly: Sequence[float]) -> Clusters:
    """Reflections of the cell in the measured range and their observed cluster intensities, from
    ``signal``, the pattern's intensity above its background.

    ``fwhm_poly``: FWHM (deg) as a polynomial in 2θ (deg), highest power first (np.polyval).
    """
    x = pattern.two_theta
    metric = lattice.metric_tensor
    hkl, mult, tth, low, high = _windows(pattern, metric, standard_ops(space_group), zero, fwhm_poly)
    order = np.argsort(tth)
    hkl, mult, tth, low, high = hkl[order], mult[order], tth[order], low[order], high[order]
    group = np.zeros(len(tth), dtype=int)
    for i in range(1, len(tth)):
        group[i] = group[i - 1] + (low[i] > high[:i].max())
    # cluster of each point of the pattern (−1: none)
    point = np.full(x.size, -1)
    for g in range(group.max() + 1 if len(group) else 0):
        point[(x >= low[group == g].min()) & (x <= high[group == g].max())] = g
    # windows of lattice reflections this group forbids, outside its own windows: intensity there
    # is unexplained (each run of adjacent points is one cluster)
    *_, gap_low, gap_high = _windows(pattern, metric, standard_ops(1), zero, fwhm_poly)
    gap = np.zeros(x.size, dtype=bool)
    for lo, hi in zip(gap_low, gap_high):
        gap |= (x >= lo) & (x <= hi)
    gap &= point < 0
    runs = np.cumsum(np.diff(np.concatenate([[False], gap])) & gap)  # run number of each gap point
    point[gap] = point.max(initial=-1) + runs[gap]
    inside = point >= 0
    step = np.gradient(x)[inside]
    observed = np.bincount(point[inside], weights=signal[inside] * step)
    # the background left in ``signal`` is smooth in 2θ: Chebyshev polynomials integrated over each window
    scan = (2 * x[inside] - (x[0] + x[-1])) / (x[-1] - x[0])
    residual = np.stack([np.bincount(point[inside], weights=np.polynomial.chebyshev.chebval(scan, np.eye(k + 1)[k])
                                     * step) for k in range(BACKGROUND_TERMS)], axis=1)
    d = 1 / np.sqrt(np.einsum("ri,ij,rj->r", hkl, np.linalg.inv(metric), hkl))
    theta = np.radians(tth - zero) / 2
    weight = mult * simulate.lorentz_polarisation(theta)
    return Clusters(hkl, d, weight, group, observed, residual)


def _windows(pattern: Pattern, metric: np.ndarray, ops: constraints.SpaceGroupOps, zero: float,
             fwhm_poly: Sequence[float]):
    """hkl families inside the scan, their multiplicity, 2θ (deg) and integration window."""
    tth_min, tth_max = pattern.two_theta[0], pattern.two_theta[-1]
    instrument = Instrument(pattern.wavelength, zero=zero, two_theta_range=(tth_min, tth_max))
    hkl, mult = constraints.hkl_families(metric, ops, instrument.d_min)
    d = 1 / np.sqrt(np.einsum("ri,ij,rj->r", hkl, np.linalg.inv(metric), hkl))
    tth = instrument.two_theta(d)
    fwhm = np.clip(np.polyval(fwhm_poly, tth), 2 * pattern.step, None)
    inside = (tth > tth_min + fwhm) & (tth < tth_max - fwhm)
    tth, fwhm = tth[inside], fwhm[inside]
    doublet = instrument.ka2_two_theta(tth) - tth  # the window reaches over the Kα2 line
    return hkl[inside], mult[inside], tth, tth - WINDOW_FWHM * fwhm, tth + WINDOW_FWHM * fwhm + doublet
