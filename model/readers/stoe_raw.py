"""STOE WinXPOW binary raw ("RAW_1.06Powdat"), single range.

The format is undocumented. Decoded from the one public sample: 512-byte
blocks; the range header at byte 2048 holds the point count (u16 at +34) and
2θ start, end and step (float32 at +44, +52, +60); int32 counts start at byte
2560. The layout is accepted only when start + (n − 1)·step reproduces the
stated end, so any other variant gives a clear "not supported" instead of
wrong numbers. The wavelength is not decoded.
"""

from __future__ import annotations

import struct

import numpy as np

from model.errors import InputError
from model.pattern import Pattern
from model.readers.scan import build_pattern, c_string, float32_value

_RANGE_HEADER = 2048
_DATA = 2560


def sniff(head: bytes) -> bool:
    return head.startswith(b"RAW_") and b"Powdat" in head[:16]


def read(source: str, data: bytes) -> list[Pattern]:
    unsupported = InputError(source, "STOE raw layout not supported (only single-range "
                                     "RAW_1.06 files are decoded); export it as .xy from WinXPOW")
    if len(data) < _DATA:
        raise unsupported
    n = struct.unpack_from("<H", data, _RANGE_HEADER + 34)[0]
    start, end, step = (float32_value(struct.unpack_from("<f", data, _RANGE_HEADER + k)[0])
                        for k in (44, 52, 60))
    consistent = (n >= 2 and np.isfinite([start, end, step]).all() and step > 0
                  and abs(start + (n - 1) * step - end) < 0.5 * step)
    if not consistent or _DATA + 4 * n > len(data):
        raise unsupported
    counts = np.frombuffer(data, "<i4", n, _DATA).astype(float)
    metadata = {"version": data[:8].decode("latin-1"), "date": c_string(data[16:32]),
                "title": c_string(data[32:112]), "step_deg": step, "intensity_unit": "counts"}
    return [build_pattern(source, "stoe raw", start + step * np.arange(n), counts, None, None, metadata)]
