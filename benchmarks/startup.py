"""Start-up time of `cmedgui info` on the bundled example (target ≤ 1 s), against a bare
`python -c pass` timed in the same run, and the imports that take the most of it.

    OMP_NUM_THREADS=1 python benchmarks/startup.py [--runs N]

Each figure is the median of N fresh processes (wall clock, launch to exit). Where the environment
sets PYTHONDONTWRITEBYTECODE every run also compiles the project's modules, as no user's does:
the byte-code is written first, to a temporary folder (PYTHONPYCACHEPREFIX), so the figures are
those of an installed copy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "resources" / "examples" / "CeO2_CuKa.xy"
TARGET_S = 1.0
SLOWEST_IMPORTS = 8


def wall_s(command: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def slowest_imports(command: list[str], env: dict[str, str]) -> list[tuple[float, str]]:
    """(cumulative seconds, module) of the top-level imports that take longest (python -X importtime)."""
    done = subprocess.run([command[0], "-X", "importtime", *command[1:]], cwd=REPO, env=env, check=True,
                          capture_output=True, text=True)
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line.split("|")
            if not name.startswith("  ") and cumulative.strip().isdigit():  # top level: one space of indent
                rows.append((int(cumulative) / 1e6, name.strip()))
    return sorted(rows, reverse=True)[:SLOWEST_IMPORTS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONPYCACHEPREFIX": cache}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        info = [sys.executable, "-m", "cmedgui", "info", str(EXAMPLE)]
        subprocess.run(info, cwd=REPO, env=env, check=True, capture_output=True)  # writes the byte-code
        bare = wall_s([sys.executable, "-c", "pass"], env, args.runs)
        started = wall_s(info, env, args.runs)
        imports = slowest_imports(info, env)
    print(f"python -c pass      {bare:6.3f} s (median of {args.runs})")
    print(f"cmedgui info        {started:6.3f} s (median of {args.runs}), target ≤ {TARGET_S:g} s: "
          f"{'met' if started <= TARGET_S else 'NOT met'}")
    print(f"ratio info / pass   {started / bare:6.1f}")
    print(f"cmedgui info − pass {started - bare:6.3f} s")
    print("slowest top-level imports of `cmedgui info` (cumulative):")
    for seconds, name in imports:
        print(f"  {seconds:6.3f} s  {name}")


if __name__ == "__main__":
    main()
