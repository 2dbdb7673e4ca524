"""CompositionModel ↔ PeriodicTable; an opened structure ticks its elements when none are ticked."""

from __future__ import annotations

from cmedgui.app.models.composition_model import CompositionModel
from cmedgui.app.models.solve_model import SolveModel
from cmedgui.app.widgets.main_window import MainWindow
from model.errors import InputError


class CompositionController:
    def __init__(self, model: CompositionModel, solve: SolveModel, window: MainWindow):
        self.model, self.solve, self.window = model, solve, window
        solve.structure_changed.connect(self._structure_opened)
        table = window.periodic_table
        table.element_clicked.connect(model.cycle)
        table.formula_edited.connect(self._formula)
        model.changed.connect(lambda: table.show_states(model.states, model.formula))

    def _formula(self, text: str) -> None:
        try:
            self.model.set_formula(text)
        except InputError as error:
            self.window.show_error(str(error))

    def _structure_opened(self) -> None:
        structure = self.solve.structure
        if structure is not None and not self.model.states:
            self.model.set_known([element.symbol for element in structure.composition.elements])
