"""What the user says about the sample's chemistry: element states and an optional formula."""

from __future__ import annotations

from pymatgen.core import Element
from PySide6.QtCore import QObject, Signal

from model.composition import parse_formula
from model.errors import InputError

STATES = ("known", "possible", "excluded")  # an element in none of them is unspecified


class CompositionModel(QObject):
    changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.states: dict[str, str] = {}
        self.formula = ""

    def state(self, symbol: str) -> str:
        return self.states.get(symbol, "")

    def set_state(self, symbol: str, state: str) -> None:
        if not Element.is_valid_symbol(symbol):
            raise InputError(symbol, "not an element symbol")
        if state and state not in STATES:
            raise ValueError(f"state {state!r} is not one of {STATES}")
        if state:
            self.states[symbol] = state
        else:
            self.states.pop(symbol, None)
        self.changed.emit()

    def cycle(self, symbol: str) -> None:
        """unspecified → known → possible → excluded → unspecified (one click on the table)."""
        order = ("",) + STATES
        self.set_state(symbol, order[(order.index(self.state(symbol)) + 1) % len(order)])

    def set_known(self, symbols: list[str]) -> None:
        """Replace the known elements (e.g. from --elements); possible/excluded stay."""
        for symbol in symbols:
            if not Element.is_valid_symbol(symbol):
                raise InputError(symbol, "not an element symbol")
        self.states = {s: st for s, st in self.states.items() if st != "known"}
        self.states.update({s: "known" for s in symbols})
        self.changed.emit()

    def restore(self, states: dict[str, str], formula: str) -> None:
        """Every state and the formula replaced (a reopened session; checked by its reader)."""
        self.states = dict(states)
        self.formula = formula
        self.changed.emit()

    def set_formula(self, text: str) -> None:
        """An optional stoichiometry such as 'CeO2'; its elements become known. A formula holding an
        excluded element is refused (model.composition)."""
        text = text.strip()
        if text:
            elements = list(parse_formula(text))
            banned = [symbol for symbol in elements if self.state(symbol) == "excluded"]
            if banned:
                raise InputError(None, f"formula {text} holds excluded elements: {', '.join(banned)}")
            self.states.update({symbol: "known" for symbol in elements})
        self.formula = text
        self.changed.emit()

    def with_state(self, state: str) -> list[str]:
        """Symbols in ``state``, ordered by atomic number."""
        return sorted((s for s, st in self.states.items() if st == state), key=lambda s: Element(s).Z)

    @property
    def known(self) -> list[str]:
        return self.with_state("known")

    @property
    def possible(self) -> list[str]:
        return self.with_state("possible")

    @property
    def excluded(self) -> list[str]:
        return self.with_state("excluded")
