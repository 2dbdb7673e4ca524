"""Periodic-table element picker: a click cycles unspecified → known → possible → excluded."""

from __future__ import annotations

from pymatgen.core import Element
from PySide6.QtCore import QSize, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

STATE_STYLE = {  # background, text; plain words in the tooltip say the same for colour-blind users
    "": ("#f4f4f4", "#222"),
    "known": ("#1b9e3b", "white"),
    "possible": ("#f0c000", "black"),
    "excluded": ("#c0392b", "white"),
}
LAST_Z = 103  # through Lr: beyond it no powder sample exists


def table_position(element: Element) -> tuple[int, int]:
    """(row, column) on the usual 18-column table with La–Lu and Ac–Lr in two rows below (rows 8, 9)."""
    if element.is_lanthanoid or element.is_actinoid:
        first = 57 if element.is_lanthanoid else 89
        return (8 if element.is_lanthanoid else 9), 3 + element.Z - first
    return element.row, element.group


class PeriodicTable(QWidget):
    element_clicked = Signal(str)
    formula_edited = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        grid = QGridLayout()
        grid.setSpacing(1)
        self.buttons: dict[str, QToolButton] = {}
        for z in range(1, LAST_Z + 1):
            element = Element.from_Z(z)
            button = QToolButton()
            button.setText(element.symbol)
            button.setFixedSize(QSize(24, 20))
            button.setAutoRaise(False)
            button.clicked.connect(lambda _=False, s=element.symbol: self.element_clicked.emit(s))
            row, column = table_position(element)
            grid.addWidget(button, row, column)
            self.buttons[element.symbol] = button
        grid.setRowMinimumHeight(7, 6)  # the gap above the f-block rows
        self.formula = QLineEdit()
        self.formula.setPlaceholderText("optional formula, e.g. CeO2")
        self.formula.editingFinished.connect(lambda: self.formula_edited.emit(self.formula.text()))
        legend = QHBoxLayout()
        for state in ("known", "possible", "excluded"):
            background, text = STATE_STYLE[state]
            label = QLabel(state)
            label.setStyleSheet(f"background:{background}; color:{text}; padding:1px 4px;")
            legend.addWidget(label)
        legend.addStretch(1)
        legend.addWidget(QLabel("Formula:"))
        legend.addWidget(self.formula, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(grid)
        layout.addLayout(legend)
        self.show_states({}, "")

    def show_states(self, states: dict[str, str], formula: str) -> None:
        for symbol, button in self.buttons.items():
            state = states.get(symbol, "")
            background, text = STATE_STYLE[state]
            button.setStyleSheet(f"QToolButton {{ background:{background}; color:{text}; border:1px solid #bbb;"
                                 f" font-size:9px; }}")
            button.setToolTip(f"{Element(symbol).long_name}: {state or 'unspecified'} (click to change)")
        if self.formula.text() != formula:
            self.formula.setText(formula)
