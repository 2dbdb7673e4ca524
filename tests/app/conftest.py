"""App tests: on a machine with an X display (Xvfb in scripts/test.sh) Qt uses it (xcb), so the
vispy 3D view gets a real Mesa OpenGL context; without one, Qt runs offscreen and GL tests skip."""

from __future__ import annotations

import os

import numpy as np
import pytest

if os.environ.get("DISPLAY"):
    os.environ["QT_QPA_PLATFORM"] = "xcb"
else:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def app(qtbot, tmp_path):
    """A full window with settings in a temporary ini file and threaded jobs."""
    from PySide6.QtCore import QSettings

    from cmedgui.app.main import App

    instance = App(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(instance.window)
    instance.window.show()
    yield instance
    instance.runner.cancel()
    instance.runner.wait(5000)


@pytest.fixture
def gl(qapp):
    """Skips unless Qt drives a real display (vispy needs an OpenGL context)."""
    if qapp.platformName() != "xcb":
        pytest.skip("the 3D view needs an X display with OpenGL (run under xvfb-run)")


@pytest.fixture(scope="session")
def rock_salt():
    """NaCl (Fm-3m, a = 5.6402 Å) in its conventional cell."""
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.6402), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture
def rock_salt_cif(tmp_path, rock_salt):
    path = tmp_path / "NaCl.cif"
    rock_salt.to(filename=str(path))
    return path


def blob(n: int = 32) -> np.ndarray:
    """A Gaussian density (e/Å³) centred in the cell."""
    x = np.arange(n) / n - 0.5
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    return (10.0 * np.exp(-(X**2 + Y**2 + Z**2) / 0.02)).astype(np.float32)


@pytest.fixture
def inline_app(qtbot, tmp_path):
    """A window whose jobs run in the caller's thread: a refinement is over when submit returns."""
    from PySide6.QtCore import QSettings

    from cmedgui.app.main import App

    def make(name="settings.ini"):
        instance = App(QSettings(str(tmp_path / name), QSettings.Format.IniFormat), inline_jobs=True)
        qtbot.addWidget(instance.window)
        instance.window.show()
        return instance

    return make
