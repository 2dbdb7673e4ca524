"""``python -m model.data build …``: build or resume a training data set (see model.data.build)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from model.data.build import BuildOptions, build
from model.data.systems import parse_systems
from model.errors import InputError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.data")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("build", help="build or resume a data set (rerun the same command to resume)")
    p.add_argument("--systems", required=True, help="comma-separated, e.g. cubic,trigonal,hexagonal,tetragonal")
    p.add_argument("--n", type=int, help="number of samples (default with --from-cifs: every CIF)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--from-cifs", metavar="FOLDER_OR_CSV",
                   help="build from a folder of CIFs or a Materials-Project-style CSV (a 'cif' column), as they are")
    p.add_argument("--real", metavar="FOLDER",
                   help="real structures (*.jsonl.xz, e.g. ../shared/data/real): each once, then substitutions "
                        "on them (and a minor share of pyxtal crystals) up to --n")
    p.add_argument("--shard-size", type=int, default=500, help="samples per HDF5 shard")
    args = parser.parse_args(argv)
    try:
        if args.n is None and not args.from_cifs:
            raise InputError("--n", "required unless --from-cifs is given")
        n = args.n if args.n is not None else sys.maxsize
        if n < 1 or args.workers < 1 or args.shard_size < 1:
            raise InputError("--n/--workers/--shard-size", "must be positive")
        options = BuildOptions(systems=parse_systems(args.systems), n=n, seed=args.seed,
                               from_cifs=str(Path(args.from_cifs).resolve()) if args.from_cifs else None,
                               real=str(Path(args.real).resolve()) if args.real else None,
                               shard_size=args.shard_size)
        summary = build(args.out, options, workers=args.workers)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    brief = {k: v for k, v in summary.items() if k != "spacegroup_counts"}
    print(json.dumps(brief, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
