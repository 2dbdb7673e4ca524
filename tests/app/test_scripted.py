"""`cmedgui --open … --screenshot … --quit`: a real window, a screenshot of all of it, then exit."""

import os
import subprocess
import sys
from pathlib import Path

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
