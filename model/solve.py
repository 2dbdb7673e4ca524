"""Structure solution from a powder pattern, in named stages: preprocess (background, peaks) →
index (cells and the space groups their extinctions allow, model.spacegroups) → search (Wyckoff
placements, model.search) → refine (screen the shortlist, refine the winner) → symmetrise (full
symmetry, alike ions) → verdict (solved or not, alternatives) → the network's density.

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
Given only the elements, a few formula units (model.composition) share a first search, the best
scoring one is searched again alone, and the best placements of the others are refined beside it.
The problem is made canonical first (model.composition.Chemistry) and every random draw is
seeded from it (problem_seed), so one problem gets one answer, however it is said and wherever.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SymmetryUndeterminedError

from model import (
    bond_valence,
    composition,
    constraints,
    distortion,
    index,
    search,
    wyckoff,
)
from model.data.systems import solved_lattice_systems
from model.density import Density
from model.errors import InputError
from model.fourier import with_maps
from model.instrument import Instrument
from model.lockstep import lockstep
from model.pattern import Pattern
from model.phases import second_phases
from model.preprocess import Peak, background, find_peaks
from model.refine import REPORT_S, TERMS, Rietveld
from model.refinement import Refinement, to_solve_result
from model.result import Progress, SolveResult
from model.scoring import Arm
from model.spacegroups import SpaceGroupCandidate, index_cells
from model.structure import conventional_standard
from model.verdict import judge

REFINED = 4
FORMULA_ROUNDS = 2  # rounds of model.search's successive halving in which formula units compete
FORMULAS_REFINED = 3  # formula units (without a given formula) whose best placement is refined, best search score first
SAME_SCORE = 1e-4  # search scores this close in one cell belong to the same structure
SCREEN_NFEV = 8  # least-squares evaluations per stage when comparing candidates
FINAL_NFEV = 40
SYMMETRISE_A = (0.3, 0.02)  # Å, tolerances for finding the full symmetry of a refined structure
SYMMETRY_RWP_SLACK = 0.5  # %, Rwp the fewer parameters of the higher symmetry may cost
SAME_RWP = 0.1  # %, refined fits this close describe the same structure
SAME_CELL_VOLUME = 1.1  # refined cells within this volume ratio are one cell (a supercell is ≥ 2×)
MAX_ATOMS = 40
ATOM_VOLUME_A3 = (7.0, 60.0)  # plausible volume per atom in inorganic solids
FILLINGS_TRIED = 5  # fillings (formula unit × count) tried per space group, the most plausible first
TYPICAL_ATOM_VOLUME_A3 = 15.0  # the middle of the usual 10–20 Å³ per atom of inorganic solids
WIDTH_PEAKS = 20  # strongest peaks whose widths give FWHM(2θ) for the search
# a subcell of a refined solution starts from its refined instrument: everything is refined at once
DISTORTION_STAGES = (("scale", "bkg", "zero", "cell", "profile", "xyz", "biso"),)

T = TypeVar("T")


def solve(pattern: Pattern, elements: Sequence[str], formula: str | None = None, system: str = "auto",
          samples: int = 4, device: str = "auto", seed: int = 0, possible: Sequence[str] = (),
          excluded: Sequence[str] = (), phase_folder: str | None = None) -> Generator[Progress, None, SolveResult]:
    """Solve ``pattern`` for a structure made of the known ``elements`` and perhaps some ``possible``
    ones, never ``excluded`` ones (stoichiometry from ``formula`` if given; model.composition);
    lines it leaves unexplained are tried against known phases (model.phases; ``phase_folder``: a
    folder of the user's CIFs besides the bundled ones)."""
    if pattern.wavelength is None:
        raise InputError(pattern.provenance.path or None, "the pattern states no wavelength: give one")
    lattice_systems = solved_lattice_systems(system)
    chem = composition.chemistry(elements, formula, possible, excluded)
    timings = _Stopwatch()
    problem = problem_seed(pattern, chem, lattice_systems, seed)
    rng = np.random.default_rng(problem)

    signal, peaks = yield from _timed(timings, "preprocess", _preprocess(pattern))
    if len(peaks) < 4:
        return _failure(f"only {len(peaks)} peaks found; at least 4 are needed to index", timings)
    cells, plans, undecided = yield from _timed(timings, "index", _index(pattern, peaks, lattice_systems))
    if not cells:
        return _failure("no cell indexes the peak list", timings)
    stoichiometries = composition.stoichiometries(chem, cells[0].volume, MAX_ATOMS)
    predictor, note = _predictor(device)
    yield from _timed(timings, "preview", _preview(pattern, cells[0], stoichiometries[0], predictor, problem))
    # without a formula, the formula units compete in the search's first rounds (_focused)
    rounds = search.ROUNDS if len(stoichiometries) == 1 else search.ROUNDS[:FORMULA_ROUNDS]
    candidates = yield from _timed(timings, "search", _search(pattern, signal, peaks, plans, stoichiometries, rng,
                                                              rounds))
    if len(stoichiometries) > 1 and candidates:
        candidates = yield from _timed(timings, "search formula", _focused(pattern, signal, peaks, plans, candidates,
                                                                           rng))
    if not candidates:
        return _failure("no Wyckoff placement of the composition fits the indexed cells", timings)
    shortlist = _shortlist(candidates)
    shortlist += _other_formulas(candidates, shortlist)
    screened, order, best = yield from _timed(timings, "refine", _refine(pattern, peaks, shortlist))
    best = yield from _timed(timings, "distort", _lower_symmetry(pattern, best))
    best = yield from _timed(timings, "phases", second_phases(pattern, peaks, best, [*elements, *possible],
                                                              phase_folder))
    with timings.stage("verdict"):
        result = _verdict(best, screened, order, len(candidates), pattern)
    yield from _timed(timings, "network", _densities(result, pattern, stoichiometries[0], samples, predictor,
                                                     problem))
    result.message += f"; {note}" + (f"; {undecided}" if undecided else "")
    result.timings = {**timings.wall, "total": sum(timings.wall.values())}
    result.cpu_timings = {**timings.cpu, "total": sum(timings.cpu.values())}
    yield Progress("done", 1.0, f"{result.space_group} Rwp {result.rwp:.2f} %")
    return result


def problem_seed(pattern: Pattern, chem: composition.Chemistry, lattice_systems: Sequence[str], seed: int) -> int:
    """The seed of every random choice of a solve: the user's ``seed`` mixed with a stable hash of
    the problem (the canonical chemistry, the lattice systems indexed, the wavelength and the pattern's
    points), so that one problem draws the same numbers in every run, process and front end, and
    the same sample said in another order or spelling is the same problem (Python's hash() of a
    string differs from process to process)."""
    wavelength = pattern.wavelength
    said = (seed, chem, tuple(lattice_systems), wavelength.ka1, wavelength.ka2, wavelength.ratio)
    digest = hashlib.sha256(repr(said).encode())
    for values in (pattern.two_theta, pattern.intensity):
        digest.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return int.from_bytes(digest.digest()[:8], "little") >> 1  # 63 bits: a torch seed, with room for + draw


class _Stopwatch:
    """Wall-clock and CPU seconds per stage of a solve: the CPU seconds of this process follow the
    work done far more closely than the wall clock when other processes load the machine (measured
    on 2 shared cores: wall 2–4× CPU, CPU within ±15 % from run to run)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.wall[name] = time.perf_counter() - wall
        self.cpu[name] = time.process_time() - cpu


def _timed(timings: _Stopwatch, stage: str, job: Generator[Progress, None, T]) -> Generator[Progress, None, T]:
    """Run a stage of the solve, its seconds recorded in ``timings``."""
    with timings.stage(stage):
        return (yield from job)


def _preprocess(pattern: Pattern) -> Generator[Progress, None, tuple[np.ndarray, list[Peak]]]:
    """The pattern above its background, and its peaks."""
    yield Progress("preprocess", 0.0, "background and peak search")
    base = background(pattern)
    return pattern.intensity - base, find_peaks(pattern, background_counts=base)


def _index(pattern: Pattern, peaks: list[Peak], lattice_systems: Sequence[str]
           ) -> Generator[Progress, None, tuple[list[index.Cell], list[tuple[index.Cell, SpaceGroupCandidate]], str]]:
    """The cells searched, the (cell, space group) plans (model.spacegroups.index_cells) and what
    the positions could not decide between (model.index.undecided)."""
    yield Progress("index", 0.05, f"{len(peaks)} peaks")
    ranked, cells, plans = yield from lockstep(
        lambda pause: index_cells(peaks, pattern.wavelength.ka1, lattice_systems, pause),
        REPORT_S, Progress("index", 0.05, f"{len(peaks)} peaks, cells and space groups"))
    return cells, plans, index.undecided(ranked)


def _search(pattern: Pattern, signal: np.ndarray, peaks: list[Peak],
            plans: list[tuple[index.Cell, SpaceGroupCandidate]], stoichiometries: list[dict[str, int]],
            rng: np.random.Generator, rounds=search.ROUNDS
            ) -> Generator[Progress, None, list[tuple[search.Candidate, index.Cell]]]:
    """Placements of every plan's plausible fillings, best first, each with its cell (``rounds``:
    model.search's successive halving)."""
    arms, arm_cells = [], []
    for cell, group in plans:
        yield Progress("search", 0.1, f"Wyckoff positions of {group.symbol}")
        lattice = Lattice.from_parameters(*cell.lattice)
        fillings = [f for f in _fillings(cell, stoichiometries) if wyckoff.feasible(group.number, f[1])]
        for species, counts in fillings[:FILLINGS_TRIED]:
            arms.append(Arm(lattice, cell.zero, group.number, tuple(species), tuple(counts)))
            arm_cells.append(cell)
    job = search.search(pattern, signal, arms, fwhm_poly(peaks), rng, rounds)
    found = yield from _rescaled(job, 0.1, 0.6)
    return [(candidate, arm_cells[candidate.arm]) for candidate in found]


def _focused(pattern: Pattern, signal: np.ndarray, peaks: list[Peak], plans: list[tuple[index.Cell, SpaceGroupCandidate]],
             candidates: list[tuple[search.Candidate, index.Cell]], rng: np.random.Generator
             ) -> Generator[Progress, None, list[tuple[search.Candidate, index.Cell]]]:
    """Without a formula: the formula unit of the best-scoring placement searched again alone, with
    the effort a given formula gets, its placements first and those of the other formula units
    after them (_other_formulas). Sharing the search among several formula units leaves each too
    few arms to find the right space group (measured: KLaTiO4 found as KLaTiO4 in P-4m2, not P4/nmm)."""
    amounts = candidates[0][0].structure.composition.reduced_composition.get_el_amt_dict()
    units = {element: round(amount) for element, amount in amounts.items()}
    again = yield from _search(pattern, signal, peaks, plans, [units], rng)
    return again + [c for c in candidates if c[0].structure.composition.reduced_formula
                    != candidates[0][0].structure.composition.reduced_formula]


def _shortlist(candidates: list[tuple[search.Candidate, index.Cell]]) -> list[tuple[search.Candidate, index.Cell]]:
    """The REFINED candidates to refine: the best placement of every cell, then the best of every
    space group, then the next best. The extra freedom of a supercell or a subgroup can fit the
    search score better than the true cell and group; the full profile with the simplest
    description decides (_refine)."""
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

    def first_of(key):
        return [c for n, c in enumerate(distinct) if all(key(c) != key(d) for d in distinct[:n])]

    shortlist: list[tuple[search.Candidate, index.Cell]] = []
    for tier in (first_of(lambda c: id(c[1])), first_of(lambda c: (id(c[1]), c[0].space_group)), distinct):
        shortlist += [c for c in tier if all(c is not s for s in shortlist)]
    return shortlist[:REFINED]


def _other_formulas(candidates: list[tuple[search.Candidate, index.Cell]],
                    shortlist: list[tuple[search.Candidate, index.Cell]]) -> list[tuple[search.Candidate, index.Cell]]:
    """The best placement of each of the FORMULAS_REFINED formula units that score best in the search
    and are not in ``shortlist`` (without a formula, several are searched): the search score hardly
    tells a formula unit from one with an oxygen more or less (measured: KLaTiO3 0.318, KLaTiO4
    0.322 on measured KLaTiO4), the full profile does."""
    formulas = list(dict.fromkeys(c.structure.composition.reduced_formula for c, _ in shortlist))
    others = []
    for candidate, cell in candidates:
        formula = candidate.structure.composition.reduced_formula
        if formula not in formulas:
            formulas.append(formula)
            if len(formulas) > FORMULAS_REFINED:
                break
            others.append((candidate, cell))
    return others


def _refine(pattern: Pattern, peaks: list[Peak], shortlist: list[tuple[search.Candidate, index.Cell]]
            ) -> Generator[Progress, None, tuple[list[Rietveld], list[int], Refinement]]:
    """The shortlist refined to screening depth, the winner refined fully, in its full symmetry and
    with its best assignment of alike ions: (the screened problems in shortlist order, the shortlist
    indices with the winner's first and the others by Rwp, the best refinement)."""
    problems = yield from _screen(pattern, peaks, shortlist)
    problems.sort(key=lambda p: p[0])
    winner_index, winner = _winner(problems)
    best = yield from _fitted(winner, Progress("refine", 0.95, "final refinement of the best candidate"),
                              max_nfev=FINAL_NFEV, terms=TERMS)
    best = yield from _symmetrised(pattern, best)
    best = yield from _alike_ions_assigned(pattern, best)
    best = yield from _pseudo_inversions(pattern, best)
    order = [winner_index] + [i for _, i, problem in problems if problem is not winner]
    screened = [next(p for _, j, p in problems if j == i) for i in range(len(shortlist))]
    return screened, order, best


def _screen(pattern: Pattern, peaks: list[Peak], shortlist: list[tuple[search.Candidate, index.Cell]]
            ) -> Generator[Progress, None, list[tuple[float, int, Rietveld]]]:
    """(Rwp, shortlist index, problem) of each candidate refined to screening depth.

    Refined freely first: atoms of a placement near the truth may have to pass close to each other
    on their way (measured: Nd(CoB)4's B pairs). One that ends with atoms run onto each other and
    fits better than every sound one is refined again from the start, restrained (measured: a wrong
    TiPbO3 placement with O 1.15 Å from Pb won freely)."""
    fwhm = float(np.median([p.fwhm for p in sorted(peaks, key=lambda p: -p.height)[:10]]))

    def screened(i: int, restrain: bool):
        candidate, cell = shortlist[i]
        problem = Rietveld(pattern, candidate.structure, Instrument.from_fwhm(pattern.wavelength, fwhm, cell.zero),
                           restrain_contacts=restrain)
        progress = Progress("refine", 0.6 + 0.3 * i / len(shortlist), f"candidate {i + 1}/{len(shortlist)}")
        refined = yield from _fitted(problem, progress, max_nfev=SCREEN_NFEV)
        return refined.rwp, i, problem

    problems = []
    for i in range(len(shortlist)):
        problems.append((yield from screened(i, restrain=False)))
    sound = min((p[0] for p in problems if not p[2].too_close()), default=np.inf)
    for n, (rwp, i, problem) in enumerate(problems):
        if rwp < sound and problem.too_close():
            problems[n] = yield from screened(i, restrain=True)
    return problems


def _winner(problems: list[tuple[float, int, Rietveld]]) -> tuple[int, Rietveld]:
    """Of fits (sorted by Rwp) equal within the slack, the smallest cell (a supercell fits as well
    with more atoms), and of equal fits in it the highest symmetry (the same structure found in a
    subgroup): its shortlist index and problem."""
    smallest = min(_cell_volume(p[2]) for p in problems if p[0] <= problems[0][0] + SYMMETRY_RWP_SLACK)
    fits = [p for p in problems if _cell_volume(p[2]) < smallest * SAME_CELL_VOLUME]
    _, winner_index, winner = max((p for p in fits if p[0] <= fits[0][0] + SAME_RWP),
                                  key=lambda p: (p[2].phases[0].ops.number, -p[0]))
    return winner_index, winner


def _cell_volume(problem: Rietveld) -> float:
    """Cell volume (Å³) of the first phase: the cell's size whatever the formula unit (without a
    formula, one with fewer atoms in the same cell is no smaller cell)."""
    return problem.phases[0].structure.volume


def _fitted(problem: Rietveld, progress: Progress, **options) -> Generator[Progress, None, Refinement]:
    """``problem`` fitted (Rietveld.fit's ``options``), reporting ``progress`` between steps."""
    for _ in problem.fit(**options):
        yield progress
    return problem.result()


def _refit(pattern: Pattern, structure: Structure, best: Refinement, message: str
           ) -> Generator[Progress, None, Refinement]:
    """Another description of the best structure, refined fully from the best fit's profile with the
    anti-bump restraints: it replaces the best one where it fits within the slack."""
    problem = Rietveld(pattern, structure, best.instrument, restrain_contacts=True)
    refined = yield from _fitted(problem, Progress("refine", 0.97, message), max_nfev=FINAL_NFEV, terms=TERMS)
    return refined if refined.rwp <= best.rwp + SYMMETRY_RWP_SLACK else best


def _symmetrised(pattern: Pattern, best: Refinement) -> Generator[Progress, None, Refinement]:
    """The best structure in its full symmetry, in its conventional standard cell.

    A structure found in a subgroup cell (e.g. fcc as body-centred tetragonal) is reported in its
    full symmetry: spglib at refinement-sized tolerances (a light atom refined in a polar subgroup
    drifts farther than a heavy one), the highest symmetry first, each refined in its conventional
    standard cell; the first that fits within the slack is kept. Also where the symmetry is
    already found but in another cell (fcc as the I-centred tetragonal cell): the report, the CIF
    and the sites are in the conventional standard cell."""
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
        symmetric = yield from _refit(pattern, standard, best, "refinement in the full symmetry")
        if symmetric is not best:
            return symmetric
    return best


def _alike_ions_assigned(pattern: Pattern, best: Refinement) -> Generator[Progress, None, Refinement]:
    """Ions of equal electron count (K⁺/Ca²⁺) scatter alike: of their assignments to the sites the
    best bond-valence agreement wins, where it fits the profile as well."""
    valences = composition.valences(best.structure.composition.get_el_amt_dict())
    if valences is None:
        return best
    options = bond_valence.assignments(best.structure, [site.orbit for site in best.atoms], valences)
    chosen = min(options, key=lambda s: bond_valence.instability(s, valences))
    if chosen is options[0]:
        return best
    return (yield from _refit(pattern, chosen, best, "refinement of the bond-valence assignment of alike ions"))


def _pseudo_inversions(pattern: Pattern, best: Refinement) -> Generator[Progress, None, Refinement]:
    """The best structure's light sites on their images through its heavy atoms' inversion centre
    (model.distortion.pseudo_inverted: a pattern dominated by heavy atoms hardly tells them apart),
    each refined fully from the best fit's instrument (a screening-depth fit does not tell them:
    measured on PbVO3, 3.4–3.7 % for the images and 3.4 % for the wrong best, the truth's image
    1.01 % refined fully), the best kept where it fits better than the best structure."""
    images = []
    for n, structure in enumerate(distortion.pseudo_inverted(best.structure)):
        problem = Rietveld(pattern, structure, best.instrument, restrain_contacts=True)
        progress = Progress("refine", 0.97, f"light sites on their images through the heavy atoms, {n + 1}")
        images.append((yield from _fitted(problem, progress, max_nfev=FINAL_NFEV, terms=TERMS)))
    return min([best, *images], key=lambda fit: fit.rwp)


def _lower_symmetry(pattern: Pattern, best: Refinement) -> Generator[Progress, None, Refinement]:
    """A cubic solution, or its best tetragonal subcell (model.distortion) where that fits
    significantly better than the cubic parent refined alike (Hamilton's test). Whatever its Rwp:
    a cubic fit of resolved split lines is poor (Rwp 32 % at c/a 1.01 with 0.1° lines).

    Each fit starts from the parent's instrument with everything free at once. Screened first: the
    parent and c stretched and squeezed; where the better of these passes the test, each site of
    it moved along c (polar), the best kept where it passes the test against the non-polar one;
    then the subcell and the parent are refined fully, the optional terms the parent kept tried
    again, and tested again."""
    if best.space_group.crystal_system != "cubic":
        return best

    def fitted(structure: Structure, start: Instrument, message: str, **options):
        problem = Rietveld(pattern, structure, start, restrain_contacts=True)
        refined = yield from _fitted(problem, Progress("refine", 0.97, message), stages=DISTORTION_STAGES, **options)
        return refined, len(problem.refined)

    def better(simpler, richer) -> bool:
        return distortion.lower_is_better(simpler[0].rwp, simpler[1], richer[0].rwp, richer[1], observations)

    def refined_further(fit, message: str, **options):
        return (yield from fitted(fit[0].structure, fit[0].instrument, message, **options))

    observations = distortion.observations(pattern, best.instrument)
    parent = yield from fitted(best.structure, best.instrument, "the cubic parent", max_nfev=SCREEN_NFEV)
    signs = []
    for strain in (distortion.STRAIN_START, -distortion.STRAIN_START):
        signs.append((yield from fitted(distortion.stretched(best.structure, strain), best.instrument,
                                        "tetragonal subcells", max_nfev=SCREEN_NFEV)))
    lower = min(signs, key=lambda fit: fit[0].rwp)
    if not better(parent, lower):
        return best
    polar = []
    for structure in distortion.polar_trials(lower[0].structure):
        polar.append((yield from fitted(structure, lower[0].instrument, "polar tetragonal subcells",
                                        max_nfev=SCREEN_NFEV)))
    if polar and better(lower, min(polar, key=lambda fit: fit[0].rwp)):
        lower = min(polar, key=lambda fit: fit[0].rwp)
    message = "the best tetragonal subcell and its cubic parent"
    parent = yield from refined_further(parent, message, max_nfev=FINAL_NFEV, terms=best.terms)
    lower = yield from refined_further(lower, message, max_nfev=FINAL_NFEV, terms=best.terms)
    return lower[0] if better(parent, lower) else best


def _verdict(best: Refinement, screened: list[Rietveld], order: list[int], placements: int,
             pattern: Pattern) -> SolveResult:
    """The best refinement as the solution with its difference maps, whether it explains the pattern
    (model.verdict), and the other screened candidates as alternatives (``order``: shortlist
    indices, the solution's first)."""
    others = [screened[i].result() for i in order[1:]]
    result = with_maps(to_solve_result(best))
    result.verdict = judge(pattern, best, result, others)
    result.solved = result.verdict.solved
    result.message = (f"best of {placements} placements, {len(screened)} refined" if result.solved else
                      "not solved, best candidate kept: " + "; ".join(result.verdict.reasons))
    for i, other in zip(order[1:], others):
        alternative = to_solve_result(other)
        alternative.solved = False  # screening depth: not judged
        alternative.message = f"candidate {i + 1} of {len(screened)}, refined to screening depth only"
        result.alternatives.append(alternative)
    return result


def _densities(result: SolveResult, pattern: Pattern, formula_units: dict[str, int], samples: int, predictor,
               seed: int) -> Generator[Progress, None, None]:
    """The network's density (``predictor``: a model.predict.Predictor, or None where there is
    none) of each solution in the solution's own refined cell, with its atoms, for display.

    Not the indexed cell a solution was found in: Mg2Si's cubic solution came from a tetragonal
    candidate, and its exported map carried the tetragonal cell. The density does not rank the
    placements (measured: the bundled network's SSIM does not tell the right placement from wrong
    ones). The best solution gets the mean of ``samples`` draws; another one draw, a preview like its
    screening-depth fit (~0.2 s a draw on 2 cores)."""
    yield Progress("network", 0.97, "density")
    result.device = "cpu"
    if predictor is None:
        return
    for solution in [result, *result.alternatives]:
        draws = []
        for k in range(samples if solution is result else 1):  # a call a draw: a cancel waits for one
            draws += predictor.predict(pattern, formula_units, solution.lattice, solution.crystal_system,
                                       seed=seed + k)
            yield Progress("network", 0.97, f"density of the {solution.space_group} solution")
        solution.density = Density(np.mean([d.values for d in draws], axis=0), draws[0].lattice,
                                   solution.structure, kind="network")
    result.model_version, result.device = predictor.version, predictor.device


def _preview(pattern: Pattern, cell: index.Cell, formula_units: dict[str, int], predictor,
             seed: int) -> Generator[Progress, None, None]:
    """What the network (``predictor``, or None) sees in the best indexed cell, shown while the
    search runs (one draw, no atoms yet); nothing where there is no network or it does not take
    the cell's system."""
    if predictor is None:
        return
    try:
        (draw,) = predictor.predict(pattern, formula_units, cell.lattice, cell.crystal_system, seed=seed)
    except (InputError, ValueError, KeyError):
        return
    yield Progress("index", 0.1, f"the network's density in the indexed {cell.crystal_system} cell", preview=draw)


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


def _fillings(cell: index.Cell, stoichiometries: list[dict[str, int]]) -> list[tuple[list[str], list[int]]]:
    """(species, atoms per cell) for formula-unit counts Z with a plausible volume per atom: of a given
    formula the most typical volume per atom first, of guessed ones the most plausible first
    (model.composition.implausibility: charge balance, size, the cell's volume)."""
    fillings = []
    for units in stoichiometries:
        per_unit = sum(units.values())
        for z in range(1, MAX_ATOMS // per_unit + 1):
            volume_per_atom = cell.volume / (z * per_unit)
            if ATOM_VOLUME_A3[0] <= volume_per_atom <= ATOM_VOLUME_A3[1]:
                species = sorted(units)
                # a given formula keeps the typical volume per atom (measured: the summed atom volumes put
                # AlPO4's Z=3 first, and its P6_3mc Z=2 was lost); guessed ones are ranked by plausibility
                fillings.append((abs(math.log(volume_per_atom / TYPICAL_ATOM_VOLUME_A3)) if len(stoichiometries) == 1
                                 else composition.implausibility(units, cell.volume, z),
                                 (species, [units[s] * z for s in species])))
    return [filling for _, filling in sorted(fillings, key=lambda f: f[0])]


def fwhm_poly(peaks: Sequence[Peak]) -> np.ndarray:
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


def _failure(message: str, timings: _Stopwatch) -> SolveResult:
    return SolveResult(lattice=(0.0,) * 6, space_group="", space_group_number=0, crystal_system="",
                       atoms=[], rwp=float("nan"), rp=float("nan"), gof=float("nan"),
                       timings=timings.wall, cpu_timings=timings.cpu, solved=False, message=message)
