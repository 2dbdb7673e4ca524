"""Bruker BRML and Rigaku RASX (zip archives of XML/text) through fairmat-readers-xrd.

fairmat returns a dict of pint quantities ('2Theta', 'intensity', 'metadata'
with the source wavelengths); one Pattern per scan row (RSM-style files hold
several). It reads zip archives from a file object, so decompressed bytes work.
"""

from __future__ import annotations

import io

import numpy as np

from model.errors import InputError
from model.pattern import Pattern
from model.readers.scan import build_pattern, wavelength_of


# fairmat_readers_xrd is imported only when such a file is opened: with pint it adds 0.3 s
# to every start-up.
def read_brml(source: str, data: bytes) -> list[Pattern]:
    from fairmat_readers_xrd import read_bruker_brml

    return _patterns(source, "brml", read_bruker_brml(io.BytesIO(data)))


def read_rasx(source: str, data: bytes) -> list[Pattern]:
    from fairmat_readers_xrd import read_rigaku_rasx

    return _patterns(source, "rasx", read_rigaku_rasx(io.BytesIO(data)))


def _patterns(source: str, fmt: str, result: dict) -> list[Pattern]:
    meta = result.get("metadata") or {}
    tube = meta.get("source") or {}
    wavelength = wavelength_of(source, _magnitude(tube.get("kAlpha1"), "angstrom"),
                               _magnitude(tube.get("kAlpha2"), "angstrom"),
                               _magnitude(tube.get("ratioKAlpha2KAlpha1")),
                               label=tube.get("anode_material") or "")
    two_theta = _magnitude(result.get("2Theta"), "degree")
    if two_theta is None or np.size(two_theta) < 2:
        raise InputError(source, f"a {meta.get('scan_axis')} scan has no 2θ axis")
    two_theta = np.atleast_2d(two_theta)
    intensity = np.atleast_2d(_magnitude(result.get("intensity")))
    if two_theta.shape != intensity.shape:
        raise InputError(source, f"2θ and intensity differ in shape ({two_theta.shape} vs "
                                 f"{intensity.shape})")
    metadata = {"scan_axis": meta.get("scan_axis"), "scan_type": meta.get("scan_type"),
                "anode": tube.get("anode_material"), "voltage_kV": _magnitude(tube.get("voltage"), "kV"),
                "current_mA": _magnitude(tube.get("current"), "mA")}
    count_time = _magnitude(result.get("countTime"), "s")
    if count_time is not None and np.size(count_time) == 1:
        metadata["counting_time_s"] = float(np.ravel(count_time)[0])
    rows = len(two_theta)
    return [build_pattern(source, fmt, tth, inten, None, wavelength, metadata,
                          f"scan {n + 1}" if rows > 1 else "")
            for n, (tth, inten) in enumerate(zip(two_theta, intensity))]


def _magnitude(quantity, unit: str | None = None):
    """Plain float/array of a pint quantity (in ``unit``); None stays None."""
    if quantity is None:
        return None
    if hasattr(quantity, "to") and unit is not None:
        quantity = quantity.to(unit)
    value = getattr(quantity, "magnitude", quantity)
    return float(value) if np.ndim(value) == 0 else np.asarray(value, dtype=float)
