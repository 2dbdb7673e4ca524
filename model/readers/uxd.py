"""Siemens/Bruker UXD text (_FILEVERSION 2 and 3): ``_KEY=value`` headers, one block per range.

A range starts at ``_DRIVE`` (or at the first keys after a data block); its
data are (2θ, counts) rows after ``_2THETACOUNTS``/``_2THETACPS``, or bare
counts after ``_COUNTS``/``_CPS`` laid out from ``_START`` by ``_STEPSIZE``.
File-level keys (before the first range) hold the wavelength (_WL1, _WL2,
_WLRATIO) and sample.
"""

from __future__ import annotations

import re

import numpy as np

from model.errors import InputError
from model.pattern import Pattern
from model.readers.scan import build_pattern, wavelength_of

_KEY = re.compile(r"^_(\+?[A-Z0-9_]+)\s*(?:=\s*(.*?))?\s*$", re.IGNORECASE)
# Drives whose x axis is not 2θ: the data column is some other angle or a position.
_NOT_TWO_THETA = {"THETA", "OMEGA", "KHI", "CHI", "PHI", "PSI", "X", "Y", "Z", "AUX1", "AUX2"}


def sniff(head: bytes) -> bool:
    return b"_FILEVERSION" in head or b"_2THETACOUNTS" in head


def read(source: str, data: bytes) -> list[Pattern]:
    file_keys: dict[str, str] = {}
    ranges: list[tuple[dict[str, str], list[list[float]]]] = []
    keys, rows = file_keys, None
    for line in data.decode("latin-1").splitlines():
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        match = _KEY.match(line)
        if match:
            key, value = match.group(1).upper(), (match.group(2) or "").strip("'\" ")
            if key == "DRIVE" or rows:  # a new range begins
                keys, rows = {}, []
                ranges.append((keys, rows))
            keys[key] = value
            continue
        if rows is None:  # data before any _DRIVE: the file keys describe the only range
            keys, rows = dict(file_keys), []
            ranges.append((keys, rows))
        try:
            rows.append([float(v) for v in line.split()])
        except ValueError:
            raise InputError(source, f"unexpected line {line[:60]!r}") from None
    ranges = [(k, r) for k, r in ranges if r]
    wavelength = wavelength_of(source, file_keys.get("WL1"), file_keys.get("WL2"),
                               file_keys.get("WLRATIO"), file_keys.get("ANODE", ""))
    file_meta = {k.lower(): v for k, v in file_keys.items()
                 if k in ("SAMPLE", "USER", "SITE", "DATEMEASURED", "ANODE", "FILEVERSION")}
    patterns = []
    for n, (keys, rows) in enumerate(ranges):
        label = f"range {n + 1}" if len(ranges) > 1 else ""
        patterns.append(_range(source, keys, rows, wavelength, file_meta, label))
    return patterns


def _range(source, keys, rows, wavelength, file_meta, label) -> Pattern:
    where = f"{label}: " if label else ""
    drive = keys.get("DRIVE", "COUPLED").upper()
    if drive in _NOT_TWO_THETA:
        raise InputError(source, f"{where}a {drive} scan has no 2θ axis")
    metadata = {**file_meta, "drive": drive, "step_time_s": keys.get("STEPTIME"),
                "step_deg": keys.get("STEPSIZE"),
                **{k.lower(): keys[k] for k in ("KHI", "PHI", "THETA") if k in keys}}
    counts_key = next((k for k in ("2THETACOUNTS", "2THETACPS", "COUNTS", "CPS") if k in keys),
                      "2THETACOUNTS")
    metadata["intensity_unit"] = "counts/s" if counts_key.endswith("CPS") else "counts"
    if counts_key.startswith("2THETA"):
        if any(len(row) < 2 for row in rows):
            raise InputError(source, f"{where}a (2θ, counts) row has fewer than 2 numbers")
        table = np.array([row[:2] for row in rows], dtype=float)
        tth, inten = table[:, 0], table[:, 1]
    else:
        try:
            start, step = float(keys["START"]), float(keys["STEPSIZE"])
        except (KeyError, ValueError):
            raise InputError(source, f"{where}counts without _START and _STEPSIZE") from None
        inten = np.array([v for row in rows for v in row], dtype=float)
        tth = start + step * np.arange(inten.size)
    return build_pattern(source, "uxd", tth, inten, None, wavelength, metadata, label)
