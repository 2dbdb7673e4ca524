import json

import numpy as np

from model.density import cmed
from model.evaluate import PAPER_TWO_THETA, main
from model.metrics import best_equivalent_ssim
from model.nets.inputs import q_grid_input
from model.nets.synth import STICK_SAMPLE, stick_instrument
from model.pattern import ANODES
from model.patterson import patterson_map
from model.simulate import simulate_pattern


def test_patterson_map_of_rocksalt_looks_like_its_density(rocksalt):
    # NaCl has an atom on every vector between atoms, so its Patterson map is nearly its density
    truth = cmed(rocksalt, n=32).values
    pattern = simulate_pattern(rocksalt, stick_instrument(ANODES["MoKa1"]), PAPER_TWO_THETA, STICK_SAMPLE)
    patterson = patterson_map(q_grid_input(pattern.q, pattern.intensity), rocksalt.lattice.parameters,
                              32, float(truth.mean()))
    assert patterson.min() == 0.0
    assert np.isclose(patterson.mean(), truth.mean())
    flat, _ = best_equivalent_ssim(np.full_like(truth, truth.mean()), truth, "cubic")
    similar, _ = best_equivalent_ssim(patterson, truth, "cubic")
    assert similar > flat + 0.2


def test_evaluate_scores_network_and_references_per_system(rocksalt_cif, tmp_path):
    out = tmp_path / "scores.json"
    assert main(["--structures", str(rocksalt_cif.parent), "--json", str(out), "--model", "seed",
                 "--samples", "1"]) == 0
    scores = json.loads(out.read_text())
    cubic = scores["per_system"]["cubic"]
    assert cubic["n"] == 1 and scores["setting"] == "paper"
    row = scores["per_structure"][0]
    assert row["formula"] == "NaCl" and row["spacegroup"] == 225
    for key in ("ssim", "ssim_flat", "ssim_patterson"):
        assert -1.0 <= row[key] <= 1.0
        assert cubic[f"{key}_mean"] == row[key]
    assert row["ssim_patterson"] > row["ssim_flat"]
