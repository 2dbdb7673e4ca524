import json
import pickle

import numpy as np
import pytest
import torch
from network_samples import structure

from model.errors import InputError
from model.nets import build, reciprocal
from model.pattern import ANODES
from model.predict import VOLUME_PER_ATOM_A3, Predictor, extracted_families
from model.simulate import random_lab_params, simulate_pattern
from model.weights import BUNDLED, card_path, load_weights, save_weights

SMALL = {"width": 32, "latent": 32, "conv_blocks": 2, "h_max": 2}


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    net = build("ours", SMALL)
    path = tmp_path / "w.safetensors"
    save_weights(path, net, {"data": "none", "note": "untrained, for tests"})
    return path


@pytest.fixture(scope="module")
def pattern():
    s = structure(2)  # BaTiO3, tetragonal
    rng = np.random.default_rng(0)
    instrument, sample = random_lab_params(rng, ANODES["CuKa"])
    return s, simulate_pattern(s, instrument, np.arange(5, 120, 0.02), sample, rng)


def test_round_trip_gives_identical_tensors(weights):
    net, card = load_weights(weights)
    assert card["kind"] == "ours" and SMALL.items() <= card["config"].items() and len(card["sha256"]) == 64
    torch.manual_seed(0)
    original = build("ours", SMALL).state_dict()
    for key, value in net.state_dict().items():
        torch.testing.assert_close(value, original[key])


def test_changed_byte_is_refused(weights):
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(InputError, match="sha256"):
        load_weights(weights)


def test_foreign_pickle_is_refused_without_running_it(weights, tmp_path):
    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    weights.write_bytes(pickle.dumps(Evil()))
    card = json.loads(card_path(weights).read_text())
    card["sha256"] = __import__("hashlib").sha256(weights.read_bytes()).hexdigest()  # even if the card agrees
    card_path(weights).write_text(json.dumps(card))
    with pytest.raises(InputError, match="safetensors"):
        load_weights(weights)
    assert not marker.exists()


@pytest.mark.parametrize("card_text", ["not json", json.dumps({"kind": "ours"}),
                                       json.dumps({"kind": "transformer", "config": {}, "sha256": "0"})])
def test_bad_card_is_refused(weights, card_text):
    card_path(weights).write_text(card_text)
    with pytest.raises(InputError):
        load_weights(weights)


def test_missing_card_and_missing_file(weights, tmp_path):
    card_path(weights).unlink()
    with pytest.raises(InputError, match="card"):
        load_weights(weights)
    with pytest.raises(InputError, match="no such"):
        load_weights(tmp_path / "absent.safetensors")


def test_predict_on_cpu(weights, pattern):
    s, measured = pattern
    predictor = Predictor.load(weights, device="cpu")
    assert predictor.device == "cpu" and predictor.version.startswith("ours-")
    grids = predictor.predict(measured, {"Ba": 1, "Ti": 1, "O": 3}, s.lattice.parameters, "tetragonal",
                              samples=2, n=16, seed=1)
    assert len(grids) == 2 and grids[0].values.shape == (16, 16, 16)
    assert np.all(np.isfinite(grids[0].values)) and np.allclose(grids[0].lattice, s.lattice.matrix, atol=1e-6)
    assert not np.allclose(grids[0].values, grids[1].values)  # two latent draws
    again = predictor.predict(measured, {"Ba": 1, "Ti": 1, "O": 3}, s.lattice.parameters, "tetragonal",
                              samples=2, n=16, seed=1)
    np.testing.assert_array_equal(grids[1].values, again[1].values)


@pytest.mark.parametrize("composition, lattice, system", [
    ({"Xx": 1}, (4, 4, 4, 90, 90, 90), "cubic"),
    ({"Ba": 0}, (4, 4, 4, 90, 90, 90), "cubic"),
    ({"Ba": 1}, (4, 4, -4, 90, 90, 90), "cubic"),
    ({"Ba": 1}, (4, 4, 4, 90, 90, 90), "cubical"),
])
def test_bad_request_raises_input_error(weights, pattern, composition, lattice, system):
    _, measured = pattern
    with pytest.raises(InputError):
        Predictor.load(weights, device="cpu").predict(measured, composition, lattice, system, n=8)


@pytest.mark.parametrize("name", ["ours", "seed", "phasing"])
def test_bundled_weights_verify(name):
    path = BUNDLED / f"{name}.safetensors"
    if not path.is_file():
        pytest.skip(f"no bundled {name} weights in this checkout")
    _, card = load_weights(path)
    assert card["kind"] == name and "metrics" in card and "data" in card


def test_bundle_copies_and_records_metrics(weights, tmp_path):
    from model.weights import bundle, read_card

    target = bundle(weights, "ours", {"metrics": {"paper": {"cubic": {"ssim_mean": 0.5}}}}, tmp_path / "b")
    assert read_card(target)["metrics"]["paper"]["cubic"]["ssim_mean"] == 0.5
    assert Predictor.load(target, device="cpu").version == Predictor.load(weights, device="cpu").version


PHASING = {"width": 32, "layers": 2, "heads": 2, "tokens": 64, "cycles": 2, "grid": 16}


@pytest.fixture
def phasing_weights(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "phasing.safetensors"
    save_weights(path, build("phasing", PHASING), {"data": "none", "note": "untrained, for tests"})
    return path


def test_phasing_network_maps_the_pattern_in_its_cell(phasing_weights, pattern):
    s, measured = pattern
    predictor = Predictor.load(phasing_weights, device="cpu")
    grids = predictor.predict(measured, {"Ba": 1, "Ti": 1, "O": 3}, s.lattice.parameters, "tetragonal",
                              samples=2, n=16, space_group=123)
    assert len(grids) == 2 and grids[0].values.shape == (16, 16, 16) and np.all(np.isfinite(grids[0].values))
    # F(000) = N Z̄ electrons with N = V / VOLUME_PER_ATOM_A3: the mean density
    assert grids[0].values.mean() == pytest.approx(np.mean([56, 22, 8, 8, 8]) / VOLUME_PER_ATOM_A3, rel=1e-3)
    with pytest.raises(InputError, match="space group"):
        predictor.predict(measured, {"Ba": 1, "Ti": 1, "O": 3}, s.lattice.parameters, "tetragonal", n=16)


def test_extracted_families_with_true_phases_put_density_on_the_atoms(pattern):
    """The phasing path without the network: the pattern's extracted amplitudes with the true
    phases give the highest density at Ba and a peak at Ti."""
    s, measured = pattern
    families = extracted_families(measured, s.lattice.parameters, 123, 200)
    assert len(families["hkl"]) > 20 and np.all(families["intensity"] >= 0)
    assert families["cluster"].max() < len(families["hkl"])
    truth = reciprocal.structure_factors(s, families["hkl"], families["d"])
    rho = reciprocal.synthesis(families["hkl"], np.sqrt(families["intensity"]) * np.exp(1j * np.angle(truth)),
                               123, (20, 20, 20), s.volume, 0.0)
    ba = next(site.frac_coords for site in s if site.specie.symbol == "Ba")
    ti = next(site.frac_coords for site in s if site.specie.symbol == "Ti")
    at = [rho[tuple(np.round(x * 20).astype(int) % 20)] for x in (ba, ti)]
    assert at[0] == pytest.approx(rho.max(), rel=0.05) and at[1] > 0.3 * rho.max()


def test_bundle_copies_the_train_index(weights, tmp_path):
    from model.weights import bundle, read_card, train_index_path

    train_index_path(weights).write_bytes(b"index")
    target = bundle(weights, "ours", {}, tmp_path / "b")
    assert train_index_path(target).read_bytes() == b"index"
    assert read_card(target)["train_index"] == "ours.train-index.csv.gz"
