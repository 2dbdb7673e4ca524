"""Indexing benchmark: simulated lab Cu Kα patterns of the shared real structures (≤ 20 atoms).

The patterns are those benchmarks/solve.py solves (benchmarks/lab_patterns.py, the same options). The
peak search, indexing and space-group screening run as the solve runs them
(model.spacegroups.index_cells). Prints, per structure, the rank of the true cell, whether the solve
searches it, whether the true space group is among the plans (on a cell whose axes are those of the
group's standard setting, spglib's), the number of plans (cell, group) the search shares its time
among, and per crystal system the % with the true conventional cell ranked first / searched /
with its true group planned, and the median / max time of indexing and space-group screening
(peak search excluded).
Run: OMP_NUM_THREADS=1 python benchmarks/index.py [--systems cubic tetragonal ...] [--limit N] [--only TEXT ...]
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
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab_patterns import add_arguments, lab_patterns

from model.preprocess import find_peaks
from model.spacegroups import index_cells
from model.structure import conventional_standard

CELL_RTOL = 0.005


def same_cell(cell, truth_lattice) -> bool:
    """Volume and sorted a, b, c within 0.5 % (the indexer may order orthorhombic axes otherwise)."""
    if abs(cell.volume - truth_lattice.volume) > CELL_RTOL * truth_lattice.volume:
        return False
    return bool(np.allclose(sorted(cell.lattice[:3]), sorted(truth_lattice.abc), rtol=CELL_RTOL))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, "index")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    first, kept, grouped, seconds, arms = (defaultdict(list) for _ in range(5))
    for row, truth, pattern in lab_patterns(args):
        system = row["crystal_system"]
        lattice = conventional_standard(truth).lattice
        setting = SpacegroupAnalyzer(truth, symprec=1e-3).get_symmetry_dataset().std_lattice
        setting_abc = np.linalg.norm(setting, axis=1)
        peaks = find_peaks(pattern)
        began = time.perf_counter()
        ranked, cells, plans = index_cells(peaks, pattern.wavelength.ka1)
        seconds[system].append(time.perf_counter() - began)
        rank = next((i + 1 for i, c in enumerate(ranked) if same_cell(c, lattice)), None)
        found = any(same_cell(c, lattice) for c in cells)
        groups = [g.number for c, g in plans
                  if same_cell(c, lattice) and np.allclose(c.lattice[:3], setting_abc, rtol=CELL_RTOL)]
        first[system].append(rank == 1)
        kept[system].append(found)
        grouped[system].append(int(row["spacegroup"]) in groups)
        arms[system].append(len(plans))
        best = ranked[0] if ranked else None
        print(f"{row['file']:36s} {row['formula']:12s} {row['spacegroup']:>4s} true {np.round(lattice.abc, 3)} "
              f"rank {rank or '-'!s:2s} kept {found!s:5s} group {int(row['spacegroup']) in groups!s:5s} "
              f"plans {len(plans):2d} best {best.crystal_system[:4] if best else '-'} "
              f"{np.round(best.lattice[:3], 3) if best else ''} M20 {best.m20 if best else 0:.1f}  "
              f"{seconds[system][-1]:.2f} s", flush=True)
    print(f"\n{'system':12s} {'n':>3s} {'first':>7s} {'kept':>7s} {'group':>7s} {'plans':>6s} {'median s':>9s} {'max s':>7s}")
    for system in first:
        print(f"{system:12s} {len(first[system]):3d} {100 * np.mean(first[system]):6.1f}% "
              f"{100 * np.mean(kept[system]):6.1f}% {100 * np.mean(grouped[system]):6.1f}% "
              f"{np.median(arms[system]):6.1f} {np.median(seconds[system]):9.2f} {np.max(seconds[system]):7.2f}")
    every = [v for values in first.values() for v in values]
    print(f"{'all':12s} {len(every):3d} {100 * np.mean(every):6.1f}% "
          f"{100 * np.mean([v for values in kept.values() for v in values]):6.1f}% "
          f"{100 * np.mean([v for values in grouped.values() for v in values]):6.1f}% "
          f"{np.median([v for values in arms.values() for v in values]):6.1f} "
          f"{np.median([v for values in seconds.values() for v in values]):9.2f} "
          f"{np.max([v for values in seconds.values() for v in values]):7.2f}")


if __name__ == "__main__":
    main()
