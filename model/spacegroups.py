"""Space groups: the standard settings (spglib's database, which pyxtal's Wyckoff tables in
model.wyckoff share) and the ranking of the groups a pattern allows by their extinctions.

The solve's index stage lives here too (``index_cells``): which of the indexed cells are searched,
and in which space groups, decided together from the peak list.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import spglib

from model import constraints, index
from model.data.systems import INDEXED_SYSTEMS, lattice_spacegroups
from model.instrument import bragg_d, bragg_theta
from model.preprocess import Peak

CELLS_TRIED = 3
# lattice systems whose symmetry contains each one's (hexagonal is not above tetragonal)
HOLOHEDRIES_ABOVE = {"cubic": (), "hexagonal": ("cubic",), "tetragonal": ("cubic",),
                     "orthorhombic": ("cubic", "hexagonal", "tetragonal"),
                     "monoclinic": ("cubic", "hexagonal", "tetragonal", "orthorhombic"),
                     "triclinic": ("cubic", "hexagonal", "tetragonal", "orthorhombic", "monoclinic")}
CELLS_RANKED = 10  # cells kept by the indexing, from which those searched are chosen
MAX_LINES = 20  # strongest lines used for indexing
EXTINCTION_HEIGHT = 0.01  # weaker lines down to this fraction of the strongest count for extinctions
CELL_MERIT_FRACTION = 0.2
# groups tried per cell (each with its orientations that allow the same lines): the largest class of groups with equal extinctions (which positions cannot
# tell apart) has 5–6 members in cubic (Pm-3m … P23), 8 in tetragonal (P4/mmm … P4, I4/mmm … I4);
# the 16 of hexagonal (P6/mmm … P3) would flood the search, which shares its time among the arms;
# monoclinic classes have 1–3 members (C2/m, Cm, C2; P2/c, Pc; P2_1/c alone), triclinic one (P-1, P1)
GROUPS_TRIED = {"cubic": 6, "tetragonal": 8, "hexagonal": 6, "orthorhombic": 6, "monoclinic": 5, "triclinic": 2}
# a monoclinic group is tried in each of the three cell choices (model.index.in_setting)
_CHOICES = {"monoclinic": (0, 1, 2)}


@dataclass(frozen=True)
class SpaceGroupCandidate:
    """A space group in its standard setting on the cell's axes taken in the order ``axes``."""

    number: int
    symbol: str
    hall_number: int
    unexplained: int  # observed lines only absent reflections would explain
    axes: tuple[int, int, int] = (0, 1, 2)
    choice: int = 0  # monoclinic cell choice (model.index.in_setting)
    # 0, or the count of orientations before it that allow the same lines (Pmm2 on the cell's axes
    # with its twofold along c, a or b: one extinction class, three structure models)
    orientation: int = 0


@functools.lru_cache(maxsize=1)
def standard_hall_numbers() -> dict[int, int]:
    """The first (standard-setting) Hall number of each space group, from spglib's database."""
    halls: dict[int, int] = {}
    for hall in range(1, 531):
        number = spglib.get_spacegroup_type(hall).number
        halls.setdefault(number, hall)
    return halls


@functools.cache
def standard_ops(number: int) -> constraints.SpaceGroupOps:
    """Operations of the standard setting of space group ``number`` (spglib database)."""
    hall = standard_hall_numbers()[number]
    symmetry = spglib.get_symmetry_from_database(hall)
    return constraints.SpaceGroupOps(symmetry["rotations"], symmetry["translations"], number,
                                     spglib.get_spacegroup_type(hall).international_short)


# a structure and its mirror image give the same powder pattern (Friedel's law), so of each pair
# of enantiomorphic groups (P4_1/P4_3, P3_121/P3_221, P4_132/P4_332, ...) only the first is tried
# (the absolute structure is undetermined either way): the other would take a place in the search
# from the groups with the same extinctions (measured: B2O3's P3_121 was 7th of 10 such groups)
_MIRRORED = {78: 76, 95: 91, 96: 92, 145: 144, 153: 151, 154: 152, 170: 169, 172: 171, 179: 178, 181: 180,
             213: 212}


def space_group_candidates(cell: index.Cell, two_theta: Sequence[float], wavelength_A: float,
                           tolerance_deg: float = 0.05, pause: Callable[[], None] = lambda: None,
                           fwhm_deg: Sequence[float] | None = None) -> list[SpaceGroupCandidate]:
    """Space groups of the cell's system ranked by how few observed lines their extinctions leave
    unexplained, then by most extinctions (fewest allowed line positions): the conventional choice
    of the highest-extinction group consistent with the data; groups with the same extinctions
    (which a powder pattern cannot tell apart) keep higher symmetry first, and of two enantiomorphic
    groups only the first is listed. Positions, not hkl
    families: a lower Laue class splits one position into several families without allowing more
    lines.

    An orthorhombic group is tried in its standard setting on every order of the cell's axes
    (``axes``), a monoclinic one in each cell choice (``choice``): ``index.in_setting`` gives that
    cell; a setting that is the same model as one already ranked (the same operations on the cell's
    axes) is left out, one that allows the same lines on other axes follows it (``orientation``). Of groups with
    equal extinctions the centrosymmetric one comes first, which is also the more frequent
    (P2_1/m before P2_1, C2/m before Cm and C2, P-1 before P1). ``pause()`` is called before each space group (model.lockstep makes it a
    yield).

    With the lines' widths ``fwhm_deg``, a line between two allowed positions closer together than
    its width counts as explained: a blend of the two, whose fitted maximum lies between them, farther
    than the tolerance from both (measured: Ccce's strongest lines 0.05–0.08° from each of two
    allowed positions, so that it left two lines unexplained and was not planned).
    """
    tth = np.asarray(two_theta, dtype=float) - cell.zero
    fwhm = np.zeros_like(tth) if fwhm_deg is None else np.asarray(fwhm_deg, dtype=float)
    d_min = bragg_d(tth.max() + 0.5, wavelength_A)
    orders = list(itertools.permutations(range(3))) if cell.crystal_system == "orthorhombic" else [(0, 1, 2)]
    settings = [(axes, choice) for axes in orders for choice in _CHOICES.get(cell.crystal_system, (0,))]
    halls = standard_hall_numbers()
    ranked, seen = [], set()
    classes: dict[tuple, list[int]] = {}  # allowed lines → [rank entry of its first setting, settings]
    for number in (n for n in reversed(lattice_spacegroups(cell.crystal_system)) if n not in _MIRRORED):
        pause()
        ops = standard_ops(number)
        for axes, choice in settings:
            metric = _metric(index.in_setting(cell, axes, choice).lattice)
            hkl, _ = constraints.hkl_families(metric, ops, d_min)
            if len(hkl) == 0:
                continue
            d = 1 / np.sqrt(np.einsum("ri,ij,rj->r", hkl, np.linalg.inv(metric), hkl))
            calc = np.sort(np.degrees(2 * bragg_theta(d, wavelength_A)))
            allowed = (number, tuple(np.round(calc, 4)))
            model = (allowed, _operations(ops, axes))
            if model in seen:
                continue
            seen.add(model)
            # the orientations of one class follow its first in the ranking
            first, orientation = classes.setdefault(allowed, [len(ranked), 0])
            classes[allowed][1] += 1
            unexplained = int(np.sum(_unexplained(tth, fwhm, calc, tolerance_deg)))
            ranked.append((unexplained, len(np.unique(allowed[1])), first,
                           SpaceGroupCandidate(number, ops.symbol, halls[number], unexplained, axes, choice,
                                               orientation)))
    ranked.sort(key=lambda r: r[:3])
    return [r[3] for r in ranked]


def _operations(ops: constraints.SpaceGroupOps, axes: tuple[int, int, int]) -> frozenset:
    """The operations of a group's standard setting on the axes taken in the order ``axes``,
    written on the cell's own axes: equal where two orders describe the same structure model."""
    permutation = np.eye(3, dtype=int)[list(axes)]  # new fractional coordinates = permutation @ old
    rotations = np.einsum("ji,njk,kl->nil", permutation, ops.rotations, permutation)
    translations = np.round(ops.translations @ permutation % 1.0, 4)
    return frozenset((r.tobytes(), t.tobytes()) for r, t in zip(rotations, translations))


def _unexplained(tth: np.ndarray, fwhm: np.ndarray, calc: np.ndarray, tolerance: float) -> np.ndarray:
    """Lines (deg 2θ, their FWHM) farther than ``tolerance`` from every one of the sorted allowed
    positions ``calc`` and not between two of them closer together than the line's FWHM."""
    above = np.clip(np.searchsorted(calc, tth), 1, calc.size - 1)
    below = above - 1
    far = np.minimum(np.abs(tth - calc[below]), np.abs(calc[above] - tth)) > tolerance
    blend = (calc[below] <= tth) & (tth <= calc[above]) & (calc[above] - calc[below] <= fwhm)
    return far & ~blend


def index_cells(peaks: Sequence[Peak], wavelength_A: float, systems: Sequence[str] = INDEXED_SYSTEMS,
                pause: Callable[[], None] = lambda: None
                ) -> tuple[list[index.Cell], list[index.Cell], list[tuple[index.Cell, SpaceGroupCandidate]]]:
    """The index stage of the solve: (ranked cells, the cells searched, (cell, space group) plans).

    The MAX_LINES strongest peaks are indexed (weak ones are where impurity phases and noise
    peaks hide). Positions alone cannot always tell a cell from a pseudo-symmetric one with a
    similar merit: up to CELLS_TRIED cells not far behind the best are searched, and the best of
    each lattice system of higher symmetry (HOLOHEDRIES_ABOVE) not far behind either, higher symmetry first,
    each in the space groups that _groups allows; the full-profile fit decides. The
    extinctions are judged on those lines and every weaker one of at least EXTINCTION_HEIGHT of
    the strongest: weak superstructure lines tell a primitive group from a centred one. A plan's
    cell has its axes in the order of the group's standard setting (orthorhombic groups), and the
    cells searched are those plan cells.
    """
    strongest = sorted(peaks, key=lambda p: -p.height)[:MAX_LINES]
    positions = sorted(p.two_theta for p in strongest)
    ranked = index.index(positions, wavelength_A, systems, n_candidates=CELLS_RANKED, pause=pause)
    widths = {p.two_theta: p.fwhm for p in peaks if p in strongest or p.height >= EXTINCTION_HEIGHT * strongest[0].height}
    lines = sorted(widths)
    near = [c for c in ranked if c.merit >= CELL_MERIT_FRACTION * ranked[0].merit]
    # a cell of lower symmetry fits the position errors with more parameters, and a centred cell's
    # merit counts the lines its centring forbids: the best cell of each lattice system whose
    # symmetry contains the best one's is searched as well (measured: fcc Ag2O3 with 8 lines ranked below hexagonal
    # and tetragonal cells whose lines include all of its own)
    above = HOLOHEDRIES_ABOVE[near[0].crystal_system] if near else ()
    higher = [next(c for c in near if c.crystal_system == system) for system in above
              if any(c.crystal_system == system for c in near)]
    indexed = list({id(c): c for c in [*near[:CELLS_TRIED], *higher]}.values())
    indexed.sort(key=lambda c: INDEXED_SYSTEMS.index(c.crystal_system))
    settings: dict[tuple[int, tuple[int, int, int], int, bool], index.Cell] = {}
    plans = []
    for cell in indexed:
        for group in _groups(cell, lines, [widths[x] for x in lines], wavelength_A, pause):
            # a primitive group's cell reduced: a centring would change the lattice with the axes
            reduced = group.symbol.startswith("P")
            key = (id(cell), group.axes, group.choice, reduced)
            setting = settings.setdefault(key, index.in_setting(cell, group.axes, group.choice, reduced))
            plans.append((setting, group))
    return ranked, list(settings.values()), plans


def _groups(cell: index.Cell, positions: Sequence[float], fwhm: Sequence[float], wavelength: float,
            pause: Callable[[], None]) -> list[SpaceGroupCandidate]:
    """The space groups with the fewest unexplained lines, most extinctions first: GROUPS_TRIED of
    them, each in every orientation that allows the same lines (which positions cannot tell apart)."""
    groups = space_group_candidates(cell, positions, wavelength, pause=pause, fwhm_deg=fwhm)
    if not groups:
        return []
    fewest = [g for g in groups if g.unexplained == groups[0].unexplained]
    firsts = np.cumsum([not g.orientation for g in fewest])  # the class of each, counted from 1
    return [g for g, n in zip(fewest, firsts) if n <= GROUPS_TRIED[cell.crystal_system]]


def _metric(lattice) -> np.ndarray:
    a, b, c, al, be, ga = lattice
    ca, cb, cg = np.cos(np.radians([al, be, ga]))
    return np.array([[a * a, a * b * cg, a * c * cb], [a * b * cg, b * b, b * c * ca], [a * c * cb, b * c * ca, c * c]])
