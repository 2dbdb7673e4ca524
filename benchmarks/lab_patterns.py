"""The benchmark patterns shared by benchmarks/index.py and benchmarks/solve.py: randomised Cu Kα
lab patterns of the shared real structures, drawn in one order so that both scripts see the same
pattern of a structure for the same --seed, --systems, --max-atoms and --limit (--only keeps them).

--simulator ours: model.simulate with model.simulate.random_lab_params (widths, Kα2, zero shift,
sample displacement, background, Poisson noise, preferred orientation). --simulator pymatgen:
pymatgen's XRDCalculator line list (other intensity conventions, no overall B, pseudo-Voigt lines of
fixed shape, an exponential background): a check that the pipeline does not rely on its own simulator.
--impurity FORMULA (ours only): a mixture with a bundled phase at --impurity-fraction by mass.

--distort (cubic structures only): each structure twice, first with a random polar tetragonal
distortion (distorted_structure; the truth is the distorted structure), then undistorted as its
control, each with its own randomised conditions.

--conditions dac: diamond-anvil-cell patterns instead (model.simulate.random_dac_params: λ 0.3–0.7 Å,
2θ 3° to 18–22°, a 0.02–0.03° step, broad textured lines, a strong background, few counts), with the
1–3 strongest lines of a pressure medium or gasket (MgO, Ne or Re) at 3–15 % of the sample's
strongest. Such a pattern's metadata lists its significant lines ("significant_lines_deg": the
sample's reflections merged where closer than the FWHM, kept where their net counts within the
FWHM exceed SIGNIFICANT_SIGMA σ of the counting noise there, and their FWHM), so that the peak
search's recall can be scored (``peak_recall``).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from numpy.polynomial.chebyshev import chebval
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import Element, Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from model.pattern import ANODES, Pattern, Provenance
from model.phases import bundled
from model.simulate import (
    Sample,
    march_dollase,
    params_torch,
    peaks_torch,
    random_dac_params,
    random_lab_params,
    reflections,
    simulate_pattern,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "structures"
TWO_THETA = np.arange(10.0, 90.0, 0.02)
STRAIN = (0.005, 0.015)  # c/a − 1 of --distort: the tetragonal strain of ferroelectric perovskites
POLAR_SHIFT = (0.02, 0.05)  # fractional z by which --distort moves one cation site
DAC_STEP_DEG = (0.02, 0.03)  # a DAC scan's step (degrees 2θ): a few hundred to ~900 points
SIGNIFICANT_SIGMA = 5.0  # a true line counts for recall where its net counts exceed 5σ of the noise
RECALL_FWHM = 0.5  # a line is found by a peak within half its FWHM (or 2 steps) of its position
MEDIUM_WEIGHT = (0.03, 0.15)  # a pressure medium's strongest line relative to the sample's strongest point


def pressure_media(rng: np.random.Generator) -> dict[str, Structure]:
    """The usual pressure media and gaskets, compressed to a random pressure's lattice constants (Å)."""
    return {
        "MgO": Structure.from_spacegroup("Fm-3m", Lattice.cubic(rng.uniform(4.0, 4.21)), ["Mg", "O"],
                                         [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "Ne": Structure.from_spacegroup("Fm-3m", Lattice.cubic(rng.uniform(3.6, 4.2)), ["Ne"], [[0, 0, 0]]),
        "Re": Structure.from_spacegroup("P6_3/mmc", Lattice.hexagonal(a := rng.uniform(2.68, 2.76), 1.615 * a),
                                        ["Re"], [[1 / 3, 2 / 3, 0.25]]),
    }


def add_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    """The options that choose the structures and their patterns; ``verb`` names what --only does."""
    parser.add_argument("--systems", nargs="+", default=["cubic", "hexagonal", "trigonal", "tetragonal"])
    parser.add_argument("--max-atoms", type=int, default=20)
    parser.add_argument("--limit", type=int, default=None, help="at most N structures per system")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--simulator", choices=("ours", "pymatgen"), default="ours")
    parser.add_argument("--conditions", choices=("lab", "dac"), default="lab",
                        help="Cu Kα lab patterns or diamond-anvil-cell ones (short λ, 2θ to ~20°, a pressure medium)")
    parser.add_argument("--only", nargs="+", default=None, metavar="TEXT",
                        help=f"{verb} only files whose name contains TEXT; the patterns stay those of the full run")
    parser.add_argument("--impurity", default=None, metavar="FORMULA",
                        help="a second phase from the bundled library (resources/phases), e.g. Si")
    parser.add_argument("--impurity-fraction", type=float, default=0.1, metavar="W",
                        help="the impurity's mass fraction (default 0.1)")
    parser.add_argument("--distort", action="store_true",
                        help="cubic structures with a random polar tetragonal distortion, and undistorted controls")


def lab_patterns(args: argparse.Namespace) -> Iterator[tuple[dict[str, str], Structure, Pattern]]:
    """(manifest row, true structure, simulated pattern) of each structure the options select; with
    --distort the row's "distortion" says what was done ("none" for a control) and its "spacegroup"
    is the distorted truth's."""
    rng = np.random.default_rng(args.seed)
    systems = ["cubic"] if args.distort else args.systems
    with open(DATA / "manifest.csv") as manifest:
        rows = [r for r in csv.DictReader(manifest)
                if r["crystal_system"] in systems and int(r["natoms_conventional"]) <= args.max_atoms
                and float(r["min_distance_A"]) >= 0.9]
    taken: dict[str, int] = defaultdict(int)
    for row in rows:
        if args.limit and taken[row["crystal_system"]] >= args.limit:
            continue
        taken[row["crystal_system"]] += 1
        truth = Structure.from_file(DATA / row["file"])
        variants = [(row, truth)]
        if args.distort:
            distorted, said = distorted_structure(truth, rng)
            number = SpacegroupAnalyzer(distorted, symprec=1e-3).get_space_group_number()
            variants = [({**row, "spacegroup": str(number), "distortion": said}, distorted),
                        ({**row, "distortion": "none"}, truth)]
        for described, structure in variants:
            if args.conditions == "dac":
                pattern = dac_pattern(structure, rng)
            elif args.simulator == "pymatgen":
                pattern = pymatgen_pattern(structure, rng)
            elif args.impurity:
                instrument, sample = random_lab_params(rng, ANODES["CuKa"])
                fraction = args.impurity_fraction
                pattern = simulate_pattern([structure, bundled(args.impurity).structure], instrument, TWO_THETA,
                                           sample, rng=rng, weight_fractions=[1 - fraction, fraction])
            else:
                instrument, sample = random_lab_params(rng, ANODES["CuKa"])
                pattern = simulate_pattern(structure, instrument, TWO_THETA, sample, rng=rng)
            if not args.only or any(text in row["file"] for text in args.only):
                yield described, structure, pattern


def distorted_structure(structure: Structure, rng: np.random.Generator) -> tuple[Structure, str]:
    """``structure`` (cubic, conventional cell) with c stretched by a random STRAIN and one site
    (symmetry-distinct orbit) of its most electropositive element, or for an element alone a site
    that is not all of it, moved along +z by a random POLAR_SHIFT; and what was done, in words."""
    strain = rng.uniform(*STRAIN)
    shift = rng.uniform(*POLAR_SHIFT)
    a, b, c, alpha, beta, gamma = structure.lattice.parameters
    orbits = SpacegroupAnalyzer(structure, symprec=1e-3).get_symmetry_dataset().equivalent_atoms
    cation = min(structure.composition.elements, key=lambda e: Element(e.symbol).X)
    sites = sorted({int(o) for o, site in zip(orbits, structure)
                    if site.specie == cation and np.sum(orbits == o) < len(structure)})
    moved = sites[int(rng.integers(len(sites)))]
    frac = structure.frac_coords + np.outer(orbits == moved, [0.0, 0.0, shift])
    distorted = Structure(Lattice.from_parameters(a, b, c * (1 + strain), alpha, beta, gamma),
                          structure.species, frac)
    return distorted, f"c/a {1 + strain:.4f}, {cation} site {moved} z {shift:+.3f}"


def pymatgen_pattern(structure: Structure, rng: np.random.Generator) -> Pattern:
    """A Cu Kα1+Kα2 lab pattern from pymatgen's line list: pseudo-Voigt lines with Caglioti widths,
    an exponential background, a zero shift and Poisson counting noise (all randomised)."""
    u, w = rng.uniform(0.0, 0.02), rng.uniform(0.002, 0.012)
    eta, zero = rng.uniform(0.2, 0.8), rng.uniform(-0.04, 0.04)
    counts = 10 ** rng.uniform(3.0, 5.0)
    profile = np.zeros_like(TWO_THETA)
    cu = ANODES["CuKa"]
    for wavelength, weight in ((cu.ka1, 1.0), (cu.ka2, cu.ratio)):
        lines = XRDCalculator(wavelength=wavelength).get_pattern(structure, scaled=False,
                                                                 two_theta_range=(5.0, 95.0))
        for position, height in zip(lines.x, lines.y):
            tan = np.tan(np.radians(position / 2))
            fwhm = np.sqrt(u * tan**2 + w)
            dx = (TWO_THETA - position - zero) / fwhm
            shape = eta / (np.pi * fwhm / 2 * (1 + 4 * dx**2)) + (1 - eta) * np.sqrt(4 * np.log(2) / np.pi) / fwhm \
                * np.exp(-4 * np.log(2) * dx**2)
            profile += weight * height * shape
    profile *= counts / profile.max()
    background = counts * (rng.uniform(0.01, 0.1) + rng.uniform(0.0, 0.2) * np.exp(-(TWO_THETA - 10.0) / 15.0))
    intensity = rng.poisson(profile + background).astype(float)
    return Pattern(TWO_THETA, intensity, np.sqrt(np.maximum(intensity, 1.0)), cu,
                   Provenance(format="pymatgen XRDCalculator, benchmark"))


def dac_pattern(structure: Structure, rng: np.random.Generator) -> Pattern:
    """A diamond-anvil-cell pattern (``random_dac_params``) of ``structure`` with the strongest 1–3
    lines of a random pressure medium; its metadata lists the sample's significant lines."""
    instrument, sample = random_dac_params(rng)
    low, high = instrument.two_theta_range
    grid = np.arange(low, high, rng.uniform(*DAC_STEP_DEG))
    refl = reflections(structure, instrument.d_min)
    groups = _line_groups(instrument.two_theta(refl.d), instrument, grid)
    own = [_peaks(grid, refl.subset(np.array(members)), instrument, sample) for members in groups]
    lines = np.sum(own, axis=0) if own else np.zeros_like(grid)
    height = max(lines.max(), 1e-300)
    medium_name, medium = list(pressure_media(rng).items())[rng.integers(3)]
    medium_refl = reflections(medium, instrument.d_min)
    at = instrument.two_theta(medium_refl.d)
    strength = np.where((at > low + 1) & (at < high - 0.5), medium_refl.multiplicity * medium_refl.f2, 0.0)
    strongest = np.argsort(strength)[::-1][: int(rng.integers(1, 4))]
    strongest = strongest[strength[strongest] > 0]
    medium_lines = np.zeros_like(grid)
    if strongest.size:
        medium_lines = _peaks(grid, medium_refl.subset(strongest), instrument, Sample())
        medium_lines *= rng.uniform(*MEDIUM_WEIGHT) * height / medium_lines.max()
    x = 2 * (grid - grid[0]) / (grid[-1] - grid[0]) - 1
    expected = lines + medium_lines + height * chebval(x, sample.background)
    norm = sample.counts / expected.max()
    expected *= norm
    intensity = rng.poisson(expected).astype(float)
    significant = []
    for members, line in zip(groups, own):
        centre = float(np.average(instrument.two_theta(refl.d[members]), weights=refl.multiplicity[members]
                                  * refl.f2[members]))
        fwhm = float(instrument.fwhm(centre))
        window = np.abs(grid - centre) <= fwhm / 2
        if norm * line[window].sum() > SIGNIFICANT_SIGMA * np.sqrt(expected[window].sum()):
            significant.append((centre, fwhm))
    metadata = {"formula": structure.composition.reduced_formula, "conditions": "dac", "medium": medium_name,
                "medium_lines": int(strongest.size), "significant_lines_deg": significant,
                "profile": {**dataclasses.asdict(instrument), **dataclasses.asdict(sample)}}
    return Pattern(grid, intensity, np.sqrt(np.maximum(intensity, 1.0)), instrument.wavelength,
                   Provenance(format="simulated DAC, benchmark", metadata=metadata))


def peak_recall(pattern: Pattern, peaks) -> tuple[int, int]:
    """(significant lines found, significant lines) of a ``dac_pattern``: a line is found where a
    peak of ``peaks`` (model.preprocess.Peak) lies within RECALL_FWHM of its FWHM (or 2 steps)."""
    lines = pattern.provenance.metadata["significant_lines_deg"]
    found = np.array([p.two_theta for p in peaks])
    hits = sum(bool(found.size) and np.abs(found - centre).min() <= max(RECALL_FWHM * fwhm, 2 * pattern.step)
               for centre, fwhm in lines)
    return hits, len(lines)


def _line_groups(position: np.ndarray, instrument, grid: np.ndarray) -> list[list[int]]:
    """Indices of the reflections inside the scan, those closer than the FWHM one line."""
    groups: list[list[int]] = []
    for i in np.argsort(position):
        if not grid[0] <= position[i] <= grid[-1]:
            continue
        if groups and position[i] - position[groups[-1][-1]] < instrument.fwhm(position[i]):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _peaks(grid: np.ndarray, refl, instrument, sample: Sample) -> np.ndarray:
    """The lines of ``refl`` on ``grid`` on one absolute scale (model.simulate.peaks_torch, the
    sample's preferred orientation): profiles of parts of a pattern add up to the whole."""
    weight = refl.multiplicity * refl.f2 * march_dollase(refl, sample.po_ratio, sample.po_direction)
    with torch.no_grad():
        y = peaks_torch(torch.from_numpy(refl.d.astype(float))[None], torch.from_numpy(weight.astype(float))[None],
                        torch.from_numpy(grid), torch.tensor([instrument.wavelength.ka1], dtype=torch.float64),
                        params_torch([instrument], dtype=torch.float64))
    return y[0].numpy()
