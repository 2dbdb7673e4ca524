"""Score a network on real structures: ``python -m model.evaluate --structures DIR --json OUT``.

Every CIF under DIR (recursively) is put in its conventional standard cell and its pattern simulated
— the paper setting by default (Mo Kα1, sharp clean peaks, full composition), or with
``--realistic`` a laboratory Cu Kα1/Kα2 pattern with random profile, zero shift, background,
preferred orientation and Poisson noise; ``--d-min`` cuts the scan at that d (Å), the poor-data
case. The network is given the true cell. Its CMED, and the same of every reference map, is
compared with the IAM truth (model.density.cmed, 32³) by:

- cc: the correlation coefficient over the grid, best over the space group's allowed descriptions
  (origin shifts, inversion, axis permutations that keep the setting; model.metrics.best_alignment);
- site recall (plain and Z-weighted) and precision at 0.5 Å after that alignment
  (model.metrics.site_scores);
- SSIM the seed paper's way on 25³ (``ssim_paper``), and the same against a smoothed IAM truth
  (B = SMOOTH_B_A2, close to a valence density: ``ssim_smoothed``), where an empty grid scores less.

Of ``--samples`` latent draws the one with the best cc is scored (SSIM: the best draw by SSIM,
as the paper did). The references (``--baselines``) are scored the same way: a flat map at ΣZ/V;
the pattern's Patterson map (model.patterson); the right atoms at random places; the truth with
every atom moved 0.3 Å in a random direction; charge flipping (model.charge_flipping) on the
intensities integrated from the pattern in the true cell; and the bundled networks.

A case is "seen" by a network when its (reduced formula, space group) is in the network's training
index (NAME.train-index.csv.gz beside the weights); without an index every case counts unseen,
and the output says so. Structures with atoms closer than 0.9 Å (artificial test cells) are left out.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from tqdm import tqdm

from model import charge_flipping
from model.constraints import space_group_ops
from model.density import cmed, grid_biso, resample_fractional
from model.errors import InputError
from model.files import atomic_write
from model.instrument import bragg_theta
from model.metrics import (
    SsimReference,
    aligned,
    best_alignment,
    best_ssim,
    site_scores,
    ssim_reference,
)
from model.nets.inputs import q_grid_input
from model.nets.synth import STICK_SAMPLE, stick_instrument
from model.pattern import ANODES, Pattern
from model.patterson import patterson_map
from model.predict import Predictor
from model.preprocess import background, find_peaks
from model.simulate import random_lab_params, simulate_pattern
from model.solve import fwhm_poly as fwhm_poly_of
from model.structure import conventional_standard, load_structure
from model.weights import BUNDLED

MIN_DISTANCE_A = 0.9
PAPER_TWO_THETA = np.arange(1.0, 150.0, 0.02)  # degrees, Mo Kα1
LAB_TWO_THETA = np.arange(5.0, 120.0, 0.02)  # degrees, Cu Kα
GRID = 32
SMOOTH_B_A2 = 20.0  # Å²: atoms of σ ≈ 0.5 Å, about as diffuse as valence density
MOVED_A = 0.3
# charge flipping's resolution limit: on the paper setting's Mo Kα1 pattern of NaCl (lines to d = 0.37 Å,
# the high-angle ones overlapping so that equipartition gives them wrong amplitudes) it failed
# with every line (cc 0.03) and with d ≥ 0.6 Å (0.0), and succeeded with d ≥ 0.9 Å (0.85); lab Cu Kα scans end at 0.89 Å
FLIP_D_MIN_A = 0.9
BUNDLED_NETWORKS = ("ours", "seed")
BASELINES = ("flat", "patterson", "random_atoms", "moved_0.3A", "charge_flipping", *BUNDLED_NETWORKS)
SCORES = ("cc", "recall", "recall_z", "precision", "ssim_paper", "ssim_smoothed")
TRAIN_INDEX_SUFFIX = ".train-index.csv.gz"


def weights_for(choice: str) -> Path:
    """'bundled' → our bundled weights, 'seed' → the bundled seed, anything else → a path."""
    return {"bundled": BUNDLED / "ours.safetensors", "ours": BUNDLED / "ours.safetensors",
            "seed": BUNDLED / "seed.safetensors"}.get(choice, Path(choice))


def network_name(choice: str) -> str:
    return {"bundled": "ours"}.get(choice, Path(choice).name.removesuffix(".safetensors"))


def train_index(weights: Path) -> set[tuple[str, int]] | None:
    """(reduced formula, space group) pairs the network was trained on; None when no index exists."""
    path = weights.with_name(weights.name.removesuffix(".safetensors") + TRAIN_INDEX_SUFFIX)
    if not path.is_file():
        return None
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return {(Composition(row["formula"]).reduced_formula, int(row["spacegroup"]))
                for row in csv.DictReader(handle)}


def scores(grids: np.ndarray, truth: np.ndarray, references: tuple[SsimReference, SsimReference],
           structure: Structure, ops, system: str) -> dict[str, float]:
    """cc, site scores and both SSIMs (against the truth's and the smoothed truth's candidates) of
    one map, or of the best of several (S, n, n, n) draws."""
    grids = np.asarray(grids, dtype=np.float32).reshape(-1, *np.shape(grids)[-3:])
    if grids.shape[-1] != truth.shape[0]:
        grids = resample_fractional(grids, truth.shape[0])
    alignments = [best_alignment(g, truth, ops, system) for g in grids]
    best = int(np.argmax([a.cc for a in alignments]))
    sites = site_scores(aligned(grids[best], alignments[best], truth.shape[0]), structure)
    return {"cc": alignments[best].cc, "recall": sites.recall, "recall_z": sites.recall_z,
            "precision": sites.precision, "ssim_paper": best_ssim(grids, references[0])[0],
            "ssim_smoothed": best_ssim(grids, references[1])[0]}


def random_atoms(structure: Structure, rng: np.random.Generator) -> Structure:
    return Structure(structure.lattice, structure.species, rng.random((len(structure), 3)))


def moved_atoms(structure: Structure, distance_A: float, rng: np.random.Generator) -> Structure:
    """Every atom moved distance_A in a random direction."""
    direction = rng.normal(size=(len(structure), 3))
    direction *= distance_A / np.linalg.norm(direction, axis=1, keepdims=True)
    return Structure(structure.lattice, structure.species, structure.cart_coords + direction,
                     coords_are_cartesian=True)


def flipped_map(pattern: Pattern, structure: Structure, spacegroup: int, starts: int,
                cycles: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Charge flipping on the pattern's intensities integrated in the true cell (zero shift taken as 0)
    to FLIP_D_MIN_A, its map smoothed by the truth grid's B like the CMED."""
    composition = {el.symbol: n for el, n in structure.composition.element_composition.items()}
    electrons = float(sum(el.Z * n for el, n in structure.composition.element_composition.items()))
    peaks = find_peaks(pattern)
    if len(peaks) < 2:
        raise InputError(None, f"only {len(peaks)} peaks: no widths for the intensity extraction")
    amplitudes = charge_flipping.amplitudes_from_pattern(
        pattern, pattern.intensity - background(pattern), Lattice(structure.lattice.matrix), spacegroup, 0.0,
        fwhm_poly_of(peaks), composition)
    amplitudes = charge_flipping.Amplitudes(*(a[amplitudes.d >= FLIP_D_MIN_A] for a in
                                              (amplitudes.hkl, amplitudes.f_obs, amplitudes.d)))
    clock = time.process_time()
    result = charge_flipping.charge_flip(amplitudes, structure.lattice.matrix, space_group_ops(structure),
                                         electrons=electrons, n=GRID, starts=starts, cycles=cycles,
                                         biso=grid_biso(structure.lattice.matrix, GRID), rng=rng)
    return result.values, {"cf_cpu_s": time.process_time() - clock, "cf_grid": int(result.values.shape[0]),
                           "cf_reflections": len(amplitudes.hkl), "cf_symmetry_fom": result.symmetry_fom}


def evaluate_structure(networks: dict[str, tuple[Predictor, set | None]], path: Path, realistic: bool,
                       samples: int, seed: int, systems: set[str] | None = None, d_min: float | None = None,
                       baselines: tuple[str, ...] = BASELINES, flip: tuple[int, int] = (3, 400),
                       full: frozenset[str] = frozenset(), max_atoms: int | None = None) -> dict | str:
    """Scores of one CIF for every network and reference map, or why it is left out (artificial cell,
    crystal system not asked for, or in ``full``: its --limit reached, more than max_atoms atoms)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structure = conventional_standard(load_structure(path))
        if len(structure) > 1 and np.min(structure.distance_matrix + 1e3 * np.eye(len(structure))) < MIN_DISTANCE_A:
            return f"atoms closer than {MIN_DISTANCE_A} Å"
        analyzer = SpacegroupAnalyzer(structure)
        system, spacegroup = analyzer.get_crystal_system(), analyzer.get_space_group_number()
    if systems is not None and system not in systems:
        return f"{system} not evaluated"
    if system in full:
        return f"--limit reached for {system}"
    if max_atoms and len(structure) > max_atoms:
        return f"more than {max_atoms} atoms in the cell"
    ops = space_group_ops(structure)
    truth = cmed(structure, n=GRID, conventional=False).values
    smoothed = cmed(structure, n=GRID, biso=SMOOTH_B_A2, conventional=False).values
    ssim_references = (ssim_reference(truth, system), ssim_reference(smoothed, system))
    rng = np.random.default_rng(seed)
    anode = ANODES["CuKa"] if realistic else ANODES["MoKa1"]
    two_theta = LAB_TWO_THETA if realistic else PAPER_TWO_THETA
    if d_min is not None:
        two_theta = two_theta[two_theta <= 2 * np.degrees(bragg_theta(d_min, anode.ka1))]
    if realistic:
        instrument, sample = random_lab_params(rng, anode)
        pattern = simulate_pattern(structure, instrument, two_theta, sample, rng)
    else:
        pattern = simulate_pattern(structure, stick_instrument(anode), two_theta, STICK_SAMPLE)
    composition = {el.symbol: amount for el, amount in structure.composition.element_composition.items()}
    formula = structure.composition.reduced_formula
    mean_density = float(truth.mean())  # ΣZ/V: known from the composition and the cell
    maps: dict[str, dict[str, float]] = {}
    extra: dict[str, float] = {}
    for name, (predictor, _) in networks.items():
        grids = predictor.predict(pattern, composition, structure.lattice.parameters, system,
                                  samples=samples, seed=seed)
        maps[name] = scores(np.stack([g.values for g in grids]), truth, ssim_references, structure, ops, system)
    references = {
        "flat": lambda: np.full_like(truth, mean_density),
        "patterson": lambda: patterson_map(q_grid_input(pattern.q, pattern.intensity), structure.lattice.parameters,
                                           GRID, mean_density),
        "random_atoms": lambda: cmed(random_atoms(structure, rng), n=GRID, conventional=False).values,
        "moved_0.3A": lambda: cmed(moved_atoms(structure, MOVED_A, rng), n=GRID, conventional=False).values,
    }
    for name in baselines:
        if name in references:
            maps[name] = scores(references[name](), truth, ssim_references, structure, ops, system)
        elif name == "charge_flipping":
            values, extra = flipped_map(pattern, structure, spacegroup, *flip, rng)
            maps[name] = scores(values, truth, ssim_references, structure, ops, system)
    return {"file": str(path), "formula": formula, "crystal_system": system, "spacegroup": spacegroup,
            "natoms": len(structure), "seen": {name: index is not None and (formula, spacegroup) in index
                                               for name, (_, index) in networks.items()},
            "maps": maps, **extra}


def _means(rows: list[dict], name: str) -> dict[str, float]:
    return {f"{key}_mean": float(np.mean([r["maps"][name][key] for r in rows])) for key in SCORES}


def summarise(rows: list[dict], primary: str) -> dict:
    """Per crystal system: the primary network's means (and of its unseen cases), the references' under
    ``baselines`` (networks with their own unseen subsets)."""
    out = {}
    for system in sorted({r["crystal_system"] for r in rows}):
        mine = [r for r in rows if r["crystal_system"] == system]
        entry: dict = {"n": len(mine)}
        for name in mine[0]["maps"]:
            stats = _means(mine, name)
            stats["ssim_paper"], stats["ssim_smoothed"] = stats["ssim_paper_mean"], stats["ssim_smoothed_mean"]
            if name in mine[0]["seen"]:
                unseen = [r for r in mine if not r["seen"][name]]
                stats["unseen"] = {"n": len(unseen), **(_means(unseen, name) if unseen else {})}
            if name == primary:
                entry.update(stats)
            else:
                entry.setdefault("baselines", {})[name] = stats
        out[system] = entry
    return out


def table(summary: dict, primary: str) -> str:
    """Markdown table: maps × (cc, recall, Z-recall, precision, SSIM paper, SSIM smoothed) per system."""
    systems = list(summary)
    head = "| map | " + " | ".join(f"{s} (n={summary[s]['n']}) cc / recall / recall_Z / precision / SSIM / SSIM smooth"
                                     for s in systems) + " |"
    lines = [head, "|---|" + "---|" * len(systems)]
    names = [primary, *summary[systems[0]].get("baselines", {})] if systems else []
    for name in names:
        cells = []
        for s in systems:
            stats = summary[s] if name == primary else summary[s]["baselines"][name]
            cells.append(" / ".join(f"{stats[f'{k}_mean']:.2f}" for k in SCORES))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--structures", required=True, type=Path, help="folder of CIFs (searched recursively)")
    p.add_argument("--json", required=True, type=Path, help="output JSON")
    p.add_argument("--model", default="bundled", help="bundled (= ours), seed, or a .safetensors path")
    p.add_argument("--realistic", action="store_true", help="laboratory Cu Kα patterns instead of the paper setting")
    p.add_argument("--d-min", type=float, help="cut the scan at this d (Å): the poor-data case")
    p.add_argument("--samples", type=int, default=2, help="latent draws per structure (best counts)")
    p.add_argument("--device", help="cuda or cpu (default: CUDA when present)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--systems", help="only these crystal systems, comma-separated (default: all)")
    p.add_argument("--limit", type=int, help="at most this many structures per crystal system (in file order)")
    p.add_argument("--max-atoms", type=int, help="only cells with at most this many atoms")
    p.add_argument("--baselines", default=",".join(BASELINES),
                   help=f"reference maps, comma-separated, from {','.join(BASELINES)} (default: all)")
    p.add_argument("--flip-starts", type=int, default=charge_flipping.STARTS)
    p.add_argument("--flip-cycles", type=int, default=charge_flipping.CYCLES)
    args = p.parse_args(argv)
    files = sorted(args.structures.rglob("*.cif"))
    systems = set(args.systems.split(",")) if args.systems else None
    if not files:
        raise InputError(args.structures, "no CIF files found")
    baselines = tuple(b for b in args.baselines.split(",") if b)
    unknown = set(baselines) - set(BASELINES)
    if unknown:
        raise InputError(None, f"unknown baseline(s) {', '.join(sorted(unknown))}: choose from {', '.join(BASELINES)}")
    primary = network_name(args.model)
    networks = {}
    for choice in (args.model, *[b for b in baselines if b in BUNDLED_NETWORKS and b != primary]):
        weights = weights_for(choice)
        networks[network_name(choice)] = (Predictor.load(weights, args.device), train_index(weights))
    rows, skipped, taken = [], [], {}
    for i, path in enumerate(tqdm(files, desc="evaluate", file=sys.stderr)):
        try:
            full = frozenset(s for s, count in taken.items() if args.limit and count >= args.limit)
            row = evaluate_structure(networks, path, args.realistic, args.samples, args.seed + i, systems,
                                     args.d_min, baselines, (args.flip_starts, args.flip_cycles), full,
                                     args.max_atoms)
        except InputError as exc:
            row = str(exc)
        if isinstance(row, str):
            skipped.append({"file": str(path), "reason": row})
        else:
            taken[row["crystal_system"]] = taken.get(row["crystal_system"], 0) + 1
            rows.append(row)
    indexes = {name: ("present" if index is not None else "absent: every case counted unseen")
               for name, (_, index) in networks.items()}
    summary = summarise(rows, primary)
    result = {"model": primary, "versions": {name: pred.version for name, (pred, _) in networks.items()},
              "setting": "realistic" if args.realistic else "paper", "d_min": args.d_min,
              "train_index": indexes, "per_system": summary, "per_structure": rows, "skipped": skipped}
    with atomic_write(args.json, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
    print(table(summary, primary))
    for name, state in indexes.items():
        print(f"train index of {name}: {state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
