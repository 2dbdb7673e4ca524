"""GSAS powder data (.gsa, .gss, .fxye, .xra, .raw): a title line, then BANK blocks.

``BANK n nchan nrec CONST start step 0 0 STD|ESD`` gives constant-step data,
2θ in centidegrees; STD holds 10 counts per 80-character line (each field an
optional 2-digit counter number and a count), ESD holds 5 (value, σ) pairs,
FXY/FXYE free-format (2θ centidegrees, intensity[, σ]) rows. Time-of-flight
banks (RALF, SLOG, TIME_MAP) are not angle-dispersive and are refused.
"""

from __future__ import annotations

import re

import numpy as np

from model.errors import InputError
from model.pattern import Pattern
from model.readers.scan import anode_wavelength, build_pattern

_BANK = re.compile(rb"^BANK\s", re.MULTILINE)


def sniff(head: bytes) -> bool:
    return bool(_BANK.search(head)) and b"\x00" not in head


def read(source: str, data: bytes) -> list[Pattern]:
    lines = data.decode("latin-1").splitlines()
    title = lines[0].strip() if lines else ""
    wavelength = anode_wavelength(title)
    starts = [i for i, line in enumerate(lines) if line.startswith("BANK")]
    patterns = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        label = f"bank {n + 1}" if len(starts) > 1 else ""
        tth, inten, sigma, bank = _bank(source, lines[start], lines[start + 1:end], label)
        metadata = {"title": title, **bank}
        patterns.append(build_pattern(source, "gsas", tth, inten, sigma, wavelength, metadata, label))
    return patterns


def _bank(source: str, bank_line: str, body: list[str], label: str):
    fields = bank_line.split()
    where = f"{label}: " if label else ""
    try:
        nchan, bintyp = int(fields[2]), fields[4].upper()
        params = [float(v) for v in fields[5:9] if _is_number(v)]
    except (IndexError, ValueError):
        raise InputError(source, f"{where}malformed BANK line {bank_line.strip()!r}") from None
    kind = next((f.upper() for f in fields[5:] if not _is_number(f)), "STD")
    bank = {"bank": fields[1], "binning": bintyp, "data_type": kind}
    if bintyp in ("RALF", "SLOG", "TIME_MAP"):
        raise InputError(source, f"{where}time-of-flight data ({bintyp}) is not a 2θ pattern")
    body = [line for line in body if line.strip() and not line.startswith(("#", "Instrument"))]
    if kind in ("FXY", "FXYE"):
        table = np.array([[float(v) for v in line.split()[:3]] for line in body], dtype=float)
        if table.ndim != 2 or table.shape[1] < 2:
            raise InputError(source, f"{where}FXY data needs 2θ and intensity columns")
        sigma = table[:, 2] if table.shape[1] == 3 else None
        return table[:, 0] / 100.0, table[:, 1], sigma, bank
    if bintyp != "CONST" or len(params) < 2:
        raise InputError(source, f"{where}unsupported GSAS binning {bintyp!r}")
    start, step = params[0] / 100.0, params[1] / 100.0
    fields8 = [line[i:i + 8] for line in body for i in range(0, 80, 8) if line[i:i + 8].strip()]
    if kind == "ESD":
        values = np.array([float(f) for f in fields8], dtype=float)
        inten, sigma = values[0::2][:nchan], values[1::2][:nchan]
    elif kind == "STD":
        # An optional leading 2-digit counter number precedes each count.
        inten = np.array([float(f[2:]) if f[:2].strip() else float(f) for f in fields8][:nchan])
        sigma = None
    else:
        raise InputError(source, f"{where}unsupported GSAS data type {kind!r}")
    if inten.size < nchan:
        raise InputError(source, f"{where}BANK line promises {nchan} points, file holds {inten.size}")
    bank["step_deg"] = step
    return start + step * np.arange(nchan), inten, sigma, bank


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
