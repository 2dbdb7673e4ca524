"""Bruker/Siemens binary RAW, versions 1 ("RAW "), 2 ("RAW2"), 3 ("RAW1.01") and 4 ("RAW4.00").

Little-endian throughout; counts are float32. Layouts (byte offsets), checked
against the DIFFRAC-AT, DIFFRAC-plus and DIFFRAC.SUITE sample files:

- v1: ranges follow each other, each a 156-byte header (+4 steps, +8 step
  time, +12 step, +24 start 2θ, +40 sample[32], +72 Kα1, +76 Kα2, +152 more
  ranges follow) and the counts.
- v2: 256-byte file header (+4 range count u16, +8 sample[32], +40 comment, +168 date,
  +188 anode[2], +190 Kα1, +194 Kα2, +198 ratio), then per range a header
  (+0 length u16, +2 steps u16, +8 step time, +12 step, +16 start 2θ) and counts.
- v3: 712-byte file header (+12 range count, +16 date, +326 sample, +608 anode,
  +624 Kα1, +632 Kα2, +648 ratio, doubles), then per range a header (+0 length,
  +4 steps, +16 start 2θ, +176 step, +192 step time, +240 wavelength,
  +256 supplementary length) and counts.
- v4: 61-byte file header (+56 length of the metadata records that follow),
  records of (type u32, length u32, …): type 10 "name=value" strings, type 30
  the wavelengths (+80 Kα1, +88 Kα2, +104 ratio, +116 anode); then per range a
  160-byte header (+4 steps, +32 scan name[24], +72 start 2θ, +80 step,
  +140 length of range records) and counts.
"""

from __future__ import annotations

import struct

import numpy as np

from model.errors import InputError
from model.pattern import Pattern
from model.readers.scan import build_pattern, c_string, float32_value, wavelength_of

_MAGIC = (b"RAW ", b"RAW2", b"RAW1.01", b"RAW4.00")
_V4_RANGE_HEADER = 160
_V4_KEYS = {"sampleid": "sample"}  # the metadata names the other readers use


def sniff(head: bytes) -> bool:
    return head.startswith(_MAGIC)


def read(source: str, data: bytes) -> list[Pattern]:
    if data.startswith(b"RAW4.00"):
        return _v4(source, data)
    if data.startswith(b"RAW1.01"):
        return _v3(source, data)
    if data.startswith(b"RAW2"):
        return _v2(source, data)
    return _v1(source, data)


def _v1(source: str, data: bytes) -> list[Pattern]:
    patterns, offset, more = [], 0, True
    while more:
        if data[offset:offset + 4] == b"RAW ":  # later ranges of early files may omit it
            offset += 4
        steps, step_time, step = struct.unpack_from("<Iff", data, offset)
        step_time, step = float32_value(step_time), float32_value(step)
        start = float32_value(struct.unpack_from("<f", data, offset + 20)[0])
        sample = c_string(data[offset + 36:offset + 68])
        ka1, ka2 = (float32_value(v) for v in struct.unpack_from("<ff", data, offset + 68))
        more = struct.unpack_from("<I", data, offset + 148)[0] > 0
        offset += 152
        counts = _counts(source, data, offset, steps)
        offset += 4 * steps
        metadata = {"version": "RAW v1", "sample": sample, "step_time_s": step_time, "step_deg": step}
        patterns.append(_pattern(source, start, step, counts, wavelength_of(source, ka1, ka2),
                                 metadata, len(patterns)))
    return patterns


def _v2(source: str, data: bytes) -> list[Pattern]:
    n_ranges = struct.unpack_from("<H", data, 4)[0]
    ka1, ka2, ratio = (float32_value(v) for v in struct.unpack_from("<fff", data, 190))
    anode = c_string(data[188:190])
    wavelength = wavelength_of(source, ka1, ka2, ratio, anode)
    file_meta = {"version": "RAW v2", "sample": c_string(data[8:40]), "comment": c_string(data[40:168]),
                 "date": f"{c_string(data[168:178])} {c_string(data[178:188])}", "anode": anode}
    patterns, offset = [], 256
    for n in range(n_ranges):
        header_len, steps = struct.unpack_from("<HH", data, offset)
        step_time, step, start = (float32_value(v) for v in struct.unpack_from("<fff", data, offset + 8))
        counts = _counts(source, data, offset + header_len, steps)
        offset += header_len + 4 * steps
        metadata = {**file_meta, "step_time_s": step_time, "step_deg": step}
        patterns.append(_pattern(source, start, step, counts, wavelength, metadata, n))
    return patterns


def _v3(source: str, data: bytes) -> list[Pattern]:
    n_ranges = struct.unpack_from("<I", data, 12)[0]
    anode = c_string(data[608:612])
    ka1, ka2, _, ratio = struct.unpack_from("<dddd", data, 624)
    wavelength = wavelength_of(source, ka1, ka2, ratio, anode)
    file_meta = {"version": "RAW v3", "date": f"{c_string(data[16:26])} {c_string(data[26:36])}",
                 "user": c_string(data[36:108]), "site": c_string(data[108:326]),
                 "sample": c_string(data[326:386]), "comment": c_string(data[386:546]), "anode": anode}
    patterns, offset = [], 712
    for n in range(n_ranges):
        header_len, steps = struct.unpack_from("<II", data, offset)
        start = struct.unpack_from("<d", data, offset + 16)[0]
        step = struct.unpack_from("<d", data, offset + 176)[0]
        step_time = struct.unpack_from("<f", data, offset + 192)[0]
        supplementary = struct.unpack_from("<I", data, offset + 256)[0]
        offset += header_len + supplementary
        counts = _counts(source, data, offset, steps)
        offset += 4 * steps
        metadata = {**file_meta, "step_time_s": step_time, "step_deg": step}
        patterns.append(_pattern(source, start, step, counts, wavelength, metadata, n))
    return patterns


def _v4(source: str, data: bytes) -> list[Pattern]:
    file_meta: dict[str, object] = {"version": "RAW v4"}
    wavelength = None
    offset = 61
    end = offset + struct.unpack_from("<I", data, 56)[0]
    while offset < end:
        kind, length = struct.unpack_from("<II", data, offset)
        if length < 8:
            raise InputError(source, f"corrupt RAW v4 record at byte {offset}")
        if kind == 10:
            key = c_string(data[offset + 12:offset + 36]).lower()
            file_meta[_V4_KEYS.get(key, key)] = c_string(data[offset + 36:offset + length])
        elif kind == 30:
            ka1, ka2, _, ratio = struct.unpack_from("<dddd", data, offset + 80)
            anode = c_string(data[offset + 116:offset + 120])
            file_meta["anode"] = anode
            wavelength = wavelength_of(source, ka1, ka2, ratio, anode)
        offset += length
    patterns = []
    while offset + _V4_RANGE_HEADER <= len(data):
        steps = struct.unpack_from("<I", data, offset + 4)[0]
        scan = c_string(data[offset + 32:offset + 56])
        start, step = struct.unpack_from("<dd", data, offset + 72)
        extra = struct.unpack_from("<I", data, offset + 140)[0]
        offset += _V4_RANGE_HEADER + extra
        counts = _counts(source, data, offset, steps)
        offset += 4 * steps
        metadata = {**file_meta, "scan": scan, "step_deg": step}
        patterns.append(_pattern(source, start, step, counts, wavelength, metadata, len(patterns)))
    return patterns


def _counts(source: str, data: bytes, offset: int, steps: int) -> np.ndarray:
    if offset + 4 * steps > len(data):
        raise InputError(source, f"file is truncated: a range of {steps} points runs past the end")
    return np.frombuffer(data, "<f4", steps, offset).astype(float)


def _pattern(source, start, step, counts, wavelength, metadata, index) -> Pattern:
    if not (np.isfinite(start) and np.isfinite(step) and step > 0):
        raise InputError(source, f"range {index + 1}: start {start!r}° and step {step!r}° are not a 2θ scan")
    tth = start + step * np.arange(counts.size)
    return build_pattern(source, "bruker raw", tth, counts, None, wavelength,
                         {**metadata, "intensity_unit": "counts"}, f"range {index + 1}")
