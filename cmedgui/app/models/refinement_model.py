"""The refinement laid open: the shown solution's parameters (value, esd) by group, and which groups
the next refinement frees."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from model.result import Parameter, SolveResult

# the groups in the order a crystallographer frees them, with their titles
GROUPS = {"scale": "Scale", "bkg": "Background (Chebyshev)", "zero": "Zero shift",
          "displacement": "Sample displacement", "cell": "Cell", "profile": "Profile (TCH U V W X Y)",
          "asymmetry": "Peak asymmetry", "polarisation": "Beam polarisation", "ka2": "Kα2/Kα1 ratio",
          "po": "Preferred orientation", "xyz": "Atom coordinates", "biso": "Displacement (Biso)"}


class RefinementModel(QObject):
    parameters_changed = Signal()
    free_changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.result: SolveResult | None = None
        self.parameters: list[Parameter] = []
        self.free: set[str] = set()

    @property
    def groups(self) -> list[str]:
        """The groups the shown refinement has, in GROUPS order."""
        present = {q.group for q in self.parameters}
        return [group for group in GROUPS if group in present]

    def rows(self, group: str) -> list[Parameter]:
        return [q for q in self.parameters if q.group == group]

    def set_result(self, result: SolveResult | None) -> None:
        """Show ``result``'s refinement; the groups it refined become the free ones."""
        # torch: load on first use
        from model.uncertainty import coordinate_rows

        self.result = result
        report = result.refinement if result is not None else None
        self.parameters = [] if report is None else [*report.parameters, *coordinate_rows(result)]
        self.free = set() if report is None else set(report.free)
        self.parameters_changed.emit()
        self.free_changed.emit()

    def set_free(self, group: str, free: bool) -> None:
        if (group in self.free) != free:
            self.free = self.free | {group} if free else self.free - {group}
            self.free_changed.emit()

    def restore_free(self, groups: list[str]) -> None:
        """The ticks of a reopened session."""
        self.free = {group for group in groups if group in GROUPS}
        self.free_changed.emit()

    @property
    def free_groups(self) -> list[str]:
        return [group for group in GROUPS if group in self.free]
