"""Rigaku ASC text: ``*KEY = value`` header, then one ``*BEGIN … *END`` group per range.

Each group gives ``*START``, ``*STOP``, ``*STEP`` (degrees 2θ) and ``*COUNT``,
followed by comma-separated counts. File keys hold the wavelength
(``*WAVE_LENGTH1``, ``*WAVE_LENGTH2``), sample and scan axis.
"""

from __future__ import annotations

import re

import numpy as np

from model.errors import InputError
from model.pattern import Pattern
from model.readers.scan import build_pattern, wavelength_of

_KEY = re.compile(r"^\*([A-Z0-9_]+)\s*(?:=\s*(.*?))?\s*$")


def sniff(head: bytes) -> bool:
    return head.lstrip().startswith(b"*TYPE") or b"\n*BEGIN" in head


def read(source: str, data: bytes) -> list[Pattern]:
    file_keys: dict[str, str] = {}
    groups: list[tuple[dict[str, str], list[float]]] = []
    keys, counts = file_keys, None
    for line in data.decode("latin-1").splitlines():
        line = line.strip()
        match = _KEY.match(line)
        if match:
            key, value = match.group(1), (match.group(2) or "").strip()
            if key == "BEGIN":
                keys, counts = {}, []
                groups.append((keys, counts))
            elif key == "END":
                keys, counts = file_keys, None
            elif key not in keys:  # repeated keys (SLIT_NAME...) keep their first value
                keys[key] = value
        elif line and counts is not None:
            try:
                counts.extend(float(v) for v in line.replace(",", " ").split())
            except ValueError:
                raise InputError(source, f"unexpected data line {line[:60]!r}") from None
    wavelength = wavelength_of(source, file_keys.get("WAVE_LENGTH1"), file_keys.get("WAVE_LENGTH2"))
    axis = file_keys.get("SCAN_AXIS", "2theta")
    if "2theta" not in axis.lower().replace("-", ""):
        raise InputError(source, f"a {axis} scan has no 2θ axis")
    file_meta = {k.lower(): file_keys[k] for k in
                 ("SAMPLE", "DATE", "GONIO", "SCAN_AXIS", "MEAS_MODE", "MEMO") if k in file_keys}
    patterns = []
    for n, (keys, counts) in enumerate(groups):
        label = f"range {n + 1}" if len(groups) > 1 else ""
        try:
            start, step = float(keys["START"]), float(keys["STEP"])
        except (KeyError, ValueError):
            raise InputError(source, f"{label or 'range'}: no *START/*STEP") from None
        expected = int(float(keys.get("COUNT", len(counts))))
        if len(counts) < expected:
            raise InputError(source, f"{label or 'range'}: *COUNT says {expected} points, "
                                     f"file holds {len(counts)}")
        metadata = {**file_meta, "step_deg": step, "speed": keys.get("SPEED"),
                    "kv": keys.get("KV"), "ma": keys.get("MA")}
        tth = start + step * np.arange(expected)
        patterns.append(build_pattern(source, "rigaku asc", tth, counts[:expected], None,
                                      wavelength, metadata, label))
    return patterns
