"""Solve results: solution chooser (best-of-k), cell, space group, agreement, timings, sites table."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cmedgui.app.evidence import cautions, evidence_rows, verdict
from model.result import SolveResult

SITE_COLUMNS = ("Element", "Wyckoff", "x", "y", "z", "Occ.", "Biso (Å²)")


def result_rows(result: SolveResult) -> dict[str, str]:
    """The summary lines of a result, as shown in the panel and the report."""
    a, b, c, alpha, beta, gamma = result.lattice
    timings = ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in result.timings.items())
    qualified = cautions(result) if result.solved else []
    rows = {
        "Verdict": verdict(result) + (f" — but: {', '.join(qualified)}" if qualified else ""),
        "Cell": f"a {a:.4f}  b {b:.4f}  c {c:.4f} Å;  α {alpha:.2f}  β {beta:.2f}  γ {gamma:.2f}°",
        "Space group": f"{result.space_group} (No. {result.space_group_number}), {result.crystal_system}",
        "Agreement": f"Rwp {result.rwp:.2f} %   Rp {result.rp:.2f} %   GoF {result.gof:.2f}",
        "Timings": timings or "—",
    }
    if result.model_version:
        rows["Model"] = f"{result.model_version} on {result.device or '?'}"
    if result.refinement is not None:
        from model.agreement import agreement_text  # torch: load on first use

        rows["Agreement"], note = agreement_text(result)
        if note:
            rows["GoF"] = note
    rows.update(evidence_rows(result))
    return rows


def site_cells(result: SolveResult) -> list[list[str]]:
    return [[s.element, s.wyckoff, *(f"{v:.4f}" for v in s.xyz), f"{s.occupancy:.3f}", f"{s.biso:.2f}"]
            for s in result.sites]


class ResultsPanel(QWidget):
    solution_selected = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.chooser = QComboBox()
        self.chooser.currentIndexChanged.connect(self._chosen)
        self._labels: dict[str, QLabel] = {}
        self._form = QFormLayout()
        self.sites = QTableWidget(0, len(SITE_COLUMNS))
        self.sites.setHorizontalHeaderLabels(SITE_COLUMNS)
        self.sites.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.sites.verticalHeader().hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.chooser)
        layout.addLayout(self._form)
        layout.addWidget(self.sites, 1)
        self._updating = False
        self.show_results([], -1)

    def show_results(self, results: list[SolveResult], current: int) -> None:
        self._updating = True
        self.chooser.clear()
        for index, result in enumerate(results):
            self.chooser.addItem(f"Solution {index + 1} of {len(results)}: {result.space_group}, "
                                 f"Rwp {result.rwp:.2f} %")
        if not results:
            self.chooser.addItem("No solution yet: open a pattern, tick elements, press Solve")
        self.chooser.setCurrentIndex(max(current, 0))
        self.chooser.setEnabled(len(results) > 1)
        self._updating = False
        self._show(results[current] if 0 <= current < len(results) else None)

    def _show(self, result: SolveResult | None) -> None:
        while self._form.rowCount():
            self._form.removeRow(0)
        self._labels = {}
        rows = result_rows(result) if result is not None else {}
        for key, text in rows.items():
            label = QLabel(text)
            label.setWordWrap(True)
            if key == "Verdict":  # read first: a plausible fit in a wrong group must not pass for a solution
                colour = "#1b6e20" if result.solved and "but:" not in text else "#b00020"
                label.setStyleSheet(f"font-weight: bold; color: {colour};")
            self._form.addRow(f"{key}:", label)
            self._labels[key] = label
        cells = site_cells(result) if result is not None else []
        self.sites.setRowCount(len(cells))
        for row, values in enumerate(cells):
            for column, value in enumerate(values):
                self.sites.setItem(row, column, QTableWidgetItem(value))

    def label_text(self, key: str) -> str:
        return self._labels[key].text() if key in self._labels else ""

    def _chosen(self, index: int) -> None:
        if not self._updating and index >= 0:
            self.solution_selected.emit(index)
