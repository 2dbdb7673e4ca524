"""Indexing: unit cell from a peak list, with zero shift, figures of merit and space-group candidates.

No maintained Python indexing engine installs here (pyobjcryst does not build), so this is an
exhaustive-assignment indexer: 1/d² is linear in the cell's reciprocal metric, e.g.
1/d² = A(h²+k²) + C l² for tetragonal, so every choice of n low-angle lines and n low-index hkl
gives a trial cell from an n×n linear solve; trials are scored by how many of the first lines they
index, refined with the zero shift by least squares, and ranked by de Wolff M20.
Cubic, tetragonal, hexagonal (trigonal in the hexagonal setting) and orthorhombic cells.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import spglib
from scipy.optimize import least_squares

from model import constraints
from model.errors import InputError

SYSTEMS = ("cubic", "hexagonal", "tetragonal", "orthorhombic")
_MAX_INDEX = {"cubic": 6, "hexagonal": 4, "tetragonal": 4, "orthorhombic": 2}
_TRIAL_LINES = {"cubic": 3, "hexagonal": 6, "tetragonal": 6, "orthorhombic": 6}
# Ranking prefers the higher symmetry when figures of merit are comparable (a lower-symmetry
# cell can always index a higher-symmetry pattern at least as well).
_SYMMETRY_WEIGHT = {"cubic": 2.0, "hexagonal": 1.5, "tetragonal": 1.5, "orthorhombic": 1.0}


@dataclass(frozen=True)
class SpaceGroupCandidate:
    number: int
    symbol: str
    hall_number: int
    unexplained: int  # observed lines only absent reflections would explain


@dataclass(frozen=True)
class Cell:
    """An indexing solution: lattice (Å, degrees), zero shift (deg 2θ), figures of merit."""

    crystal_system: str
    lattice: tuple[float, float, float, float, float, float]
    zero: float
    m20: float
    f_n: float
    n_indexed: int
    n_lines: int
    space_groups: list[SpaceGroupCandidate] = field(default_factory=list)

    @property
    def volume(self) -> float:
        a, b, c, al, be, ga = self.lattice
        ca, cb, cg = np.cos(np.radians([al, be, ga]))
        return float(a * b * c * np.sqrt(1 - ca**2 - cb**2 - cg**2 + 2 * ca * cb * cg))


def index(two_theta: Sequence[float], wavelength_A: float, systems: Sequence[str] = SYSTEMS,
          tolerance_deg: float = 0.05, max_volume_A3: float = 3000.0, n_candidates: int = 5,
          pause: Callable[[], None] = lambda: None) -> list[Cell]:
    """Ranked cells (best M20 first) that index the Kα1 peak positions ``two_theta`` (degrees).

    ``pause()`` is called between steps of a few milliseconds (model.lockstep makes them yields).
    """
    tth = np.sort(np.asarray(two_theta, dtype=float))[:20]
    if tth.size < 4:
        raise InputError(None, f"indexing needs at least 4 peaks, found {tth.size}")
    for system in systems:
        if system not in SYSTEMS:
            raise InputError(None, f"cannot index crystal system {system!r}; choose from {', '.join(SYSTEMS)}")
    cells: list[Cell] = []
    for system in systems:
        cells.extend(_index_system(system, tth, wavelength_A, tolerance_deg, max_volume_A3, pause))
    cells = [c for c in cells if not _metrically_higher(c)]
    cells.sort(key=lambda c: -c.m20 * _SYMMETRY_WEIGHT[c.crystal_system])
    unique: list[Cell] = []
    for cell in cells:
        if not any(_same_cell(cell, other) for other in unique):
            unique.append(cell)
    return unique[:n_candidates]


def _features(system: str, hkl: np.ndarray) -> np.ndarray:
    h, k, l = hkl.T.astype(float)
    if system == "cubic":
        return (h**2 + k**2 + l**2)[:, None]
    if system == "tetragonal":
        return np.stack([h**2 + k**2, l**2], 1)
    if system == "hexagonal":
        return np.stack([4.0 / 3.0 * (h**2 + h * k + k**2), l**2], 1)
    return np.stack([h**2, k**2, l**2], 1)


def _lattice(system: str, coef: np.ndarray) -> tuple[float, ...]:
    inv = 1.0 / np.sqrt(coef)
    if system == "cubic":
        return (inv[0], inv[0], inv[0], 90.0, 90.0, 90.0)
    if system == "tetragonal":
        return (inv[0], inv[0], inv[1], 90.0, 90.0, 90.0)
    if system == "hexagonal":
        return (inv[0], inv[0], inv[1], 90.0, 90.0, 120.0)
    return (inv[0], inv[1], inv[2], 90.0, 90.0, 90.0)


def _hkl_grid(n: int) -> np.ndarray:
    r = np.arange(-n, n + 1)
    grid = np.stack(np.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    return grid[np.any(grid != 0, axis=1)]


def _q(tth: np.ndarray, wavelength: float, zero: float = 0.0) -> np.ndarray:
    """1/d² (Å⁻²) of peaks at 2θ − zero."""
    return (2 * np.sin(np.radians(tth - zero) / 2) / wavelength) ** 2


def _dq_dtth(tth: np.ndarray, wavelength: float) -> np.ndarray:
    """d(1/d²)/d(2θ) per degree."""
    return 2 * np.sin(np.radians(tth)) / wavelength**2 * np.pi / 180


def _index_system(system, tth, wavelength, tol, max_volume, pause) -> list[Cell]:
    pause()
    q_obs = _q(tth, wavelength)
    q_tol = tol * _dq_dtth(tth, wavelength)
    features = np.unique(_features(system, _hkl_grid(_MAX_INDEX[system])), axis=0)
    features = features[np.any(features > 0, axis=1)]
    n = features.shape[1]
    trial_lines = list(itertools.combinations(range(min(_TRIAL_LINES[system], tth.size)), n))
    combos = np.array(list(itertools.permutations(range(len(features)), n)))
    mats = features[combos]  # (K, n, n)
    solvable = np.abs(np.linalg.det(mats)) > 1e-9
    mats = mats[solvable]
    trials = [np.linalg.solve(mats, np.broadcast_to(q_obs[list(lines)], (len(mats), n))[..., None])[..., 0]
              for lines in trial_lines]
    coef = np.concatenate(trials).reshape(-1, n)
    coef = coef[np.all(coef > 1e-4, axis=1)]
    volume = 1.0 / np.sqrt(np.prod(coef, axis=1)) * (2 / np.sqrt(3) if system == "hexagonal" else 1.0)
    coef = coef[volume <= max_volume]
    coef = np.unique(np.round(coef, 6), axis=0)
    screen_features = np.unique(_features(system, _hkl_grid(4)), axis=0)
    screen_features = screen_features[np.any(screen_features > 0, axis=1)]
    first = min(8, tth.size)
    scores = []
    for chunk in np.array_split(coef, max(1, len(coef) // 4000)):
        pause()
        q_calc = chunk @ screen_features.T  # (M, H)
        miss = np.abs(q_obs[None, :first, None] - q_calc[:, None, :]).min(2)
        scores.append(np.sum(miss <= q_tol[None, :first], axis=1))
    scores = np.concatenate(scores) if scores else np.zeros(0)
    good = coef[scores >= first - 1]
    volume = 1.0 / np.sqrt(np.prod(good, axis=1))
    good = good[np.argsort(volume)][:200]
    calc_features = np.unique(_features(system, _hkl_grid(10)), axis=0)
    calc_features = calc_features[np.any(calc_features > 0, axis=1)]
    cells = []
    for g in good:
        pause()
        cell = _refine_cell(system, g, tth, wavelength, tol, calc_features)
        if cell:
            cells.append(cell)
    return cells


def _refine_cell(system, coef, tth, wavelength, tol, calc_features) -> Cell | None:
    """Assign hkl to every line, refine 1/d² coefficients and zero shift, compute M20 and F_N."""
    q_obs = _q(tth, wavelength)
    q_calc = calc_features @ coef
    assign = np.argmin(np.abs(q_obs[:, None] - q_calc[None, :]), axis=1)
    ok = np.abs(q_obs - q_calc[assign]) <= tol * _dq_dtth(tth, wavelength)
    if ok.sum() < len(coef) + 2:
        return None
    feats = calc_features[assign[ok]]

    def residual(x):
        return (_q(tth[ok], wavelength, x[-1]) - feats @ x[:-1]) / _dq_dtth(tth[ok], wavelength)

    fit = least_squares(residual, np.concatenate([coef, [0.0]]),
                        bounds=(np.concatenate([coef * 0.9, [-0.3]]), np.concatenate([coef * 1.1, [0.3]])))
    coef, zero = fit.x[:-1], float(fit.x[-1])
    q_obs = _q(tth, wavelength, zero)
    q_line = np.unique(np.round(calc_features @ coef, 10))
    miss = np.abs(q_obs[:, None] - q_line[None, :]).min(1)
    indexed = miss <= 0.5 * tol * _dq_dtth(tth, wavelength)
    n_lines = tth.size
    q_max = q_obs[-1]
    n_calc = int(np.sum(q_line <= q_max * 1.0001))
    eps = max(float(np.mean(miss)), 1e-9)
    m20 = float(q_max / (2 * eps * max(n_calc, 1)))
    two_theta_calc = np.degrees(2 * np.arcsin(np.clip(np.sqrt(q_line[q_line <= q_max * 1.0001]) * wavelength / 2, 0, 1)))
    dtth = np.abs(tth - zero - two_theta_calc[np.argmin(np.abs((tth - zero)[:, None] - two_theta_calc[None]), 1)])
    f_n = float(n_lines / (max(float(np.mean(dtth)), 1e-6) * max(n_calc, 1)))
    lattice = tuple(float(v) for v in _lattice(system, coef))
    cell = Cell(system, lattice, zero, m20, f_n, int(indexed.sum()), n_lines)
    return cell if indexed.sum() >= n_lines - 2 else None


def _metrically_higher(cell: Cell) -> bool:
    """True for a tetragonal/orthorhombic cell whose axes are equal within 0.1 %: the higher
    system describes it with fewer parameters and is searched as well."""
    a, b, c = cell.lattice[:3]
    close = lambda x, y: abs(x - y) <= 1e-3 * max(x, y)  # noqa: E731
    if cell.crystal_system == "tetragonal":
        return close(a, c)
    if cell.crystal_system == "orthorhombic":
        return close(a, b) or close(b, c) or close(a, c)
    return False


def _same_cell(a: Cell, b: Cell) -> bool:
    return a.crystal_system == b.crystal_system and np.allclose(a.lattice, b.lattice, rtol=2e-3)


@functools.lru_cache(maxsize=1)
def standard_hall_numbers() -> dict[int, int]:
    """The first (standard-setting) Hall number of each space group, from spglib's database."""
    halls: dict[int, int] = {}
    for hall in range(1, 531):
        number = spglib.get_spacegroup_type(hall).number
        halls.setdefault(number, hall)
    return halls


_SYSTEM_RANGES = {"cubic": (195, 230), "hexagonal": (143, 194), "tetragonal": (75, 142),
                  "orthorhombic": (16, 74), "trigonal": (143, 167)}


def space_group_candidates(cell: Cell, two_theta: Sequence[float], wavelength_A: float,
                           tolerance_deg: float = 0.05,
                           pause: Callable[[], None] = lambda: None) -> list[SpaceGroupCandidate]:
    """Space groups of the cell's system whose extinctions leave every observed line explained.

    Ranked by most extinctions first (fewest allowed lines): the conventional choice of the
    highest-extinction group consistent with the data; ties keep higher symmetry first.
    ``pause()`` is called before each space group (model.lockstep makes it a yield).
    """
    tth = np.asarray(two_theta, dtype=float) - cell.zero
    metric = _metric(cell.lattice)
    d_min = wavelength_A / (2 * np.sin(np.radians(tth.max() + 0.5) / 2))
    low, high = _SYSTEM_RANGES[cell.crystal_system]
    halls = standard_hall_numbers()
    ranked = []
    for number in range(high, low - 1, -1):
        pause()
        symmetry = spglib.get_symmetry_from_database(halls[number])
        ops = constraints.SpaceGroupOps(symmetry["rotations"], symmetry["translations"], number,
                                        spglib.get_spacegroup_type(halls[number]).international_short)
        hkl, _ = constraints.hkl_families(metric, ops, d_min)
        if len(hkl) == 0:
            continue
        d = 1 / np.sqrt(np.einsum("ri,ij,rj->r", hkl, np.linalg.inv(metric), hkl))
        calc = np.degrees(2 * np.arcsin(np.clip(wavelength_A / (2 * d), 0, 1)))
        unexplained = int(np.sum(np.abs(tth[:, None] - calc[None]).min(1) > tolerance_deg))
        ranked.append((unexplained, len(hkl), SpaceGroupCandidate(number, ops.symbol, halls[number], unexplained)))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [r[2] for r in ranked]


def _metric(lattice) -> np.ndarray:
    a, b, c, al, be, ga = lattice
    ca, cb, cg = np.cos(np.radians([al, be, ga]))
    return np.array([[a * a, a * b * cg, a * c * cb], [a * b * cg, b * b, b * c * ca], [a * c * cb, b * c * ca, c * c]])
