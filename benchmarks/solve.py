"""Solve benchmark: simulated lab Cu Kα patterns of the shared real structures (≤ 20 atoms).

Each structure gets a randomised lab pattern (model.simulate.random_lab_params: widths, Kα2,
zero shift, background, Poisson noise, preferred orientation); the solve sees only the pattern
and the formula. With --simulator pymatgen the patterns come from pymatgen's XRDCalculator line
list instead of model.simulate (other intensity conventions, no overall B, pseudo-Voigt lines of
fixed shape, an exponential background): a check that the solve does not rely on its own simulator.
Prints, per structure, the outcome, and in the end the pymatgen StructureMatcher
match rate per crystal system, median and max time per stage, and the median Rwp.
Run: OMP_NUM_THREADS=1 python benchmarks/solve.py [--systems cubic tetragonal ...] [--limit N] [--only TEXT ...]
     [--seed N] [--simulator ours|pymatgen]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.exporters import solve_result_structure
from model.pattern import ANODES, Pattern, Provenance
from model.simulate import random_lab_params, simulate_pattern
from model.solve import solve

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "structures"
TWO_THETA = np.arange(10.0, 90.0, 0.02)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", nargs="+", default=["cubic", "hexagonal", "trigonal", "tetragonal"])
    parser.add_argument("--max-atoms", type=int, default=20)
    parser.add_argument("--limit", type=int, default=None, help="at most N structures per system")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--simulator", choices=("ours", "pymatgen"), default="ours")
    parser.add_argument("--only", nargs="+", default=None, metavar="TEXT",
                        help="solve only files whose name contains TEXT; the patterns stay those of the full run")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(args.seed)
    with open(DATA / "manifest.csv") as manifest:
        rows = [r for r in csv.DictReader(manifest)
                if r["crystal_system"] in args.systems and int(r["natoms_conventional"]) <= args.max_atoms
                and float(r["min_distance_A"]) >= 0.9]
    taken = defaultdict(int)
    matches = defaultdict(list)
    stage_times = defaultdict(list)
    rwps = []
    matcher = StructureMatcher()
    for row in rows:
        if args.limit and taken[row["crystal_system"]] >= args.limit:
            continue
        taken[row["crystal_system"]] += 1
        truth = Structure.from_file(DATA / row["file"])
        if args.simulator == "pymatgen":
            pattern = pymatgen_pattern(truth, rng)
        else:
            pattern = simulate_pattern(truth, ANODES["CuKa"], TWO_THETA, random_lab_params(rng), rng=rng)
        if args.only and not any(text in row["file"] for text in args.only):
            continue
        elements = [e.symbol for e in truth.composition.elements]
        began = time.perf_counter()
        job = solve(pattern, elements, formula=truth.composition.reduced_formula, seed=args.seed)
        try:
            while True:
                next(job)
        except StopIteration as stop:
            result = stop.value
        except Exception as error:  # noqa: BLE001 - a crash is a miss of this structure, not the end of the run
            print(f"{row['file']:40s} {row['formula']:12s} {row['spacegroup']:>4s} -> error {error!r}", flush=True)
            matches[row["crystal_system"]].append(False)
            continue
        elapsed = time.perf_counter() - began
        matched = bool(result.atoms) and matcher.fit(truth, solve_result_structure(result))
        matches[row["crystal_system"]].append(matched)
        for stage, seconds in result.timings.items():
            stage_times[stage].append(seconds)
        stage_times["end-to-end"].append(elapsed)
        if np.isfinite(result.rwp):
            rwps.append(result.rwp)
        print(f"{row['file']:40s} {row['formula']:12s} {row['spacegroup']:>4s} -> {result.space_group or '-':10s} "
              f"Rwp {result.rwp:6.2f} %  match {matched!s:5s}  {elapsed:5.1f} s  "
              + " ".join(f"{stage} {seconds:.1f}" for stage, seconds in result.timings.items() if stage != "total")
              + ("" if result.atoms else f"  ({result.message})"), flush=True)
    print("\nmatch rate per crystal system")
    for system, values in matches.items():
        print(f"  {system:12s} {100 * np.mean(values):5.1f} %  ({sum(values)}/{len(values)})")
    print("time per stage (s): median / max")
    for stage, values in stage_times.items():
        print(f"  {stage:12s} {np.median(values):6.2f} / {np.max(values):6.2f}")
    if rwps:
        print(f"median Rwp {np.median(rwps):.2f} %")


if __name__ == "__main__":
    main()
