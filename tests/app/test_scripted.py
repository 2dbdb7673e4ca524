"""`cmedgui --open … --screenshot … --quit`: a real window, a screenshot of all of it, then exit."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from skimage.io import imread

REPO = Path(__file__).resolve().parents[2]


def run_cmedgui(config: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The command in a fresh process, with its QSettings under ``config``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "XDG_CONFIG_HOME": str(config)}
    return subprocess.run([sys.executable, "-m", "cmedgui", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.mark.slow
def test_screenshot_of_a_structure_shows_pattern_and_isosurface(gl, tmp_path, rock_salt_cif):
    shot = tmp_path / "shot.png"
    done = run_cmedgui(tmp_path, "--open", str(rock_salt_cif), "--screenshot", str(shot), "--quit")
    assert done.returncode == 0, done.stderr[-2000:]
    rgb = imread(shot)[..., :3].astype(int)
    height, width = rgb.shape[:2]
    assert width >= 1000 and height >= 600
    isosurface = (rgb[..., 2] > rgb[..., 0] + 60) & (rgb[..., 1] > 80) & (rgb[..., 1] < 200)
    lower_half = isosurface[height // 2:, width // 4: 3 * width // 4]
    assert lower_half.mean() > 0.01  # the 3D view (lower centre) shows the blue isosurface
    assert isosurface[: height // 2].mean() < lower_half.mean()


def test_bad_file_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "empty.xy"
    bad.write_text("")
    done = run_cmedgui(tmp_path, "--open", str(bad), "--quit", timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == f"cmedgui: {bad}: file is empty"


@pytest.mark.slow
def test_scripted_solve_saves_the_screenshot_when_the_job_ends(gl, tmp_path):
    from cmedgui.app.main import EXAMPLE

    shot = tmp_path / "solve.png"
    done = run_cmedgui(tmp_path, "--open", str(EXAMPLE), "--elements", "Ce", "O", "--solve",
                       "--screenshot", str(shot), "--quit", timeout=600)
    assert shot.is_file() and imread(shot).shape[1] >= 1000
    if done.returncode:  # not solved: exit 1 and the reason on one line
        assert done.returncode == 1
        assert done.stderr.strip().splitlines()[-1].startswith("cmedgui: Solve")


def test_a_bad_screenshot_name_is_reported_and_the_window_still_quits(tmp_path):
    done = run_cmedgui(tmp_path, "--screenshot", str(tmp_path / "shot.jpg"), "--quit", timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].endswith("figures are written as .png, .svg, .pdf, not .jpg")


@pytest.mark.slow
def test_scripted_solve_exports_and_quits_with_status_0(tmp_path):
    """`--solve --export DIR --quit` headless; the exported map
    is in the CIF's cell (the network's map once kept the tetragonal cell the solution was found in)."""
    from pymatgen.io.common import VolumetricData

    from cmedgui.app.main import EXAMPLE
    from model.structure import load_structure

    out = tmp_path / "out"
    done = run_cmedgui(tmp_path, "--open", str(EXAMPLE), "--elements", "Ce", "O", "--formula", "CeO2", "--solve",
                       "--export", str(out), "--quit", timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    written = {p.name for p in out.iterdir()}
    # the 3D figure and the report need OpenGL, which an offscreen run may lack
    assert {"density.cube", "peaks.csv", "fit.xy", "pattern.png", "structure.cif"} <= written
    assert written <= {"density.cube", "peaks.csv", "fit.xy", "pattern.png", "structure.cif", "density.png",
                       "report.html"}
    assert done.stdout.count("exported: ") == len(written)
    cif = load_structure(out / "structure.cif")
    cube = VolumetricData.from_cube(str(out / "density.cube"))
    assert cif.composition.reduced_formula == cube.structure.composition.reduced_formula == "CeO2"
    np.testing.assert_allclose(cube.structure.lattice.parameters, cif.lattice.parameters, atol=1e-4)
    assert "network map" in (out / "density.cube").read_text().splitlines()[0]


def test_export_without_a_solve_writes_the_pattern_and_a_bad_formula_exits_2(tmp_path):
    from cmedgui.app.main import EXAMPLE

    done = run_cmedgui(tmp_path, "--open", str(EXAMPLE), "--export", str(tmp_path / "out"), "--quit", timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fit.xy", "pattern.png"]
    done = run_cmedgui(tmp_path, "--open", str(EXAMPLE), "--formula", "Qq2", "--quit", timeout=120)
    assert done.returncode == 2 and "Qq2" in done.stderr.strip().splitlines()[-1]


def test_without_a_display_the_window_says_how_to_run_headless(tmp_path):
    env = {key: value for key, value in os.environ.items()
           if key not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run([sys.executable, "-m", "cmedgui", "--quit"], cwd=REPO, capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(REPO), "XDG_CONFIG_HOME": str(tmp_path)}, timeout=120,
                          check=False)
    assert done.returncode == 2
    line = done.stderr.strip()
    assert "\n" not in line and line.startswith("cmedgui: no display")
    assert "xvfb-run" in line and "QT_QPA_PLATFORM=offscreen" in line and "xcb" not in line
