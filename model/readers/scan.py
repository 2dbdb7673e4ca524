"""What every reader does with the numbers it found: check them and make a Pattern."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from model.errors import InputError
from model.pattern import ANODES, Pattern, Provenance, Wavelength


def build_pattern(source: str, fmt: str, two_theta, intensity, sigma=None,
                  wavelength: Wavelength | None = None, metadata: dict[str, Any] | None = None,
                  label: str = "") -> Pattern:
    """A Pattern from one scan range; a scan recorded high-to-low 2θ is turned round.

    ``label`` ("range 3") prefixes the problem in an InputError for multi-range files.
    """
    tth = np.asarray(two_theta, dtype=float)
    inten = np.asarray(intensity, dtype=float)
    sig = None if sigma is None else np.asarray(sigma, dtype=float)
    if (tth.size >= 2 and tth.shape == inten.shape and np.all(np.isfinite(tth))
            and np.all(np.diff(tth) < 0)):
        tth, inten = tth[::-1], inten[::-1]
        sig = None if sig is None else sig[::-1]
    provenance = Provenance(source, fmt, dict(metadata or {}))
    try:
        return Pattern(tth, inten, sig, wavelength, provenance)
    except InputError as error:
        raise InputError(source, f"{label}: {error.problem}" if label else error.problem) from None


def wavelength_of(source: str, ka1, ka2=None, ratio=None, label: str = "") -> Wavelength | None:
    """Wavelength from header values (Å); zero, missing or unparseable values count as not stated."""
    ka1, ka2, ratio = (_positive(v) for v in (ka1, ka2, ratio))
    if ka1 is None:
        return None
    if ka2 is not None and abs(ka2 - ka1) < 1e-9:
        ka2 = None
    if ratio is not None and ratio > 1.0:
        ratio = None
    try:
        return Wavelength(ka1, ka2, ratio if ka2 is not None else None, label)
    except InputError as error:
        raise InputError(source, f"file states {error.problem}") from None


def anode_wavelength(text: str) -> Wavelength | None:
    """The Kα doublet of an anode named in text ('Cu', 'Cu Ka', 'CuK\\a'), or None."""
    match = re.search(r"\b(Cu|Mo|Co|Fe|Cr|Ag)(?=\b|K)", text or "", flags=re.IGNORECASE)
    return ANODES[f"{match.group(1).capitalize()}Ka"] if match else None


def describe_error(error: BaseException) -> str:
    """'KeyError: ...' on one line, for a parser failure quoted in an InputError."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def float32_value(value: float) -> float:
    """A float32 header value to the 7 digits it holds (1.5405999422 → 1.5406)."""
    return float(f"{value:.7g}")


def c_string(raw: bytes) -> str:
    """A NUL-padded fixed-width text field of a binary header."""
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()


def _positive(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None
