"""Structure solution from a powder pattern: preprocess → index → Wyckoff search → Rietveld.

A generator: it yields Progress between steps (each step well under a second on small cells, so
stopping the iteration cancels promptly) and returns the SolveResult. Symmetry first: the indexed
cell and the space groups its extinctions allow fix the possible Wyckoff placements of the
composition; model.search scores placements against integrated reflection intensities, and the
best few are verified by full-profile Rietveld refinement (model.refine). The best Rwp wins.
"""

from __future__ import annotations

import dataclasses
import math
import time
from functools import reduce
from typing import Callable, Generator, Sequence

import numpy as np
from pymatgen.core import Composition, Element, Lattice

from model import constraints, index, search
from model.errors import InputError
from model.lockstep import lockstep
from model.pattern import Pattern
from model.preprocess import Peak, background, find_peaks
from model.refine import REPORT_S, ProfileStart, Rietveld, to_solve_result
from model.result import Progress, SolveResult
from model.structure import conventional_standard

SOLVED_RWP = 15.0  # %, a structure that fits the whole profile this well explains the pattern
CELLS_TRIED = 3
MAX_LINES = 20  # strongest lines used for indexing
EXTINCTION_HEIGHT = 0.01  # weaker lines down to this fraction of the strongest count for extinctions
PRIOR_RERANKED = 8  # placements re-scored with the network density (~0.1–0.8 s each on 2 cores)
PRIOR_WEIGHT = 0.1  # cluster-R units per unit of SSIM
CELL_MERIT_FRACTION = 0.2
GROUPS_TRIED = 6
REFINED = 3
SCREEN_NFEV = 8  # least-squares evaluations per stage when comparing candidates
FINAL_NFEV = 40
SYMMETRISE_A = 0.02  # Å, tolerance for finding the full symmetry of a refined structure
SYMMETRY_RWP_SLACK = 0.5  # %, Rwp the fewer parameters of the higher symmetry may cost
MAX_ATOMS = 40
ATOM_VOLUME_A3 = (7.0, 60.0)  # plausible volume per atom in inorganic solids
FILLINGS_TRIED = 2  # formula-unit counts tried per space group
SEARCH_BUDGET_S = 10.0  # the Wyckoff search stops here and the best placements go on to refinement
SYSTEMS = {"auto": index.SYSTEMS, "cubic": ("cubic",), "hexagonal": ("hexagonal",),
           "trigonal": ("hexagonal",), "tetragonal": ("tetragonal",), "orthorhombic": ("orthorhombic",)}


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
    candidates: list[tuple[search.Candidate, index.Cell]] = []
    fillings = {id(cell): _fillings(cell, stoichiometries) for cell in cells}
    share = SEARCH_BUDGET_S / max(len(plans), 1)
    for i, (cell, group) in enumerate(plans):
        started = time.perf_counter()
        lattice = Lattice.from_parameters(*cell.lattice)
        filled = 0
        for species, counts in fillings[id(cell)]:
            yield Progress("search", 0.1 + 0.5 * i / len(plans),
                           f"{cell.crystal_system} {group.symbol} {dict(zip(species, counts))}")
            found = False
            for candidate in search.search(pattern, net, lattice, group.number, species, counts, cell.zero,
                                           fwhm, rng, deadline=started + share):
                if time.perf_counter() - started > share:
                    break
                candidates.append((candidate, cell))
                found = True
                yield Progress("search", 0.1 + 0.5 * i / len(plans), f"{group.symbol} {candidate.wyckoffs}")
            filled += found
            if filled == FILLINGS_TRIED or time.perf_counter() - started > share:
                break
    timings["search"] = time.perf_counter() - clock
    if not candidates:
        return _failure("no Wyckoff placement of the composition fits the indexed cells", timings)

    clock = time.perf_counter()
    yield Progress("network", 0.6, "density prior")
    predictor, note = _predictor(device)
    densities = {}
    if predictor is not None:
        composition = stoichiometries[0]
        for cell in cells:
            densities[id(cell)] = predictor.predict(pattern, composition, cell.lattice, cell.crystal_system,
                                                    samples=samples, seed=seed)
            yield Progress("network", 0.6, f"density of the {cell.crystal_system} cell")
        candidates = yield from _with_prior(candidates, densities)
    timings["network"] = time.perf_counter() - clock

    clock = time.perf_counter()
    candidates.sort(key=lambda c: c[0].score)
    shortlist = []
    for candidate, cell in candidates:
        # equal scores in one group are the same structure at another origin: refine one of them
        if not any(c.space_group == candidate.space_group and abs(c.score - candidate.score) < 1e-4
                   for c, _ in shortlist):
            shortlist.append((candidate, cell))
        if len(shortlist) == REFINED:
            break
    problems = []
    for i, (candidate, cell) in enumerate(shortlist):
        problem = Rietveld(pattern, candidate.structure, ProfileStart.from_fwhm(fwhm, cell.zero))
        for _ in problem.fit(max_nfev=SCREEN_NFEV):
            yield Progress("refine", 0.6 + 0.3 * i / len(shortlist), f"candidate {i + 1}/{len(shortlist)}")
        problems.append((problem.result().rwp, i, problem))
    _, _, winner = min(problems)
    for _ in winner.fit(max_nfev=FINAL_NFEV):
        yield Progress("refine", 0.95, "final refinement of the best candidate")
    best = winner.result()
    # a structure found in a subgroup cell (e.g. fcc as body-centred tetragonal) is reported in its
    # full symmetry: spglib at a refinement-sized tolerance, then a last refinement in that cell
    standard = conventional_standard(best.structure, symprec=SYMMETRISE_A)
    if constraints.space_group_ops(standard).number > best.space_group.number:
        higher = Rietveld(pattern, standard, ProfileStart(**best.profile))
        for _ in higher.fit(max_nfev=FINAL_NFEV):
            yield Progress("refine", 0.97, "refinement in the full symmetry")
        symmetric = higher.result()
        if symmetric.rwp <= best.rwp + SYMMETRY_RWP_SLACK:
            best = symmetric
    timings["refine"] = time.perf_counter() - clock

    result = to_solve_result(best)
    result.timings = {**timings, "total": sum(timings.values())}
    if predictor is not None:
        winner_cell = shortlist[min(problems)[1]][1]
        result.density = densities[id(winner_cell)][0]
        result.model_version, result.device = predictor.version, predictor.device
    else:
        result.device = "cpu"
    result.solved = result.rwp <= SOLVED_RWP
    result.message = (f"best of {len(candidates)} placements, {len(shortlist)} refined" if result.solved else
                      f"best Rwp {result.rwp:.1f} % is above {SOLVED_RWP:g} %: the pattern is not explained")
    result.message += f"; {note}"
    for _, i, problem in sorted(problems)[1:]:
        alternative = to_solve_result(problem.result())
        alternative.solved = alternative.rwp <= SOLVED_RWP
        alternative.message = f"candidate {i + 1} of {len(shortlist)}, refined to screening depth only"
        if predictor is not None:
            alternative.density = densities[id(shortlist[i][1])][0]
        result.alternatives.append(alternative)
    yield Progress("done", 1.0, f"{result.space_group} Rwp {result.rwp:.2f} %")
    return result


def _predictor(device: str):
    """The bundled network on the requested device, or None with the reason when it is not installed."""
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(None, f"unknown device {device!r}: auto, cpu or cuda")
    from model.predict import Predictor  # torch networks: loaded only when a solve gets this far

    try:
        predictor = Predictor.load(device=None if device == "auto" else device)
    except InputError as error:
        return None, f"no network density prior ({error.problem}); symmetry search only"
    return predictor, f"network {predictor.version} on {predictor.device} ordered the placements"


def _with_prior(candidates, densities):
    """Re-score the best placements by how well their density matches the network's (3D SSIM of the
    mean over latent samples, best over the allowed origin shifts): score − PRIOR_WEIGHT·SSIM.
    A generator (one Progress per placement, so a cancel is prompt) returning the new list."""
    from model.density import cmed
    from model.metrics import best_equivalent_ssim

    candidates = sorted(candidates, key=lambda c: c[0].score)
    rescored = []
    for candidate, cell in candidates[:PRIOR_RERANKED]:
        predicted = np.mean([d.values for d in densities[id(cell)]], axis=0)
        truth = cmed(candidate.structure, n=predicted.shape[-1]).values
        similarity, _ = best_equivalent_ssim(predicted, truth, cell.crystal_system)
        rescored.append((dataclasses.replace(candidate, score=candidate.score - PRIOR_WEIGHT * similarity), cell))
        yield Progress("network", 0.6, f"density prior {len(rescored)}/{min(len(candidates), PRIOR_RERANKED)}")
    return rescored + candidates[PRIOR_RERANKED:]


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
        except Exception:  # pymatgen raises several types for a malformed formula
            raise InputError(None, f"cannot read formula {formula!r}") from None
        extra = set(amounts) - set(symbols)
        if extra:
            raise InputError(None, f"formula {formula} has elements not in --elements: {', '.join(sorted(extra))}")
        if any(abs(v - round(v)) > 1e-6 for v in amounts.values()):
            raise InputError(None, f"formula {formula} needs integer amounts")
        return [{k: int(round(v)) for k, v in amounts.items()}]
    ratios = []
    for combo in np.ndindex(*([4] * len(symbols))):
        amounts = [c + 1 for c in combo]
        if reduce(math.gcd, amounts) != 1:
            continue
        composition = Composition(dict(zip(symbols, amounts)))
        if len(symbols) == 1 or composition.oxi_state_guesses(max_sites=-1):
            ratios.append(dict(zip(symbols, amounts)))
    return sorted(ratios, key=lambda r: sum(r.values()))[:4]


def index_cells(peaks: Sequence[Peak], wavelength_A: float, systems: Sequence[str] = index.SYSTEMS,
                pause: Callable[[], None] = lambda: None
                ) -> tuple[list[index.Cell], list[index.Cell], list[tuple[index.Cell, index.SpaceGroupCandidate]]]:
    """The index stage of the solve: (ranked cells, the cells searched, (cell, space group) plans).

    The MAX_LINES strongest peaks are indexed (weak ones are where impurity phases and noise
    peaks hide). Positions alone cannot always tell a cell from a pseudo-symmetric one with a
    similar merit: up to CELLS_TRIED cells not far behind the best are searched, higher symmetry
    first, each in the space groups that _groups allows; the full-profile fit decides. The
    extinctions are judged on those lines and every weaker one of at least EXTINCTION_HEIGHT of
    the strongest: weak superstructure lines tell a primitive group from a centred one. A plan's
    cell has its axes in the order of the group's standard setting (orthorhombic groups), and the
    cells searched are those plan cells.
    """
    strongest = sorted(peaks, key=lambda p: -p.height)[:MAX_LINES]
    positions = sorted(p.two_theta for p in strongest)
    ranked = index.index(positions, wavelength_A, systems, pause=pause)
    lines = sorted({*positions, *(p.two_theta for p in peaks if p.height >= EXTINCTION_HEIGHT * strongest[0].height)})
    indexed = [c for c in ranked if c.merit >= CELL_MERIT_FRACTION * ranked[0].merit][:CELLS_TRIED] if ranked else []
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
    return [g for g in groups if g.unexplained == fewest][:GROUPS_TRIED]


def _fillings(cell: index.Cell, stoichiometries: list[dict[str, int]]) -> list[tuple[list[str], list[int]]]:
    """(species, atoms per cell) for formula-unit counts Z with a plausible volume per atom, smallest Z first
    (the simplest content; Z that no Wyckoff combination can hold yields no candidates and is passed over)."""
    fillings = []
    for units in stoichiometries:
        per_unit = sum(units.values())
        for z in range(1, MAX_ATOMS // per_unit + 1):
            volume_per_atom = cell.volume / (z * per_unit)
            if ATOM_VOLUME_A3[0] <= volume_per_atom <= ATOM_VOLUME_A3[1]:
                species = sorted(units)
                fillings.append((species, [units[s] * z for s in species]))
    return fillings


def _failure(message: str, timings: dict[str, float]) -> SolveResult:
    return SolveResult(lattice=(0.0,) * 6, space_group="", space_group_number=0, crystal_system="",
                       atoms=[], rwp=float("nan"), rp=float("nan"), gof=float("nan"),
                       timings=timings, solved=False, message=message)
