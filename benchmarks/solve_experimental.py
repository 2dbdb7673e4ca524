"""Solve benchmark on measured patterns: `cmedgui solve` of the shared experimental patterns of the
solvable systems (cubic, hexagonal, tetragonal by default), given the elements and, unless
--no-formula, the formula from the manifest.

Prints per file the space group found, Rwp, whether pymatgen's StructureMatcher matches the solve
with the published structure in the same file, the acceptance (Rwp < 15 % and a match), the
solve's own verdict (model.verdict) and the wall time, and in the end the false verdicts (called
solved, no match) and the missed ones (a match called unsolved). Run: OMP_NUM_THREADS=1 python benchmarks/solve_experimental.py [--systems ...] [--no-formula]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cmedgui.cli import main as cli
from model.structure import load_structure
from model.verdict import SOLVED_RWP

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "experimental"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with manifest.csv")
    parser.add_argument("--systems", nargs="+", default=["cubic", "hexagonal", "tetragonal"])
    parser.add_argument("--no-formula", action="store_true", help="give the elements only")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with open(args.data / "manifest.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r["crystal_system"] in args.systems]
    print(f"{'file':<42} {'formula':<10} {'published':<10} {'found':<10} {'Rwp':>6} match pass verdict {'time s':>7}")
    passed = false = missed = 0
    for row in rows:
        path = args.data / row["file"]
        published = load_structure(path)
        elements = [e.symbol for e in Composition(row["formula"]).elements]
        command = ["solve", str(path), "--elements", *elements, "--out"]
        formula = [] if args.no_formula else ["--formula", row["formula"]]
        with tempfile.TemporaryDirectory() as out:
            began = time.perf_counter()
            with contextlib.redirect_stderr(io.StringIO()):
                status = cli([*command, out, *formula])
            seconds = time.perf_counter() - began
            stem = row["file"].split(".")[0]
            if status not in (0, 1):
                print(f"{row['file']:<42} {row['formula']:<10} failed with exit status {status}")
                continue
            report = json.loads((Path(out) / f"{stem}_report.json").read_text())
            solved = load_structure(Path(out) / f"{stem}.cif") if report.get("sites") else None
        matched = solved is not None and StructureMatcher().fit(published, solved)
        ok = matched and report["rwp"] < SOLVED_RWP
        passed += ok
        false += report["solved"] and not matched
        missed += matched and not report["solved"]
        print(f"{row['file']:<42} {row['formula']:<10} {row['space_group']:<10} {report['space_group'] or '-':<10} "
              f"{report['rwp']:6.2f} {'yes' if matched else 'no':>5} {'yes' if ok else 'NO':>4} {'solved' if report['solved'] else 'not':>7} {seconds:7.1f}")
    print(f"{passed}/{len(rows)} solved (Rwp < {SOLVED_RWP:g} % and matching the published structure); verdicts: {false} false (called solved, no match), "
          f"{missed} missed (a match called unsolved)")


if __name__ == "__main__":
    main()
