"""Second phases: lines a refined main phase leaves unexplained, tried against simple known phases.

Real samples carry unreacted elements, a pressure medium (MgO) or an internal standard (Si, LaB6).
After the main phase is refined, an observed peak (model.preprocess) is unexplained where the
difference curve keeps at least UNEXPLAINED of its height. The candidates are the bundled library's
(resources/phases, built by scripts/build_phases.py) elemental phases and binaries of the user's
elements and its diffraction standards, and the CIFs of a user's folder. A candidate must explain
unexplained peaks, and its lines that would stand clear of the noise must be observed, at one lattice
strain within ±STRAIN (a real phase's cell is not the reference's); the best few are refined with
the main phase (model.refine, Hill–Howard weight fractions) and one is kept only where the mixture
fits significantly better (model.significance) and the lines it claimed are explained by the fit.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Structure

from model import significance
from model.errors import InputError
from model.pattern import Pattern
from model.preprocess import Peak, noise_level
from model.refine import TERMS, Rietveld
from model.refinement import Refinement
from model.result import Progress
from model.simulate import sticks as stick_pattern

LIBRARY = Path(__file__).resolve().parents[1] / "resources" / "phases"
UNEXPLAINED = 0.5  # of a peak's height left in the difference curve: the fit does not account for it
NOISE_SIGMAS = 5.0  # ... and at least this many σ of the noise, so that noise is never a line
STRAIN = 0.01  # ±, relative cell edge: a phase's cell differs from its reference by composition and temperature
STRAIN_STEPS = 81  # strains tried across ±STRAIN (0.025 % apart: 0.01° 2θ at 40°)
DETECTED = 10.0  # σ of the noise a line's expected height must reach to have to be observed: peaks are
# found from 4 σ (model.preprocess), and heights scaled from another line are rough (widths, overlap)
MATCH_FWHM = 0.5  # a line within this many FWHM of a peak (and its position error) is that peak
MATCH_FLOOR_DEG = 0.02  # ... and never a narrower window, degrees 2θ
TRIED = 2  # best-matching candidates refined with the main phase, per phase added
MAX_ADDED = 2  # phases added beside the main one
NFEV = 20  # least-squares evaluations per stage of a mixture's refinement


@dataclass(frozen=True)
class KnownPhase:
    """A phase that may be in the sample: its name (formula), structure and where it comes from."""

    name: str
    structure: Structure
    source: str


@dataclass(frozen=True)
class Match:
    """A candidate's lines against the peaks at its best strain (relative, cell edges × 1 + strain):
    the unexplained peaks (indices into the list given) it accounts for and their summed height."""

    phase: KnownPhase
    strain: float
    explained: tuple[int, ...]
    height: float


def unexplained(peaks: Sequence[Peak], fit: Refinement) -> list[Peak]:
    """The observed peaks that the refined model leaves in the difference curve (UNEXPLAINED of
    their height, NOISE_SIGMAS above the noise)."""
    profile = fit.fit
    difference = np.interp([p.two_theta for p in peaks], profile.two_theta, profile.difference)
    noise = noise_level(profile.difference)
    return [p for p, left in zip(peaks, difference) if left >= UNEXPLAINED * p.height and left >= NOISE_SIGMAS * noise]


def candidates(elements: Sequence[str], folder: str | Path | None = None) -> list[KnownPhase]:
    """The bundled standards, elements and binaries among ``elements``, and every CIF in ``folder``."""
    wanted = set(elements)
    found = [KnownPhase(name, _bundled(file), source) for name, file, source, standard in _index()
             if standard or set(Composition(name).get_el_amt_dict()) <= wanted]
    return found + user_phases(folder) if folder is not None else found


def bundled(formula: str) -> KnownPhase:
    """The bundled library's phase of a reduced ``formula`` (e.g. "Si")."""
    for name, file, source, _ in _index():
        if name == formula:
            return KnownPhase(name, _bundled(file), source)
    raise InputError(LIBRARY / "index.csv", f"has no phase {formula}")


def user_phases(folder: str | Path) -> list[KnownPhase]:
    """Every structure in the CIFs of ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "is not a folder of CIFs")
    phases = []
    for path in sorted(folder.glob("*.cif")):
        try:
            structure = Structure.from_file(path)
        except (ValueError, KeyError, IndexError) as error:
            raise InputError(path, f"not a readable CIF ({error})") from None
        phases.append(KnownPhase(structure.composition.reduced_formula, structure, str(path)))
    return phases


def match(phase: KnownPhase, peaks: Sequence[Peak], lost: Sequence[int], pattern: Pattern,
          fit: Refinement) -> Match | None:
    """``phase``'s lines against the observed ``peaks`` (``lost``: the unexplained ones' indices) at
    the strain that explains the most unexplained height; None where no strain does. Every line
    the phase would show above DETECTED σ of the noise, at the height its unexplained peaks give
    it, must be observed (a weak phase's weak lines may be missing, a strong one's may not)."""
    wavelength = pattern.wavelength.ka1
    lines = stick_pattern(phase.structure, wavelength, (pattern.two_theta[0], pattern.two_theta[-1]))
    if not len(lines):
        return None
    observed = np.array([p.two_theta for p in peaks])
    window = np.array([max(MATCH_FWHM * p.fwhm, 2 * p.two_theta_err, MATCH_FLOOR_DEG) for p in peaks])
    noise = noise_level(fit.fit.difference)
    best = None
    for strain in np.linspace(-STRAIN, STRAIN, STRAIN_STEPS):
        tth = fit.instrument.two_theta(lines.d * (1 + strain), wavelength)
        near = np.abs(tth[:, None] - observed[None, :]) <= window[None, :]
        explained = tuple(i for i in lost if near[:, i].any())
        if not explained:
            continue
        # peak height per unit of line intensity, from the strongest line on an unexplained peak
        per_line = max(peaks[i].height / lines.intensity[near[:, i]].max() for i in explained)
        if not near[lines.intensity * per_line >= DETECTED * noise].any(axis=1).all():
            continue
        height = sum(peaks[i].height for i in explained)
        if best is None or height > best.height:
            best = Match(phase, float(strain), explained, height)
    return best


def second_phases(pattern: Pattern, peaks: Sequence[Peak], best: Refinement, elements: Sequence[str],
                  folder: str | Path | None = None) -> Generator[Progress, None, Refinement]:
    """``best`` with the known phases that explain its unexplained lines refined beside it (at most
    MAX_ADDED); ``best`` itself where every line is explained or no phase pays."""
    lost = unexplained(peaks, best)
    if not lost:
        return best
    known = [p for p in candidates(elements, folder)
             if p.structure.composition.reduced_formula != best.structure.composition.reduced_formula]
    while lost and len(best.phases) <= MAX_ADDED:
        yield Progress("phases", 0.96, f"{len(lost)} unexplained lines against {len(known)} known phases")
        index = [peaks.index(p) for p in lost]
        matches = [m for m in (match(p, peaks, index, pattern, best) for p in known) if m is not None]
        matches.sort(key=lambda m: -m.height)
        tried = []
        for m in matches[:TRIED]:
            yield Progress("phases", 0.96, f"refining {m.phase.name} ({m.phase.source}) beside the main phase")
            tried.append(((yield from _with_phase(pattern, peaks, best, m)), m))
        kept = [(fit, m) for fit, m in tried if fit is not None]
        if not kept:
            break
        best, added = min(kept, key=lambda t: t[0].rwp)
        known = [p for p in known if p is not added.phase]
        lost = unexplained(peaks, best)
    return best


def _with_phase(pattern: Pattern, peaks: Sequence[Peak], best: Refinement, found: Match
                ) -> Generator[Progress, None, Refinement | None]:
    """The mixture of ``best``'s phases and the matched one refined, where it fits significantly
    better than ``best`` (Hamilton's test on Rwp) and explains peaks that ``best`` left
    unexplained; else None."""
    structures = [_with_biso(phase.structure, phase.atoms) for phase in best.phases]
    strained = found.phase.structure.copy()
    strained.scale_lattice(strained.volume * (1 + found.strain) ** 3)
    try:
        problem = Rietveld(pattern, [*structures, strained], best.instrument)
    except InputError:  # no line of the phase in the measured range
        return None
    for _ in problem.fit(max_nfev=NFEV, terms=TERMS):
        yield Progress("phases", 0.96, f"refining {found.phase.name} beside the main phase")
    mixture = problem.result()
    added = problem.phases[-1].slices.values()
    extra = sum(1 for i in problem.refined if any(s.start <= i < s.stop for s in added))
    fwhm = float(np.median([p.fwhm for p in peaks]))
    observations = significance.effective_observations(pattern.two_theta.size, pattern.step, fwhm)
    if not significance.richer_is_better(best.rwp, mixture.rwp, extra, observations, len(problem.refined)):
        return None
    still = unexplained([peaks[i] for i in found.explained], mixture)
    return mixture if len(still) < len(found.explained) else None


def _with_biso(structure: Structure, atoms) -> Structure:
    """The refined structure with its refined Biso (Å²) as the site property a Rietveld starts from."""
    return Structure(structure.lattice, structure.species_and_occu, structure.frac_coords,
                     site_properties={"biso": [atom.biso for atom in atoms]})


@lru_cache(maxsize=1)
def _index() -> tuple[tuple[str, str, str, bool], ...]:
    with open(LIBRARY / "index.csv", newline="") as rows:
        return tuple((r["formula"], r["file"], r["source"], r["standard"] == "1") for r in csv.DictReader(rows))


@cache
def _bundled(file: str) -> Structure:
    with warnings.catch_warnings():  # the library's 5-digit coordinates of special positions: pymatgen
        warnings.simplefilter("ignore")  # announces rounding them to their exact values
        return Structure.from_file(LIBRARY / file)
