"""Plain QObject models: state plus signals, no drawing."""

from cmedgui.app.models.composition_model import CompositionModel
from cmedgui.app.models.map_model import MapModel
from cmedgui.app.models.pattern_model import PatternModel
from cmedgui.app.models.settings_model import SettingsModel
from cmedgui.app.models.solve_model import SolveModel

__all__ = ["CompositionModel", "MapModel", "PatternModel", "SettingsModel", "SolveModel"]
