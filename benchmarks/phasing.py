"""Maps from a realistic lab pattern in the true cell and space group, scored against the truth:
the phasing network, charge flipping alone, charge flipping started from the network's map, every
phase 0, and (bound) the true phases — all on the same extracted amplitudes.

python benchmarks/phasing.py WEIGHTS [--structures DIR] [--limit N] [--seed S]

Structures: the CIFs of the four systems of DIR's manifest.csv (default ../shared/data/structures)
with atoms ≥ 0.9 Å apart and ≤ 60 atoms, N of them in a seeded order. Pattern: Cu Kα, 5–120° 2θ,
random lab conditions (model.simulate.random_lab_params). Scores (model.metrics): cc at the best
allowed description, site recall and precision (0.5 Å) of the aligned map; means per map kind.
"""

from __future__ import annotations

import argparse
import csv
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from model import charge_flipping, metrics
from model.density import cmed
from model.nets import reciprocal
from model.pattern import ANODES
from model.predict import Predictor, extracted_families, predicted_phases
from model.simulate import random_lab_params, simulate_pattern
from model.structure import conventional_standard, load_structure

SYSTEMS = ("cubic", "tetragonal", "hexagonal", "trigonal")
GRID = 48


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights")
    p.add_argument("--structures", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
                   / "structures")
    p.add_argument("--limit", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    predictor = Predictor.load(args.weights, device="cpu")
    with open(args.structures / "manifest.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["crystal_system"] in SYSTEMS
                and float(r["min_distance_A"]) >= 0.9 and int(r["natoms_conventional"]) <= 60]
    rng = np.random.default_rng(args.seed)
    rows = [rows[i] for i in rng.permutation(len(rows))[: args.limit]]
    scores: dict[str, list[tuple[float, float, float]]] = {}
    seconds: dict[str, float] = {}
    for row in rows:
        structure = conventional_standard(load_structure(args.structures / row["file"]))
        sg = SpacegroupAnalyzer(structure, symprec=0.01).get_space_group_number()
        if not reciprocal.obeys(structure, sg):
            continue
        instrument, sample = random_lab_params(rng, ANODES["CuKa"])
        pattern = simulate_pattern(structure, instrument, np.arange(5.0, 120.0, 0.02), sample, rng)
        truth = cmed(structure, GRID, conventional=False).values
        families = extracted_families(pattern, structure.lattice.parameters, sg, predictor.net.config["tokens"])
        amplitude = np.sqrt(families["intensity"])
        true_phases = np.exp(1j * np.angle(reciprocal.structure_factors(structure, families["hkl"], families["d"])))
        clock = time.perf_counter()
        net_phases = predicted_phases(predictor.net, families, sg, torch.device("cpu"))
        seconds["network"] = seconds.get("network", 0.0) + time.perf_counter() - clock
        phase_sets = {"network": net_phases, "every phase 0": np.ones(len(amplitude)),
                      "true phases (bound)": true_phases}
        ops = reciprocal.space_group_ops(sg)
        amplitudes = charge_flipping.Amplitudes(families["hkl"], amplitude, families["d"])
        network_map = _map(families, amplitude * net_phases, sg, structure.volume)
        for name, start in (("charge flipping", None), ("charge flipping from network", network_map)):
            clock = time.perf_counter()
            flipped = charge_flipping.charge_flip(amplitudes, structure.lattice.matrix, ops, start=start,
                                                  rng=np.random.default_rng(0))
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - clock
            phase_sets[name] = np.exp(1j * flipped.phases)
        line = []
        for name, phases in phase_sets.items():
            values = _map(families, amplitude * phases, sg, structure.volume)
            alignment = metrics.best_alignment(values, truth, ops, row["crystal_system"])
            sites = metrics.site_scores(metrics.aligned(values, alignment), structure)
            scores.setdefault(name, []).append((alignment.cc, sites.recall, sites.precision))
            line.append(f"{name} {alignment.cc:.2f}/{sites.recall:.2f}")
        print(f"{row['file']} (sg {sg}, {len(amplitude)} families): " + ", ".join(line), flush=True)
    print(f"\n{len(scores['network'])} structures; mean cc / recall / precision:")
    for name, values in scores.items():
        cc, recall, precision = np.mean(values, axis=0)
        timing = f"  ({seconds[name] / len(values):.2f} s each)" if name in seconds else ""
        print(f"  {name:30s} {cc:.3f} / {recall:.3f} / {precision:.3f}{timing}")


def _map(families: dict, f: np.ndarray, space_group: int, volume: float) -> np.ndarray:
    return reciprocal.synthesis(families["hkl"], f, space_group, (GRID,) * 3, volume, 0.0)


if __name__ == "__main__":
    main()
