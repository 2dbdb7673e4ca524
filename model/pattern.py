"""The powder pattern every reader returns and everything downstream takes.

Angles are degrees 2θ, wavelengths Å, Q = 4π sinθ / λ in Å⁻¹. Where a Kα doublet is known,
conversions use Kα1; what the radiation means for peak positions (Bragg's law, the Kα2 rule) is
model.instrument's.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model.errors import InputError


@dataclass(frozen=True)
class Wavelength:
    """Radiation: Kα1 (or the single wavelength) in Å, optional Kα2 in Å and I(Kα2)/I(Kα1)."""

    ka1: float
    ka2: float | None = None
    ratio: float | None = None
    label: str = ""

    def __post_init__(self):
        for name in ("ka1", "ka2"):
            value = getattr(self, name)
            if value is not None and not (0.05 <= value <= 5.0 and math.isfinite(value)):
                raise InputError(None, f"wavelength {name}={value!r} Å is outside 0.05–5 Å")
        if self.ratio is not None and not (0.0 <= self.ratio <= 1.0):
            raise InputError(None, f"Kα2/Kα1 ratio {self.ratio!r} is outside 0–1")

    def monochromatic(self) -> Wavelength:
        return Wavelength(self.ka1, label=self.label)


# Kα1, Kα2 (Å; Hölzer et al. 1997 as tabulated by pymatgen/GSAS-II) and the usual 0.5 intensity ratio.
ANODES: dict[str, Wavelength] = {
    "CuKa": Wavelength(1.540593, 1.544414, 0.5, "CuKa"),
    "MoKa": Wavelength(0.709319, 0.713609, 0.5, "MoKa"),
    "CoKa": Wavelength(1.788996, 1.792835, 0.5, "CoKa"),
    "FeKa": Wavelength(1.936041, 1.939973, 0.5, "FeKa"),
    "CrKa": Wavelength(2.289726, 2.293651, 0.5, "CrKa"),
    "AgKa": Wavelength(0.559422, 0.563813, 0.5, "AgKa"),
}
ANODES.update({f"{name[:2]}Ka1": dataclasses.replace(w.monochromatic(), label=f"{name[:2]}Ka1")
               for name, w in list(ANODES.items())})


def parse_wavelength(text: str | float) -> Wavelength:
    """'CuKa', 'MoKa1', '1.5406' (Å) → Wavelength; an unknown name raises InputError."""
    if isinstance(text, (int, float)):
        return Wavelength(float(text))
    key = re.sub(r"[\s_-]", "", str(text)).replace("α", "a")
    for name, wavelength in ANODES.items():
        if key.lower() == name.lower():
            return wavelength
    try:
        return Wavelength(float(key))
    except ValueError:
        names = ", ".join(ANODES)
        raise InputError(None, f"unknown wavelength {text!r}: give Å or one of {names}") from None


@dataclass(frozen=True)
class Provenance:
    """Where a pattern came from: file, reader format, and whatever metadata the file held."""

    path: str = ""
    format: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Pattern:
    """One powder scan: 2θ (degrees, strictly increasing), intensity, optional σ."""

    two_theta: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray | None = None
    wavelength: Wavelength | None = None
    provenance: Provenance = field(default_factory=Provenance)

    def __post_init__(self):
        source = self.provenance.path or None
        tth = np.asarray(self.two_theta, dtype=float)
        inten = np.asarray(self.intensity, dtype=float)
        if tth.ndim != 1 or inten.shape != tth.shape:
            raise InputError(source, f"2θ and intensity differ in shape ({tth.shape} vs {inten.shape})")
        if tth.size < 2:
            raise InputError(source, f"a pattern needs at least 2 points, found {tth.size}")
        if not (np.all(np.isfinite(tth)) and np.all(np.isfinite(inten))):
            raise InputError(source, "2θ or intensity contains NaN or infinite values")
        if np.any(np.diff(tth) <= 0):
            raise InputError(source, "2θ is not strictly increasing")
        if tth[0] < 0 or tth[-1] >= 180:
            raise InputError(source, f"2θ range {tth[0]:g}–{tth[-1]:g}° is outside 0–180°")
        object.__setattr__(self, "two_theta", tth)
        object.__setattr__(self, "intensity", inten)
        if self.sigma is not None:
            sig = np.asarray(self.sigma, dtype=float)
            if sig.shape != tth.shape or not np.all(np.isfinite(sig)):
                raise InputError(source, "σ column has the wrong length or non-finite values")
            object.__setattr__(self, "sigma", sig)

    def __len__(self) -> int:
        return self.two_theta.size

    @property
    def name(self) -> str:
        return Path(self.provenance.path).name if self.provenance.path else "pattern"

    def _require_wavelength(self) -> float:
        if self.wavelength is None:
            raise InputError(self.provenance.path or None,
                             "the file states no wavelength: give one (e.g. --wavelength CuKa)")
        return self.wavelength.ka1

    @property
    def q(self) -> np.ndarray:
        """Q = 4π sinθ / λ(Kα1) in Å⁻¹."""
        return two_theta_to_q(self.two_theta, self._require_wavelength())

    @property
    def step(self) -> float:
        """Median 2θ step in degrees."""
        return float(np.median(np.diff(self.two_theta)))

    def with_wavelength(self, wavelength: Wavelength) -> Pattern:
        return dataclasses.replace(self, wavelength=wavelength)

    def included(self, excluded: Sequence[tuple[float, float]] = ()) -> np.ndarray:
        """True where a point lies outside every excluded (low, high) 2θ region (degrees, bounds
        excluded with the region)."""
        keep = np.ones(len(self), dtype=bool)
        for low, high in excluded:
            keep &= ~((self.two_theta >= low) & (self.two_theta <= high))
        return keep


def two_theta_to_q(two_theta_deg: np.ndarray, wavelength_A: float) -> np.ndarray:
    return 4.0 * np.pi * np.sin(np.radians(two_theta_deg) / 2.0) / wavelength_A

