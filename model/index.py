"""Indexing: unit cell from a peak list, with zero shift, figures of merit.

No maintained Python indexing engine installs here (pyobjcryst does not build), so this is an
exhaustive-assignment indexer: 1/d² is linear in the cell's reciprocal metric, e.g.
1/d² = A(h²+k²) + C l² for tetragonal, so every choice of n low-angle lines and n low-index hkl
gives a trial cell from an n×n linear solve. Trials are screened on the first lines at a tolerance
wide enough for the zero shift they inherit, allowing a few unindexed (impurity) lines; the
smallest survivors are refined with the zero shift by linear least squares with re-assignment and
ranked by de Wolff M20 penalised per unindexed line, the higher symmetry and the smaller of
sub/supercells preferred when the figures are comparable (model.cells).
Cubic, tetragonal, hexagonal (trigonal in the hexagonal setting) and orthorhombic cells this way;
monoclinic and triclinic ones, whose four or six terms make exhaustive assignment explode, by
Ito's zone method (model.zones), tried by default only when no higher-symmetry cell explains the lines.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Sequence

import numpy as np

from model import zones
from model.cells import (
    EXPLAINED_M20,
    LOW_SYSTEMS,
    Cell,
    features,
    inv_d2,
    plausible,
    refine_cell,
    screen,
    volumes,
)
from model.data.systems import INDEXED_SYSTEMS
from model.errors import InputError

__all__ = ["Cell", "in_setting", "index", "undecided"]

# trial cells assign hkl with |h|, |k| ≤ first and |l| ≤ second to the first _TRIAL_LINES lines
_TRIAL_INDEX = {"cubic": (6, 6), "hexagonal": (4, 6), "tetragonal": (4, 6), "orthorhombic": (2, 2)}
_TRIAL_LINES = {"cubic": 3, "hexagonal": 6, "tetragonal": 6, "orthorhombic": 6}
_SCREEN_INDEX = {"cubic": (8, 8), "hexagonal": (4, 8), "tetragonal": (4, 8), "orthorhombic": (4, 4)}
REFINED = 150  # smallest screened trial cells per crystal system refined with the zero shift
SAME_TRIAL = 5e-3  # screened trials whose 1/d² coefficients agree this closely (relative) are one cell
LINES_PER_PARAMETER = 2.5  # indexed lines needed per refined parameter (the 1/d² coefficients and zero)
SUBCELL_MERIT_FRACTION = 0.5
# a cell of another lattice system with this fraction of the best merit is not ruled out by the
# positions: few lines (a diamond-anvil cell's 6–8) fit a lower system's cell nearly as well
UNDECIDED_MERIT_FRACTION = 0.5


def index(two_theta: Sequence[float], wavelength_A: float, systems: Sequence[str] = INDEXED_SYSTEMS,
          tolerance_deg: float = 0.05, max_volume_A3: float = 3000.0, n_candidates: int = 5,
          max_unindexed: int = 2, pause: Callable[[], None] = lambda: None,
          low_symmetry: str = "auto") -> list[Cell]:
    """Ranked cells (best merit first) that index the Kα1 peak positions ``two_theta`` (degrees).

    Monoclinic and triclinic cells (when in ``systems``) are looked for only where no cell of a higher
    system indexes every line with M20 ≥ EXPLAINED_M20, unless ``low_symmetry`` is "always".

    Of 20 lines up to ``max_unindexed`` may stay unindexed (impurity or noise peaks), of fewer
    lines proportionally fewer but at least one (``allowed_unindexed``).
    ``pause()`` is called between steps of a few milliseconds (model.lockstep makes them yields).
    """
    tth = np.sort(np.asarray(two_theta, dtype=float))[:20]
    if tth.size < 4:
        raise InputError(None, f"indexing needs at least 4 peaks, found {tth.size}")
    for system in systems:
        if system not in INDEXED_SYSTEMS:
            raise InputError(None, f"cannot index crystal system {system!r}; choose from {', '.join(INDEXED_SYSTEMS)}")
    cells: list[Cell] = []
    for system in (s for s in systems if s not in LOW_SYSTEMS):
        cells.extend(_index_system(system, tth, wavelength_A, tolerance_deg, max_volume_A3, max_unindexed, pause))
    low = [s for s in systems if s in LOW_SYSTEMS]
    # a monoclinic or triclinic cell also fits any higher-symmetry pattern, with more parameters
    # and seconds of zone search: only where no higher cell indexes every line well
    if low and (low_symmetry == "always" or not any(c.n_indexed == c.n_lines and c.m20 >= EXPLAINED_M20
                                                     for c in cells)):
        cells.extend(zones.low_symmetry_cells(tth, wavelength_A, low, tolerance_deg, max_volume_A3,
                                              allowed_unindexed(max_unindexed, tth.size), pause))
    cells = [c for c in cells if not _metrically_higher(c)]
    cells.sort(key=lambda c: -c.merit)
    unique: list[Cell] = []
    for cell in cells:
        if not any(_same_cell(cell, other) for other in unique):
            unique.append(cell)
    return _subcells_first(unique)[:n_candidates]


def undecided(cells: Sequence[Cell]) -> str:
    """What the line positions could not decide, as a sentence for the user: the best of ``cells``
    (ranked, best first) and the best cell of each other lattice system with at least
    UNDECIDED_MERIT_FRACTION of its merit; "" where the best one stands alone."""
    if not cells:
        return ""
    rivals: dict[str, Cell] = {}
    for cell in cells[1:]:
        if cell.crystal_system != cells[0].crystal_system and cell.merit >= UNDECIDED_MERIT_FRACTION * cells[0].merit:
            rivals.setdefault(cell.crystal_system, cell)
    if not rivals:
        return ""
    described = [f"{c.crystal_system} {_lengths(c)} (merit {c.merit:.0f})" for c in [cells[0], *rivals.values()]]
    return (f"the positions of {cells[0].n_lines} lines do not decide between " + " and ".join(described)
            + ": the full-profile fit chose; more lines or a longer 2θ range would")


def _lengths(cell: Cell) -> str:
    a, b, c = cell.lattice[:3]
    return {"cubic": f"a {a:.4f} Å", "tetragonal": f"a {a:.4f} c {c:.4f} Å",
            "hexagonal": f"a {a:.4f} c {c:.4f} Å"}.get(cell.crystal_system, f"a {a:.4f} b {b:.4f} c {c:.4f} Å")


def allowed_unindexed(max_unindexed: int, n_lines: int, needed: float = 0.0) -> int:
    """Lines of ``n_lines`` that may stay unindexed: ``max_unindexed`` of 20, proportionally fewer
    of fewer lines, but one wherever any is allowed and ``needed`` lines remain: a diamond-anvil
    cell's 6–12 lines carry one to three of the pressure medium or gasket, and a sparse pattern
    whose cell had to explain every line would lose its cell to them (each unindexed line halves
    the merit, model.cells)."""
    proportional = max_unindexed * n_lines // 20
    return max(proportional, min(max_unindexed, 1)) if n_lines - 1 >= needed else proportional


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


@functools.cache
def _low_index_features(system: str, limits: tuple[int, int]) -> np.ndarray:
    """Distinct non-zero feature rows of the hkl with |h|, |k| ≤ limits[0] and |l| ≤ limits[1]."""
    hk, l_max = limits
    r, rl = np.arange(-hk, hk + 1), np.arange(-l_max, l_max + 1)
    grid = np.stack(np.meshgrid(r, r, rl, indexing="ij"), -1).reshape(-1, 3)
    rows = np.unique(features(system, grid), axis=0)
    return rows[np.any(rows > 0, axis=1)]


@functools.cache
def _trial_inverses(system: str) -> np.ndarray:
    """Inverses of every invertible n×n matrix of distinct low-index feature rows (n = len(coef))."""
    rows = _low_index_features(system, _TRIAL_INDEX[system])
    n = rows.shape[1]
    mats = rows[np.array(list(itertools.permutations(range(len(rows)), n)))]
    return np.linalg.inv(mats[np.abs(np.linalg.det(mats)) > 1e-9])


def _index_system(system, tth, wavelength, tol, max_volume, max_unindexed, pause) -> list[Cell]:
    pause()
    inv_d2_obs = inv_d2(tth, wavelength)
    inverses = _trial_inverses(system)
    n = inverses.shape[-1]
    max_unindexed = allowed_unindexed(max_unindexed, tth.size, LINES_PER_PARAMETER * (n + 1))
    if tth.size - max_unindexed < LINES_PER_PARAMETER * (n + 1):
        return []  # too few lines: a cell with this many parameters (and the zero) fits any of them
    trial_lines = itertools.combinations(range(min(_TRIAL_LINES[system], tth.size)), n)
    coef = np.concatenate([inverses @ inv_d2_obs[list(lines)] for lines in trial_lines])
    coef = coef[plausible(system, coef, max_volume)]
    if system == "orthorhombic":
        coef = np.sort(coef, axis=1)  # the same cell with its axes in another order
    # one trial per cell: coefficients equal to 0.05 % are the same cell from other lines
    _, first_of = np.unique(np.round(np.log(coef) / 5e-4), axis=0, return_index=True)
    coef = coef[first_of]
    good, misses = screen(coef, _low_index_features(system, _SCREEN_INDEX[system]), inv_d2_obs, tth, wavelength,
                          tol, max_unindexed, pause)
    # trials within the screen's resolution are one cell (from other lines, with other errors): the
    # one that misses fewest lines stands for it, so that many copies of small cells do not crowd
    # a larger true cell out of the REFINED
    good = good[np.argsort(misses, kind="stable")]
    _, first_of = np.unique(np.round(np.log(good) / SAME_TRIAL), axis=0, return_index=True)
    good = good[first_of]
    good = good[np.argsort(volumes(system, good))][:REFINED]
    cells = []
    for g in good:
        pause()
        cell = refine_cell(system, g, tth, wavelength, tol, max_unindexed, max_volume)
        if cell:
            cells.append(cell)
    return cells


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


def in_setting(cell: Cell, axes: tuple[int, int, int], choice: int = 0, reduced: bool = False) -> Cell:
    """The cell with its axes a, b, c taken in the order ``axes`` (orthogonal cells), or, monoclinic,
    in cell choice ``choice`` (0, 1, 2: ITA's cell choices 1, 2, 3, whose c is c, −a−c and a of
    choice 1): a structure's glide along a, c or a + c is a c glide in one of them, and the standard
    settings of the monoclinic groups have their glides along c. ``reduced`` (a primitive group's
    setting): a is the shortest a + n c, the same lattice and group in the cell nearest to
    rectangular, the one the standard setting takes (measured: P2/c on a 9.70, c 12.19 Å, β 139°
    cell whose standard has a 8.01 Å, β 127°)."""
    if cell.crystal_system == "monoclinic" and (choice or reduced):
        a, b, c, _, beta, _ = cell.lattice
        va, vc = np.array([a, 0.0]), c * np.array([np.cos(np.radians(beta)), np.sin(np.radians(beta))])
        new_a, new_c = ((va, vc), (vc, -va - vc), (-va - vc, va))[choice]
        if reduced:
            new_a = new_a - np.round(new_a @ new_c / (new_c @ new_c)) * new_c
        angle = np.degrees(np.arccos(new_a @ new_c / np.linalg.norm(new_a) / np.linalg.norm(new_c)))
        # β ≥ 90°, the convention: −a for a instead
        return dataclasses.replace(cell, lattice=(float(np.linalg.norm(new_a)), b, float(np.linalg.norm(new_c)),
                                                  90.0, float(max(angle, 180.0 - angle)), 90.0))
    if tuple(axes) == (0, 1, 2):
        return cell
    lengths = [cell.lattice[i] for i in axes]
    return dataclasses.replace(cell, lattice=(*lengths, *cell.lattice[3:]))
