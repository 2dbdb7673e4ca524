"""Build resources/phases/: the bundled library of simple phases that model.phases tries against the
lines a solved main phase leaves unexplained. Run once, offline, from the repository root (needs
ASE, `pip install ase`, at build time only):

    python scripts/build_phases.py

Two sources, one structure per reduced formula (a later source never replaces an earlier one):
1. Published reference phases: the diffraction standards (Si, LaB6, CeO2, ZnO, Al2O3, MgO) from
   their certified cells, and a few textbook binaries that are common impurities (BINARIES), each
   with its reference.
2. Elements whose standard state is a simple metal or diamond type, from ASE's reference states
   (ase.data.reference_states, Kittel's lattice constants; hcp only near the ideal c/a, for the
   'hcp' Se and Te there are chains).
The shared real structures (../shared/data/real) are not a source: their README forbids copying
them into the project. A user's own phases come from a folder of CIFs (cmedgui solve --phases).

Writes one CIF per phase (every atom of the cell in P 1: model.constraints finds the symmetry
again) and index.csv with formula, file, space group, atoms, source, origin and licence.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from ase.build import bulk
from ase.data import atomic_numbers, reference_states
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.cif import CifWriter
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "resources" / "phases"
IDEAL_HCP = (1.5, 1.75)  # c/a of true hcp metals (ideal 1.633); ASE's 'hcp' Se and Te are chain structures
# elements of common crystalline phases: no noble gases, nothing radioactive beyond Bi but Th and U
COMMON = {s for s in atomic_numbers if 0 < atomic_numbers[s] <= 83} - {"He", "Ne", "Ar", "Kr", "Xe", "Tc", "Pm"} \
    | {"Th", "U"}

# (space group, a, c (None: cubic), sites (element, x, y, z)), reference
STANDARDS = {
    # pymatgen builds Fd-3m in origin choice 1: Si on 8a at 0 0 0
    "Si": (227, 5.431144, None, [("Si", 0, 0, 0)], "NIST SRM 640f, a = 5.431144 Å at 22.5 °C"),
    "LaB6": (221, 4.156826, None, [("La", 0, 0, 0), ("B", 0.1993, 0.5, 0.5)],
             "NIST SRM 660c, a = 4.156826 Å; B x from Eliseev et al., Acta Cryst. B 42 (1986)"),
    "CeO2": (225, 5.411651, None, [("Ce", 0, 0, 0), ("O", 0.25, 0.25, 0.25)], "NIST SRM 674b, a = 5.411651 Å"),
    "ZnO": (186, 3.24982, 5.20661, [("Zn", 1 / 3, 2 / 3, 0), ("O", 1 / 3, 2 / 3, 0.3819)],
            "NIST SRM 674b; O z from Kisi & Elcombe, Acta Cryst. C 45 (1989)"),
    "Al2O3": (167, 4.759091, 12.991779, [("Al", 0, 0, 0.35216), ("O", 0.30624, 0, 0.25)],
              "NIST SRM 676a; coordinates from Lewis et al., Z. Kristallogr. 159 (1982)"),
    "MgO": (225, 4.2117, None, [("Mg", 0, 0, 0), ("O", 0.5, 0.5, 0.5)], "periclase, Hazen, Am. Mineral. 61 (1976)"),
}
# common impurities of syntheses and minerals, room-temperature cells from the standard references
BINARIES = {
    "NaCl": (225, 5.6402, None, [("Na", 0, 0, 0), ("Cl", 0.5, 0.5, 0.5)], "halite, Swanson & Fuyat, NBS Circ. 539 II (1953)"),
    "KCl": (225, 6.2917, None, [("K", 0, 0, 0), ("Cl", 0.5, 0.5, 0.5)], "sylvite, Swanson & Tatge, NBS Circ. 539 I (1953)"),
    "CaF2": (225, 5.4626, None, [("Ca", 0, 0, 0), ("F", 0.25, 0.25, 0.25)], "fluorite, Swanson & Tatge, NBS Circ. 539 I (1953)"),
    "CaO": (225, 4.8105, None, [("Ca", 0, 0, 0), ("O", 0.5, 0.5, 0.5)], "lime, Swanson & Tatge, NBS Circ. 539 I (1953)"),
    "NiO": (225, 4.1771, None, [("Ni", 0, 0, 0), ("O", 0.5, 0.5, 0.5)], "bunsenite, Swanson & Tatge, NBS Circ. 539 I (1953)"),
    "ZnS": (216, 5.4093, None, [("Zn", 0, 0, 0), ("S", 0.25, 0.25, 0.25)], "sphalerite, Swanson & Fuyat, NBS Circ. 539 II (1953)"),
    "TiO2": (136, 4.5937, 2.9587, [("Ti", 0, 0, 0), ("O", 0.3048, 0.3048, 0)],
             "rutile, Abrahams & Bernstein, J. Chem. Phys. 55 (1971)"),
}


def published(phases: dict, source: str) -> list[tuple[Structure, str, str, str]]:
    rows = []
    for group, a, c, sites, reference in phases.values():
        lattice = Lattice.cubic(a) if c is None else (Lattice.hexagonal(a, c) if group >= 143 else Lattice.tetragonal(a, c))
        structure = Structure.from_spacegroup(group, lattice, [s[0] for s in sites], [s[1:] for s in sites])
        rows.append((structure, source, reference, "published values"))
    return rows


def ase_elements() -> list[tuple[Structure, str, str, str]]:
    rows = []
    for symbol, number in atomic_numbers.items():
        state = reference_states[number] if number < len(reference_states) else None
        if symbol not in COMMON or not state or state["symmetry"] not in ("fcc", "bcc", "hcp", "diamond"):
            continue
        if state["symmetry"] == "hcp" and not IDEAL_HCP[0] <= state["c/a"] <= IDEAL_HCP[1]:
            continue
        atoms = bulk(symbol, state["symmetry"], a=state["a"], **({"covera": state["c/a"]} if "c/a" in state else {}))
        structure = SpacegroupAnalyzer(AseAtomsAdaptor.get_structure(atoms)).get_conventional_standard_structure()
        rows.append((structure, f"ase:{symbol}", "ASE reference state (Kittel)", "LGPL-2.1 (ASE)"))
    return rows


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.cif"):
        old.unlink()
    index = []
    taken: set[str] = set()
    for structure, source, origin, licence in [*published(STANDARDS, "standard"), *published(BINARIES, "binary"), *ase_elements()]:
        formula = structure.composition.reduced_formula
        if formula in taken:
            continue
        taken.add(formula)
        analyzer = SpacegroupAnalyzer(structure, symprec=0.01)
        name = f"{formula}.cif"
        CifWriter(structure, significant_figures=5).write_file(OUT / name)
        index.append({"formula": formula, "file": name, "space_group": analyzer.get_space_group_symbol(),
                      "number": analyzer.get_space_group_number(), "atoms": len(structure),
                      "standard": int(source == "standard"), "source": source, "origin": origin,
                      "licence": licence})
    with open(OUT / "index.csv", "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(index[0]))
        writer.writeheader()
        writer.writerows(index)
    size = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{len(index)} phases, {size / 1e3:.0f} kB in {OUT}")


if __name__ == "__main__":
    main()
