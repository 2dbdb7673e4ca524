"""Rietveld benchmark: `cmedgui refine F F` of each shared experimental pattern (the published
structure is in the same file; a file with several structure blocks is refined as a mixture).

Prints per file our Rwp, the published one where the file states it, the acceptance bound (1.5×
the published Rwp, or 15 % where none is stated), the phases' weight fractions, the optional terms
kept, the range of the refined Biso (Å²) and the wall time. Run: OMP_NUM_THREADS=1 python benchmarks/refine.py [--files NAME ...]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cmedgui.cli import main as cli

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "experimental"
UNSTATED_BOUND = 15.0  # % Rwp, where the file states no published value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with manifest.csv")
    parser.add_argument("--files", nargs="+", default=None, help="only these file names (or prefixes)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with open(args.data / "manifest.csv") as handle:
        rows = list(csv.DictReader(handle))
    if args.files:
        rows = [r for r in rows if any(r["file"].startswith(f) for f in args.files)]
    print(f"{'file':<42} {'formula':<10} {'Rwp':>6} {'publ.':>6} {'bound':>6} pass {'B Å²':>9} {'time s':>7}"
          "  phases; kept terms")
    passed = 0
    for row in rows:
        path = args.data / row["file"]
        with tempfile.TemporaryDirectory() as out:
            began = time.perf_counter()
            with contextlib.redirect_stderr(io.StringIO()):
                status = cli(["refine", str(path), str(path), "--out", out])
            seconds = time.perf_counter() - began
            if status != 0:
                print(f"{row['file']:<42} {row['formula']:<10} failed with exit status {status}")
                continue
            report = json.loads((Path(out) / f"{row['file'].split('.')[0]}_report.json").read_text())
        published = report.get("published_rwp")
        bound = 1.5 * published if published is not None else UNSTATED_BOUND
        ok = report["rwp"] <= bound
        passed += ok
        biso = [site["biso"] for phase in report["phases"] for site in phase["sites"]]
        phases = ", ".join(f"{p['space_group']} {100 * p['weight_fraction']:.1f} %" for p in report["phases"])
        print(f"{row['file']:<42} {row['formula']:<10} {report['rwp']:6.2f} "
              f"{'–' if published is None else f'{published:.2f}':>6} {bound:6.2f} {'yes' if ok else 'NO':>4} "
              f"{min(biso):4.2f}–{max(biso):4.2f} {seconds:7.1f}  {phases}; {report['message'] or 'none'}")
    print(f"{passed}/{len(rows)} within bound")


if __name__ == "__main__":
    main()
