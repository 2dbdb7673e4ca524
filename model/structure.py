"""Loading crystal structures and putting them in the conventional standard setting."""

from __future__ import annotations

import warnings
from pathlib import Path

from pymatgen.core import Element, Structure
from pymatgen.io.cif import CifParser
from pymatgen.io.registry import get_structure_format
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from model.errors import InputError

MAX_SITES = 2000  # conventional-cell sites; beyond this a CIF is not a small-cell powder problem


def load_structure(path: str | Path) -> Structure:
    """Read the first structure of a CIF (or any format pymatgen reads) with ordered or partial sites."""
    return load_structures(path)[0]


def load_structures(path: str | Path) -> list[Structure]:
    """Every structure in a file: one per CIF data block that holds atoms (e.g. the phases of a
    multi-phase refinement), or the one structure of any other format pymatgen reads."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty")
    head = path.read_bytes()[:4096]
    if b"\x00" in head:
        raise InputError(path, "binary content where a structure file (CIF/POSCAR) was expected")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if get_structure_format(filename=str(path)).name == "cif":
                structures = CifParser(path).parse_structures(primitive=False)
            else:
                structures = [Structure.from_file(path)]
    except Exception as exc:  # noqa: BLE001 - pymatgen raises many types for malformed files
        raise InputError(path, f"cannot read a structure: {_first_line(exc)}") from None
    for structure in structures:
        check_structure(structure, path)
    return structures


def check_structure(structure: Structure, source: str | Path | None = None) -> None:
    if len(structure) == 0:
        raise InputError(source, "structure has no atoms")
    if len(structure) > MAX_SITES:
        raise InputError(source, f"{len(structure)} sites is more than the {MAX_SITES} supported")
    for specie in structure.composition.elements:
        if not isinstance(specie, Element) and not hasattr(specie, "element"):
            raise InputError(source, f"unknown element {specie}")
    if structure.volume < 1.0 or structure.volume > 1e6:
        raise InputError(source, f"cell volume {structure.volume:.3g} Å³ is not physical")


def atomic_radius_A(symbol: str) -> float:
    """Empirical atomic radius (Å, pymatgen's table; 1.5 Å where it has none): the scale of the
    search's and the solve's contact rules."""
    radius = Element(symbol).atomic_radius
    return float(radius) if radius is not None else 1.5


def conventional_standard(structure: Structure, symprec: float = 1e-3,
                          keep_site_properties: bool = False) -> Structure:
    """The conventional standard cell (spglib via pymatgen), the setting of every CMED grid; with
    ``keep_site_properties`` each site keeps its properties (e.g. "biso")."""
    return SpacegroupAnalyzer(structure, symprec=symprec).get_conventional_standard_structure(
        keep_site_properties=keep_site_properties)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
