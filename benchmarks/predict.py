"""Latency of one 32³ CMED prediction (one latent sample) on CPU, and on CUDA when present.

python benchmarks/predict.py [--weights PATH] [--repeats N] [--threads T]
Uses the bundled "ours" weights by default; the pattern is a simulated lab pattern of BaTiO3.
Prints the median over repeats after one warm-up call, pattern preparation included.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

from model.pattern import ANODES
from model.predict import Predictor
from model.simulate import random_lab_params, simulate_pattern


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", default=None)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    structure = Structure.from_spacegroup("P4mm", Lattice.tetragonal(3.99, 4.03), ["Ba", "Ti", "O", "O"],
                                          [[0, 0, 0], [0.5, 0.5, 0.52], [0.5, 0.5, 0.03], [0.5, 0, 0.49]])
    rng = np.random.default_rng(0)
    instrument, sample = random_lab_params(rng, ANODES["CuKa"])
    pattern = simulate_pattern(structure, instrument, np.arange(5, 120, 0.02), sample, rng)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        predictor = Predictor.load(args.weights, device=device)
        times = []
        for i in range(args.repeats + 1):
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            predictor.predict(pattern, {"Ba": 1, "Ti": 1, "O": 3}, structure.lattice.parameters, "tetragonal",
                              samples=1, n=32, seed=i)
            if device == "cuda":
                torch.cuda.synchronize()
            if i:  # the first call warms up
                times.append(time.perf_counter() - start)
        print(f"{predictor.version} on {predictor.device} ({torch.get_num_threads()} CPU threads): "
              f"median {1000 * statistics.median(times):.1f} ms, min {1000 * min(times):.1f} ms "
              f"per 32³ grid over {args.repeats} calls")


if __name__ == "__main__":
    main()
