import numpy as np
import pytest
from helpers import written
from pymatgen.io.vasp import Chgcar

from cmedgui import cli


@pytest.mark.parametrize("name", ["rho.npz", "rho.cube", "rho.xsf", "rho.vasp", "CHGCAR"])
def test_writes_each_format(rocksalt_cif, tmp_path, capsys, name):
    out = tmp_path / name
    assert cli.main(["density", str(rocksalt_cif), "--grid", "16", "-o", str(out)]) == 0
    assert out.is_file()
    assert "16³ grid" in capsys.readouterr().out
    assert written(tmp_path) == [name]


def test_grid_and_biso_reach_the_density(rocksalt_cif, tmp_path, capsys):
    out = tmp_path / "rho.npz"
    assert cli.main(["density", str(rocksalt_cif), "--grid", "20", "--biso", "1.5", "-o", str(out)]) == 0
    assert "B = 1.5 Å²" in capsys.readouterr().out
    with np.load(out) as archive:
        values, lattice = archive["values"], archive["lattice"]
    assert values.shape == (20, 20, 20)
    electrons = values.sum(dtype=np.float64) * abs(np.linalg.det(lattice)) / 20**3
    assert electrons == pytest.approx(4 * (11 + 17), rel=1e-4)


def test_as_given_keeps_the_primitive_cell(rocksalt, tmp_path):
    primitive = tmp_path / "prim.cif"
    rocksalt.get_primitive_structure().to(filename=str(primitive))
    out = tmp_path / "CHGCAR"
    assert cli.main(["density", str(primitive), "--grid", "8", "--as-given", "-o", str(out)]) == 0
    assert len(Chgcar.from_file(str(tmp_path / "CHGCAR")).structure) == 2


def test_real_structure(shared_data, tmp_path):
    cif = shared_data / "structures" / "hexagonal" / "spglib-189-2.cif"
    out = tmp_path / "rho.xsf"
    assert cli.main(["density", str(cif), "--grid", "24", "-o", str(out)]) == 0
    assert "BEGIN_DATAGRID_3D" in out.read_text()


def _fails(args, tmp_path, capsys, message):
    out = tmp_path / args.pop()
    before = written(tmp_path)
    assert cli.main(["density", *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("cmedgui: ") and message in err
    assert written(tmp_path) == before  # no output, no temporary file


def test_missing_file(tmp_path, capsys):
    _fails([str(tmp_path / "nothere.cif"), "rho.cube"], tmp_path, capsys, "no such file")


def test_garbage_file(tmp_path, capsys):
    garbage = tmp_path / "garbage.cif"
    garbage.write_text("data_x\n_cell_length_a banana\nthis is not a structure\n")
    _fails([str(garbage), "rho.cube"], tmp_path, capsys, "cannot read a structure")


def test_unknown_element(tmp_path, capsys):
    cif = tmp_path / "qq.cif"
    cif.write_text("data_x\n_cell_length_a 4\n_cell_length_b 4\n_cell_length_c 4\n"
                   "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
                   "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n"
                   "_atom_site_fract_y\n_atom_site_fract_z\nQq1 Qq 0 0 0\n")
    _fails([str(cif), "rho.cube"], tmp_path, capsys, "unknown element")


@pytest.mark.parametrize("grid", ["3", "1000", "0"])
def test_absurd_grid(rocksalt_cif, tmp_path, capsys, grid):
    _fails([str(rocksalt_cif), "--grid", grid, "rho.cube"], tmp_path, capsys, "grid size")


def test_negative_biso(rocksalt_cif, tmp_path, capsys):
    _fails([str(rocksalt_cif), "--biso", "-2", "rho.cube"], tmp_path, capsys, "Biso")


def test_unknown_output_ending(rocksalt_cif, tmp_path, capsys):
    _fails([str(rocksalt_cif), "rho.png"], tmp_path, capsys, ".cube")
