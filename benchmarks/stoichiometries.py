"""Elements-only formula guesses (model.composition.stoichiometries) against the truth: given only a
structure's elements and its cell volume, where its reduced formula ranks among the guesses.

On the shared evaluation structures (≤ MAX_ATOMS atoms, 2 or more elements) and every STEP-th real
training structure, prints the share whose formula is the first guess, among the first 4 (what a
solve tries) and among the first 16. Run: PYTHONPATH=. python benchmarks/stoichiometries.py [--step N]
"""

from __future__ import annotations

import argparse
import csv
import json
import lzma
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from pymatgen.core import Composition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.composition import chemistry, stoichiometries
from model.solve import MAX_ATOMS
from model.structure import load_structure

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RANKS = (1, 4, 16)


def evaluation() -> list[tuple[str, Counter, float]]:
    with open(DATA / "structures" / "manifest.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["natoms_conventional"]) <= MAX_ATOMS]
    found = []
    for row in rows:
        structure = load_structure(DATA / "structures" / row["file"])
        found.append((row["file"], Counter(s.symbol for s in structure.species), structure.volume))
    return found


def real(step: int) -> list[tuple[str, Counter, float]]:
    found = []
    for path in sorted((DATA / "real").glob("*.jsonl.xz")):
        with lzma.open(path, "rt") as handle:
            for n, line in enumerate(handle):
                if n % step == 0:
                    row = json.loads(line)
                    if row["natoms_conventional"] <= MAX_ATOMS:
                        found.append((row["id"], Counter(row["species"]),
                                      abs(float(np.linalg.det(np.array(row["lattice"]))))))
    return found


def ranks(cells: list[tuple[str, Counter, float]]) -> tuple[list[int], float]:
    """Rank (1 = first guess, 0 = not among the first RANKS[-1]) of each cell's reduced formula."""
    found, began = [], time.perf_counter()
    for _, atoms, volume in cells:
        if len(atoms) < 2:
            continue
        truth = {e: int(n) for e, n in Composition(atoms).reduced_composition.get_el_amt_dict().items()}
        guesses = stoichiometries(chemistry(list(atoms)), volume, MAX_ATOMS, count=RANKS[-1])
        found.append(guesses.index(truth) + 1 if truth in guesses else 0)
    return found, (time.perf_counter() - began) / max(1, len(found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=int, default=40, help="every STEP-th real structure")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    for name, cells in (("evaluation", evaluation()), (f"real (every {args.step}th)", real(args.step))):
        found, seconds = ranks(cells)
        shares = "  ".join(f"top {k}: {sum(0 < r <= k for r in found) / len(found):6.1%}" for k in RANKS)
        print(f"{name:<22} {len(found):5d} formulas  {shares}  {seconds * 1000:.0f} ms each")


if __name__ == "__main__":
    main()
