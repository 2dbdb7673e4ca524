"""`cmedgui density`: the CMED (independent-atom electron density) of a structure file."""

from __future__ import annotations

import argparse

from model.density import cmed, grid_biso
from model.exporters import EXPORTERS, export, exporter_for
from model.structure import load_structure

ENDINGS = ", ".join(ext for e in EXPORTERS if e.kind == "density" for ext in e.extensions)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "density", help="electron density (CMED) of a structure on an N³ grid",
        description="Independent-atom electron density (e/Å³) of the conventional standard cell "
                    "on an N³ grid of fractional coordinates, written in the format the output "
                    f"file name ends with ({ENDINGS}).")
    parser.add_argument("structure", metavar="CIF", help="structure file (CIF, POSCAR, …)")
    parser.add_argument("--grid", type=int, default=32, metavar="N", help="grid points per axis (default 32)")
    parser.add_argument("--biso", type=float, default=None, metavar="B",
                        help="isotropic B in Å² for every atom (default: the smallest that keeps "
                             "the grid faithful, 8π²·(longest edge / N)²)")
    parser.add_argument("--as-given", action="store_true",
                        help="use the cell as given instead of the conventional standard cell")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help=f"output file ({ENDINGS})")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    exporter = exporter_for(args.output, "density")  # refuse an unknown ending before any work
    structure = load_structure(args.structure)
    density = cmed(structure, n=args.grid, biso=args.biso, conventional=not args.as_given)
    export(args.output, density, kind="density")
    cell = density.structure.lattice
    biso = grid_biso(density.lattice, density.n) if args.biso is None else args.biso
    print(f"{args.output}: {exporter.name}, {density.n}³ grid of {density.structure.composition.formula} "
          f"(a b c = {cell.a:.4f} {cell.b:.4f} {cell.c:.4f} Å, α β γ = {cell.alpha:.2f} {cell.beta:.2f} "
          f"{cell.gamma:.2f}°), B = {biso:.3g} Å², {density.electron_count:.2f} electrons, "
          f"max {density.values.max():.4g} e/Å³")
    return 0
