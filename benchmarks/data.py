"""Data-set build rate: samples/s of `model.data.build` end to end (generation, sanity, symmetry,
CMED 32³, reflections to 0.5 Å, HDF5 shards), plus the diversity figures of the build.

Run from the checkout: OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/data.py [--n 400] [--workers 2]
Prints the steady rate (after loading templates and tables, ~10 s), the rate with start-up, and
samples per CPU-second (this process and its workers): on a shared machine the wall-clock rate
measures the contention, the CPU rate × cores is what idle cores give.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

from model.data.build import BuildOptions, build
from model.data.systems import parse_systems


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--systems", default="cubic,trigonal,hexagonal,tetragonal")
    args = parser.parse_args()
    options = BuildOptions(parse_systems(args.systems), n=args.n, seed=args.seed)
    with tempfile.TemporaryDirectory() as directory:
        started, cpu_started = time.perf_counter(), _cpu_seconds()
        summary = build(directory, options, workers=args.workers, progress=False)
        wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    print(f"built {summary['samples']} samples with {args.workers} worker(s) in {wall:.1f} s: "
          f"{summary['rate_samples_per_s']:.1f} samples/s once the tables are loaded "
          f"(target ≥ 20 on 2 cores), {summary['samples'] / wall:.1f} samples/s with start-up")
    print(f"{summary['samples'] / cpu:.1f} samples per CPU-second, start-up included "
          f"({cpu:.1f} CPU-s over {wall:.1f} s wall: {cpu / wall:.2f} cores used)")
    print(f"space groups {summary['spacegroups_covered']}, structure types {summary['structure_types']}, "
          f"largest type {100 * summary['largest_type_fraction']:.1f} %, systems {summary['crystal_systems']}")
    print(f"sources {summary['sources']}, splits {summary['splits']}, rejected {summary['rejected']}")


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished worker processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()
