"""`cmedgui info FILE`: what a pattern file holds, as one JSON object on stdout."""

from __future__ import annotations

import json

import numpy as np

from cmedgui.opening import open_file
from model.pattern import Pattern, parse_wavelength


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "info", help="describe a powder pattern file (JSON)",
        description="Read a powder pattern file and print format, points, 2θ range, "
                    "wavelength and header metadata as one JSON object.")
    parser.add_argument("file", help="pattern file (xy, xye, xrdml, raw, brml, ras, uxd, cif, ...)")
    parser.add_argument("--wavelength", type=str, default=None,
                        help="wavelength in Å or anode (CuKa, MoKa1...) when the file states none; "
                             "overrides the file's")
    parser.set_defaults(handler=run)


def run(args) -> int:
    wavelength = parse_wavelength(args.wavelength) if args.wavelength else None
    patterns = open_file(args.file, wavelength).patterns
    print(json.dumps(describe(patterns), ensure_ascii=False, default=str))
    return 0


def describe(patterns: list[Pattern]) -> dict:
    """The info object: file-wide figures, the first range's metadata, per-range details if several."""
    first = patterns[0]
    summary = {
        "format": first.provenance.format,
        "n_points": int(sum(len(p) for p in patterns)),
        **_wavelength(first),
        "two_theta_min": float(min(p.two_theta[0] for p in patterns)),
        "two_theta_max": float(max(p.two_theta[-1] for p in patterns)),
        "step": _round(float(np.median([p.step for p in patterns]))),
        "n_ranges": len(patterns),
        "metadata": first.provenance.metadata,
    }
    if len(patterns) > 1:
        summary["ranges"] = [_range(p) for p in patterns]
    return summary


def _range(pattern: Pattern) -> dict:
    return {"n_points": len(pattern), **_wavelength(pattern),
            "two_theta_min": float(pattern.two_theta[0]), "two_theta_max": float(pattern.two_theta[-1]),
            "step": _round(pattern.step), "metadata": pattern.provenance.metadata}


def _wavelength(pattern: Pattern) -> dict:
    w = pattern.wavelength
    return {"wavelength": w.ka1 if w else None, "wavelength_ka2": w.ka2 if w else None,
            "ka2_ratio": w.ratio if w else None}


def _round(step_deg: float) -> float:
    """A median of float differences to the 10 digits that mean something (0.0199999999996 → 0.02)."""
    return float(f"{step_deg:.10g}")
