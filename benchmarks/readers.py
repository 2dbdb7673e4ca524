"""Pattern reader speed on every shared real pattern file (single thread).

Prints, per file: reader, points, best-of-3 load time (ms) and points/s; then the slowest file
and the total. Run from the checkout: OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/readers.py
"""

from __future__ import annotations

import time
from pathlib import Path

from model.readers import read_patterns

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    files = [p for d in ("formats", "experimental") for p in sorted((SHARED / d).rglob("*"))
             if p.is_file() and p.name not in ("MANIFEST.tsv", "manifest.csv")]
    read_patterns(files[0])  # imports (pymatgen, fairmat) are not the readers' speed
    rows = []
    for path in files:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            patterns = read_patterns(path)
            times.append(time.perf_counter() - start)
        points = sum(len(p) for p in patterns)
        rows.append((min(times), path, patterns[0].provenance.format, points))
        print(f"{patterns[0].provenance.format:12s} {points:7d} pts {1e3 * min(times):8.1f} ms "
              f"{points / min(times):12.0f} pts/s  {path.relative_to(SHARED)}")
    slowest = max(rows)
    print(f"slowest: {slowest[1].name} {1e3 * slowest[0]:.1f} ms; "
          f"all {len(rows)} files: {sum(r[0] for r in rows):.2f} s")


if __name__ == "__main__":
    main()
