import gzip
import json
import shutil

import numpy as np

from model.density import cmed
from model.evaluate import PAPER_TWO_THETA, main
from model.metrics import best_equivalent_ssim
from model.nets.inputs import q_grid_input
from model.nets.synth import STICK_SAMPLE, stick_instrument
from model.pattern import ANODES
from model.patterson import patterson_map
from model.simulate import simulate_pattern
from model.weights import BUNDLED


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
                 "--samples", "1", "--baselines", "flat,patterson,moved_0.3A,charge_flipping"]) == 0
    scores = json.loads(out.read_text())
    cubic = scores["per_system"]["cubic"]
    assert cubic["n"] == 1 and scores["setting"] == "paper" and scores["model"] == "seed"
    row = scores["per_structure"][0]
    assert row["formula"] == "NaCl" and row["spacegroup"] == 225
    assert set(row["maps"]) == {"seed", "flat", "patterson", "moved_0.3A", "charge_flipping"}
    for name, values in row["maps"].items():
        stats = cubic if name == "seed" else cubic["baselines"][name]
        for key in ("cc", "recall", "recall_z", "precision", "ssim_paper", "ssim_smoothed"):
            assert -1.0 <= values[key] <= 1.0
            assert stats[f"{key}_mean"] == values[key]
    assert cubic["baselines"]["flat"]["cc_mean"] == 0.0 and cubic["baselines"]["flat"]["recall_mean"] == 0.0
    assert cubic["baselines"]["moved_0.3A"]["cc_mean"] > 0.5
    # charge flipping's map is scored on the truth's grid (its own grid once scored cc 0 at any
    # phases); whether it finds NaCl from 15 lines depends on the random start (about half do)
    assert row["cf_grid"] == 32 and row["cf_reflections"] == 15
    # no training index beside the bundled seed: every case unseen, and the output says so
    assert cubic["unseen"]["n"] == 1 and cubic["unseen"]["cc_mean"] == cubic["cc_mean"]
    assert scores["train_index"]["seed"].startswith("absent")


def test_cases_in_the_training_index_are_reported_seen(rocksalt_cif, tmp_path):
    for suffix in (".safetensors", ".card.json"):
        shutil.copy(BUNDLED / f"seed{suffix}", tmp_path / f"mine{suffix}")
    with gzip.open(tmp_path / "mine.train-index.csv.gz", "wt") as handle:
        handle.write("formula,spacegroup\nClNa,225\nSrTiO3,221\n")
    out = tmp_path / "scores.json"
    assert main(["--structures", str(rocksalt_cif.parent), "--json", str(out), "--model",
                 str(tmp_path / "mine.safetensors"), "--samples", "1", "--baselines", "flat"]) == 0
    scores = json.loads(out.read_text())
    assert scores["per_structure"][0]["seen"] == {"mine": True}
    assert scores["per_system"]["cubic"]["unseen"] == {"n": 0}
    assert scores["train_index"]["mine"] == "present"
