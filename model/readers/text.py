"""Plain column text: xy, xye, dat, csv, txt and Dioptas/Fit2D/pyFAI chi.

Columns 2θ (degrees), intensity and optionally σ, separated by spaces, tabs,
commas or semicolons (then with decimal commas); any header or comment lines
before the numbers. Where
2θ falls back (concatenated scan ranges), each run is its own Pattern. A
pyFAI/Dioptas header's "Wavelength: 4.066e-11 m" gives the wavelength, and a
"q_nm^-1"/"q_A^-1" column label means the first column is Q, converted to 2θ.
"""

from __future__ import annotations

import itertools
import re

import numpy as np

from model.errors import InputError
from model.instrument import q_to_two_theta
from model.pattern import Pattern, Wavelength
from model.readers.scan import build_pattern, wavelength_of

EXTENSIONS = (".xy", ".xye", ".dat", ".csv", ".txt", ".chi", ".qxy")

_KEY_VALUE = re.compile(r"^[#!;'*\s]*([A-Za-z][^:=]{0,60}?)\s*[:=]\s*(.+?)\s*$")
_WAVELENGTH = re.compile(
    r"(?:wave\s*length|lambda)[^:=\n]{0,20}[:=]\s*([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*(nm|m|Å|A|angstroms?)?\b",
    re.IGNORECASE)
# the doublet as model.exporters writes it: "1.540593 (Ka2 1.544414, I(Ka2)/I(Ka1) 0.5)"
_KA2 = re.compile(r"Ka2\s+([0-9.]+),\s*I\(Ka2\)/I\(Ka1\)\s+([0-9.]+)", re.IGNORECASE)
_Q_AXIS = re.compile(r"\bq\s*[_(]\s*(nm|a|å|angstrom)\s*\^?\s*-1", re.IGNORECASE)
_UNIT_TO_ANGSTROM = {"m": 1e10, "nm": 10.0}


def sniff(name: str, head: bytes) -> bool:
    if name.endswith(EXTENSIONS):
        return True
    if b"\x00" in head:
        return False
    lines = head.decode("utf-8", errors="replace").splitlines()[:-1]  # last may be cut short
    numeric = [_numbers(line) for line in lines if line.strip()]
    return sum(1 for row in numeric if row is not None and len(row) >= 2) >= 2


def read(source: str, data: bytes, wavelength: Wavelength | None = None) -> list[Pattern]:
    """``wavelength`` converts a Q axis where the file states none."""
    if b"\x00" in data:
        raise InputError(source, "binary content: not a text pattern of columns")
    header: list[str] = []
    rows: list[list[float]] = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        values = _numbers(line)
        if values is not None and len(values) >= 2:
            rows.append(values)
        elif not rows and line.strip():
            header.append(line.strip())
    if len(rows) < 2:
        raise InputError(source, "no columns of numbers (2θ, intensity) found")
    ncols = min(len(row) for row in rows)
    table = np.array([row[:ncols] for row in rows], dtype=float)
    header_text = "\n".join(header)
    metadata = _key_values(header)
    wavelength = _header_wavelength(source, header_text) or wavelength
    x = table[:, 0]
    q_axis = _Q_AXIS.search(header[-1] if header else "")
    if q_axis:
        if wavelength is None:
            raise InputError(source, "the first column is Q and the file states no wavelength "
                                     "to convert it to 2θ: give one (e.g. --wavelength CuKa)")
        x = q_to_two_theta(x / (10.0 if q_axis.group(1).lower() == "nm" else 1.0), wavelength.ka1)
        metadata["x_axis"] = f"Q ({q_axis.group(1)}^-1), converted to 2θ"
    metadata["columns"] = ncols
    sigma = table[:, 2] if ncols == 3 and np.all(table[:, 2] >= 0) else None
    bounds = _range_bounds(x)
    patterns = []
    for n, (lo, hi) in enumerate(bounds):
        label = f"range {n + 1}" if len(bounds) > 1 else ""
        patterns.append(build_pattern(source, "columns", x[lo:hi], table[lo:hi, 1],
                                      None if sigma is None else sigma[lo:hi], wavelength,
                                      metadata, label))
    return patterns


def _range_bounds(x: np.ndarray) -> list[tuple[int, int]]:
    """Row slices of the scan ranges: exported files often concatenate ranges, each
    starting at or below the previous one's end."""
    if not np.all(np.isfinite(x)):
        return [(0, x.size)]  # one range, so the Pattern check names the bad values
    steps = np.diff(x)
    cuts = [0, *(np.nonzero(steps <= 0)[0] + 1).tolist(), x.size]
    bounds = list(itertools.pairwise(cuts))
    # Runs of single points are duplicated or shuffled rows, not ranges: one range, so the
    # Pattern check says 2θ is not increasing. A wholly reversed scan is turned round later.
    if np.all(steps < 0) or any(hi - lo < 2 for lo, hi in bounds):
        return [(0, x.size)]
    return bounds


def _numbers(line: str) -> list[float] | None:
    if ";" in line:  # semicolon-separated exports (European spreadsheets) use decimal commas
        line = line.replace(",", ".").replace(";", " ")
    fields = line.replace(",", " ").split()
    if not fields:
        return None
    try:
        return [float(f) for f in fields]
    except ValueError:
        return None


def _key_values(header: list[str]) -> dict[str, str]:
    pairs = (_KEY_VALUE.match(line) for line in header)
    return {m.group(1).strip(): m.group(2) for m in pairs if m}


def _header_wavelength(source: str, header_text: str):
    match = _WAVELENGTH.search(header_text)
    if not match:
        return None
    try:
        value = float(match.group(1))
    except ValueError:
        return None
    unit = (match.group(2) or "").lower()
    if unit in _UNIT_TO_ANGSTROM:
        value *= _UNIT_TO_ANGSTROM[unit]
    elif value < 1e-6:  # pyFAI writes metres without always naming the unit
        value *= 1e10
    doublet = _KA2.search(header_text)
    return wavelength_of(source, value, *(doublet.groups() if doublet else ()))
