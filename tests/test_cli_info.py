"""`cmedgui info` through the real dispatcher (cmedgui.cli.main)."""

from __future__ import annotations

import json

import pytest

from cmedgui import cli


def run(capsys, *argv):
    code = cli.main(["info", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_info_single_range(shared_data, capsys):
    code, out, err = run(capsys, shared_data / "formats/raw/D5000_1.RAW")
    assert code == 0 and err == ""
    info = json.loads(out)
    assert info["format"] == "bruker raw"
    assert info["n_points"] == 3651 and info["n_ranges"] == 1 and "ranges" not in info
    assert (info["wavelength"], info["wavelength_ka2"], info["ka2_ratio"]) == (1.78897, 1.79285, 0.5)
    assert (info["two_theta_min"], info["two_theta_max"], info["step"]) == (2.0, 75.0, 0.02)
    assert info["metadata"]["anode"] == "Co"


def test_info_multi_range(shared_data, capsys):
    code, out, _ = run(capsys, shared_data / "formats/uxd/Sin2Psi.uxd")
    info = json.loads(out)
    assert code == 0 and info["n_ranges"] == 18 == len(info["ranges"])
    assert sum(r["n_points"] for r in info["ranges"]) == info["n_points"] == 18 * 251
    assert all(r["wavelength"] == 1.5406 for r in info["ranges"])


def test_info_wavelength_unknown_then_given(tmp_path, capsys):
    path = tmp_path / "p.xy"
    path.write_text("10 1\n10.5 2\n11 3\n")
    code, out, _ = run(capsys, path)
    assert code == 0 and json.loads(out)["wavelength"] is None
    code, out, _ = run(capsys, path, "--wavelength", "MoKa")
    info = json.loads(out)
    assert (info["wavelength"], info["wavelength_ka2"]) == (0.709319, 0.713609)
    code, out, _ = run(capsys, path, "--wavelength", "1.2")
    assert json.loads(out)["wavelength"] == 1.2 and json.loads(out)["ka2_ratio"] is None


@pytest.mark.parametrize("content, problem", [
    (None, "file not found"),
    (b"", "file is empty"),
    (b"\x00\x01\x02garbage\xff" * 20, "not a text pattern"),
    (b"10 1\n10 2\n", "not strictly increasing"),
    (b"10 nan\n11 2\n", "NaN"),
    (b"1e400 1\n2e400 2\n", "NaN or infinite"),
])
def test_info_bad_file_exits_2_with_one_line(tmp_path, capsys, content, problem):
    path = tmp_path / "bad.xy"
    if content is not None:
        path.write_bytes(content)
    code, out, err = run(capsys, path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(path) in err and problem in err


def test_info_directory_and_unknown_format(tmp_path, capsys):
    code, _, err = run(capsys, tmp_path)
    assert code == 2 and "not a file" in err
    path = tmp_path / "thing.foo"
    path.write_bytes(b"hello world, no numbers here\n")
    code, _, err = run(capsys, path)
    assert code == 2 and "not a recognised powder pattern format" in err


def test_info_bad_wavelength(tmp_path, capsys):
    path = tmp_path / "p.xy"
    path.write_text("10 1\n11 2\n")
    code, _, err = run(capsys, path, "--wavelength", "Unobtainium")
    assert code == 2 and "unknown wavelength" in err and err.count("\n") == 1
