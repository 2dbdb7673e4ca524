"""Whether a model with more parameters fits significantly better than a simpler one: Hamilton's
R-factor ratio test (Acta Cryst. 18, 502, 1965), the crystallographer's F-test.

A lower symmetry, a second phase or a freed parameter always lowers Rwp a little; the test keeps
it only where the drop exceeds what ``extra`` more parameters would buy from noise alone. The
points of a powder profile are not independent observations (neighbouring points sample one line),
so callers pass the count of independent observations (effective_observations), not the points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

ALPHA = 0.01  # the chance of keeping a parameter set that noise alone made look better


def critical_ratio(extra: int, observations: int, parameters: int, alpha: float = ALPHA) -> float:
    """Hamilton's R_{b, n−m, α}: the ratio R(simpler)/R(richer) above which the ``extra`` (b)
    parameters of the richer model (``parameters`` = m in all) are significant, from ``observations``
    (n) independent observations."""
    if extra <= 0:
        return 1.0
    freedom = observations - parameters
    if freedom <= 0:
        return math.inf  # as many parameters as observations: no drop in R can be told from noise
    return math.sqrt(extra / freedom * stats.f.isf(alpha, extra, freedom) + 1.0)


def richer_is_better(r_simpler: float, r_richer: float, extra: int, observations: int, parameters: int,
                     alpha: float = ALPHA) -> bool:
    """Whether the richer model's R (e.g. Rwp, %) is lower than the simpler one's by more than noise
    explains (Hamilton's test at significance ``alpha``)."""
    if not (r_richer > 0 and math.isfinite(r_simpler)):
        return False
    return r_simpler / r_richer > critical_ratio(extra, observations, parameters, alpha)


def effective_observations(points: int, step_deg: float, fwhm_deg: float) -> int:
    """Independent observations in a profile of ``points`` points ``step_deg`` apart whose lines are
    ``fwhm_deg`` wide: about one per FWHM (a line is sampled FWHM/step times, but tells one width)."""
    per_line = max(fwhm_deg / step_deg, 1.0)
    return max(int(points / per_line), 1)


def positive_excess(amplitudes: Sequence[float]) -> float:
    """How many σ (one-sided normal deviate) the positive parts of ``amplitudes`` (each a normal
    deviate under the null, e.g. a line's fitted height in noise σ where no line should be) exceed
    noise: the chance of Σ max(z, 0)² as large from n independent normals, whose positive ones
    (binomial, n and ½) add a χ² of as many degrees of freedom. Weak lines all of one sign add up
    where their sum over both signs would not; NaN where there are none."""
    if not len(amplitudes):
        return math.nan
    excess = float(np.sum(np.maximum(np.asarray(amplitudes, dtype=float), 0.0) ** 2))
    n = len(amplitudes)
    if excess <= 0:
        return -math.inf  # no line at all: nothing beyond noise
    positives = np.arange(1, n + 1)
    chance = float(np.sum(stats.binom.pmf(positives, n, 0.5) * stats.chi2.sf(excess, positives)))
    return float(stats.norm.isf(min(chance, 1.0)))
