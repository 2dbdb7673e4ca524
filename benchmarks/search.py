"""Search benchmark: the Wyckoff search (model.search) given the true cell and space group, on the
patterns benchmarks/solve.py solves (benchmarks/lab_patterns.py, the same options).

Tells a search failure from the others: where a solve misses, benchmarks/index.py says whether the
true cell and group were planned; this says whether the search finds the structure once they are.
Per structure: the plan of the true group on the true cell (model.spacegroups.index_cells, as the
solve indexes it), the search's score (model.scoring: cluster R + penalties, lower is better) of the
true structure where the plan's cell is the true conventional cell's setting (else "other
setting": fractional coordinates would need a transformation), the best scores the search finds
in that one arm (the true atoms per cell), the rank of the first candidate that pymatgen's
StructureMatcher matches with the truth, and the time. A best score below the truth's with no match
means the score cannot tell the truth (scoring, extraction); a best score above it means the
search did not reach it.
Run: OMP_NUM_THREADS=1 python benchmarks/search.py [--systems monoclinic ...] [--limit N] [--only TEXT ...]
     [--seed N] [--simulator ours|pymatgen]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index import CELL_RTOL, same_cell
from lab_patterns import add_arguments, lab_patterns

from model import search
from model.extraction import clusters
from model.preprocess import background, find_peaks
from model.scoring import Arm, Fixed, Layout, Problem, textures
from model.solve import fwhm_poly
from model.spacegroups import index_cells, standard_ops
from model.structure import conventional_standard

CANDIDATES_MATCHED = 30  # best candidates compared with the truth


def true_plan(plans, truth, number: int):
    """The first (cell, group) plan of the true group on the true conventional cell, or None."""
    lattice = conventional_standard(truth).lattice
    return next(((c, g) for c, g in plans if g.number == number and same_cell(c, lattice)), None)


def truth_score(problem: Problem, truth, cell) -> float | None:
    """The search's score of the true structure in the arm, where the arm's cell is the true
    conventional cell in the same setting (the score does not depend on the origin)."""
    standard = conventional_standard(truth)
    if not np.allclose(cell.lattice, standard.lattice.parameters, rtol=CELL_RTOL, atol=0.5):
        return None
    kinds = np.array([problem.arm.species.index(s.specie.symbol) for s in standard])
    batch = problem.batch([Layout(standard.frac_coords, np.zeros((len(standard), 3, 0)), kinds)])
    with torch.no_grad():
        return float(problem.score(torch.zeros(1, batch.basis.shape[-1]), batch, Fixed.empty(1, len(problem.hkl))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, "search")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    matcher = StructureMatcher()
    found_first, found_any, planned = (defaultdict(list) for _ in range(3))
    for row, truth, pattern in lab_patterns(args):
        system, number = row["crystal_system"], int(row["spacegroup"])
        base = background(pattern)
        peaks = find_peaks(pattern, background_counts=base)
        _, _, plans = index_cells(peaks, pattern.wavelength.ka1)
        plan = true_plan(plans, truth, number)
        planned[system].append(plan is not None)
        if plan is None:
            print(f"{row['file']:36s} {row['formula']:12s} {number:4d} -> true group not planned on the true cell",
                  flush=True)
            continue
        cell, group = plan
        lattice = Lattice.from_parameters(*cell.lattice)
        species = sorted({s.symbol for s in truth.species})
        counts = tuple(sum(s.symbol == e for s in conventional_standard(truth).species) for e in species)
        arm = Arm(lattice, cell.zero, number, tuple(species), counts)
        signal = pattern.intensity - base
        refl = clusters(pattern, signal, lattice, number, cell.zero, fwhm_poly(peaks))
        problem = Problem(arm, refl, textures(refl.hkl, lattice, standard_ops(number)))
        truth_value = truth_score(problem, truth, cell)
        began = time.perf_counter()
        job = search.search(pattern, signal, [arm], fwhm_poly(peaks), np.random.default_rng(args.seed))
        try:
            while True:
                next(job)
        except StopIteration as stop:
            candidates = stop.value
        seconds = time.perf_counter() - began
        rank = next((i + 1 for i, c in enumerate(candidates[:CANDIDATES_MATCHED]) if matcher.fit(truth, c.structure)),
                    None)
        found_first[system].append(rank == 1)
        found_any[system].append(rank is not None)
        print(f"{row['file']:36s} {row['formula']:12s} {number:4d} -> {group.symbol:8s} "
              f"truth {'other setting' if truth_value is None else f'{truth_value:.4f}':>13s} "
              f"best {' '.join(f'{c.score:.4f}' for c in candidates[:3]):22s} "
              f"wyckoffs {' '.join(candidates[0].wyckoffs) if candidates else '-':24s} "
              f"match rank {rank or '-'!s:3s} {seconds:6.1f} s", flush=True)
    print(f"\n{'system':12s} {'n':>3s} {'planned':>8s} {'first':>6s} {'any':>6s}  (of the true plans searched)")
    for system in planned:
        print(f"{system:12s} {len(planned[system]):3d} {sum(planned[system]):8d} {sum(found_first[system]):6d} "
              f"{sum(found_any[system]):6d}")


if __name__ == "__main__":
    main()
