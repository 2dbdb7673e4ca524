"""Indexing: unit cell from a peak list, with zero shift, figures of merit.

No maintained Python indexing engine installs here (pyobjcryst does not build), so this is an
exhaustive-assignment indexer: 1/d² is linear in the cell's reciprocal metric, e.g.
1/d² = A(h²+k²) + C l² for tetragonal, so every choice of n low-angle lines and n low-index hkl
gives a trial cell from an n×n linear solve. Trials are screened on the first lines at a tolerance
wide enough for the zero shift they inherit, allowing a few unindexed (impurity) lines; the
smallest survivors are refined with the zero shift by linear least squares with re-assignment and
ranked by de Wolff M20 penalised per unindexed line, the higher symmetry and the smaller of
sub/supercells preferred when the figures are comparable.
Cubic, tetragonal, hexagonal (trigonal in the hexagonal setting) and orthorhombic cells.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from model.data.systems import INDEXED_SYSTEMS
from model.errors import InputError

# trial cells assign hkl with |h|, |k| ≤ first and |l| ≤ second to the first _TRIAL_LINES lines
_TRIAL_INDEX = {"cubic": (6, 6), "hexagonal": (4, 6), "tetragonal": (4, 6), "orthorhombic": (2, 2)}
_TRIAL_LINES = {"cubic": 3, "hexagonal": 6, "tetragonal": 6, "orthorhombic": 6}
_SCREEN_INDEX = {"cubic": (8, 8), "hexagonal": (4, 8), "tetragonal": (4, 8), "orthorhombic": (4, 4)}
SCREEN_LINES = 10  # a trial cell must index these first lines, all but max_unindexed of them
# a trial cell inherits the zero shift of its few lines, so it is screened at a wider tolerance;
# the refinement with the zero shift then judges it at the stated one
SCREEN_TOLERANCE = 2.0
REFINED = 150  # smallest screened trial cells per crystal system refined with the zero shift
SAME_TRIAL = 5e-3  # screened trials whose 1/d² coefficients agree this closely (relative) are one cell
MAX_ZERO_DEG = 0.3
LINES_PER_PARAMETER = 2.5  # indexed lines needed per refined parameter (the 1/d² coefficients and zero)
MIN_VOLUME_A3 = 15.0  # below the smallest conventional cells of the elements (hcp Be, 16 Å³)
MIN_AXIS_A = 2.0  # below the shortest lattice translations of solids (hcp Be a = 2.29 Å)
UNINDEXED_FACTOR = 0.5  # merit factor per unindexed line
SUBCELL_MERIT_FRACTION = 0.5
# Ranking prefers the higher symmetry when merits are comparable: a lower-symmetry cell fits the
# position errors of a higher-symmetry pattern with its extra parameters and indexes it as well.
SYMMETRY_WEIGHT = {"cubic": 2.0, "hexagonal": 1.5, "tetragonal": 1.5, "orthorhombic": 1.0}


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


def index(two_theta: Sequence[float], wavelength_A: float, systems: Sequence[str] = INDEXED_SYSTEMS,
          tolerance_deg: float = 0.05, max_volume_A3: float = 3000.0, n_candidates: int = 5,
          max_unindexed: int = 2, pause: Callable[[], None] = lambda: None) -> list[Cell]:
    """Ranked cells (best merit first) that index the Kα1 peak positions ``two_theta`` (degrees).

    Of 20 lines up to ``max_unindexed`` may stay unindexed (impurity or noise peaks), of fewer
    lines proportionally fewer.
    ``pause()`` is called between steps of a few milliseconds (model.lockstep makes them yields).
    """
    tth = np.sort(np.asarray(two_theta, dtype=float))[:20]
    if tth.size < 4:
        raise InputError(None, f"indexing needs at least 4 peaks, found {tth.size}")
    for system in systems:
        if system not in INDEXED_SYSTEMS:
            raise InputError(None, f"cannot index crystal system {system!r}; choose from {', '.join(INDEXED_SYSTEMS)}")
    cells: list[Cell] = []
    for system in systems:
        cells.extend(_index_system(system, tth, wavelength_A, tolerance_deg, max_volume_A3, max_unindexed, pause))
    cells = [c for c in cells if not _metrically_higher(c)]
    cells.sort(key=lambda c: -c.merit)
    unique: list[Cell] = []
    for cell in cells:
        if not any(_same_cell(cell, other) for other in unique):
            unique.append(cell)
    return _subcells_first(unique)[:n_candidates]


def _subcells_first(cells: list[Cell]) -> list[Cell]:
    """The cells with each preceded by its subcells of the same crystal system (volume an integer
    fraction of its own) that index as many lines with at least SUBCELL_MERIT_FRACTION of its
    merit: a supercell's extra lines can fit position errors better without being seen."""
    def subcell(small: Cell, large: Cell) -> bool:
        ratio = large.volume / small.volume
        return (small.crystal_system == large.crystal_system and ratio > 1.5
                and abs(ratio - round(ratio)) <= 0.01 * ratio and small.n_indexed >= large.n_indexed
                and small.merit >= SUBCELL_MERIT_FRACTION * large.merit)

    ordered: dict[int, Cell] = {}
    for cell in cells:
        for small in cells:
            if id(small) not in ordered and subcell(small, cell):
                ordered[id(small)] = small
        ordered.setdefault(id(cell), cell)
    return list(ordered.values())


def _features(system: str, hkl: np.ndarray) -> np.ndarray:
    """Rows F with 1/d² = F · coef (coef: the system's reciprocal metric terms, Å⁻²)."""
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
    a, b, c = sorted(inv)  # a ≤ b ≤ c, the orthorhombic convention of pymatgen's conventional cells
    return (a, b, c, 90.0, 90.0, 90.0)


@functools.cache
def _low_index_features(system: str, limits: tuple[int, int]) -> np.ndarray:
    """Distinct non-zero feature rows of the hkl with |h|, |k| ≤ limits[0] and |l| ≤ limits[1]."""
    hk, l_max = limits
    r, rl = np.arange(-hk, hk + 1), np.arange(-l_max, l_max + 1)
    grid = np.stack(np.meshgrid(r, r, rl, indexing="ij"), -1).reshape(-1, 3)
    features = np.unique(_features(system, grid), axis=0)
    return features[np.any(features > 0, axis=1)]


@functools.cache
def _trial_inverses(system: str) -> np.ndarray:
    """Inverses of every invertible n×n matrix of distinct low-index feature rows (n = len(coef))."""
    features = _low_index_features(system, _TRIAL_INDEX[system])
    n = features.shape[1]
    mats = features[np.array(list(itertools.permutations(range(len(features)), n)))]
    return np.linalg.inv(mats[np.abs(np.linalg.det(mats)) > 1e-9])


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


def _reflections(system: str, coef: np.ndarray, inv_d2_max: float) -> np.ndarray:
    """Feature rows of every distinct line of the cell with 1/d² ≤ inv_d2_max (Å⁻²), sorted by 1/d²."""
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


def _inv_d2(tth: np.ndarray, wavelength: float, zero: float = 0.0) -> np.ndarray:
    """1/d² (Å⁻²) of peaks at 2θ − zero."""
    return (2 * np.sin(np.radians(tth - zero) / 2) / wavelength) ** 2


def _dinv_d2_dtth(tth: np.ndarray, wavelength: float) -> np.ndarray:
    """d(1/d²)/d(2θ) per degree."""
    return 2 * np.sin(np.radians(tth)) / wavelength**2 * np.pi / 180


def _nearest(inv_d2_obs: np.ndarray, inv_d2_calc: np.ndarray) -> np.ndarray:
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


def _index_system(system, tth, wavelength, tol, max_volume, max_unindexed, pause) -> list[Cell]:
    pause()
    max_unindexed = max_unindexed * tth.size // 20
    inv_d2_obs = _inv_d2(tth, wavelength)
    inverses = _trial_inverses(system)
    n = inverses.shape[-1]
    if tth.size - max_unindexed < LINES_PER_PARAMETER * (n + 1):
        return []  # too few lines: a cell with this many parameters (and the zero) fits any of them
    trial_lines = itertools.combinations(range(min(_TRIAL_LINES[system], tth.size)), n)
    coef = np.concatenate([inverses @ inv_d2_obs[list(lines)] for lines in trial_lines])
    coef = coef[_plausible(system, coef, max_volume)]
    if system == "orthorhombic":
        coef = np.sort(coef, axis=1)  # the same cell with its axes in another order
    # one trial per cell: coefficients equal to 0.05 % are the same cell from other lines
    _, first_of = np.unique(np.round(np.log(coef) / 5e-4), axis=0, return_index=True)
    coef = coef[first_of]
    screen_features = _low_index_features(system, _SCREEN_INDEX[system])
    m = min(SCREEN_LINES, tth.size)
    inv_d2_tol = SCREEN_TOLERANCE * tol * _dinv_d2_dtth(tth[:m], wavelength)
    passed, passed_misses = [], []
    for chunk in np.array_split(coef, max(1, len(coef) // 20000)):
        pause()
        inv_d2_calc = np.sort(chunk @ screen_features.T, axis=1)
        misses = np.sum(_nearest(np.broadcast_to(inv_d2_obs[:m], (len(chunk), m)), inv_d2_calc) > inv_d2_tol, axis=1)
        passed.append(chunk[misses <= max_unindexed])
        passed_misses.append(misses[misses <= max_unindexed])
    good = np.concatenate(passed) if passed else np.zeros((0, n))
    # trials within the screen's resolution are one cell (from other lines, with other errors): the
    # one that misses fewest lines stands for it, so that many copies of small cells do not crowd
    # a larger true cell out of the REFINED
    good = good[np.argsort(np.concatenate(passed_misses) if passed else [], kind="stable")]
    _, first_of = np.unique(np.round(np.log(good) / SAME_TRIAL), axis=0, return_index=True)
    good = good[first_of]
    good = good[np.argsort(_volume(system, good))][:REFINED]
    cells = []
    for g in good:
        pause()
        cell = _refine_cell(system, g, tth, wavelength, tol, max_unindexed, max_volume)
        if cell:
            cells.append(cell)
    return cells


def _plausible(system: str, coef: np.ndarray, max_volume: float) -> np.ndarray:
    """Rows of coefficients that make a cell with axes ≥ MIN_AXIS_A and a volume (Å³) from
    MIN_VOLUME_A3 to max_volume."""
    valid = np.all(coef > 0, axis=1)
    coef = np.where(valid[:, None], coef, 1.0)
    volume = _volume(system, coef)
    return valid & np.all(coef <= MIN_AXIS_A**-2, axis=1) & (volume >= MIN_VOLUME_A3) & (volume <= max_volume)


def _volume(system: str, coef: np.ndarray) -> np.ndarray:
    """Cell volumes (Å³) of rows of reciprocal metric coefficients (1/a², [1/b²,] [1/c²])."""
    if system == "cubic":
        return coef[:, 0] ** -1.5
    if system == "orthorhombic":
        return 1.0 / np.sqrt(np.prod(coef, axis=1))
    return coef[:, 0] ** -1.0 * coef[:, 1] ** -0.5 * (np.sqrt(3) / 2 if system == "hexagonal" else 1.0)


def _refine_cell(system, coef, tth, wavelength, tol, max_unindexed, max_volume) -> Cell | None:
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
        inv_d2_obs = _inv_d2(tth, wavelength, zero)
        slope = _dinv_d2_dtth(tth - zero, wavelength)
        features = _reflections(system, coef, inv_d2_obs[-1] * 1.05)
        if len(features) == 0:
            return None
        inv_d2_line = features @ coef
        nearest = _nearest_index(inv_d2_obs, inv_d2_line)
        use = (np.abs(inv_d2_obs - inv_d2_line[nearest]) / slope <= window) & (np.arange(tth.size) < lines)
        if use.sum() < n + 2:
            return None
        design = np.column_stack([features[nearest[use]] / slope[use, None], np.ones(use.sum())])
        solution, *_ = np.linalg.lstsq(design, inv_d2_obs[use] / slope[use], rcond=None)
        coef, zero = solution[:n], zero + float(solution[n])
        if not _plausible(system, coef[None], max_volume)[0] or abs(zero) > MAX_ZERO_DEG:
            return None
    inv_d2_obs = _inv_d2(tth, wavelength, zero)
    slope = _dinv_d2_dtth(tth - zero, wavelength)
    inv_d2_max = inv_d2_obs[-1]
    inv_d2_line = _reflections(system, coef, inv_d2_max * 1.05) @ coef
    inv_d2_line = inv_d2_line[np.concatenate([[True], np.diff(inv_d2_line) > 1e-12 * inv_d2_max])]
    miss = np.abs(inv_d2_obs - inv_d2_line[_nearest_index(inv_d2_obs, inv_d2_line)])
    indexed = miss / slope <= tol
    if indexed.sum() < tth.size - max_unindexed:
        return None
    n_calc = max(int(np.sum(inv_d2_line <= inv_d2_max)), 1)
    eps = max(float(np.mean(miss[indexed])), 1e-12)
    m20 = float(inv_d2_max / (2 * eps * n_calc))
    merit = m20 * UNINDEXED_FACTOR ** int(tth.size - indexed.sum()) * SYMMETRY_WEIGHT[system]
    f_n = float(indexed.sum() / (max(float(np.mean(miss[indexed] / slope[indexed])), 1e-6) * n_calc))
    lattice = tuple(float(v) for v in _lattice(system, coef))
    return Cell(system, lattice, zero, m20, f_n, int(indexed.sum()), int(tth.size), merit)


def _nearest_index(inv_d2_obs: np.ndarray, inv_d2_line: np.ndarray) -> np.ndarray:
    """Index of the nearest entry of the sorted inv_d2_line for each inv_d2_obs."""
    pos = np.clip(np.searchsorted(inv_d2_line, inv_d2_obs), 1, max(len(inv_d2_line) - 1, 1))
    below = np.maximum(pos - 1, 0)
    above = np.minimum(pos, len(inv_d2_line) - 1)
    return np.where(np.abs(inv_d2_line[above] - inv_d2_obs) < np.abs(inv_d2_obs - inv_d2_line[below]), above, below)


def _metrically_higher(cell: Cell) -> bool:
    """True for a tetragonal/orthorhombic cell whose axes are equal within 0.1 %: the higher
    system describes it with fewer parameters and is searched as well."""
    a, b, c = cell.lattice[:3]
    close = lambda x, y: abs(x - y) <= 1e-3 * max(x, y)
    if cell.crystal_system == "tetragonal":
        return close(a, c)
    if cell.crystal_system == "orthorhombic":
        return close(a, b) or close(b, c) or close(a, c)
    return False


def _same_cell(a: Cell, b: Cell) -> bool:
    return a.crystal_system == b.crystal_system and np.allclose(a.lattice, b.lattice, rtol=2e-3)


def in_setting(cell: Cell, axes: tuple[int, int, int]) -> Cell:
    """The cell with its axes a, b, c taken in the order ``axes`` (orthogonal cells)."""
    if tuple(axes) == (0, 1, 2):
        return cell
    lengths = [cell.lattice[i] for i in axes]
    return dataclasses.replace(cell, lattice=(*lengths, *cell.lattice[3:]))
