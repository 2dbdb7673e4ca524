"""The list of loaded patterns; selecting one makes it current, Delete removes it."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem


class FileList(QListWidget):
    current_selected = Signal(int)
    remove_requested = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.currentRowChanged.connect(self._row_changed)
        self._updating = False

    def show_patterns(self, names: list[str], tooltips: list[str], current: int) -> None:
        self._updating = True
        self.clear()
        for name, tip in zip(names, tooltips):
            item = QListWidgetItem(name)
            item.setToolTip(tip)
            self.addItem(item)
        self.setCurrentRow(current)
        self._updating = False

    def _row_changed(self, row: int) -> None:
        if not self._updating and row >= 0:
            self.current_selected.emit(row)

    def keyPressEvent(self, event):
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.currentRow() >= 0:
            self.remove_requested.emit(self.currentRow())
        else:
            super().keyPressEvent(event)
