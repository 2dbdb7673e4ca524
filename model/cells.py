"""Indexing cells: the lines a cell allows, its least-squares refinement with the zero shift
against a peak list, and its figures of merit (de Wolff M20, Smith–Snyder F_N).

A cell is held as the terms of its reciprocal metric that its crystal system leaves free
(``coef``, Å⁻²), in which 1/d² is linear: 1/d² = features(hkl) · coef, e.g. h²A + k²B + l²C + hl E
for monoclinic (b unique) and all six terms h²A + k²B + l²C + hk D + hl E + kl F for triclinic.
Shared by the indexers of model.index (exhaustive assignment) and model.zones (Ito's zone method).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

LOW_SYSTEMS = ("monoclinic", "triclinic")  # the systems with oblique axes
SCREEN_LINES = 10  # a trial cell must index these first lines, all but max_unindexed of them
# a trial cell inherits the zero shift of its few lines, so it is screened at a wider tolerance;
# the refinement with the zero shift then judges it at the stated one
SCREEN_TOLERANCE = 2.0
MAX_ZERO_DEG = 0.3
MIN_VOLUME_A3 = 15.0  # below the smallest conventional cells of the elements (hcp Be, 16 Å³)
MIN_AXIS_A = 2.0  # below the shortest lattice translations of solids (hcp Be a = 2.29 Å)
UNINDEXED_FACTOR = 0.5  # merit factor per unindexed line
# de Wolff: M20 ≥ 10 with at most two unindexed lines is almost always the right cell; twice that
# leaves room for the worse positions of a measured pattern's weak lines
EXPLAINED_M20 = 20.0
# Ranking prefers the higher symmetry when merits are comparable: a lower-symmetry cell fits the
# position errors of a higher-symmetry pattern with its extra parameters and indexes it as well.
SYMMETRY_WEIGHT = {"cubic": 2.0, "hexagonal": 1.5, "tetragonal": 1.5, "orthorhombic": 1.0, "monoclinic": 0.7,
                   "triclinic": 0.5}
MAX_REFLECTIONS = 20000  # hkl box of a low-symmetry cell's lines; a cell that needs more is implausibly large


@dataclass(frozen=True)
class Cell:
    """An indexing solution: lattice (Å, degrees), zero shift (deg 2θ), figures of merit.

    ``m20`` is de Wolff's M20 = (1/d²)_N / (2 ε N_calc) over the indexed lines (1/d² in Å⁻²; ε their
    mean |Δ(1/d²)|; N_calc the distinct lines the cell allows up to the last observed
    line); ``f_n`` is Smith & Snyder's F_N = N / (mean |Δ2θ| · N_calc) over the same lines.
    ``merit`` ranks the cells: M20 × UNINDEXED_FACTOR per unindexed line × SYMMETRY_WEIGHT, so a
    cell that leaves impurity lines unexplained pays for them without being refused.
    """

    crystal_system: str
    lattice: tuple[float, float, float, float, float, float]
    zero: float
    m20: float
    f_n: float
    n_indexed: int
    n_lines: int
    merit: float

    @property
    def volume(self) -> float:
        a, b, c, al, be, ga = self.lattice
        ca, cb, cg = np.cos(np.radians([al, be, ga]))
        return float(a * b * c * np.sqrt(1 - ca**2 - cb**2 - cg**2 + 2 * ca * cb * cg))



def features(system: str, hkl: np.ndarray) -> np.ndarray:
    """Rows F with 1/d² = F · coef (coef: the system's reciprocal metric terms, Å⁻²)."""
    h, k, l = hkl.T.astype(float)
    if system == "cubic":
        return (h**2 + k**2 + l**2)[:, None]
    if system == "tetragonal":
        return np.stack([h**2 + k**2, l**2], 1)
    if system == "hexagonal":
        return np.stack([4.0 / 3.0 * (h**2 + h * k + k**2), l**2], 1)
    if system == "monoclinic":
        return np.stack([h**2, k**2, l**2, h * l], 1)
    if system == "triclinic":
        return np.stack([h**2, k**2, l**2, h * k, h * l, k * l], 1)
    return np.stack([h**2, k**2, l**2], 1)


def lattice_of(system: str, coef: np.ndarray) -> tuple[float, ...]:
    """a, b, c (Å), α, β, γ (degrees) of the cell; monoclinic with β ≥ 90° (a → −a makes β 180° − β)."""
    if system in LOW_SYSTEMS:
        direct = np.linalg.inv(reciprocal_metric(system, coef))
        lengths = np.sqrt(np.diag(direct))
        cosines = [direct[1, 2], direct[0, 2], direct[0, 1]] / lengths[[1, 0, 0]] / lengths[[2, 2, 1]]
        angles = np.degrees(np.arccos(np.clip(cosines, -1, 1)))
        if system == "monoclinic":
            angles = np.array([90.0, max(angles[1], 180.0 - angles[1]), 90.0])
        return (*lengths, *angles)
    inv = 1.0 / np.sqrt(coef)
    if system == "cubic":
        return (inv[0], inv[0], inv[0], 90.0, 90.0, 90.0)
    if system == "tetragonal":
        return (inv[0], inv[0], inv[1], 90.0, 90.0, 90.0)
    if system == "hexagonal":
        return (inv[0], inv[0], inv[1], 90.0, 90.0, 120.0)
    a, b, c = sorted(inv)  # a ≤ b ≤ c, the orthorhombic convention of pymatgen's conventional cells
    return (a, b, c, 90.0, 90.0, 90.0)



@functools.cache
def _norms(form: str, limit: int) -> np.ndarray:
    """Sorted distinct values ≤ limit of h²+k² ("square"), h²+hk+k² ("hexagonal") or h²+k²+l²
    ("cubic") over integer h, k, l."""
    r = np.arange(-int(np.sqrt(limit)) - 1, int(np.sqrt(limit)) + 2)
    if form == "cubic":
        h, k, l = np.meshgrid(r, r, r, indexing="ij")
        values = h**2 + k**2 + l**2
    else:
        h, k = np.meshgrid(r, r, indexing="ij")
        values = h**2 + k**2 + (h * k if form == "hexagonal" else 0)
    values = np.unique(values)
    return values[values <= limit].astype(float)


def reflections(system: str, coef: np.ndarray, inv_d2_max: float) -> np.ndarray:
    """Feature rows of every distinct line of the cell with 1/d² ≤ inv_d2_max (Å⁻²), sorted by 1/d²."""
    if system in LOW_SYSTEMS:
        return _metric_reflections(system, coef, inv_d2_max)

    def norms(form, bound):  # cached on a power-of-two limit: cells of one pattern share it
        limit = 1 << max(int(np.ceil(np.log2(max(bound, 1.0)))), 4)
        values = _norms(form, limit)
        return values[values <= bound]

    if system == "cubic":
        features = norms("cubic", inv_d2_max / coef[0])[:, None]
    elif system in ("tetragonal", "hexagonal"):
        if system == "tetragonal":
            first = norms("square", inv_d2_max / coef[0])
        else:
            first = 4.0 / 3.0 * norms("hexagonal", 0.75 * inv_d2_max / coef[0])
        second = np.arange(int(np.sqrt(inv_d2_max / coef[1])) + 1, dtype=float) ** 2
        features = np.stack(np.broadcast_arrays(first[:, None], second[None, :]), -1).reshape(-1, 2)
    else:
        axes = [np.arange(int(np.sqrt(inv_d2_max / c)) + 1, dtype=float) ** 2 for c in coef]
        features = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    inv_d2 = features @ coef
    keep = (inv_d2 > 0) & (inv_d2 <= inv_d2_max)
    features, inv_d2 = features[keep], inv_d2[keep]
    order = np.argsort(inv_d2)
    return features[order]


def reciprocal_metric(system: str, coef: np.ndarray) -> np.ndarray:
    """The reciprocal metric tensors G* (Å⁻², shape (..., 3, 3)) of monoclinic or triclinic
    coefficients (..., 4 or 6): 1/d² = hᵀ G* h."""
    coef = np.asarray(coef, dtype=float)
    if system == "monoclinic":
        a, b, c, e = np.moveaxis(coef, -1, 0)
        d = f = np.zeros_like(a)
    else:
        a, b, c, d, e, f = np.moveaxis(coef, -1, 0)
    rows = [[a, d / 2, e / 2], [d / 2, b, f / 2], [e / 2, f / 2, c]]
    return np.stack([np.stack(row, -1) for row in rows], -2)


def metric_coef(system: str, metric: np.ndarray) -> np.ndarray:
    """The monoclinic or triclinic coefficients of a reciprocal metric G* (Å⁻²): the inverse of
    reciprocal_metric (monoclinic: b unique, the hk and kl terms dropped)."""
    g = np.asarray(metric, dtype=float)
    if system == "monoclinic":
        return np.array([g[0, 0], g[1, 1], g[2, 2], 2 * g[0, 2]])
    return np.array([g[0, 0], g[1, 1], g[2, 2], 2 * g[0, 1], 2 * g[0, 2], 2 * g[1, 2]])


def _plausible_metric(system: str, coef: np.ndarray, max_volume: float) -> np.ndarray:
    """plausible() of monoclinic or triclinic rows: a positive definite metric, direct axes (the
    diagonal of the inverse metric) ≥ MIN_AXIS_A and a volume in range."""
    metric = reciprocal_metric(system, coef)
    valid = np.all(np.linalg.eigvalsh(metric) > 0, axis=1)
    metric = np.where(valid[:, None, None], metric, np.eye(3))
    axes_sq = np.diagonal(np.linalg.inv(metric), axis1=1, axis2=2)
    volume = 1.0 / np.sqrt(np.linalg.det(metric))
    return valid & np.all(axes_sq >= MIN_AXIS_A**2, axis=1) & (volume >= MIN_VOLUME_A3) & (volume <= max_volume)


def _metric_reflections(system: str, coef: np.ndarray, inv_d2_max: float) -> np.ndarray:
    """reflections() of a monoclinic or triclinic cell: the hkl box that 1/d² ≤ inv_d2_max allows
    (|h| ≤ a·d*max, as h = a·d*)."""
    direct = np.linalg.inv(reciprocal_metric(system, coef))
    limits = tuple(int(v) for v in np.floor(np.sqrt(inv_d2_max * np.diag(direct))))
    if np.prod([2 * v + 1 for v in limits]) > 2 * MAX_REFLECTIONS:
        return np.zeros((0, len(coef)))
    rows = _box_features(system, limits)
    inv_d2 = rows @ coef
    keep = inv_d2 <= inv_d2_max
    return rows[keep][np.argsort(inv_d2[keep])]


@functools.lru_cache(maxsize=256)
def _box_features(system: str, limits: tuple[int, int, int]) -> np.ndarray:
    """Feature rows of the hkl with |h|, |k|, |l| ≤ limits, one per distinct row: of ±hkl the one
    whose first non-zero index is positive, and monoclinic k ≥ 0 too (h k l and h −k l share a row)."""
    h, k, l = (np.arange(-v, v + 1) for v in limits)
    h, k, l = (x.ravel() for x in np.meshgrid(h, k, l, indexing="ij"))
    if system == "monoclinic":
        canonical = (k >= 0) & ((h > 0) | ((h == 0) & (l > 0)) | ((h == 0) & (l == 0) & (k > 0)))
    else:
        canonical = (h > 0) | ((h == 0) & (k > 0)) | ((h == 0) & (k == 0) & (l > 0))
    return features(system, np.column_stack([h, k, l])[canonical])


def inv_d2(tth: np.ndarray, wavelength: float, zero: float = 0.0) -> np.ndarray:
    """1/d² (Å⁻²) of peaks at 2θ − zero."""
    return (2 * np.sin(np.radians(tth - zero) / 2) / wavelength) ** 2


def dinv_d2_dtth(tth: np.ndarray, wavelength: float) -> np.ndarray:
    """d(1/d²)/d(2θ) per degree."""
    return 2 * np.sin(np.radians(tth)) / wavelength**2 * np.pi / 180


def nearest(inv_d2_obs: np.ndarray, inv_d2_calc: np.ndarray) -> np.ndarray:
    """|inv_d2_obs − nearest inv_d2_calc| per row: inv_d2_obs (M, m), inv_d2_calc (M, H) sorted along rows."""
    rows = inv_d2_calc.shape[0]
    cap = 2.0 * float(inv_d2_obs.max())
    span = 2.0 * cap
    offset = np.arange(rows, dtype=float)[:, None] * span
    flat = (np.minimum(inv_d2_calc, cap) + offset).ravel()
    target = inv_d2_obs + offset
    pos = np.searchsorted(flat, target.ravel()).reshape(target.shape)
    above = flat[np.minimum(pos, flat.size - 1)]
    below = flat[np.maximum(pos - 1, 0)]
    return np.minimum(np.abs(above - target), np.abs(target - below))



def plausible(system: str, coef: np.ndarray, max_volume: float) -> np.ndarray:
    """Rows of coefficients that make a cell with axes ≥ MIN_AXIS_A and a volume (Å³) from
    MIN_VOLUME_A3 to max_volume."""
    if system in LOW_SYSTEMS:
        return _plausible_metric(system, coef, max_volume)
    valid = np.all(coef > 0, axis=1)
    coef = np.where(valid[:, None], coef, 1.0)
    volume = volumes(system, coef)
    return valid & np.all(coef <= MIN_AXIS_A**-2, axis=1) & (volume >= MIN_VOLUME_A3) & (volume <= max_volume)


def volumes(system: str, coef: np.ndarray) -> np.ndarray:
    """Cell volumes (Å³) of rows of reciprocal metric coefficients (1/a², [1/b²,] [1/c²], …)."""
    if system in LOW_SYSTEMS:
        return 1.0 / np.sqrt(np.maximum(np.linalg.det(reciprocal_metric(system, coef)), 1e-30))
    if system == "cubic":
        return coef[:, 0] ** -1.5
    if system == "orthorhombic":
        return 1.0 / np.sqrt(np.prod(coef, axis=1))
    return coef[:, 0] ** -1.0 * coef[:, 1] ** -0.5 * (np.sqrt(3) / 2 if system == "hexagonal" else 1.0)


def refine_cell(system, coef, tth, wavelength, tol, max_unindexed, max_volume) -> Cell | None:
    """Assign hkl to the lines, refine the 1/d² coefficients with the zero shift (linear least
    squares in 2θ, re-linearised each pass), first on the screened lines at the screening
    tolerance, then on all lines, then at ``tol``; the figures of merit of the result, or None when
    it leaves too many lines unindexed.

    A trial cell carries the zero shift of its low-angle lines as a cell error (0.05° at 15° 2θ is
    0.7 % in 1/d²), which puts its high-angle lines tenths of a degree off, where the lines of a
    large cell are dense enough to be misassigned: the screened lines correct it first."""
    zero = 0.0
    n = len(coef)
    wide = SCREEN_TOLERANCE * tol
    for lines, window in ((SCREEN_LINES, wide), (tth.size, wide), (tth.size, tol), (tth.size, tol)):
        inv_d2_obs = inv_d2(tth, wavelength, zero)
        slope = dinv_d2_dtth(tth - zero, wavelength)
        features = reflections(system, coef, inv_d2_obs[-1] * 1.05)
        if len(features) == 0:
            return None
        inv_d2_line = features @ coef
        nearest = nearest_index(inv_d2_obs, inv_d2_line)
        use = (np.abs(inv_d2_obs - inv_d2_line[nearest]) / slope <= window) & (np.arange(tth.size) < lines)
        if use.sum() < n + 2:
            return None
        design = np.column_stack([features[nearest[use]] / slope[use, None], np.ones(use.sum())])
        solution, *_ = np.linalg.lstsq(design, inv_d2_obs[use] / slope[use], rcond=None)
        coef, zero = solution[:n], zero + float(solution[n])
        if not plausible(system, coef[None], max_volume)[0] or abs(zero) > MAX_ZERO_DEG:
            return None
    inv_d2_obs = inv_d2(tth, wavelength, zero)
    slope = dinv_d2_dtth(tth - zero, wavelength)
    inv_d2_max = inv_d2_obs[-1]
    inv_d2_line = reflections(system, coef, inv_d2_max * 1.05) @ coef
    inv_d2_line = inv_d2_line[np.concatenate([[True], np.diff(inv_d2_line) > 1e-12 * inv_d2_max])]
    miss = np.abs(inv_d2_obs - inv_d2_line[nearest_index(inv_d2_obs, inv_d2_line)])
    indexed = miss / slope <= tol
    if indexed.sum() < tth.size - max_unindexed:
        return None
    n_calc = max(int(np.sum(inv_d2_line <= inv_d2_max)), 1)
    eps = max(float(np.mean(miss[indexed])), 1e-12)
    m20 = float(inv_d2_max / (2 * eps * n_calc))
    merit = m20 * UNINDEXED_FACTOR ** int(tth.size - indexed.sum()) * SYMMETRY_WEIGHT[system]
    f_n = float(indexed.sum() / (max(float(np.mean(miss[indexed] / slope[indexed])), 1e-6) * n_calc))
    lattice = tuple(float(v) for v in lattice_of(system, coef))
    return Cell(system, lattice, zero, m20, f_n, int(indexed.sum()), int(tth.size), merit)


def screen(coef: np.ndarray, rows: np.ndarray, inv_d2_obs: np.ndarray, tth: np.ndarray, wavelength: float,
           tol: float, max_unindexed: int, pause: Callable[[], None], lines: int = SCREEN_LINES
           ) -> tuple[np.ndarray, np.ndarray]:
    """The trial cells (rows of ``coef``) whose lines among the feature ``rows`` index all but
    ``max_unindexed`` of the first ``lines`` observed lines at SCREEN_TOLERANCE × ``tol`` (deg),
    and how many each misses. In chunks: 20,000 trials × a few hundred lines at a time."""
    m = min(lines, tth.size)
    inv_d2_tol = SCREEN_TOLERANCE * tol * dinv_d2_dtth(tth[:m], wavelength)
    passed, passed_misses = [np.zeros((0, coef.shape[1]))], [np.zeros(0, dtype=int)]
    for chunk in np.array_split(coef, max(1, len(coef) // 20000)):
        pause()
        inv_d2_calc = np.sort(chunk @ rows.T, axis=1)
        misses = np.sum(nearest(np.broadcast_to(inv_d2_obs[:m], (len(chunk), m)), inv_d2_calc) > inv_d2_tol, axis=1)
        passed.append(chunk[misses <= max_unindexed])
        passed_misses.append(misses[misses <= max_unindexed])
    return np.concatenate(passed), np.concatenate(passed_misses)


def nearest_index(inv_d2_obs: np.ndarray, inv_d2_line: np.ndarray) -> np.ndarray:
    """Index of the nearest entry of the sorted inv_d2_line for each inv_d2_obs."""
    pos = np.clip(np.searchsorted(inv_d2_line, inv_d2_obs), 1, max(len(inv_d2_line) - 1, 1))
    below = np.maximum(pos - 1, 0)
    above = np.minimum(pos, len(inv_d2_line) - 1)
    return np.where(np.abs(inv_d2_line[above] - inv_d2_obs) < np.abs(inv_d2_obs - inv_d2_line[below]), above, below)

