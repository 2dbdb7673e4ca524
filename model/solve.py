"""Structure solution from a powder pattern: preprocess → index → Wyckoff search → Rietveld.

A generator: it yields Progress between steps (each step well under a second on small cells, so
stopping the iteration cancels promptly) and returns the SolveResult. Symmetry first: the indexed
cell and the space groups its extinctions allow fix the possible Wyckoff placements of the
composition; model.search scores placements against integrated reflection intensities, and the
best few are verified by full-profile Rietveld refinement (model.refine; a candidate whose atoms
run onto each other is refined again with anti-bump restraints). The best Rwp wins, the
smallest cell and then the highest symmetry among equal fits, and of the assignments of ions that
X-rays cannot tell apart (equal electron counts) the best bond-valence agreement among equal fits
(model.bond_valence). The network's density of the cell
is attached for display; it does not rank placements (the bundled network cannot tell them apart).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from functools import reduce
from typing import TypeVar

import numpy as np
from pymatgen.core import Composition, Element, Lattice
from pymatgen.symmetry.analyzer import SymmetryUndeterminedError

from model import bond_valence, constraints, index, search
from model.density import Density
from model.errors import InputError
from model.instrument import Instrument
from model.lockstep import lockstep
from model.pattern import Pattern
from model.preprocess import Peak, background, find_peaks
from model.refine import REPORT_S, TERMS, Rietveld
from model.refinement import to_solve_result
from model.result import Progress, SolveResult
from model.structure import conventional_standard

SOLVED_RWP = 15.0  # %, a structure that fits the whole profile this well explains the pattern
CELLS_TRIED = 3
# lattice systems whose symmetry contains each one's (hexagonal is not above tetragonal)
HOLOHEDRIES_ABOVE = {"cubic": (), "hexagonal": ("cubic",), "tetragonal": ("cubic",),
                     "orthorhombic": ("cubic", "hexagonal", "tetragonal")}
CELLS_RANKED = 10  # cells kept by the indexing, from which those searched are chosen
MAX_LINES = 20  # strongest lines used for indexing
EXTINCTION_HEIGHT = 0.01  # weaker lines down to this fraction of the strongest count for extinctions
CELL_MERIT_FRACTION = 0.2
# groups tried per cell: the largest class of groups with equal extinctions (which positions cannot
# tell apart) has 5–6 members in cubic (Pm-3m … P23), 8 in tetragonal (P4/mmm … P4, I4/mmm … I4);
# the 16 of hexagonal (P6/mmm … P3) would flood the search, which shares its time among the arms
GROUPS_TRIED = {"cubic": 6, "tetragonal": 8, "hexagonal": 6, "orthorhombic": 6}
REFINED = 4
SAME_SCORE = 1e-4  # search scores this close in one cell belong to the same structure
SCREEN_NFEV = 8  # least-squares evaluations per stage when comparing candidates
FINAL_NFEV = 40
SYMMETRISE_A = (0.3, 0.02)  # Å, tolerances for finding the full symmetry of a refined structure
SYMMETRY_RWP_SLACK = 0.5  # %, Rwp the fewer parameters of the higher symmetry may cost
SAME_RWP = 0.1  # %, refined fits this close describe the same structure
MAX_ATOMS = 40
ATOM_VOLUME_A3 = (7.0, 60.0)  # plausible volume per atom in inorganic solids
FILLINGS_TRIED = 5  # formula-unit counts tried per space group, most typical volume per atom first
TYPICAL_ATOM_VOLUME_A3 = 15.0  # the middle of the usual 10–20 Å³ per atom of inorganic solids
WIDTH_PEAKS = 20  # strongest peaks whose widths give FWHM(2θ) for the search
MAX_RATIO = 4  # largest amount of one element per formula unit tried when no formula is given
STOICHIOMETRIES = 4  # formula units tried when no formula is given
SYSTEMS = {"auto": index.SYSTEMS, "cubic": ("cubic",), "hexagonal": ("hexagonal",),
           "trigonal": ("hexagonal",), "tetragonal": ("tetragonal",), "orthorhombic": ("orthorhombic",)}

T = TypeVar("T")


def solve(pattern: Pattern, elements: Sequence[str], formula: str | None = None, system: str = "auto",
          samples: int = 4, device: str = "auto", seed: int = 0) -> Generator[Progress, None, SolveResult]:
    """Solve ``pattern`` for a structure made of ``elements`` (stoichiometry from ``formula`` if given)."""
    if pattern.wavelength is None:
        raise InputError(pattern.provenance.path or None, "the pattern states no wavelength: give one")
    if system not in SYSTEMS:
        raise InputError(None, f"unknown crystal system {system!r}: one of {', '.join(SYSTEMS)}")
    stoichiometries = _stoichiometries(elements, formula)
    timings: dict[str, float] = {}
    rng = np.random.default_rng(seed)

    clock = time.perf_counter()
    yield Progress("preprocess", 0.0, "background and peak search")
    net = pattern.intensity - background(pattern)
    peaks = find_peaks(pattern)
    timings["preprocess"] = time.perf_counter() - clock
    if len(peaks) < 4:
        return _failure(f"only {len(peaks)} peaks found; at least 4 are needed to index", timings)
    strongest = sorted(peaks, key=lambda p: -p.height)[:10]
    fwhm = float(np.median([p.fwhm for p in strongest]))

    clock = time.perf_counter()
    yield Progress("index", 0.05, f"{len(peaks)} peaks")
    _, cells, plans = yield from lockstep(
        lambda pause: index_cells(peaks, pattern.wavelength.ka1, SYSTEMS[system], pause),
        REPORT_S, Progress("index", 0.05, f"{len(peaks)} peaks, cells and space groups"))
    timings["index"] = time.perf_counter() - clock
    if not cells:
        return _failure("no cell indexes the peak list", timings)

    clock = time.perf_counter()
    arms, arm_cells = [], []
    for cell, group in plans:
        yield Progress("search", 0.1, f"Wyckoff positions of {group.symbol}")
        lattice = Lattice.from_parameters(*cell.lattice)
        fillings = [f for f in _fillings(cell, stoichiometries) if search.feasible(group.number, f[1])]
        for species, counts in fillings[:FILLINGS_TRIED]:
            arms.append(search.Arm(lattice, cell.zero, group.number, tuple(species), tuple(counts)))
            arm_cells.append(cell)
    job = search.search(pattern, net, arms, _fwhm_poly(peaks), rng)
    found = yield from _rescaled(job, 0.1, 0.6)
    candidates = [(candidate, arm_cells[candidate.arm]) for candidate in found]
    timings["search"] = time.perf_counter() - clock
    if not candidates:
        return _failure("no Wyckoff placement of the composition fits the indexed cells", timings)

    clock = time.perf_counter()
    distinct: list[tuple[search.Candidate, index.Cell]] = []
    for candidate, cell in candidates:
        # equal scores in one cell are the same structure (at another origin, or in a subgroup):
        # refine it once, in the highest symmetry it was found in
        same = [n for n, (c, other) in enumerate(distinct)
                if other is cell and abs(c.score - candidate.score) < SAME_SCORE]
        if not same:
            distinct.append((candidate, cell))
        elif candidate.space_group > distinct[same[0]][0].space_group:
            distinct[same[0]] = (candidate, cell)
    # the best placement of every cell is refined, then the best of every space group, then the
    # next best: the extra freedom of a supercell or a subgroup can fit the search score better
    # than the true cell and group, and the full profile with the simplest description (below) decides
    def first_of(key):
        return [c for n, c in enumerate(distinct) if all(key(c) != key(d) for d in distinct[:n])]

    shortlist: list[tuple[search.Candidate, index.Cell]] = []
    for tier in (first_of(lambda c: id(c[1])), first_of(lambda c: (id(c[1]), c[0].space_group)), distinct):
        shortlist += [c for c in tier if all(c is not s for s in shortlist)]
    shortlist = shortlist[:REFINED]
    def screened(i: int, restrain: bool):
        candidate, cell = shortlist[i]
        problem = Rietveld(pattern, candidate.structure, Instrument.from_fwhm(pattern.wavelength, fwhm, cell.zero),
                           restrain_contacts=restrain)
        for _ in problem.fit(max_nfev=SCREEN_NFEV):
            yield Progress("refine", 0.6 + 0.3 * i / len(shortlist), f"candidate {i + 1}/{len(shortlist)}")
        return problem.result().rwp, i, problem

    # refined freely first: atoms of a placement near the truth may have to pass close to each
    # other on their way (measured: Nd(CoB)4's B pairs). One that ends with atoms run onto each
    # other and fits better than every sound one is refined again from the start, restrained
    # (measured: a wrong TiPbO3 placement with O 1.15 Å from Pb won freely)
    problems = []
    for i in range(len(shortlist)):
        problems.append((yield from screened(i, restrain=False)))
    sound = min((p[0] for p in problems if not p[2].too_close()), default=np.inf)
    for n, (rwp, i, problem) in enumerate(problems):
        if rwp < sound and problem.too_close():
            problems[n] = yield from screened(i, restrain=True)
    problems.sort(key=lambda p: p[0])
    # fits equal within the slack: the smallest cell wins (a supercell fits as well with more atoms),
    # and of equal fits in it the highest symmetry (the same structure found in a subgroup)
    smallest = min(len(p[2].phases[0].structure) for p in problems if p[0] <= problems[0][0] + SYMMETRY_RWP_SLACK)
    fits = [p for p in problems if len(p[2].phases[0].structure) == smallest]
    _, winner_index, winner = max((p for p in fits if p[0] <= fits[0][0] + SAME_RWP),
                                  key=lambda p: (p[2].phases[0].ops.number, -p[0]))
    for _ in winner.fit(max_nfev=FINAL_NFEV, terms=TERMS):
        yield Progress("refine", 0.95, "final refinement of the best candidate")
    best = winner.result()
    # a structure found in a subgroup cell (e.g. fcc as body-centred tetragonal) is reported in its
    # full symmetry: spglib at refinement-sized tolerances (a light atom refined in a polar subgroup
    # drifts farther than a heavy one), the highest symmetry first, each refined in its conventional
    # standard cell; the first that fits within the slack is kept. Also where the symmetry is
    # already found but in another cell (fcc as the I-centred tetragonal cell): the report, the CIF
    # and the sites are in the conventional standard cell
    standards = {}
    for tolerance in SYMMETRISE_A:
        try:
            standard = conventional_standard(best.structure, symprec=tolerance)
        except SymmetryUndeterminedError:  # atoms closer than the tolerance: not this one
            continue
        number = constraints.space_group_ops(standard).number
        if number > best.space_group.number or len(standard) != len(best.structure):
            standards.setdefault((number, len(standard)), standard)
    for _, standard in sorted(standards.items(), key=lambda item: -item[0][0]):
        higher = Rietveld(pattern, standard, best.instrument, restrain_contacts=True)
        for _ in higher.fit(max_nfev=FINAL_NFEV, terms=TERMS):
            yield Progress("refine", 0.97, "refinement in the full symmetry")
        symmetric = higher.result()
        if symmetric.rwp <= best.rwp + SYMMETRY_RWP_SLACK:
            best = symmetric
            break
    # ions of equal electron count (K⁺/Ca²⁺) scatter alike: of their assignments to the sites the
    # best bond-valence agreement wins, where it fits the profile as well
    valences = _valences(best.structure.composition.get_el_amt_dict())
    if valences is not None:
        options = bond_valence.assignments(best.structure, [site.orbit for site in best.atoms], valences)
        chosen = min(options, key=lambda s: bond_valence.instability(s, valences))
        if chosen is not options[0]:
            swapped = Rietveld(pattern, chosen, best.instrument, restrain_contacts=True)
            for _ in swapped.fit(max_nfev=FINAL_NFEV, terms=TERMS):
                yield Progress("refine", 0.97, "refinement of the bond-valence assignment of alike ions")
            refined = swapped.result()
            if refined.rwp <= best.rwp + SYMMETRY_RWP_SLACK:
                best = refined
    timings["refine"] = time.perf_counter() - clock

    result = to_solve_result(best)
    result.solved = result.rwp <= SOLVED_RWP
    result.message = (f"best of {len(candidates)} placements, {len(shortlist)} refined" if result.solved else
                      f"best Rwp {result.rwp:.1f} % is above {SOLVED_RWP:g} %: the pattern is not explained")
    order = [winner_index] + [i for _, i, problem in problems if problem is not winner]
    for i in order[1:]:
        alternative = to_solve_result(next(p for _, j, p in problems if j == i).result())
        alternative.solved = alternative.rwp <= SOLVED_RWP
        alternative.message = f"candidate {i + 1} of {len(shortlist)}, refined to screening depth only"
        result.alternatives.append(alternative)

    # the network's density of each refined cell, for display: it does not rank the placements
    # (measured: the bundled network's SSIM does not tell the right placement from wrong ones).
    # The best solution's cell gets the mean of ``samples`` draws; another cell one draw, a preview
    # like its screening-depth fit (~0.2 s a draw on 2 cores)
    clock = time.perf_counter()
    yield Progress("network", 0.97, "density")
    predictor, note = _predictor(device)
    result.device = "cpu"
    if predictor is not None:
        densities: dict[int, Density] = {}
        for solution, i in zip([result, *result.alternatives], order):
            cell = shortlist[i][1]
            if id(cell) not in densities:
                draws = []
                for k in range(samples if solution is result else 1):  # a call a draw: a cancel waits for one
                    draws += predictor.predict(pattern, stoichiometries[0], cell.lattice, cell.crystal_system,
                                               seed=seed + k)
                    yield Progress("network", 0.97, f"density of the {cell.crystal_system} cell")
                densities[id(cell)] = Density(np.mean([d.values for d in draws], axis=0), draws[0].lattice)
            solution.density = densities[id(cell)]
        result.model_version, result.device = predictor.version, predictor.device
    timings["network"] = time.perf_counter() - clock
    result.message += f"; {note}"
    result.timings = {**timings, "total": sum(timings.values())}
    yield Progress("done", 1.0, f"{result.space_group} Rwp {result.rwp:.2f} %")
    return result


def _predictor(device: str):
    """The bundled network on the requested device, or None with the reason when it is not installed."""
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(None, f"unknown device {device!r}: auto, cpu or cuda")
    # torch networks: loaded only when a solve gets this far
    from model.predict import Predictor

    try:
        predictor = Predictor.load(device=None if device == "auto" else device)
    except InputError as error:
        return None, f"no network density ({error.problem})"
    return predictor, f"density by network {predictor.version} on {predictor.device}"


def _stoichiometries(elements: Sequence[str], formula: str | None) -> list[dict[str, int]]:
    """Integer formula units: the given formula, or small charge-balanced ratios of the elements."""
    symbols = []
    for symbol in elements:
        try:
            symbols.append(Element(symbol).symbol)
        except ValueError:
            raise InputError(None, f"unknown element {symbol!r}") from None
    if not symbols:
        raise InputError(None, "give at least one element")
    if formula:
        try:
            amounts = Composition(formula).get_el_amt_dict()
        except Exception:  # noqa: BLE001 - pymatgen raises several types for a malformed formula
            raise InputError(None, f"cannot read formula {formula!r}") from None
        extra = set(amounts) - set(symbols)
        if extra:
            raise InputError(None, f"formula {formula} has elements not in --elements: {', '.join(sorted(extra))}")
        if any(abs(v - round(v)) > 1e-6 for v in amounts.values()):
            raise InputError(None, f"formula {formula} needs integer amounts")
        return [{k: round(v) for k, v in amounts.items()}]
    ratios = sorted((dict(zip(symbols, (c + 1 for c in combo))) for combo in np.ndindex(*[MAX_RATIO] * len(symbols))
                     if reduce(math.gcd, (c + 1 for c in combo)) == 1), key=lambda r: sum(r.values()))
    # the classic valences first (cheap to test), then any charge balance pymatgen finds (slow:
    # only as far as needed), then the rest, each class simplest first
    chosen = [r for r in ratios if _valences(r) is not None][:STOICHIOMETRIES]
    for ratio in ratios:
        if len(chosen) == STOICHIOMETRIES:
            break
        if ratio not in chosen and (len(symbols) == 1 or Composition(ratio).oxi_state_guesses(max_sites=-1)):
            chosen.append(ratio)
    return chosen + [r for r in ratios if r not in chosen][:STOICHIOMETRIES - len(chosen)]


def _valences(ratio: Mapping[str, float]) -> dict[str, int] | None:
    """Classic valences that balance the charge, or None: the anions (elements whose common
    oxidation states are all negative, else the most electronegative element) at their common
    negative states and every other element at its highest common positive state (group valence,
    e.g. C⁴⁺ with O and F)."""
    elements = [Element(symbol) for symbol in ratio]
    anions = [e for e in elements if e.common_oxidation_states and max(e.common_oxidation_states) < 0]
    if not anions:
        anions = [max(elements, key=lambda e: e.X if e.X == e.X else 0.0)]  # X is NaN for noble gases
    choices = []
    for e in elements:
        states = e.common_oxidation_states or (0,)
        choices.append([q for q in states if q < 0] if e in anions else [max(states)])
    if not all(choices) or any(max(c) <= 0 for e, c in zip(elements, choices) if e not in anions):
        return None
    return next((dict(zip(ratio, states)) for states in itertools.product(*choices)
                 if abs(sum(ratio[e.symbol] * q for e, q in zip(elements, states))) < 1e-6), None)


def index_cells(peaks: Sequence[Peak], wavelength_A: float, systems: Sequence[str] = index.SYSTEMS,
                pause: Callable[[], None] = lambda: None
                ) -> tuple[list[index.Cell], list[index.Cell], list[tuple[index.Cell, index.SpaceGroupCandidate]]]:
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
    lines = sorted({*positions, *(p.two_theta for p in peaks if p.height >= EXTINCTION_HEIGHT * strongest[0].height)})
    near = [c for c in ranked if c.merit >= CELL_MERIT_FRACTION * ranked[0].merit]
    # a cell of lower symmetry fits the position errors with more parameters, and a centred cell's
    # merit counts the lines its centring forbids: the best cell of each lattice system whose
    # symmetry contains the best one's is searched as well (measured: fcc Ag2O3 with 8 lines ranked below hexagonal
    # and tetragonal cells whose lines include all of its own)
    above = HOLOHEDRIES_ABOVE[near[0].crystal_system] if near else ()
    higher = [next(c for c in near if c.crystal_system == system) for system in above
              if any(c.crystal_system == system for c in near)]
    indexed = list({id(c): c for c in [*near[:CELLS_TRIED], *higher]}.values())
    indexed.sort(key=lambda c: index.SYSTEMS.index(c.crystal_system))
    settings: dict[tuple[int, tuple[int, int, int]], index.Cell] = {}
    plans = []
    for cell in indexed:
        for group in _groups(cell, lines, wavelength_A, pause):
            setting = settings.setdefault((id(cell), group.axes), index.in_setting(cell, group.axes))
            plans.append((setting, group))
    return ranked, list(settings.values()), plans


def _groups(cell: index.Cell, positions: Sequence[float], wavelength: float,
            pause: Callable[[], None]) -> list[index.SpaceGroupCandidate]:
    """The space groups with the fewest unexplained lines, most extinctions first."""
    groups = index.space_group_candidates(cell, positions, wavelength, pause=pause)
    if not groups:
        return []
    fewest = groups[0].unexplained
    return [g for g in groups if g.unexplained == fewest][:GROUPS_TRIED[cell.crystal_system]]


def _fillings(cell: index.Cell, stoichiometries: list[dict[str, int]]) -> list[tuple[list[str], list[int]]]:
    """(species, atoms per cell) for formula-unit counts Z with a plausible volume per atom, the most
    typical volume per atom first."""
    fillings = []
    for units in stoichiometries:
        per_unit = sum(units.values())
        for z in range(1, MAX_ATOMS // per_unit + 1):
            volume_per_atom = cell.volume / (z * per_unit)
            if ATOM_VOLUME_A3[0] <= volume_per_atom <= ATOM_VOLUME_A3[1]:
                species = sorted(units)
                fillings.append((abs(math.log(volume_per_atom / TYPICAL_ATOM_VOLUME_A3)),
                                 (species, [units[s] * z for s in species])))
    return [filling for _, filling in sorted(fillings, key=lambda f: f[0])]


def _fwhm_poly(peaks: Sequence[Peak]) -> np.ndarray:
    """FWHM (deg) of the strongest peaks as a straight line in 2θ (np.polyval coefficients); peaks
    widen with angle, and a constant width would cut the tails of high-angle lines."""
    strongest = sorted(peaks, key=lambda p: -p.height)[:WIDTH_PEAKS]
    tth, fwhm = np.array([p.two_theta for p in strongest]), np.array([p.fwhm for p in strongest])
    slope, intercept = np.polyfit(tth, fwhm, 1)
    if np.ptp(tth) < 10 or slope < 0:  # too narrow a range to tell, or noise: one width
        return np.array([0.0, float(np.median(fwhm))])
    return np.array([slope, intercept])


def _rescaled(job: Generator[Progress, None, T], low: float, high: float) -> Generator[Progress, None, T]:
    """Run a sub-job whose progress runs 0–1 as the ``low``–``high`` part of the solve's."""
    while True:
        try:
            step = next(job)
        except StopIteration as stop:
            return stop.value
        yield Progress(step.stage, low + (high - low) * step.fraction, step.message)


def _failure(message: str, timings: dict[str, float]) -> SolveResult:
    return SolveResult(lattice=(0.0,) * 6, space_group="", space_group_number=0, crystal_system="",
                       atoms=[], rwp=float("nan"), rp=float("nan"), gof=float("nan"),
                       timings=timings, solved=False, message=message)
