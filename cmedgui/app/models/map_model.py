"""Which maps a solution has, which one the 3D view shows, how its level is set, and the slice plane."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

# the selector's order and words; keys are model.density.MAP_KINDS
MAP_CHOICES = {
    "network": "Network prediction",
    "charge flipping": "Charge flipping",
    "F_obs": "F_obs",
    "difference": "Difference (F_obs − F_calc)",
    "2F_obs-F_calc": "2F_obs − F_calc",
    "F_calc": "F_calc",
    "calculated": "Calculated from the atoms",
}
SIGNED_KINDS = ("difference",)  # maps drawn as ± surfaces, with contours of both signs
LEVEL_UNITS = ("e/Å³", "σ")
DEFAULT_SIGMAS = 3.0


class MapModel(QObject):
    """``maps``: kind → model.density.Density for the solution (or structure) on screen; ``kind``
    the one shown; ``can_calculate``: a structure exists, so "calculated" can be made on demand."""

    maps_changed, kind_changed = Signal(), Signal(str)  # the list of maps; the one shown (its kind)
    level_changed, plane_changed = Signal(), Signal()  # the level's unit or σ multiple; the slice plane

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.maps: dict[str, object] = {}
        self.kind = ""
        self.can_calculate = False
        self.level_unit = LEVEL_UNITS[0]
        self.sigmas = DEFAULT_SIGMAS
        self.hkl = (0, 0, 1)
        self.offset = 0.0

    @property
    def choices(self) -> list[str]:
        """The kinds the selector lists, in MAP_CHOICES order."""
        have = set(self.maps) | ({"calculated"} if self.can_calculate else set())
        return [kind for kind in MAP_CHOICES if kind in have]

    @property
    def signed(self) -> bool:
        return self.kind in SIGNED_KINDS

    def set_maps(self, maps: dict, can_calculate: bool, kind: str = "") -> None:
        self.maps = dict(maps)
        self.can_calculate = can_calculate
        self.kind = kind if kind in self.choices else ""
        self.maps_changed.emit()

    def add_map(self, density) -> None:
        """A map shown from elsewhere (a solution's, a session's, one calculated on demand)."""
        self.maps[density.kind] = density
        self.kind = density.kind
        self.maps_changed.emit()

    def set_kind(self, kind: str) -> None:
        if kind != self.kind and kind in self.choices:
            self.kind = kind
            if kind in SIGNED_KINDS:  # a difference map is read in σ: ±3σ unless asked otherwise
                self.level_unit = "σ"
            self.kind_changed.emit(kind)
            self.level_changed.emit()

    def set_level(self, unit: str, sigmas: float) -> None:
        if unit not in LEVEL_UNITS:
            raise ValueError(f"level unit {unit!r} is not one of {', '.join(LEVEL_UNITS)}")
        if (unit, sigmas) != (self.level_unit, self.sigmas):
            self.level_unit, self.sigmas = unit, float(sigmas)
            self.level_changed.emit()

    def set_plane(self, hkl: tuple[int, int, int], offset: float) -> None:
        hkl = tuple(int(x) for x in hkl)
        if not any(hkl):
            raise ValueError("a slice plane needs Miller indices other than (0 0 0)")
        if (hkl, offset) != (self.hkl, self.offset):
            self.hkl, self.offset = hkl, float(offset) % 1.0
            self.plane_changed.emit()
