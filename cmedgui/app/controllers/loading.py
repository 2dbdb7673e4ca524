"""What opening a file means in the window: the reader registry's patterns, plus the structure
when the file is a structure CIF (the registry opens it as its simulated pattern)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pymatgen.core import Structure

from model.pattern import Pattern, Wavelength
from model.readers import read_patterns
from model.structure import conventional_standard, load_structure


@dataclass
class Opened:
    """What a file gave: its patterns and, for a structure file, the structure (conventional cell)."""

    patterns: list[Pattern]
    structure: Structure | None = None


def open_file(path: str | Path, wavelength: Wavelength | None = None) -> Opened:
    patterns = read_patterns(path, wavelength)
    simulated = any(p.provenance.metadata.get("simulated") for p in patterns)
    return Opened(patterns, conventional_standard(load_structure(path)) if simulated else None)
