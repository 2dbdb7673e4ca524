"""Fit the volume per atom of each element (resources/atom_volumes.json, model.atom_volumes) to the
cell volumes of the shared real structures. Run: PYTHONPATH=. python scripts/fit_atom_volumes.py"""

from __future__ import annotations

import json
import lzma
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.atom_volumes import TABLE, fit, spread

REAL = ROOT.parent / "shared" / "data" / "real"


def cells() -> list[tuple[Counter, float]]:
    found = []
    for path in sorted(REAL.glob("*.jsonl.xz")):
        with lzma.open(path, "rt") as handle:
            for line in handle:
                row = json.loads(line)
                found.append((Counter(row["species"]), abs(float(np.linalg.det(np.array(row["lattice"]))))))
    return found


if __name__ == "__main__":
    fitted = cells()
    table = fit(fitted)
    lines = [f"{json.dumps(element)}: {json.dumps(list(value))}" for element, value in sorted(table.items())]
    TABLE.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    print(f"{len(table)} elements from {len(fitted)} cells; spread of ln(volume ratio) {spread(fitted, table):.3f}")
