"""Loaded patterns, the current one, display units and excluded 2θ regions."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from model.instrument import bragg_d, bragg_theta, q_to_two_theta
from model.pattern import Pattern, Wavelength, two_theta_to_q
from model.result import Fit, Reflection

X_UNITS = ("2theta", "q", "d")  # degrees 2θ, Å⁻¹, Å
SCALINGS = ("linear", "sqrt", "log")
OFFSETS = (0.0, 0.1, 0.25, 0.5, 1.0)  # each pattern raised above the one before by this × the tallest's height


def to_x(two_theta: np.ndarray, unit: str, wavelength_A: float | None) -> np.ndarray:
    """Degrees 2θ → the display unit; Q and d need the wavelength (Kα1, Å)."""
    two_theta = np.asarray(two_theta, dtype=float)
    if unit == "2theta":
        return two_theta
    if wavelength_A is None:
        raise ValueError("Q and d need a wavelength")
    if unit == "q":
        return two_theta_to_q(two_theta, wavelength_A)
    return bragg_d(two_theta, wavelength_A)


def from_x(x: np.ndarray, unit: str, wavelength_A: float | None) -> np.ndarray:
    """The display unit → degrees 2θ (inverse of to_x)."""
    x = np.asarray(x, dtype=float)
    if unit == "2theta":
        return x
    if unit == "q":
        return q_to_two_theta(x, wavelength_A)
    return np.degrees(2 * bragg_theta(x, wavelength_A))


class PatternModel(QObject):
    """The patterns on screen. Excluded regions are (low, high) in degrees 2θ."""

    patterns_changed = Signal()
    current_changed = Signal(int)
    x_unit_changed = Signal(str)
    scaling_changed = Signal(str)
    stacking_changed = Signal()  # offset or normalisation of several patterns
    excluded_changed = Signal()
    fit_changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.patterns: list[Pattern] = []
        self.current = -1
        self.x_unit = "2theta"
        self.scaling = "linear"
        self.offset = 0.0  # one of OFFSETS
        self.normalised = False  # each pattern divided by its maximum
        self.excluded: list[tuple[float, float]] = []
        self.fit: Fit | None = None
        self.reflections: list[Reflection] = []
        # the tick rows: (name, reflections) of every phase of the fit, the main one first
        self.tick_rows: list[tuple[str, list[Reflection]]] = []

    @property
    def pattern(self) -> Pattern | None:
        return self.patterns[self.current] if 0 <= self.current < len(self.patterns) else None

    def add(self, patterns: list[Pattern]) -> None:
        """Append patterns; the first new one becomes current."""
        if not patterns:
            return
        first = len(self.patterns)
        self.patterns.extend(patterns)
        self.patterns_changed.emit()
        self.set_current(first)

    def restore(self, patterns: list[Pattern], current: int, excluded: list[tuple[float, float]]) -> None:
        """Every pattern replaced (a reopened session)."""
        self.patterns = list(patterns)
        self.patterns_changed.emit()
        self.set_current(current, force=True)
        self.set_excluded(excluded)

    def remove(self, index: int) -> None:
        del self.patterns[index]
        self.patterns_changed.emit()
        self.set_current(min(self.current, len(self.patterns) - 1), force=True)

    def set_current(self, index: int, force: bool = False) -> None:
        if index == self.current and not force:
            return
        self.current = index
        self.excluded = []
        self.set_fit(None)
        self.excluded_changed.emit()
        self.current_changed.emit(index)

    def replace_current(self, pattern: Pattern) -> None:
        """Swap the current pattern for an edited copy (e.g. with a wavelength given by the user)."""
        self.patterns[self.current] = pattern
        self.patterns_changed.emit()
        self.current_changed.emit(self.current)

    def set_wavelength(self, wavelength: Wavelength) -> None:
        if self.pattern is not None and self.pattern.wavelength != wavelength:
            self.replace_current(self.pattern.with_wavelength(wavelength))

    def set_x_unit(self, unit: str) -> None:
        if unit not in X_UNITS:
            raise ValueError(f"x unit {unit!r} is not one of {X_UNITS}")
        if unit != self.x_unit:
            self.x_unit = unit
            self.x_unit_changed.emit(unit)

    def set_scaling(self, scaling: str) -> None:
        if scaling not in SCALINGS:
            raise ValueError(f"scaling {scaling!r} is not one of {SCALINGS}")
        if scaling != self.scaling:
            self.scaling = scaling
            self.scaling_changed.emit(scaling)

    def set_offset(self, offset: float) -> None:
        if offset not in OFFSETS:
            raise ValueError(f"offset {offset!r} is not one of {OFFSETS}")
        if offset != self.offset:
            self.offset = offset
            self.stacking_changed.emit()

    def set_normalised(self, normalised: bool) -> None:
        if normalised != self.normalised:
            self.normalised = bool(normalised)
            self.stacking_changed.emit()

    def intensity_unit(self) -> str:
        """The unit of the intensities on screen: 'normalised', the readers' unit where all
        patterns state the same one, else 'arbitrary'."""
        if self.normalised:
            return "normalised"
        units = {p.provenance.metadata.get("intensity_unit") or "arbitrary" for p in self.patterns}
        return units.pop() if len(units) == 1 else "arbitrary"

    def add_excluded(self, low: float, high: float) -> None:
        low, high = sorted((float(low), float(high)))
        if high > low:
            self.excluded.append((low, high))
            self.excluded_changed.emit()

    def set_excluded(self, regions: list[tuple[float, float]]) -> None:
        self.excluded = [tuple(sorted(map(float, r))) for r in regions if r[1] != r[0]]
        self.excluded_changed.emit()

    def set_fit(self, fit: Fit | None, reflections: list[Reflection] | None = None,
                phases: list[tuple[str, list[Reflection]]] = ()) -> None:
        """The fit, the main phase's ``reflections`` and the other ``phases`` (name, reflections) of a mixture."""
        self.fit = fit
        self.reflections = list(reflections or [])
        self.tick_rows = [("hkl" if not phases else "main", self.reflections), *phases]
        self.fit_changed.emit()
