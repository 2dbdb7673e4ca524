import csv

import numpy as np
import pytest
from helpers import written
from pymatgen.core import Lattice, Structure

from cmedgui import cli


def test_pattern_and_sticks(rocksalt_cif, tmp_path, capsys):
    out, stick_file = tmp_path / "nacl.xy", tmp_path / "sticks.csv"
    assert cli.main(["simulate", str(rocksalt_cif), "--wavelength", "CuKa", "--two-theta", "10", "80",
                     "--step", "0.01", "--sticks", str(stick_file), "-o", str(out)]) == 0
    assert "7001 points" in capsys.readouterr().out
    header = [line for line in out.read_text().splitlines() if line.startswith("#")]
    assert any("wavelength_A: 1.540593" in line and "1.544414" in line for line in header)
    data = np.loadtxt(out)
    assert data.shape == (7001, 2) and data[0, 0] == pytest.approx(10) and data[-1, 0] == pytest.approx(80)
    # the strongest NaCl line is 200 near 31.7°
    assert data[np.argmax(data[:, 1]), 0] == pytest.approx(31.70, abs=0.03)
    rows = list(csv.DictReader(stick_file.read_text().splitlines()))
    assert (rows[0]["h"], rows[0]["k"], rows[0]["l"]) == ("1", "1", "1")
    assert max(float(r["intensity"]) for r in rows) == pytest.approx(100)
    assert written(tmp_path) == ["nacl.xy", "sticks.csv"]


def test_noise_is_seeded_and_options_reach_the_profile(rocksalt_cif, tmp_path):
    runs = []
    for name in ("a.xy", "b.xy"):
        assert cli.main(["simulate", str(rocksalt_cif), "--wavelength", "1.0", "--two-theta", "5", "60",
                         "--counts", "500", "--seed", "7", "--no-ka2", "--zero", "0.1",
                         "--background", "-o", str(tmp_path / name)]) == 0
        runs.append(np.loadtxt(tmp_path / name))
    assert np.array_equal(runs[0], runs[1])
    counts = runs[0][:, 1] / runs[0][:, 1].max() * 500
    assert np.count_nonzero(counts == 0) > 100  # no background: Poisson zeros between peaks


def test_real_structure_to_csv(shared_data, tmp_path):
    cif = shared_data / "structures" / "cubic" / "spglib-197.cif"
    out = tmp_path / "p.csv"
    assert cli.main(["simulate", str(cif), "--wavelength", "MoKa", "--two-theta", "3", "40", "-o", str(out)]) == 0
    assert out.read_text().splitlines()[0] == "two_theta,intensity"


@pytest.mark.parametrize("args, message", [
    (["--two-theta", "50", "10"], "MIN < MAX"),
    (["--two-theta", "10", "200"], "MIN < MAX"),
    (["--step", "0"], "positive"),
    (["--step", "-0.1"], "positive"),
    (["--step", "1e-9"], "points"),
    (["--wavelength", "banana"], "unknown wavelength"),
    (["--widths", "0", "-1", "0.001", "0", "0"], "Gaussian width"),
])
def test_bad_options_exit_2(rocksalt_cif, tmp_path, capsys, args, message):
    assert cli.main(["simulate", str(rocksalt_cif), *args, "-o", str(tmp_path / "p.xy")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert written(tmp_path) == []


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    (b"", "empty"),
    (b"data_x\n_cell_length_a 5\nthis is not a structure\n", "cannot read"),
    (b"\x00\x01\x02garbage", "binary"),
])
def test_bad_structure_files_exit_2(tmp_path, capsys, content, message):
    cif = tmp_path / "in.cif"
    if content is not None:
        cif.write_bytes(content)
    out = tmp_path / "out" / "p.xy"
    assert cli.main(["simulate", str(cif), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(cif) in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_element_without_form_factor_names_the_file(tmp_path, capsys):
    cif = tmp_path / "es.cif"
    Structure(Lattice.cubic(5.0), ["Es"], [[0, 0, 0]]).to(filename=str(cif))
    assert cli.main(["simulate", str(cif), "-o", str(tmp_path / "p.xy")]) == 2
    err = capsys.readouterr().err
    assert "form factor" in err and str(cif) in err
    assert written(tmp_path) == ["es.cif"]


def test_unknown_output_ending_exits_2(rocksalt_cif, tmp_path, capsys):
    assert cli.main(["simulate", str(rocksalt_cif), "-o", str(tmp_path / "p.png")]) == 2
    assert "ending" in capsys.readouterr().err
