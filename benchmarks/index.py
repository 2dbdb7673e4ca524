"""Indexing benchmark: simulated lab Cu Kα patterns of the shared real structures (≤ 20 atoms).

The patterns are those benchmarks/solve.py solves (benchmarks/lab_patterns.py, the same options). The
peak search, indexing and space-group screening run as the solve runs them
(model.spacegroups.index_cells). Prints, per structure, the rank of the true cell, whether the solve
searches it, whether the true space group is among the plans (on a cell whose axes are those of the
group's standard setting, spglib's), the number of plans (cell, group) the search shares its time
among, and per crystal system the % with the true conventional cell ranked first / searched /
with its true group planned, and the median / max time of indexing and space-group screening
(peak search excluded).
Beside each pattern a trivial reference: "chance", the most of the strongest lines that any of
CHANCE_CELLS random triclinic cells of the true volume indexes within 0.05° (what a cell explains
for nothing), and the number of trial lattices the zone method screens.
--experimental: the same on the shared measured patterns of the chosen systems (their manifest,
the published cell from the CIF's first structure; peaks from model.preprocess.find_peaks).
Run: OMP_NUM_THREADS=1 python benchmarks/index.py [--systems cubic tetragonal ...] [--limit N] [--only TEXT ...]
     [--seed N] [--simulator ours|pymatgen] [--experimental]
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
from pymatgen.core import Lattice
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab_patterns import add_arguments, lab_patterns

from model import cells as cell_fit
from model import zones
from model.preprocess import find_peaks
from model.readers import read_patterns
from model.spacegroups import MAX_LINES, index_cells
from model.structure import conventional_standard, load_structure

CELL_RTOL = 0.005
CHANCE_CELLS = 20
EXPERIMENTAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "experimental"


def same_cell(cell, truth_lattice) -> bool:
    """Volume and sorted a, b, c within 0.5 % (the indexer may order orthorhombic axes otherwise);
    oblique cells by their Niggli-reduced cells (lengths within 0.5 %, angles within 0.5°), so that
    the setting (axis order, β or 180° − β, cell choice) does not matter."""
    if abs(cell.volume - truth_lattice.volume) > CELL_RTOL * truth_lattice.volume:
        return False
    if cell.crystal_system not in cell_fit.LOW_SYSTEMS and all(abs(x - 90) < 0.5 for x in truth_lattice.angles[:2]):
        return bool(np.allclose(sorted(cell.lattice[:3]), sorted(truth_lattice.abc), rtol=CELL_RTOL))
    found = Lattice.from_parameters(*cell.lattice).get_niggli_reduced_lattice()
    true = truth_lattice.get_niggli_reduced_lattice()
    return bool(np.allclose(found.abc, true.abc, rtol=CELL_RTOL) and np.allclose(found.angles, true.angles, atol=0.5))


def true_rank(ranked, truth) -> int | None:
    """Rank (1-based) of the first cell that is the true conventional cell or its primitive cell."""
    lattices = [conventional_standard(truth).lattice, SpacegroupAnalyzer(truth, symprec=1e-3).find_primitive().lattice]
    return next((i + 1 for i, c in enumerate(ranked) if any(same_cell(c, lat) for lat in lattices)), None)


def strongest(peaks) -> np.ndarray:
    """Positions (deg 2θ) of the MAX_LINES strongest peaks, sorted: the lines the solve indexes."""
    return np.sort([p.two_theta for p in sorted(peaks, key=lambda p: -p.height)[:MAX_LINES]])


def chance_lines(two_theta, wavelength: float, volume: float, rng: np.random.Generator) -> int:
    """The most lines (of the strongest, within 0.05°) that any of CHANCE_CELLS random triclinic
    cells of ``volume`` (Å³) indexes: what a wrong cell of the right size explains for nothing."""
    tth = np.sort(np.asarray(two_theta))
    q = cell_fit.inv_d2(tth, wavelength)
    best = 0
    for _ in range(CHANCE_CELLS):
        trial = Lattice.from_parameters(*rng.uniform(0.6, 1.6, 3), *rng.uniform(70, 110, 3))
        trial = Lattice(trial.matrix * (volume / trial.volume) ** (1 / 3))
        coef = cell_fit.metric_coef("triclinic", trial.reciprocal_lattice_crystallographic.metric_tensor)
        calc = cell_fit.reflections("triclinic", coef, q[-1] * 1.05) @ coef
        miss = np.abs(q - calc[cell_fit.nearest_index(q, calc)]) / cell_fit.dinv_d2_dtth(tth, wavelength)
        best = max(best, int(np.sum(miss <= 0.05)))
    return best


def trials_screened(peaks, wavelength: float) -> int:
    """Trial lattices the zone method makes from the strongest lines (before the screen)."""
    tth = strongest(peaks)
    q = cell_fit.inv_d2(tth, wavelength)
    q_tol = cell_fit.SCREEN_TOLERANCE * 0.05 * cell_fit.dinv_d2_dtth(tth, wavelength)
    found = zones._zones(q, q_tol)
    return len(zones._monoclinic_trials(q, q_tol, found)) + len(zones._triclinic_trials(q, q_tol, found[:zones.ZONES_KEPT]))


def experimental(args) -> None:
    """The table of the shared measured patterns of args.systems."""
    with open(EXPERIMENTAL / "manifest.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["crystal_system"] in args.systems]
    rng = np.random.default_rng(args.seed)
    print(f"{'file':34s} {'formula':9s} {'published':22s} {'rank':>4s} {'best cell':40s} {'M20':>6s} {'F_N':>6s} "
          f"{'n_idx':>6s} {'chance':>9s} {'trials':>6s} {'s':>5s}")
    for row in rows:
        path = EXPERIMENTAL / row["file"]
        pattern = read_patterns(path)[0]
        truth = load_structure(path)
        peaks = find_peaks(pattern)
        began = time.perf_counter()
        ranked, _, _ = index_cells(peaks, pattern.wavelength.ka1)
        seconds = time.perf_counter() - began
        rank = true_rank(ranked, truth)
        best = ranked[0] if ranked else None
        print(f"{row['file'][:34]:34s} {row['formula'][:9]:9s} "
              f"{' '.join(f'{x:.3f}' for x in truth.lattice.abc)} {rank or '-'!s:>4s} "
              f"{(best.crystal_system[:4] + ' ' + ' '.join(f'{x:.3f}' for x in best.lattice[:3]) + f' β {best.lattice[4]:.2f}') if best else '-':40s} "
              f"{best.m20 if best else 0:6.1f} {best.f_n if best else 0:6.1f} "
              f"{best.n_indexed if best else 0:3d}/{best.n_lines if best else 0:2d} "
              f"{chance_lines(strongest(peaks), pattern.wavelength.ka1, truth.lattice.volume, rng):6d}/{len(strongest(peaks))} "
              f"{trials_screened(peaks, pattern.wavelength.ka1):6d} {seconds:5.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, "index")
    parser.add_argument("--experimental", action="store_true", help="the shared measured patterns instead")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.experimental:
        experimental(args)
        return
    first, kept, grouped, seconds, arms = (defaultdict(list) for _ in range(5))
    rng = np.random.default_rng(args.seed)
    for row, truth, pattern in lab_patterns(args):
        system = row["crystal_system"]
        lattice = conventional_standard(truth).lattice
        setting = SpacegroupAnalyzer(truth, symprec=1e-3).get_symmetry_dataset().std_lattice
        setting_abc = np.linalg.norm(setting, axis=1)
        peaks = find_peaks(pattern)
        began = time.perf_counter()
        ranked, cells, plans = index_cells(peaks, pattern.wavelength.ka1)
        seconds[system].append(time.perf_counter() - began)
        rank = true_rank(ranked, truth)
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
              f"{np.round(best.lattice[:3], 3) if best else ''} M20 {best.m20 if best else 0:.1f} "
              f"chance {chance_lines(strongest(peaks), pattern.wavelength.ka1, lattice.volume, rng)}/20 "
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
