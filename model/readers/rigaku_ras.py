"""Rigaku RAS text (SmartLab): ``*KEY "value"`` headers in Shift-JIS, then (x, counts, attenuation) rows.

Each ``*RAS_HEADER_START … *RAS_HEADER_END`` + ``*RAS_INT_START …
*RAS_INT_END`` pair is one range. Header values can hold Japanese text, so
header lines are decoded as Shift-JIS (cp932). The third data column is the
attenuator coefficient the counts are multiplied by.
"""

from __future__ import annotations

import re

import numpy as np

from model.errors import InputError
from model.pattern import Pattern
from model.readers.scan import build_pattern, wavelength_of

_KEY = re.compile(r'^\*([A-Z0-9_\-]+)\s+"?(.*?)"?\s*$')
_TWO_THETA_AXES = ("2theta", "twotheta")


def sniff(head: bytes) -> bool:
    return head.lstrip().startswith(b"*RAS_DATA_START")


def read(source: str, data: bytes) -> list[Pattern]:
    ranges: list[tuple[dict[str, str], list[list[float]]]] = []
    keys: dict[str, str] = {}
    rows: list[list[float]] | None = None
    for raw in data.splitlines():
        line = raw.decode("cp932", errors="replace").strip()
        if line.startswith("*"):
            match = _KEY.match(line)
            tag = match.group(1) if match else line[1:]
            if tag == "RAS_HEADER_START":
                keys = {}
            elif tag == "RAS_INT_START":
                rows = []
                ranges.append((keys, rows))
            elif tag == "RAS_INT_END":
                rows = None
            elif match:
                keys[tag] = match.group(2)
        elif line and rows is not None:
            try:
                rows.append([float(v) for v in line.split()])
            except ValueError:
                raise InputError(source, f"unexpected data line {line[:60]!r}") from None
    patterns = []
    for n, (keys, rows) in enumerate(ranges):
        label = f"range {n + 1}" if len(ranges) > 1 else ""
        patterns.append(_range(source, keys, rows, label))
    return patterns


def _range(source: str, keys: dict[str, str], rows: list[list[float]], label: str) -> Pattern:
    where = f"{label}: " if label else ""
    axis = keys.get("MEAS_SCAN_AXIS_X", "2-Theta")
    if not any(a in axis.lower().replace("-", "") for a in _TWO_THETA_AXES):
        raise InputError(source, f"{where}a {axis} scan has no 2θ axis")
    if not rows or any(len(row) < 2 for row in rows):
        raise InputError(source, f"{where}data rows need 2θ and counts")
    table = np.array([row[:3] if len(row) >= 3 else row[:2] + [1.0] for row in rows], dtype=float)
    wavelength = wavelength_of(source, keys.get("HW_XG_WAVE_LENGTH_ALPHA1"),
                               keys.get("HW_XG_WAVE_LENGTH_ALPHA2"),
                               label=keys.get("HW_XG_TARGET_NAME", ""))
    metadata = {
        "sample": keys.get("FILE_SAMPLE"), "comment": keys.get("FILE_MEMO"),
        "operator": keys.get("FILE_OPERATOR"), "anode": keys.get("HW_XG_TARGET_NAME"),
        "scan_axis": axis, "scan_mode": keys.get("MEAS_SCAN_MODE"),
        "step_deg": keys.get("MEAS_SCAN_STEP"), "speed": keys.get("MEAS_SCAN_SPEED"),
        "speed_unit": keys.get("MEAS_SCAN_SPEED_UNIT"), "start_time": keys.get("MEAS_SCAN_START_TIME"),
    }
    return build_pattern(source, "rigaku ras", table[:, 0], table[:, 1] * table[:, 2], None,
                         wavelength, metadata, label)
