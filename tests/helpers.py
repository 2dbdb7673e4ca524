"""Small functions the tests share (imported as `helpers`: pytest puts tests/ on sys.path)."""

from pathlib import Path

import numpy as np


def finished(job):
    """What a generator job (a solve, a search, a stage) returns, its progress steps run through."""
    while True:
        try:
            next(job)
        except StopIteration as stop:
            return stop.value


def written(folder: Path) -> list[str]:
    """Names of the files in ``folder``: what a command left behind."""
    return sorted(p.name for p in folder.iterdir())


def read_xsf(path):
    """Lattice (PRIMVEC), atoms (Z, Cartesian Å) and the periodic DATAGRID_3D of an XSF file."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    primvec = np.array([lines[i].split() for i in range(lines.index("PRIMVEC") + 1,
                                                         lines.index("PRIMVEC") + 4)], dtype=float)
    count = int(lines[lines.index("PRIMCOORD") + 1].split()[0])
    atoms = [(int(line.split()[0]), np.array(line.split()[1:4], dtype=float))
             for line in lines[lines.index("PRIMCOORD") + 2: lines.index("PRIMCOORD") + 2 + count]]
    start = next(i for i, line in enumerate(lines) if line.startswith("BEGIN_DATAGRID_3D"))
    shape = tuple(int(v) for v in lines[start + 1].split())
    origin = np.array(lines[start + 2].split(), dtype=float)
    span = np.array([lines[start + 3 + i].split() for i in range(3)], dtype=float)
    end = lines.index("END_DATAGRID_3D")
    data = np.array(" ".join(lines[start + 6: end]).split(), dtype=float)
    return primvec, atoms, origin, span, data.reshape(shape, order="F")
