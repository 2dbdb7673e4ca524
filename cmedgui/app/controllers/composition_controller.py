"""CompositionModel ↔ PeriodicTable."""

from __future__ import annotations

from cmedgui.app.models.composition_model import CompositionModel
from cmedgui.app.widgets.main_window import MainWindow
from model.errors import InputError


class CompositionController:
    def __init__(self, model: CompositionModel, window: MainWindow):
        self.model, self.window = model, window
        table = window.periodic_table
        table.element_clicked.connect(model.cycle)
        table.formula_edited.connect(self._formula)
        model.changed.connect(lambda: table.show_states(model.states, model.formula))

    def _formula(self, text: str) -> None:
        try:
            self.model.set_formula(text)
        except InputError as error:
            self.window.show_error(str(error))
