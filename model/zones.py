"""Ito's zone method (Visser 1969, the ITO program): monoclinic and triclinic cells from a peak list.

Q = 1/d² (Å⁻²). A zone, the reciprocal lattice plane spanned by a* and b*, has the lines
Q(hk) = h²Qa + k²Qb + hk·D with D = 2√(Qa Qb) cos φ*, and Ito's relation
Q(h,k) + Q(h,−k) = 2(h²Qa + k²Qb) gives D = (Q(h,k) − Q(h,−k)) / 2hk from any two observed lines
that sum to it. The bases are pairs of low lines and of a quarter of them (a basis vector extinct
by a glide or a screw axis shows only at 2a*: Q(020) = 4 Q(010)); zones are ranked by the lines
they index beyond chance. Trial lattices:
- monoclinic: every zone taken as the h0l zone, b* normal to it; the one term b*², which every
  line that is some hkl with k ≠ 0 fixes, where the most lines agree on it;
- triclinic: two of the best zones sharing a basis vector a*; the one term b*·c* likewise.
Trials are screened on all lines (model.cells.screen), the best-fitting refined triclinic with the
zero shift (model.cells.refine_cell), Niggli-reduced (pymatgen), and the symmetry of the lattice
itself (spglib, one point per cell) tells the monoclinic ones, refined again in their conventional
cell (b unique, C-centred where centred) with four terms. The best cells are then tried as their
sublattices of index 2 (a cell missing the lines a glide or screw leaves odd) and superlattices of
half the volume (a supercell whose extra lines are all absent).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Sequence

import numpy as np
import spglib
from pymatgen.core import Lattice

from model.cells import (
    EXPLAINED_M20,
    SCREEN_TOLERANCE,
    UNINDEXED_FACTOR,
    Cell,
    dinv_d2_dtth,
    features,
    inv_d2,
    metric_coef,
    nearest,
    plausible,
    refine_cell,
    screen,
)
from model.data.systems import CRYSTAL_SYSTEMS, crystal_system_code

BASE_LINES = 10  # lowest lines taken as zone basis vectors
QUARTER_LINES = 10  # lowest lines whose quarter is taken as a basis vector too (2a* observed, a* extinct)
ITO_INDEX = 3  # h, k = 1..ITO_INDEX in Ito's relation
ZONE_INDEX = 10  # |h|, |k| ≤ ZONE_INDEX: the zone lines counted against the observed ones
MAX_COS = 0.8  # |cos| of the angle between two basis vectors: bases of lines are not reduced (≤ 0.5)
ZONES_KEPT = 80  # best zones combined pairwise into triclinic lattices
MONOCLINIC_ZONES = 2000  # best zones taken as the h0l zone of a monoclinic lattice
AGREED = 8  # values of the one unknown term tried per zone or pair of zones, most lines agreeing first
CROSS_LINES = 12  # lowest lines that fix the b*·c* term of two zones
CROSS_INDEX = 2  # |h|, k, |l| ≤ CROSS_INDEX for them
SCREEN_INDEX = 4  # |h|, |k|, |l| ≤ SCREEN_INDEX: the lines a trial lattice is screened with
# on all lines: with six terms a wrong lattice indexes the first ten lines about as often as the right one
SCREEN_LINES = 20
REFINED = 50  # screened trial lattices refined with the zero shift, best estimated M20 first
SAME_TRIAL = 2e-3  # trial coefficients that agree this closely (relative to Q of the first line) are one
# the lattice's symmetry is looked for at these tolerances (spglib: Å, degrees): refined cells carry
# errors of ~0.1 % in length and a few hundredths of a degree
LATTICE_SYMPREC_FRACTION = 5e-3  # of the longest axis
LATTICE_ANGLE_DEG = 1.0
DOUBLED = 10  # best cells tried as their index-2 sublattices (those leaving lines) and superlattices
# a doubled cell that is the true one keeps the subcell's M20 (its extra lines are observed: 166
# against 160 measured), one that only explains an impurity line halves it (N_calc doubles)
DOUBLED_M20_FRACTION = 0.7
ZERO_TRIALS_DEG = (-0.1, 0.1)  # zero shifts tried where none of the cells found at zero 0 convinces
MONOCLINIC_M20_FRACTION = 0.5  # a monoclinic refinement of a triclinic cell keeping this much M20 stands for it


def low_symmetry_cells(tth: np.ndarray, wavelength: float, systems: Sequence[str], tol: float, max_volume: float,
                       max_unindexed: int, pause: Callable[[], None] = lambda: None) -> list[Cell]:
    """Monoclinic and triclinic cells (those in ``systems``) indexing the sorted peak positions
    ``tth`` (deg 2θ, Kα1 ``wavelength`` Å), each lattice once, in the highest of the two
    systems its metric has; lattices of a higher system are left to model.index's indexers.

    Ito's relations hold between the true Q only: a zero shift of 0.1° puts them off by more than
    the tolerance (measured: a P2_1/m lab pattern at −0.10° indexed only once shifted back). Where
    no cell reaches EXPLAINED_M20 at zero 0, the search is repeated with the lines shifted by each
    of ZERO_TRIALS_DEG, and the cells found keep their zero in the given lines' frame."""
    if tth.size - max_unindexed < 10:  # six terms and the zero need more than a handful of lines
        return []
    cells: list[Cell] = []
    for zero in (0.0, *ZERO_TRIALS_DEG):
        if cells and max(c.m20 for c in cells) >= EXPLAINED_M20:
            break
        found = _cells_at(tth - zero, wavelength, systems, tol, max_volume, max_unindexed, pause)
        cells += [dataclasses.replace(c, zero=c.zero + zero) for c in found]
    return cells


def _cells_at(tth: np.ndarray, wavelength: float, systems: Sequence[str], tol: float, max_volume: float,
              max_unindexed: int, pause: Callable[[], None]) -> list[Cell]:
    """low_symmetry_cells() at one zero: the zones of ``tth`` as given."""
    q = inv_d2(tth, wavelength)
    q_tol = SCREEN_TOLERANCE * tol * dinv_d2_dtth(tth, wavelength)
    pause()
    zones = _zones(q, q_tol)
    trials = np.concatenate([_monoclinic_trials(q, q_tol, zones), _triclinic_trials(q, q_tol, zones[:ZONES_KEPT])])
    trials = trials[plausible("triclinic", trials, max_volume)]
    pause()
    # first on the lowest lines with the lowest-index rows, the few survivors on all lines
    good, _ = screen(trials, _screen_rows(SCREEN_INDEX - 1), q, tth, wavelength, tol, max_unindexed, pause)
    good, misses = screen(good, _screen_rows(SCREEN_INDEX), q, tth, wavelength, tol, max_unindexed, pause,
                          SCREEN_LINES)
    # ranked as the merit ranks refined cells: M20 paying UNINDEXED_FACTOR per unindexed (impurity) line
    good = good[np.argsort(_inverse_m20(good, q, q_tol) / UNINDEXED_FACTOR**misses, kind="stable")]
    _, first_of = np.unique(np.round(good / (SAME_TRIAL * q[0])), axis=0, return_index=True)
    good = good[np.sort(first_of)][:REFINED]
    cells: list[Cell] = []
    for coef in good:
        pause()
        cell = refine_cell("triclinic", coef, tth, wavelength, tol, max_unindexed, max_volume)
        if cell is not None:
            cells.extend(_classified(cell, tth, wavelength, tol, max_unindexed, max_volume, systems))
    cells, doubled = _doubled(cells, tth, wavelength, tol, max_unindexed, max_volume, pause)
    best = sorted(cells, key=lambda c: -c.merit)[:DOUBLED]
    return cells + _halved(best + doubled, tth, wavelength, tol, max_unindexed, max_volume, systems, pause)


def _parity_vectors() -> list[np.ndarray]:
    """The seven non-zero n ∈ {0, 1}³: the sublattices of index 2 ({x: n·x even}) and the
    lattices of half the volume (with n·(a, b, c)/2 added) of a lattice."""
    return [np.array(n) for n in itertools.product((0, 1), repeat=3) if any(n)]


def _doubled(cells: list[Cell], tth: np.ndarray, wavelength: float, tol: float, max_unindexed: int,
             max_volume: float, pause: Callable[[], None]) -> tuple[list[Cell], list[Cell]]:
    """(the cells, the doubled cells): the DOUBLED best cells that leave lines unindexed are refined
    again as each of their seven sublattices of index 2. A glide or screw axis hides the lines of
    the basis vector it halves, so a subcell that lacks only the few lines with an odd index comes
    out of the zones first and outranks the true cell on M20 (half the lines): a doubled cell that
    indexes more lines with at least DOUBLED_M20_FRACTION of its M20 replaces it
    (measured: a P2_1/c cell found only as its c/2 subcell, which left one of 20 lines)."""
    kept, doubled = list(cells), []
    short = sorted((c for c in cells if c.n_indexed < c.n_lines), key=lambda c: -c.merit)[:DOUBLED]
    for cell in short:
        matrix = Lattice.from_parameters(*cell.lattice).matrix
        for n in _parity_vectors():
            pause()
            i = int(np.argmax(n))
            transform = np.eye(3) + np.outer(n, np.eye(3)[i])  # e_j + e_i where n_j = 1: 2e_i, e_j + e_i
            basis = transform @ matrix
            coef = metric_coef("triclinic", np.linalg.inv(basis @ basis.T))
            larger = refine_cell("triclinic", coef, tth, wavelength, tol, max_unindexed, max_volume)
            if larger is not None and larger.n_indexed > cell.n_indexed:
                doubled.append(larger)
                if larger.m20 >= DOUBLED_M20_FRACTION * cell.m20 and cell in kept:
                    kept.remove(cell)
    return kept, doubled


def _halved(cells: list[Cell], tth: np.ndarray, wavelength: float, tol: float, max_unindexed: int,
            max_volume: float, systems: Sequence[str], pause: Callable[[], None]) -> list[Cell]:
    """The lattices of half the volume that index the same lines as one of the DOUBLED best cells:
    where every indexed line has an hkl with n·hkl even (n one of the seven parity vectors, the
    extinction of a centring or of half an axis), the lattice with n·(a, b, c)/2 added is the
    true one. The zones can give a cell whose lines the true one explains with fewer (measured: a
    P2_1/c cell as {c/2, b, 2a + c/2}, the same volume, found as the doubled cell of that)."""
    found = []
    for cell in sorted(cells, key=lambda c: -c.merit)[:DOUBLED]:
        pause()
        lattice = Lattice.from_parameters(*cell.lattice)
        q = inv_d2(tth, wavelength, cell.zero)
        limits = np.floor(np.sqrt(q[-1] * 1.05) * np.array(lattice.abc)).astype(int)
        hkl = np.stack(np.meshgrid(*(np.arange(-v, v + 1) for v in limits), indexing="ij"), -1).reshape(-1, 3)
        calc = np.einsum("ri,ij,rj->r", hkl, lattice.reciprocal_lattice_crystallographic.metric_tensor, hkl)
        near = np.abs(q[:, None] - calc[None]) <= tol * dinv_d2_dtth(tth - cell.zero, wavelength)[:, None]
        indexed = near.any(axis=1)
        for n in _parity_vectors():
            even = (hkl @ n) % 2 == 0
            if not np.all((near & even[None]).any(axis=1)[indexed]):
                continue
            basis = lattice.matrix.copy()
            basis[int(np.argmax(n))] = n @ lattice.matrix / 2  # replaces an axis it contains
            smaller = refine_cell("triclinic", metric_coef("triclinic", np.linalg.inv(basis @ basis.T)), tth,
                                  wavelength, tol, max_unindexed, max_volume)
            if smaller is not None:
                found += _classified(smaller, tth, wavelength, tol, max_unindexed, max_volume, systems)
    return found


def _inverse_m20(coef: np.ndarray, q: np.ndarray, q_tol: np.ndarray) -> np.ndarray:
    """1/M20 of unrefined trial lattices up to a constant: the mean |ΔQ| of the lines they index
    (within q_tol, Å⁻²) times the lines they allow up to the last one. The best-fitting lattices
    with the fewest lines are refined first; the smallest volume alone prefers wrong small cells."""
    inverse = np.zeros(len(coef))
    for rows in np.array_split(np.arange(len(coef)), max(1, len(coef) // 5000)):
        calc = np.sort(coef[rows] @ _screen_rows(SCREEN_INDEX).T, axis=1)
        miss = nearest(np.broadcast_to(q, (len(rows), q.size)), calc)
        indexed = miss <= q_tol
        eps = np.sum(np.where(indexed, miss, 0), axis=1) / np.maximum(indexed.sum(axis=1), 1)
        inverse[rows] = (eps + 1e-6 * q[-1]) * np.sum(calc <= q[-1], axis=1)
    return inverse


def _bases(q: np.ndarray, q_tol: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q (Å⁻²) of the candidate basis vectors and their tolerances: the lowest lines and a quarter of them."""
    n, m = min(BASE_LINES, q.size), min(QUARTER_LINES, q.size)
    return np.concatenate([q[:n], q[:m] / 4]), np.concatenate([q_tol[:n], q_tol[:m] / 4])


def _zones(q: np.ndarray, q_tol: np.ndarray) -> np.ndarray:
    """The zones as rows (basis u, basis v, D) over the _bases, u < v; D (Å⁻²) the
    hk term. Ranked by the observed lines the zone indexes less those chance would put within the
    tolerance of its lines (a zone of long axes has many lines and indexes many by chance)."""
    base, base_tol = _bases(q, q_tol)
    u, v = np.array(list(itertools.combinations(range(base.size), 2))).T
    hk = np.array(list(itertools.product(range(1, ITO_INDEX + 1), repeat=2)), dtype=float)
    h, k = hk[:, 0], hk[:, 1]
    target = 2 * (h[None] ** 2 * base[u, None] + k[None] ** 2 * base[v, None])  # (pairs, hk)
    target_tol = 2 * (h[None] ** 2 * base_tol[u, None] + k[None] ** 2 * base_tol[v, None])
    i, j = np.triu_indices(q.size)  # Q(h,k) ≥ Q(h,−k): D ≥ 0, the sign of b* chosen
    q_hi, q_lo = np.maximum(q[i], q[j]), np.minimum(q[i], q[j])
    match = np.abs(q_hi + q_lo - target[..., None]) <= target_tol[..., None] + q_tol[i] + q_tol[j]
    pair, combo, line = np.nonzero(match)
    d = (q_hi[line] - q_lo[line]) / (2 * h[combo] * k[combo])
    zones = np.column_stack([u[pair], v[pair], d])
    zones = np.concatenate([zones, np.column_stack([u, v, np.zeros(u.size)])])  # and every rectangular zone
    cos = zones[:, 2] / (2 * np.sqrt(base[zones[:, 0].astype(int)] * base[zones[:, 1].astype(int)]))
    zones = zones[np.abs(cos) <= MAX_COS]
    _, first_of = np.unique(np.column_stack([zones[:, :2], np.round(zones[:, 2] / q_tol[0])]), axis=0,
                            return_index=True)
    zones = zones[first_of]
    return zones[np.argsort(-_zone_merit(zones, base, q, q_tol), kind="stable")]


def _zone_merit(zones: np.ndarray, base: np.ndarray, q: np.ndarray, q_tol: np.ndarray) -> np.ndarray:
    """Observed lines each zone indexes, less the number a random set of as many lines would."""
    r = np.arange(-ZONE_INDEX, ZONE_INDEX + 1)
    h, k = np.meshgrid(np.arange(ZONE_INDEX + 1), r, indexing="ij")
    h, k = h.ravel(), k.ravel()
    keep = (h > 0) | (k > 0)  # one of ±(h, k)
    rows = np.column_stack([h[keep] ** 2, k[keep] ** 2, h[keep] * k[keep]]).astype(float)
    coef = np.column_stack([base[zones[:, 0].astype(int)], base[zones[:, 1].astype(int)], zones[:, 2]])
    calc = np.sort(coef @ rows.T, axis=1)
    indexed = np.sum(nearest(np.broadcast_to(q, (len(zones), q.size)), calc) <= q_tol, axis=1)
    density = np.sum(calc <= q[-1], axis=1) / q[-1]  # zone lines per Å⁻²
    chance = np.sum(np.minimum(1.0, density[:, None] * 2 * q_tol[None]), axis=1)
    return indexed - chance


def _agreed(values: np.ndarray, tolerances: np.ndarray) -> np.ndarray:
    """The AGREED values that most of ``values`` agree on within their ``tolerances``, at least two."""
    order = np.argsort(values)
    values, tolerances = values[order], tolerances[order]
    support = np.searchsorted(values, values + tolerances, side="right") - np.searchsorted(values, values - tolerances)
    best = np.argsort(-support, kind="stable")
    taken: list[int] = []
    for i in best[support[best] >= 2][:8 * AGREED]:  # the best-supported few: the rest are chance
        if all(abs(values[i] - values[j]) > tolerances[i] + tolerances[j] for j in taken):
            taken.append(i)
            if len(taken) == AGREED:
                break
    # the mean of the agreeing values, weighted by their precision: one line's value carries its position error
    near = np.abs(values[None] - values[taken][:, None]) <= tolerances[None]
    weights = near / tolerances[None] ** 2
    return (weights @ values) / weights.sum(axis=1)


def _cross_index(second: bool) -> np.ndarray:
    """hkl with |h|, |l| ≤ CROSS_INDEX, k = 1..CROSS_INDEX, and l ≠ 0 where ``second``."""
    r = range(-CROSS_INDEX, CROSS_INDEX + 1)
    return np.array([(h, k, l) for h in r for k in range(1, CROSS_INDEX + 1) for l in r if l or not second], dtype=float)


def _monoclinic_trials(q: np.ndarray, q_tol: np.ndarray, zones: np.ndarray) -> np.ndarray:
    """Triclinic coefficients of the monoclinic lattices on every zone taken as the h0l zone (b*
    normal to it): the one term B = b*² each observed line that is some hkl with k ≠ 0 fixes, where
    two of the lowest lines agree on it."""
    base, _ = _bases(q, q_tol)
    h, k, l = _cross_index(second=False).T
    m = min(CROSS_LINES, q.size)
    trials = [np.zeros((0, 6))]
    for u, v, e in zones[:MONOCLINIC_ZONES]:
        a, c = base[int(u)], base[int(v)]
        b = (q[:m, None] - (h**2 * a + l**2 * c + h * l * e)[None]) / k[None] ** 2
        b_tol = q_tol[:m, None] / k[None] ** 2
        keep = b.ravel() > 0
        agreed = _agreed(b.ravel()[keep], b_tol.ravel()[keep])
        trials.append(np.column_stack([np.full(agreed.size, a), agreed, np.full(agreed.size, c),
                                       np.zeros(agreed.size), np.full(agreed.size, e), np.zeros(agreed.size)]))
    return np.concatenate(trials)


def _triclinic_trials(q: np.ndarray, q_tol: np.ndarray, zones: np.ndarray) -> np.ndarray:
    """Triclinic coefficients (A, B, C, D, E, F) of the lattices two zones sharing a basis vector
    make, with each b*·c* term F that two of the lowest lines agree on."""
    base, _ = _bases(q, q_tol)
    hkl = _cross_index(second=True)
    m = min(CROSS_LINES, q.size)
    trials = [np.zeros((0, 6))]
    for z1, z2 in itertools.combinations(zones, 2):
        shared = set(z1[:2].astype(int)) & set(z2[:2].astype(int))
        if len(shared) != 1:
            continue
        s = shared.pop()
        p, r = (int(z[1] if int(z[0]) == s else z[0]) for z in (z1, z2))
        a, b, c, d, e = base[s], base[p], base[r], z1[2], z2[2]
        known = hkl[:, 0] ** 2 * a + hkl[:, 1] ** 2 * b + hkl[:, 2] ** 2 * c + hkl[:, 0] * hkl[:, 1] * d \
            + hkl[:, 0] * hkl[:, 2] * e
        kl = hkl[:, 1] * hkl[:, 2]
        f = ((q[:m, None] - known[None]) / kl[None]).ravel()
        f_tol = (q_tol[:m, None] / np.abs(kl)[None]).ravel()
        keep = np.abs(f) <= MAX_COS * 2 * np.sqrt(b * c)
        agreed = _agreed(f[keep], f_tol[keep])
        trials.append(np.column_stack([np.broadcast_to([a, b, c, d, e], (agreed.size, 5)), agreed]))
    return np.concatenate(trials)


@functools.cache
def _screen_rows(limit: int) -> np.ndarray:
    """Distinct non-zero triclinic feature rows of |h|, |k|, |l| ≤ limit."""
    r = np.arange(-limit, limit + 1)
    grid = np.stack(np.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    rows = np.unique(features("triclinic", grid), axis=0)
    return rows[np.any(rows != 0, axis=1)]


def _classified(cell: Cell, tth: np.ndarray, wavelength: float, tol: float, max_unindexed: int,
                max_volume: float, systems: Sequence[str]) -> list[Cell]:
    """A refined triclinic cell in the system its reduced lattice's metric has: refined again as
    monoclinic in the conventional cell where the lattice is monoclinic (and that fit keeps
    MONOCLINIC_M20_FRACTION of the M20), as triclinic in its Niggli-reduced cell otherwise; nothing
    where the lattice is orthorhombic or higher (model.index's indexers give those cells)."""
    reduced = Lattice.from_parameters(*cell.lattice).get_niggli_reduced_lattice()
    matrix = reduced.matrix
    symprec = LATTICE_SYMPREC_FRACTION * max(reduced.abc)
    dataset = spglib.get_symmetry_dataset((matrix, [[0.0, 0.0, 0.0]], [1]), symprec=symprec,
                                          angle_tolerance=LATTICE_ANGLE_DEG)
    system = CRYSTAL_SYSTEMS[crystal_system_code(dataset.number)] if dataset is not None else "triclinic"
    if system not in ("monoclinic", "triclinic"):
        return []
    found = []
    if system == "monoclinic" and "monoclinic" in systems:
        std = np.asarray(dataset.std_lattice)
        coef = metric_coef("monoclinic", np.linalg.inv(std @ std.T))
        mono = refine_cell("monoclinic", coef, tth, wavelength, tol, max_unindexed, max_volume)
        if mono is not None and mono.m20 >= MONOCLINIC_M20_FRACTION * cell.m20:
            return [mono]
    if "triclinic" in systems:
        coef = metric_coef("triclinic", np.linalg.inv(matrix @ matrix.T))
        tri = refine_cell("triclinic", coef, tth, wavelength, tol, max_unindexed, max_volume)
        found += [tri] if tri is not None else []
    return found
