"""Simulation speed and agreement on the shared structures (run by hand, prints figures).

    OMP_NUM_THREADS=1 python benchmarks/simulate.py [--limit N]

1. Sticks vs pymatgen's XRDCalculator, both timed in this process, single-threaded, on every
   structure in ../shared/data/structures: time ratio and the share of reference peaks above 1 %
   matched within 0.01° 2θ and 1.5 % of the strongest (Cu Kα1 0–90° and Mo Kα1 5–60°).
2. Full profiles (random lab conditions, Cu Kα doublet, 5–90° in 0.02° steps) per structure.
3. Training-data throughput per core: wavelength-free reflections (d ≥ 1 Å) + 32³ CMED of the
   given (already conventional standard) cell; the same plus a full profile; and with cmed's
   standardisation; in structures/s (structures with sites closer than 0.9 Å skipped).
4. Batched torch profiles (64 patterns of 4250 points) on CPU and, if present, CUDA.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import Structure

from model.density import cmed
from model.instrument import bragg_d
from model.pattern import ANODES
from model.simulate import (
    params_torch,
    profile,
    profile_torch,
    random_lab_params,
    reflections,
    sticks,
)

STRUCTURES = Path(__file__).resolve().parents[2] / "shared" / "data" / "structures"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N structures only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with open(STRUCTURES / "manifest.csv") as manifest:
        rows = list(csv.DictReader(manifest))[: args.limit]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structures = [Structure.from_file(STRUCTURES / row["file"]) for row in rows]
    sound = [s for s, row in zip(structures, rows) if float(row["min_distance_A"]) >= 0.9]
    print(f"{len(structures)} structures ({len(sound)} with all distances ≥ 0.9 Å), "
          f"torch {torch.__version__}, 1 thread")

    sticks(structures[0], 1.5)  # imports and caches outside the timings
    for wavelength, span in ((ANODES["CuKa1"].ka1, (0, 90)), (ANODES["MoKa1"].ka1, (5, 60))):
        t_ref = t_ours = 0.0
        total = good = 0
        worst = []
        for structure, row in zip(structures, rows):
            start = time.perf_counter()
            reference = XRDCalculator(wavelength).get_pattern(structure, two_theta_range=span)
            t_ref += time.perf_counter() - start
            start = time.perf_counter()
            ours = sticks(structure, wavelength, span)
            t_ours += time.perf_counter() - start
            n, ok = _agreement(reference, ours)
            total, good = total + n, good + ok
            if ok < n:
                worst.append((n - ok, row["file"]))
        print(f"sticks λ={wavelength} Å {span[0]}–{span[1]}°: XRDCalculator {t_ref:.2f} s, ours {t_ours:.2f} s, "
              f"ratio {t_ref / t_ours:.1f}×; peaks >1 %: {good}/{total} = {100 * good / total:.2f} % "
              f"within 0.01° and 1.5 %" + (f"; misses in {sorted(worst)[-3:]}" if worst else ""))

    rng = np.random.default_rng(0)
    two_theta = np.arange(5.0, 90.0, 0.02)
    cu = ANODES["CuKa"]
    start = time.perf_counter()
    lines = 0
    for structure in structures:
        refl = reflections(structure, bragg_d(92.0, cu.ka2))
        profile(two_theta, refl, *random_lab_params(rng, cu), rng)
        lines += len(refl)
    elapsed = time.perf_counter() - start
    print(f"full profile (Cu Kα1+2, {two_theta.size} points, random lab conditions): "
          f"{1000 * elapsed / len(structures):.1f} ms per structure, {lines / len(structures):.0f} lines on average")

    # the shared cells are already conventional standard (as a dataset builder stores them), so
    # cmed's own standardisation is timed separately
    for with_profile, conventional in ((False, False), (True, False), (False, True)):
        start = time.perf_counter()
        for structure in sound:
            refl = reflections(structure, 1.0)
            if with_profile:
                profile(two_theta, refl, *random_lab_params(rng, cu), rng)
            cmed(structure, n=32, conventional=conventional)
        rate = len(sound) / (time.perf_counter() - start)
        print(f"reflections (d ≥ 1 Å){' + profile' if with_profile else ''} + 32³ CMED"
              f"{' incl. standardisation' if conventional else ''}: {rate:.1f} structures/s per core")

    _batched(structures, two_theta, rng)


def _agreement(reference, ours) -> tuple[int, int]:
    """(reference peaks above 1 %, of which ours has one within 0.01° and 1.5 % of the strongest)."""
    x, y = np.array(reference.x), np.array(reference.y)
    strong = y > 1
    if not strong.any():
        return 0, 0
    nearest = np.abs(ours.two_theta[None] - x[strong, None]).argmin(1)
    ok = (np.abs(ours.two_theta[nearest] - x[strong]) <= 0.01) & (np.abs(ours.intensity[nearest] - y[strong]) <= 1.5)
    return int(strong.sum()), int(ok.sum())


def _batched(structures, two_theta, rng, batch=64) -> None:
    refls = [reflections(s, 1.0) for s in structures[:batch]]
    width = max(len(r) for r in refls)
    d = np.zeros((len(refls), width))
    weight = np.zeros((len(refls), width))
    for i, r in enumerate(refls):
        d[i, :len(r)], weight[i, :len(r)] = r.d, r.multiplicity * r.f2
    instruments, samples = zip(*(random_lab_params(rng, ANODES["CuKa"]) for _ in refls))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        tensors = [torch.tensor(a, dtype=torch.float32, device=device) for a in (d, weight, two_theta)]
        wavelength = torch.full((len(refls),), ANODES["CuKa"].ka1, device=device)
        params = params_torch(list(instruments), list(samples), device=device)
        for repeat in range(2):  # the first run warms up kernels
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            profile_torch(*tensors[:2], tensors[2], wavelength, params)
            if device == "cuda":
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
        print(f"profile_torch {device}: batch {len(refls)} × {width} lines × {two_theta.size} points "
              f"in {1000 * elapsed:.0f} ms = {len(refls) / elapsed:.0f} patterns/s")


if __name__ == "__main__":
    main()
