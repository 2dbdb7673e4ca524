"""The refinement parameters: one tick box per group (refined or fixed), each parameter's value
and esd, the agreement with Rexp and R-Bragg, and Refine again."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from model.result import Parameter

COLUMNS = ("Parameter", "Value (esd)", "Unit")
GROUP_ROLE = Qt.ItemDataRole.UserRole
PLAIN_ZERO = 1e-6  # a value without esd below this shows as 0 (a width refined onto its bound: 3.2e-07 deg²)


class ParameterPanel(QWidget):
    group_toggled = Signal(str, bool)
    refine_again_clicked = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.agreement = QLabel()
        self.agreement.setWordWrap(True)
        self.agreement.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemChanged.connect(self._item_changed)
        self.refine_button = QPushButton("Refine again")
        self.refine_button.setToolTip("Refine the ticked groups from the values shown; the others stay fixed")
        self.refine_button.clicked.connect(self.refine_again_clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.agreement)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.refine_button)
        self._drawing = False
        self.show_parameters([], set(), "")

    def show_parameters(self, groups: list[tuple[str, str, list[Parameter]]], free: set[str], agreement: str) -> None:
        """``groups``: (group, title, its parameters) in display order; ``free``: the ticked groups."""
        self._drawing = True
        self.tree.clear()
        for group, title, rows in groups:
            item = QTreeWidgetItem([f"{title} ({len(rows)})", "", ""])
            item.setData(0, GROUP_ROLE, group)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(0, Qt.CheckState.Checked if group in free else Qt.CheckState.Unchecked)
            for row in rows:
                child = QTreeWidgetItem([row.name, _value_text(row), row.unit])
                child.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if not row.refined:
                    child.setToolTip(1, "fixed in the last refinement: no esd")
                item.addChild(child)
            self.tree.addTopLevelItem(item)
            item.setExpanded(group not in ("bkg",))
        line, _, note = agreement.partition("\n")
        self.agreement.setText(line or "No refinement yet: Solve, or open a CIF and press Refine")
        self.agreement.setToolTip(note)  # the Results panel shows it beside Rwp
        self.refine_button.setEnabled(bool(groups))
        self._drawing = False

    def show_free(self, free: set[str]) -> None:
        self._drawing = True
        for index in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(index)
            item.setCheckState(0, Qt.CheckState.Checked if item.data(0, GROUP_ROLE) in free
                               else Qt.CheckState.Unchecked)
        self._drawing = False

    def group_item(self, group: str) -> QTreeWidgetItem | None:
        for index in range(self.tree.topLevelItemCount()):
            if self.tree.topLevelItem(index).data(0, GROUP_ROLE) == group:
                return self.tree.topLevelItem(index)
        return None

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        group = item.data(0, GROUP_ROLE)
        if not self._drawing and column == 0 and group:
            self.group_toggled.emit(group, item.checkState(0) == Qt.CheckState.Checked)


def _value_text(row: Parameter) -> str:
    from model.uncertainty import format_esd

    if row.esd is not None:
        return format_esd(row.value, row.esd)
    return "0" if abs(row.value) < PLAIN_ZERO else f"{row.value:.6g}"
