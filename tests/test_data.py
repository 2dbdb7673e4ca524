"""The training-universe builder: sanity rules, labels, storage, resume, dataset reading.

The fixture data set was made with
`python -m model.data build --systems cubic,trigonal,hexagonal,tetragonal --n 24
--out tests/fixtures/data --workers 1 --seed 5 --shard-size 12`.
"""

from __future__ import annotations

import csv
import json
import lzma
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from model.data import __main__ as cli
from model.data import pack, sources, store
from model.data.build import BuildOptions, build
from model.data.dataset import CMEDDataset, collate
from model.data.prototype import framework, split_of, structure_type
from model.data.sample import make_sample
from model.data.sanity import sanity_problem
from model.data.sources import Candidate, Template, substitution
from model.data.systems import (
    CRYSTAL_SYSTEMS,
    SYMPREC,
    crystal_system_code,
    parse_systems,
    spacegroups,
)
from model.errors import InputError
from model.nets import reciprocal
from model.scattering import reflections

FIXTURE = Path(__file__).parent / "fixtures" / "data"
SYSTEMS = ("cubic", "trigonal", "hexagonal", "tetragonal")
MANIFEST = ("id", "source", "structure_type", "formula", "spacegroup", "crystal_system",
            "natoms_conventional", "split")


def rock_salt(a: float = 5.64) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_sane_structure_passes():
    assert sanity_problem(rock_salt()) is None


def test_atoms_half_an_angstrom_apart_are_rejected():
    structure = Structure(Lattice.cubic(3.0), ["Na", "Cl"], [[0, 0, 0], [0.5 / 3.0, 0, 0]])
    assert sanity_problem(structure).startswith("distance:")


def test_overlapping_sites_are_rejected():
    structure = Structure(Lattice.cubic(4.0), ["Cu", "Cu"], [[0, 0, 0], [0, 0, 0]])
    assert sanity_problem(structure).startswith("distance:")


def test_atom_too_close_to_its_own_periodic_image_is_rejected():
    assert sanity_problem(Structure(Lattice.cubic(0.6), ["Fe"], [[0, 0, 0]])) is not None


def test_partial_occupancy_and_unphysical_density_are_rejected():
    disordered = Structure(Lattice.cubic(3.6), [{"Cu": 0.5, "Au": 0.5}], [[0, 0, 0]])
    assert sanity_problem(disordered).startswith("order:")
    assert sanity_problem(rock_salt(a=30.0)).startswith("density:")


def test_structure_type_is_the_aflow_label_and_anonymous():
    label = structure_type(SpacegroupAnalyzer(rock_salt(), symprec=SYMPREC))
    assert label == "AB_cF8_225_a_b"
    periclase = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert structure_type(SpacegroupAnalyzer(periclase, symprec=SYMPREC)) == label


def test_split_depends_only_on_the_type():
    assert split_of("AB_cF8_225_a_b") == split_of("AB_cF8_225_a_b")
    splits = [split_of(f"A_cP{i}_221_a") for i in range(2000)]
    fractions = {name: splits.count(name) / len(splits) for name in ("train", "val", "test")}
    assert 0.75 < fractions["train"] < 0.85 and 0.07 < fractions["test"] < 0.13


def test_an_evaluation_structure_is_never_a_target():
    candidate = Candidate(rock_salt(), "substitution", "test")
    assert make_sample("x", candidate, SYSTEMS, frozenset({("NaCl", 225)})).startswith("evaluation:")
    assert make_sample("x", candidate, SYSTEMS).formula == "NaCl"


def test_substitution_replaces_an_element_and_keeps_the_type():
    template = Template("rock salt", rock_salt(), "cubic")
    for seed in range(5):
        candidate = substitution(template, np.random.default_rng(seed))
        assert candidate.structure.composition.reduced_formula != "NaCl"
        label = structure_type(SpacegroupAnalyzer(candidate.structure, symprec=SYMPREC))
        assert label == "AB_cF8_225_a_b"


def test_crystal_system_codes():
    assert CRYSTAL_SYSTEMS[crystal_system_code(225)] == "cubic"
    assert CRYSTAL_SYSTEMS[crystal_system_code(166)] == "trigonal"
    assert list(spacegroups("hexagonal")) == list(range(168, 195))
    assert parse_systems("Tetragonal, cubic") == ("tetragonal", "cubic")
    with pytest.raises(InputError):
        parse_systems("cubic,hexagonl")


def test_fixture_has_the_agreed_layout():
    with (FIXTURE / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert set(MANIFEST) <= set(rows[0])
    assert {r["crystal_system"] for r in rows} <= set(SYSTEMS)
    with h5py.File(store.shard_path(FIXTURE, 0), "r") as h5:
        n = h5["id"].shape[0]
        assert h5["cmed"].shape == (n, 32, 32, 32) and h5["cmed"].dtype == np.float16
        assert h5["composition"].shape == (n, 119)
        np.testing.assert_allclose(h5["composition"][:].sum(axis=1), 1.0, rtol=1e-5)
        assert h5["lattice"].shape == (n, 6) and h5["spacegroup"].dtype == np.int16
        assert h5["crystal_system"].dtype == np.int8
        offsets = h5["refl_offsets"][:]
        assert offsets.shape == (n + 1,) and offsets[-1] == h5["refl_d"].shape[0] == h5["refl_hkl"].shape[0]
        assert h5["refl_d"][:].min() >= 0.5  # d_min Å
        ids = [x.decode() for x in h5["id"][:]]
        assert ids == [r["id"] for r in rows if r["shard"] == "0"]
        structure = Structure.from_str(h5["cif"][0].decode(), fmt="cif")
        assert len(structure) == int(rows[0]["natoms_conventional"])


def test_dataset_items_and_collate():
    dataset = CMEDDataset(FIXTURE, split=None)
    for index in range(len(dataset)):  # ∫ρ dV over the cell = electrons of the stored composition
        item = dataset[index]
        assert item["cmed"].shape == (32, 32, 32) and item["cmed"].dtype == torch.float16
        volume = Lattice.from_parameters(*item["lattice"].tolist()).volume
        electrons = float(item["cmed"].double().sum()) * volume / 32**3
        natoms = int(dataset.rows[index]["natoms_conventional"])
        expected = natoms * float((item["composition"].double() * torch.arange(119)).sum())
        assert electrons == pytest.approx(expected, rel=0.02)
    loader = torch.utils.data.DataLoader(dataset, batch_size=5, num_workers=2, collate_fn=collate)
    batch = next(iter(loader))
    lengths = [dataset[i]["refl_d"].shape[0] for i in range(5)]
    assert batch["refl_d"].shape == (5, max(lengths)) and batch["refl_hkl"].shape == (5, max(lengths), 3)
    assert batch["refl_mask"].sum(1).tolist() == lengths
    assert sum(len(CMEDDataset(FIXTURE, split)) for split in ("train", "val", "test")) == len(dataset)


def test_small_build_is_diverse(tmp_path):
    summary = build(tmp_path, BuildOptions(SYSTEMS, n=10, seed=2, shard_size=4), progress=False)
    assert summary["samples"] == 10 and summary["structure_types"] == 10  # cap: 1 per type at n=10
    rows = store.read_manifest(tmp_path)
    assert len({r["id"] for r in rows}) == 10


def test_killed_build_resumes_to_the_same_data_set(tmp_path, monkeypatch):
    options = BuildOptions(SYSTEMS, n=6, seed=4, shard_size=2)
    build(tmp_path / "whole", options, progress=False)

    written = []
    real_write = store.write_manifest

    def dies_after_two_shards(directory, rows):
        if len(written) == 2:
            raise KeyboardInterrupt  # killed between a shard and its manifest
        written.append(len(rows))
        real_write(directory, rows)

    monkeypatch.setattr("model.data.build.write_manifest", dies_after_two_shards)
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path / "killed", options, progress=False)
    monkeypatch.setattr("model.data.build.write_manifest", real_write)
    assert store.read_state(tmp_path / "killed")["shards"] == 2
    build(tmp_path / "killed", options, progress=False)
    whole, resumed = store.read_manifest(tmp_path / "whole"), store.read_manifest(tmp_path / "killed")
    assert [(r["id"], r["structure_type"]) for r in whole] == [(r["id"], r["structure_type"]) for r in resumed]


def test_resume_with_other_options_is_refused(tmp_path):
    build(tmp_path, BuildOptions(("cubic",), n=2, seed=1, shard_size=2), progress=False)
    with pytest.raises(InputError):
        build(tmp_path, BuildOptions(("cubic",), n=2, seed=9, shard_size=2), progress=False)


def test_cli_reports_bad_input_with_exit_status_2(tmp_path, capsys):
    assert cli.main(["build", "--systems", "cubic,monoclinc", "--n", "2", "--out", str(tmp_path)]) == 2
    assert cli.main(["build", "--systems", "cubic", "--out", str(tmp_path), "--from-cifs", str(tmp_path / "no")]) == 2
    assert capsys.readouterr().err.count("error:") == 2


def test_from_cifs_builds_from_real_structures(shared_data, tmp_path):
    folder = shared_data / "structures"
    summary = build(tmp_path, BuildOptions(tuple(CRYSTAL_SYSTEMS), n=12, seed=0, from_cifs=str(folder)),
                    progress=False)
    rows = store.read_manifest(tmp_path)
    assert summary["samples"] == len(rows) >= 8
    assert {r["source"] for r in rows} == {"cif"}
    assert all((folder / f"{r['id']}.cif").is_file() for r in rows)


def test_framework_ignores_the_order_of_species():
    assert framework("ABC3_cP5_221_a_b_c") == framework("AB3C_cP5_221_a_c_b") == "cP5_221_a_b_c"
    assert framework("AB_cF8_225_a_b") != framework("AB_cP2_221_a_b")


def test_families_carry_the_powder_intensities_and_the_phases():
    structure = rock_salt()
    hkl, mult, d = reciprocal.families(structure.lattice.matrix, 225, 0.8)
    f = reciprocal.structure_factors(structure, hkl, d)
    lines = reflections(structure, 0.8)
    assert np.sum(mult * np.abs(f) ** 2) == pytest.approx(np.sum(lines.multiplicity * lines.f2), rel=1e-6)
    rho = reciprocal.synthesis(hkl, f, 225, (16, 16, 16), structure.volume, 28.0 * 4)
    assert rho[8, 8, 8] == pytest.approx(rho.max(), rel=1e-6)  # Cl (17 e) at ½ ½ ½
    assert rho[8, 8, 8] > rho[0, 0, 0] > 10 * abs(rho[4, 4, 4])  # Na (11 e) at 0, nothing between


def test_substitution_on_an_evaluation_structure_is_rejected(shared_data):
    blocked = sources.evaluation_types()
    assert len(blocked) > 50
    for structure in sources.evaluation_structures():
        try:
            label = structure_type(SpacegroupAnalyzer(structure, symprec=SYMPREC))
        except ValueError:
            continue
        if framework(label) in blocked and structure.composition.reduced_formula != "O":
            break
    candidate = substitution(Template("evaluation", structure, "any"), np.random.default_rng(0))
    assert candidate is not None and candidate.structure.composition != structure.composition
    assert make_sample("x", candidate, tuple(CRYSTAL_SYSTEMS), frozenset(), blocked).startswith("evaluation:")


def test_no_evaluation_cif_is_a_template(shared_data):
    names = {t.name for system in SYSTEMS for t in sources.templates_by_system(SYSTEMS)[system]}
    assert names and not any("shared" in name or name.endswith(".cif") for name in names)


def _real_rows_file(folder: Path, structures: list[tuple[str, Structure]]) -> None:
    folder.mkdir()
    with lzma.open(folder / "test.jsonl.xz", "wt") as handle:
        for name, s in structures:
            sg = SpacegroupAnalyzer(s, symprec=SYMPREC).get_space_group_number()
            handle.write(json.dumps({"id": name, "formula": s.composition.reduced_formula, "spacegroup": sg,
                                     "crystal_system": CRYSTAL_SYSTEMS[crystal_system_code(sg)],
                                     "natoms_conventional": len(s), "lattice": s.lattice.matrix.tolist(),
                                     "species": [site.specie.symbol for site in s],
                                     "frac_coords": s.frac_coords.tolist()}) + "\n")


def test_real_build_leaves_out_evaluation_types_and_augments(shared_data, tmp_path):
    """A real structure of an evaluation type (antifluorite, the type of the experimental Mg2Si)
    is rejected, and so is every substitution on it; the others come first, then substitutions."""
    antifluorite = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.62), ["O", "Li"],
                                             [[0, 0, 0], [0.25, 0.25, 0.25]])
    assert framework(structure_type(SpacegroupAnalyzer(antifluorite, symprec=SYMPREC))) in sources.evaluation_types()
    wurtzite = Structure.from_spacegroup("P6_3mc", Lattice.hexagonal(3.25, 5.21), ["Zn", "O"],
                                         [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]])
    cesium = Structure.from_spacegroup("Pm-3m", Lattice.cubic(4.11), ["Cs", "Br"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    folder = tmp_path / "real"
    _real_rows_file(folder, [("li2o", antifluorite), ("zno", wurtzite), ("csbr", cesium)])
    summary = build(tmp_path / "out", BuildOptions(SYSTEMS, n=6, seed=1, real=str(folder), shard_size=3,
                                                   max_type_fraction=1.0), progress=False)
    rows = store.read_manifest(tmp_path / "out")
    assert summary["rejected"].get("evaluation", 0) >= 1
    assert not {framework(r["structure_type"]) for r in rows} & sources.evaluation_types()
    assert "li2o" not in {r["origin"] for r in rows}
    real = [r["source"] for r in rows]
    assert real[: real.count("real")] == ["real"] * real.count("real") and "substitution" in real


def test_build_from_a_csv_of_cif_strings(tmp_path):
    path = tmp_path / "mp.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["material_id", "cif"])
        writer.writerow(["mp-22862", str(CifWriter(rock_salt()))])
        writer.writerow(["broken", "data_x\n_cell_length_a 1\n"])
    summary = build(tmp_path / "out", BuildOptions(SYSTEMS, n=5, seed=0, from_cifs=str(path)), progress=False)
    rows = store.read_manifest(tmp_path / "out")
    assert summary["samples"] == 1 and rows[0]["id"] == "mp-22862" and rows[0]["formula"] == "NaCl"
    assert sum(summary["rejected"].values()) == 1


def test_pack_holds_the_families_of_every_sample(tmp_path):
    build(tmp_path, BuildOptions(SYSTEMS, n=4, seed=2, shard_size=2), progress=False)
    packed = pack.load_pack(tmp_path, 64)
    assert sum(len(packed[s]["formula"]) for s in ("train", "val", "test")) == packed["samples"] == 4
    split = next(packed[s] for s in ("train", "val", "test") if packed[s]["formula"])
    assert split["hkl"].shape[1:] == (64, 3) and split["f"].dtype == torch.float16
    assert torch.all(split["mult"][:, 0] > 0)
