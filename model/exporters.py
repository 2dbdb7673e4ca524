"""Writers for what the app and the commands export, one registry entry per file format.

An ``Exporter`` names a format, the file-name endings it owns and the kind of object it writes
("density": model.density.Density, "pattern": model.pattern.Pattern or model.result.Fit,
"structure": pymatgen Structure or model.result.SolveResult, "peaks": a list of
model.fourier.MapPeak). ``export`` picks the entry by the
path's ending (and kind); every file is written atomically. Density formats are those VESTA opens.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from pymatgen.core import Element, PeriodicSite, Structure
from pymatgen.io.cif import CifWriter
from pymatgen.io.vasp import Poscar
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from model.cif_refinement import add_refinement
from model.density import Density
from model.errors import InputError
from model.files import atomic_write
from model.fourier import MapPeak
from model.instrument import doublet_of
from model.pattern import Pattern
from model.result import Fit, SolveResult

KINDS = ("density", "pattern", "structure", "peaks")
BOHR_A = 0.529177210903  # CODATA 2018 Bohr radius in Å (cube files are in Bohr)
CIF_SYMPREC = 0.01  # Å, tolerance for finding the symmetry written to CIF
NUMBERS_PER_WRITE = 1 << 18  # bounds the memory of text grids


@dataclass(frozen=True)
class Exporter:
    """A file format: display name, file-name endings (matched ignoring case), kind, and its writer."""

    name: str
    extensions: tuple[str, ...]
    kind: str
    write: Callable[[Path, Any], None]

    def matches(self, path: str | Path) -> bool:
        return Path(path).name.lower().endswith(tuple(ext.lower() for ext in self.extensions))

    @property
    def filter(self) -> str:
        """Qt file-dialog filter, e.g. 'Gaussian cube (*.cube)'."""
        return f"{self.name} ({' '.join('*' + ext for ext in self.extensions)})"


# ---------------------------------------------------------------- density


def _write_npz(path: Path, density: Density) -> None:
    """values (e/Å³), lattice (rows a, b, c in Å), kind and description, and the atoms: species
    (majority element of each site) and frac_coords."""
    atoms = density.structure.frac_coords if density.structure is not None else np.zeros((0, 3))
    species = [_majority(site).symbol for site in density.structure] if density.structure is not None else []
    with atomic_write(path, "wb") as handle:
        np.savez_compressed(handle, values=density.values, lattice=density.lattice, kind=density.kind,
                            description=density.description, species=np.array(species, dtype=str),
                            frac_coords=atoms)


def _write_cube(path: Path, density: Density) -> None:
    """Gaussian cube: lengths in Bohr, ρ in e/Bohr³, z index fastest; N voxels span each cell edge."""
    atoms = _atoms(density)
    header = [f"cmedgui {density.description}",
              f"{density.n}^3 grid of fractional coordinates; values in e/Bohr^3",
              f"{len(atoms):5d} {0.0:12.6f} {0.0:12.6f} {0.0:12.6f}"]
    for axis in density.lattice:
        voxel = axis / density.n / BOHR_A
        header.append(f"{density.n:5d} {voxel[0]:12.6f} {voxel[1]:12.6f} {voxel[2]:12.6f}")
    for z, cart in atoms:
        x, y, w = cart / BOHR_A
        header.append(f"{z:5d} {float(z):12.6f} {x:12.6f} {y:12.6f} {w:12.6f}")
    rows = (density.values.astype(np.float64) * BOHR_A**3).reshape(-1, density.n)
    with atomic_write(path) as handle:
        handle.write("\n".join(header) + "\n")
        _write_numbers(handle, rows, 6, "%13.5E")


def _write_xsf(path: Path, density: Density) -> None:
    """XCrySDen XSF: periodic general grid of N+1 points a side (last plane repeats the first),
    x index fastest, ρ in e/Å³; atoms in Cartesian Å; which map it is in a comment line."""
    atoms = _atoms(density)
    lines = [f"# cmedgui {density.description}", "CRYSTAL", "PRIMVEC", *(_vector(row) for row in density.lattice)]
    if atoms:
        lines += ["PRIMCOORD", f"{len(atoms)} 1", *(f"{z:3d} {_vector(cart)}" for z, cart in atoms)]
    n1 = density.n + 1
    name = density.kind.replace(" ", "_")
    lines += ["BEGIN_BLOCK_DATAGRID_3D", f"cmedgui_{name}_map", f"BEGIN_DATAGRID_3D_{name}_electron_density",
              f"{n1} {n1} {n1}", _vector(np.zeros(3)), *(_vector(row) for row in density.lattice)]
    periodic = np.pad(density.values, ((0, 1), (0, 1), (0, 1)), mode="wrap")
    with atomic_write(path) as handle:
        handle.write("\n".join(lines) + "\n")
        _write_flat(handle, periodic.ravel(order="F"), 6, "%13.5E")
        handle.write("END_DATAGRID_3D\nEND_BLOCK_DATAGRID_3D\n")


def _write_chgcar(path: Path, density: Density) -> None:
    """VASP CHGCAR: POSCAR header, then ρ·V_cell (e) with x index fastest, as VASP stores it."""
    if density.structure is None:
        raise InputError(path, "a VASP CHGCAR needs the atoms and this density has none: "
                               "export .cube, .xsf or .npz instead")
    structure = _ordered(density.structure).get_sorted_structure()
    poscar = Poscar(structure, comment=f"cmedgui {density.description}")
    flat = density.values.astype(np.float64).ravel(order="F") * density.volume_A3
    with atomic_write(path) as handle:
        handle.write(poscar.get_str(significant_figures=8) + "\n")
        handle.write(f"{density.n:5d}{density.n:5d}{density.n:5d}\n")
        _write_flat(handle, flat, 5, "%18.11E")


def _atoms(density: Density) -> list[tuple[int, np.ndarray]]:
    """(Z, Cartesian Å) of each site, the majority element where a site is shared."""
    if density.structure is None:
        return []
    return [(_majority(site).Z, site.coords) for site in density.structure]


def _ordered(structure: Structure) -> Structure:
    """Each site given its majority element: VASP files cannot hold partial occupancy."""
    return Structure(structure.lattice, [_majority(site) for site in structure], structure.frac_coords)


def _majority(site: PeriodicSite) -> Element:
    specie = max(site.species.items(), key=lambda item: item[1])[0]
    return getattr(specie, "element", specie)  # Species("Fe", 2) → Element Fe


def _vector(values: np.ndarray) -> str:
    return " ".join(f"{v:14.8f}" for v in values)


def _write_numbers(handle: IO[str], rows: np.ndarray, per_line: int, fmt: str) -> None:
    """Each row of a 2-D array on its own lines, ``per_line`` numbers to a line."""
    length = rows.shape[1]
    line = " ".join([fmt] * per_line) + "\n"
    rest = " ".join([fmt] * (length % per_line)) + "\n" if length % per_line else ""
    row_format = line * (length // per_line) + rest
    block = max(1, NUMBERS_PER_WRITE // length)
    for start in range(0, rows.shape[0], block):
        chunk = rows[start:start + block]
        # one %-format over many numbers: far faster than formatting them one by one
        handle.write((row_format * chunk.shape[0]) % tuple(chunk.ravel().tolist()))


def _write_flat(handle: IO[str], flat: np.ndarray, per_line: int, fmt: str) -> None:
    """A 1-D array, ``per_line`` numbers to a line."""
    whole = flat.size - flat.size % per_line
    _write_numbers(handle, flat[:whole].reshape(-1, per_line), per_line, fmt)
    if whole < flat.size:
        _write_numbers(handle, flat[None, whole:], per_line, fmt)


# ---------------------------------------------------------------- pattern


def _columns(obj: Pattern | Fit) -> tuple[list[str], np.ndarray]:
    if isinstance(obj, Fit):
        names = ["two_theta", "obs", "calc", "background", "diff"]
        data = [obj.two_theta, obj.observed, obj.calculated, obj.background, obj.difference]
    else:
        names = ["two_theta", "intensity"] + (["sigma"] if obj.sigma is not None else [])
        data = [obj.two_theta, obj.intensity] + ([obj.sigma] if obj.sigma is not None else [])
    return names, np.column_stack([np.asarray(column, dtype=float) for column in data])


def _write_xy(path: Path, obj: Pattern | Fit) -> None:
    """Whitespace columns (2θ in degrees first) under '#' lines: source, wavelength, column names."""
    names, table = _columns(obj)
    header = []
    if isinstance(obj, Pattern):
        header.append(f"source: {obj.provenance.path or obj.name} ({obj.provenance.format or 'unknown'})")
        header.append(f"wavelength_A: {_wavelength_text(obj)}")
    header.append(" ".join(names))
    _write_table(path, table, header, delimiter=" ")


def _write_csv(path: Path, obj: Pattern | Fit) -> None:
    """Comma-separated columns with one header row (2θ in degrees first)."""
    names, table = _columns(obj)
    _write_table(path, table, [",".join(names)], delimiter=",", comments="")


def _write_table(path: Path, table: np.ndarray, header: list[str], delimiter: str,
                 comments: str = "# ") -> None:
    buffer = io.StringIO()
    np.savetxt(buffer, table, fmt="%.10g", delimiter=delimiter, header="\n".join(header),
               comments=comments)
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())


def _wavelength_text(pattern: Pattern) -> str:
    w = pattern.wavelength
    if w is None:
        return "unknown"
    text = f"{w.ka1:.6f}"
    doublet = doublet_of(w)
    if doublet is not None:
        text += f" (Ka2 {doublet[0]:.6f}, I(Ka2)/I(Ka1) {doublet[1]:g})"
    return text + (f" {w.label}" if w.label else "")


# ---------------------------------------------------------------- structure


def _write_cif(path: Path, obj: Structure | SolveResult) -> None:
    """CIF with the symmetry found by spglib (pymatgen CifWriter, tolerance CIF_SYMPREC Å), the
    occupancy and, where the sites carry a "biso" property (a SolveResult's do), the isotropic
    displacement B (Å²) of every site in the asymmetric unit; a refined SolveResult adds its
    refinement block (model.cif_refinement: agreement, esds, the fitted profile)."""
    structure = obj.structure if isinstance(obj, SolveResult) else obj
    if structure is None:
        raise InputError(None, "the solve result has no atoms to write")
    writer = CifWriter(structure, symprec=CIF_SYMPREC)
    if None not in structure.site_properties.get("biso", [None]):
        _add_biso(writer, structure)
    if isinstance(obj, SolveResult) and obj.refinement is not None:
        add_refinement(next(iter(writer.cif_file.data.values())), obj)
    text = str(writer)
    with atomic_write(path) as handle:
        handle.write(text)


def _add_biso(writer: CifWriter, structure: Structure) -> None:
    """_atom_site_B_iso_or_equiv for each row CifWriter wrote: its rows are sites of the refined
    (standardised) cell, so each takes the B of the site of that cell it sits on."""
    refined = SpacegroupAnalyzer(structure, symprec=CIF_SYMPREC).get_refined_structure(keep_site_properties=True)
    block = next(iter(writer.cif_file.data.values()))
    rows = zip(block.data["_atom_site_type_symbol"], block.data["_atom_site_fract_x"],
               block.data["_atom_site_fract_y"], block.data["_atom_site_fract_z"])
    biso = []
    for symbol, *xyz in rows:
        candidates = [site for site in refined if symbol in {str(sp) for sp in site.species}]
        offsets = np.array([site.frac_coords for site in candidates]) - np.array(xyz, dtype=float)
        nearest = int(np.argmin(np.linalg.norm(offsets - np.round(offsets), axis=1)))
        biso.append(f"{candidates[nearest].properties['biso']:.4f}")
    block.data["_atom_site_B_iso_or_equiv"] = biso
    block.data["_atom_site_adp_type"] = ["Biso"] * len(biso)
    loop = next(loop for loop in block.loops if "_atom_site_label" in loop)
    loop += ["_atom_site_B_iso_or_equiv", "_atom_site_adp_type"]


# ---------------------------------------------------------------- peaks

PEAK_COLUMNS = ("x", "y", "z", "height", "nearest_atom")


def _write_peaks_csv(path: Path, peaks: list[MapPeak]) -> None:
    """A map's peaks and holes: fractional x, y, z, height (e/Å³, signed) and the nearest atom's
    label, one row each in the list's order (model.fourier: strongest |height| first)."""
    rows = [",".join(PEAK_COLUMNS)]
    # rounded before wrapping into 0–1, so 0.999999 is written 0.00000, never 1.00000
    rows += [",".join(f"{round(v, 5) % 1.0:.5f}" for v in peak.xyz) + f",{peak.height:.4f},{peak.nearest_atom}"
             for peak in peaks]
    with atomic_write(path) as handle:
        handle.write("\n".join(rows) + "\n")


# ---------------------------------------------------------------- registry

EXPORTERS: list[Exporter] = [
    Exporter("Gaussian cube", (".cube",), "density", _write_cube),
    Exporter("XCrySDen XSF", (".xsf",), "density", _write_xsf),
    Exporter("VASP CHGCAR", (".vasp", "CHGCAR"), "density", _write_chgcar),
    Exporter("NumPy grid with lattice and atoms", (".npz",), "density", _write_npz),
    Exporter("Two-column text", (".xy",), "pattern", _write_xy),
    Exporter("CSV", (".csv",), "pattern", _write_csv),
    Exporter("CIF", (".cif",), "structure", _write_cif),
    Exporter("Peak list CSV", (".csv",), "peaks", _write_peaks_csv),
]


def kind_of(obj: Any) -> str:
    """The export kind of an object; TypeError for objects nothing exports."""
    if isinstance(obj, Density):
        return "density"
    if isinstance(obj, (Pattern, Fit)):
        return "pattern"
    if isinstance(obj, (Structure, SolveResult)):
        return "structure"
    if isinstance(obj, list) and obj and all(isinstance(item, MapPeak) for item in obj):
        return "peaks"
    raise TypeError(f"nothing exports a {type(obj).__name__}")


def exporter_for(path: str | Path, kind: str) -> Exporter:
    """The registry entry of ``kind`` owning the path's ending; InputError names the choices."""
    if kind not in KINDS:
        raise InputError(None, f"unknown export kind {kind!r}: one of {', '.join(KINDS)}")
    for exporter in EXPORTERS:
        if exporter.kind == kind and exporter.matches(path):
            return exporter
    endings = ", ".join(ext for e in EXPORTERS if e.kind == kind for ext in e.extensions)
    raise InputError(path, f"cannot write a {kind} to this file name: use an ending among {endings}")


def export(path: str | Path, obj: Any, kind: str | None = None) -> Exporter:
    """Write ``obj`` to ``path`` in the format its ending names; returns the entry used."""
    path = Path(path)
    exporter = exporter_for(path, kind or kind_of(obj))
    try:
        exporter.write(path, obj)
    except OSError as error:
        raise InputError(path, f"cannot write: {error.strerror or error}") from None
    return exporter


def file_filter(kind: str) -> str:
    """Filter string for a Qt save dialog, ';;'-separated, one entry per format of ``kind``."""
    filters = [e.filter for e in EXPORTERS if e.kind == kind]
    if not filters:
        raise InputError(None, f"unknown export kind {kind!r}: one of {', '.join(KINDS)}")
    return ";;".join(filters)
