"""Score a network on real structures: ``python -m model.evaluate --structures DIR --json OUT``.

Every CIF under DIR (recursively) is put in its conventional standard cell, its pattern simulated
— the paper setting by default (Mo Kα1, sharp clean peaks, full composition), or with
``--realistic`` a laboratory Cu Kα1/Kα2 pattern with random profile, zero shift, background,
preferred orientation and Poisson noise — and the predicted CMED compared with the IAM truth
(model.density.cmed) by SSIM on 25³ and PSNR, best over the allowed equivalences
(model.metrics) and over ``--samples`` latent draws, as the seed paper did. Two references are
scored the same way: a flat map at the mean density ΣZ/V and the pattern's own Patterson map
(model.patterson); a network that does not beat them has learned nothing about the phases.
Structures with atoms closer than 0.9 Å (artificial test cells) are left out.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from tqdm import tqdm

from model.density import cmed
from model.errors import InputError
from model.files import atomic_write
from model.metrics import best_equivalent_ssim
from model.nets.inputs import q_grid_input
from model.nets.synth import STICK_SAMPLE, stick_instrument
from model.pattern import ANODES
from model.patterson import patterson_map
from model.predict import Predictor
from model.simulate import random_lab_params, simulate_pattern
from model.structure import conventional_standard, load_structure
from model.weights import BUNDLED

MIN_DISTANCE_A = 0.9
PAPER_TWO_THETA = np.arange(1.0, 150.0, 0.02)  # degrees, Mo Kα1
LAB_TWO_THETA = np.arange(5.0, 120.0, 0.02)  # degrees, Cu Kα


def weights_for(choice: str) -> Path:
    """'bundled' → our bundled weights, 'seed' → the bundled seed, anything else → a path."""
    return {"bundled": BUNDLED / "ours.safetensors", "seed": BUNDLED / "seed.safetensors"}.get(
        choice, Path(choice))


def evaluate_structure(predictor: Predictor, path: Path, realistic: bool, samples: int,
                       seed: int, systems: set[str] | None = None) -> dict | str:
    """Scores of one CIF, or why it is left out (artificial cell, crystal system not asked for)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structure = conventional_standard(load_structure(path))
        if len(structure) > 1 and np.min(structure.distance_matrix + 1e3 * np.eye(len(structure))) < MIN_DISTANCE_A:
            return f"atoms closer than {MIN_DISTANCE_A} Å"
        analyzer = SpacegroupAnalyzer(structure)
        system, spacegroup = analyzer.get_crystal_system(), analyzer.get_space_group_number()
    if systems is not None and system not in systems:
        return f"{system} not evaluated"
    truth = cmed(structure, n=32, conventional=False)
    rng = np.random.default_rng(seed)
    if realistic:
        instrument, sample = random_lab_params(rng, ANODES["CuKa"])
        pattern = simulate_pattern(structure, instrument, LAB_TWO_THETA, sample, rng)
    else:
        pattern = simulate_pattern(structure, stick_instrument(ANODES["MoKa1"]), PAPER_TWO_THETA, STICK_SAMPLE)
    composition = {el.symbol: amount for el, amount in structure.composition.element_composition.items()}
    grids = predictor.predict(pattern, composition, structure.lattice.parameters, system,
                              samples=samples, seed=seed)
    ssim, psnr = best_equivalent_ssim(np.stack([g.values for g in grids]), truth.values, system)
    mean_density = float(truth.values.mean())  # ΣZ/V: known from the composition and the cell
    references = {"flat": np.full_like(truth.values, mean_density),
                  "patterson": patterson_map(q_grid_input(pattern.q, pattern.intensity),
                                             structure.lattice.parameters, truth.values.shape[0], mean_density)}
    return {"file": str(path), "formula": structure.composition.reduced_formula, "crystal_system": system,
            "spacegroup": spacegroup, "natoms": len(structure), "ssim": ssim, "psnr": psnr,
            **{f"ssim_{name}": best_equivalent_ssim(grid, truth.values, system)[0]
               for name, grid in references.items()}}


def summarise(rows: list[dict]) -> dict:
    out = {}
    for system in sorted({r["crystal_system"] for r in rows}):
        mine = [r for r in rows if r["crystal_system"] == system]
        ssim = np.array([r["ssim"] for r in mine])
        out[system] = {"ssim_mean": float(ssim.mean()), "ssim_median": float(np.median(ssim)),
                       "psnr_mean": float(np.mean([r["psnr"] for r in mine])), "n": int(ssim.size),
                       "ssim_flat_mean": float(np.mean([r["ssim_flat"] for r in mine])),
                       "ssim_patterson_mean": float(np.mean([r["ssim_patterson"] for r in mine]))}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--structures", required=True, type=Path, help="folder of CIFs (searched recursively)")
    p.add_argument("--json", required=True, type=Path, help="output JSON")
    p.add_argument("--model", default="bundled", help="bundled, seed, or a .safetensors path")
    p.add_argument("--realistic", action="store_true", help="laboratory Cu Kα patterns instead of the paper setting")
    p.add_argument("--samples", type=int, default=2, help="latent draws per structure (best counts)")
    p.add_argument("--device", help="cuda or cpu (default: CUDA when present)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--systems", help="only these crystal systems, comma-separated (default: all)")
    args = p.parse_args(argv)
    files = sorted(args.structures.rglob("*.cif"))
    systems = set(args.systems.split(",")) if args.systems else None
    if not files:
        raise InputError(args.structures, "no CIF files found")
    predictor = Predictor.load(weights_for(args.model), args.device)
    rows, skipped = [], []
    for i, path in enumerate(tqdm(files, desc="evaluate", file=sys.stderr)):
        try:
            row = evaluate_structure(predictor, path, args.realistic, args.samples, args.seed + i, systems)
        except InputError as exc:
            row = str(exc)
        if isinstance(row, str):
            skipped.append({"file": str(path), "reason": row})
        else:
            rows.append(row)
    result = {"model": predictor.version, "setting": "realistic" if args.realistic else "paper",
              "per_system": summarise(rows), "per_structure": rows, "skipped": skipped}
    with atomic_write(args.json, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    for system, s in result["per_system"].items():
        print(f"{system:13s} n={s['n']:3d}  SSIM mean {s['ssim_mean']:.3f}  median {s['ssim_median']:.3f}"
              f"  PSNR {s['psnr_mean']:.1f} dB  (flat map {s['ssim_flat_mean']:.3f},"
              f" Patterson {s['ssim_patterson_mean']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
