"""Solve results: the candidate solutions (best first), which one is shown, its density and structure."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from model.result import SolveResult


class SolveModel(QObject):
    results_changed = Signal()
    current_changed = Signal(int)
    density_changed = Signal()
    structure_changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.results: list[SolveResult] = []
        self.current = -1
        self.density = None  # model.density.Density shown in the 3D view
        self.structure = None  # pymatgen Structure on screen: an opened CIF or the current solution

    @property
    def result(self) -> SolveResult | None:
        return self.results[self.current] if 0 <= self.current < len(self.results) else None

    def set_results(self, results: list[SolveResult]) -> None:
        self.results = list(results)
        self.results_changed.emit()
        self.current = -1
        self.set_current(0 if self.results else -1)

    def set_current(self, index: int) -> None:
        if index == self.current:
            return
        self.current = index
        if self.result is not None:  # the density first: listeners of current_changed may fill it in
            self.set_density(self.result.density)
        self.current_changed.emit(index)

    def replace_current(self, result: SolveResult) -> None:
        """The shown solution refined again: it takes the place of the one shown."""
        self.results[self.current] = result
        index, self.current = self.current, -1
        self.results_changed.emit()
        self.set_current(index)

    def set_density(self, density) -> None:
        self.density = density
        self.density_changed.emit()

    def set_structure(self, structure) -> None:
        self.structure = structure
        self.structure_changed.emit()

    def clear(self) -> None:
        self.set_results([])
        self.set_density(None)
        self.set_structure(None)
