"""Settings remembered between runs (QSettings): last folder, wavelength, device, recent files, layout."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QObject, QSettings, Signal

MAX_RECENT = 10


class SettingsModel(QObject):
    recent_changed = Signal()

    def __init__(self, settings: QSettings | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._settings = settings or QSettings("cmedgui", "cmedgui")

    def _get(self, key: str, default: str = "") -> str:
        value = self._settings.value(key, default)
        return str(value) if value is not None else default

    @property
    def last_folder(self) -> str:
        return self._get("last_folder", str(Path.home()))

    @last_folder.setter
    def last_folder(self, folder: str) -> None:
        self._settings.setValue("last_folder", folder)

    @property
    def wavelength(self) -> str:
        """The wavelength chosen for files that state none: an anode name or Å as text."""
        return self._get("wavelength", "CuKa")

    @wavelength.setter
    def wavelength(self, text: str) -> None:
        self._settings.setValue("wavelength", text)

    @property
    def device(self) -> str:
        """'auto', 'cpu' or 'cuda'."""
        return self._get("device", "auto")

    @device.setter
    def device(self, name: str) -> None:
        self._settings.setValue("device", name)

    @property
    def recent(self) -> list[str]:
        value = self._settings.value("recent", [])
        if isinstance(value, str):  # QSettings returns a lone string for a one-item list
            value = [value]
        return [str(v) for v in (value or [])]

    def add_recent(self, path: str) -> None:
        path = str(Path(path).resolve())
        recent = [path] + [p for p in self.recent if p != path]
        self._settings.setValue("recent", recent[:MAX_RECENT])
        self.last_folder = str(Path(path).parent)
        self.recent_changed.emit()

    def window_state(self) -> tuple[QByteArray | None, QByteArray | None]:
        return self._settings.value("geometry"), self._settings.value("state")

    def save_window_state(self, geometry: QByteArray, state: QByteArray) -> None:
        self._settings.setValue("geometry", geometry)
        self._settings.setValue("state", state)

    def sync(self) -> None:
        self._settings.sync()
