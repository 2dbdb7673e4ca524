"""Solve benchmark: simulated lab Cu Kα patterns of the shared real structures (≤ 20 atoms).

The patterns are benchmarks/lab_patterns.py's (model.simulate with randomised lab conditions, or
pymatgen's line list with --simulator pymatgen); the solve sees only the pattern and the formula.
Prints, per structure, the outcome, and in the end the pymatgen StructureMatcher match rate per
crystal system, median and max time per stage, and the median Rwp.
Run: OMP_NUM_THREADS=1 python benchmarks/solve.py [--systems cubic tetragonal ...] [--limit N] [--only TEXT ...]
     [--seed N] [--simulator ours|pymatgen] [--no-formula]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab_patterns import add_arguments, lab_patterns

from model.solve import solve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, "solve")
    parser.add_argument("--no-formula", action="store_true", help="give the elements only; print the formula found")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    matches = defaultdict(list)
    stage_times = defaultdict(list)
    rwps = []
    matcher = StructureMatcher()
    for row, truth, pattern in lab_patterns(args):
        elements = [e.symbol for e in truth.composition.elements]
        began = time.perf_counter()
        formula = None if args.no_formula else truth.composition.reduced_formula
        job = solve(pattern, elements, formula=formula, seed=args.seed)
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
        matched = bool(result.atoms) and matcher.fit(truth, result.structure)
        matches[row["crystal_system"]].append(matched)
        for stage, seconds in result.timings.items():
            stage_times[stage].append(seconds)
        stage_times["end-to-end"].append(elapsed)
        if np.isfinite(result.rwp):
            rwps.append(result.rwp)
        print(f"{row['file']:40s} {row['formula']:12s} {row['spacegroup']:>4s} -> {result.space_group or '-':10s} "
              f"Rwp {result.rwp:6.2f} %  match {matched!s:5s}  {elapsed:5.1f} s  "
              + " ".join(f"{stage} {seconds:.1f}" for stage, seconds in result.timings.items() if stage != "total")
              + ("" if result.atoms else f"  ({result.message})")
              + (f"  found {result.structure.composition.reduced_formula}" if args.no_formula and result.atoms else ""),
              flush=True)
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
