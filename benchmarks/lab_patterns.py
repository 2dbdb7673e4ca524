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
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import Element, Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from model.pattern import ANODES, Pattern, Provenance
from model.phases import bundled
from model.simulate import random_lab_params, simulate_pattern

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "structures"
TWO_THETA = np.arange(10.0, 90.0, 0.02)
STRAIN = (0.005, 0.015)  # c/a − 1 of --distort: the tetragonal strain of ferroelectric perovskites
POLAR_SHIFT = (0.02, 0.05)  # fractional z by which --distort moves one cation site


def add_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    """The options that choose the structures and their patterns; ``verb`` names what --only does."""
    parser.add_argument("--systems", nargs="+", default=["cubic", "hexagonal", "trigonal", "tetragonal"])
    parser.add_argument("--max-atoms", type=int, default=20)
    parser.add_argument("--limit", type=int, default=None, help="at most N structures per system")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--simulator", choices=("ours", "pymatgen"), default="ours")
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
            if args.simulator == "pymatgen":
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
