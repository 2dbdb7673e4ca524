"""CMED speed and accuracy on the shared real structures (single thread).

Prints: time per 32³ density (median, and for 10–30-atom cells), structures/s per core, the worst
electron-count error, and how far the default-B grid is from exact point samples of ρ.
Run from the checkout: OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/density.py [--every K]
"""

from __future__ import annotations

import argparse
import csv
import time
import warnings
from pathlib import Path

import numpy as np

from model.density import cmed, grid_biso
from model.structure import load_structure

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "structures"


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="use every K-th structure")
    parser.add_argument("--n", type=int, default=32, help="grid size")
    args = parser.parse_args()
    with open(SHARED / "manifest.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if float(r["min_distance_A"]) >= 0.9][:: args.every]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structures = [load_structure(SHARED / r["file"]) for r in rows]

    sizes, grid_s, full_s, count_err, sample_err = [], [], [], [], []
    for structure in structures:
        sizes.append(len(structure))
        grid_s.append(best_of(3, lambda s=structure: cmed(s, args.n, conventional=False)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            full_s.append(best_of(1, lambda s=structure: cmed(s, args.n)))
        density = cmed(structure, args.n, conventional=False)
        electrons = sum(sp.Z * occ for site in structure for sp, occ in site.species.items())
        count_err.append(abs(density.electron_count - electrons) / electrons)
        b = grid_biso(structure.lattice.matrix, args.n)
        fine = cmed(structure, 4 * args.n, biso=b, conventional=False).values[::4, ::4, ::4]
        sample_err.append(float(np.abs(density.values - fine).max() / fine.max()))

    sizes, grid_s, full_s = np.array(sizes), np.array(grid_s), np.array(full_s)
    small = (sizes >= 10) & (sizes <= 30)
    print(f"{len(structures)} structures, {args.n}³ grid, 1 thread")
    print(f"cmed, cell as given:        median {np.median(grid_s) * 1e3:.2f} ms, "
          f"10–30 atoms median {np.median(grid_s[small]) * 1e3:.2f} ms (n={small.sum()}), "
          f"max {grid_s.max() * 1e3:.1f} ms ({sizes[grid_s.argmax()]} atoms)")
    print(f"cmed, + conventional cell:  median {np.median(full_s) * 1e3:.2f} ms")
    print(f"throughput (as given):      {len(grid_s) / grid_s.sum():.0f} structures/s per core")
    print(f"electron count:             worst relative error {max(count_err):.2e}")
    print(f"grid vs point samples:      worst {max(sample_err) * 100:.2f} % of peak, "
          f"median {np.median(sample_err) * 100:.2f} %")


if __name__ == "__main__":
    main()
