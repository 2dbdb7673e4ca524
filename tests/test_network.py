import csv
import gzip
import json
import math

import numpy as np
import pytest
import torch
from network_samples import PROTOTYPES, phasing_pack, sample

from model.data.dataset import collate
from model.data.pack import load_pack
from model.nets import build, predict_grids
from model.nets.inputs import Q_GRID, composition_vector
from model.nets.phasing import choice_table, phase_agreement, simulate_observation
from model.train import (
    density_loss,
    parse_args,
    partial_composition,
    phasing_batch,
    run,
    run_phasing,
    training_inputs,
)

SMALL = {"seed": {"width": 32, "conv_blocks": 2, "num_freq": 32},
         "ours": {"width": 32, "latent": 32, "conv_blocks": 2, "h_max": 2}}


@pytest.fixture(scope="module")
def batch():
    return collate([sample(i) for i in range(len(PROTOTYPES))])


@pytest.mark.parametrize("kind", ["seed", "ours"])
def test_shapes(batch, kind):
    torch.manual_seed(0)
    inputs = training_inputs(kind, batch, np.random.default_rng(0), augment=True, realistic=0.5)
    if kind == "ours":
        assert inputs["pattern_q"].shape == (4, 2, Q_GRID.numel())
        assert torch.all((inputs["pattern_q"] >= 0) & (inputs["pattern_q"] <= 1))
    else:
        assert inputs["pattern"].shape == (4, 1, 1024)
    net = build(kind, SMALL[kind])
    cond, kl = net.encode(inputs, sample=True)
    assert net.decode(cond, inputs, torch.rand(4, 50, 3)).shape == (4, 50)
    assert kl.ndim == 0 and torch.isfinite(kl)
    grids = predict_grids(net, inputs, 16, sample=False)
    assert grids.shape == (4, 16, 16, 16) and torch.all(torch.isfinite(grids))


def test_ours_output_is_periodic_in_the_cell(batch):
    inputs = training_inputs("ours", batch, np.random.default_rng(1), augment=False, realistic=0.0)
    net = build("ours", SMALL["ours"]).eval()
    points = torch.rand(4, 20, 3)
    with torch.no_grad():
        cond, _ = net.encode(inputs, sample=False)
        a, b = net.decode(cond, inputs, points), net.decode(cond, inputs, points + torch.tensor([1.0, -1.0, 2.0]))
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_invariant_loss_forgives_shift_and_inversion(batch):
    truth = batch["cmed"].float().reshape(4, -1)
    n = 32
    cube = truth.reshape(4, n, n, n)
    moved = torch.roll(torch.flip(cube, (1, 2, 3)), (1 + n // 2,) * 3, (1, 2, 3)).reshape(4, -1)
    voxels = torch.randint(0, n ** 3, (4, 300))
    pred = torch.take_along_dim(moved, voxels, 1)
    invariant = density_loss(pred, truth, batch["crystal_system"], voxels, invariant=True)
    plain = density_loss(pred, truth, batch["crystal_system"], voxels, invariant=False)
    assert torch.all(invariant < 1e-6)
    assert plain[0] > 1e-3  # NaCl shifted by half a cell swaps Na and Cl


def test_partial_composition_keeps_rows_normalised():
    comp = torch.tensor(np.stack([composition_vector({"Ba": 1, "Ti": 1, "O": 3})] * 200))
    out, known = partial_composition(comp, np.random.default_rng(0))
    torch.testing.assert_close(out.sum(1), torch.ones(200))
    assert torch.all((out > 0).sum(1) >= 2)
    assert 0.3 < known.mean() < 0.7
    assert torch.all(out[known == 0][out[known == 0] > 0] == out[known == 0].max(1).values.repeat_interleave(
        (out[known == 0] > 0).sum(1)))
    assert (comp > 0).sum() > (out > 0).sum()  # some elements were dropped


@pytest.mark.parametrize("kind", ["ours", "seed"])
def test_tiny_training_run_lowers_the_loss(tmp_path, kind):
    samples = [sample(i) for i in range(len(PROTOTYPES))]
    torch.manual_seed(0)
    args = parse_args(["--data", str(tmp_path), "--model", kind, "--out", str(tmp_path / "run"),
                       "--config", json.dumps(SMALL[kind]), "--batch", "4", "--epochs", "30",
                       "--points", "100", "--lr", "3e-3", "--val", "2", "--val-every", "30", "--realistic", "0.25"])
    run(args, samples, samples, torch.device("cpu"), np.random.default_rng(0))
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log]
    assert len(losses) == 30
    assert np.median(losses[-8:]) < 0.7 * np.median(losses[:8])
    assert any("val_ssim" in r for r in log)
    assert (tmp_path / "run" / "best.safetensors").is_file()
    assert (tmp_path / "run" / "checkpoint.pt").is_file()


def test_resume_continues_from_checkpoint(tmp_path):
    samples = [sample(i) for i in range(len(PROTOTYPES))]
    common = ["--data", str(tmp_path), "--model", "ours", "--out", str(tmp_path / "run"),
              "--config", json.dumps(SMALL["ours"]), "--batch", "4", "--points", "100", "--val", "0"]
    run(parse_args(common + ["--epochs", "3"]), samples, samples, torch.device("cpu"), np.random.default_rng(0))
    run(parse_args(common + ["--epochs", "5", "--resume"]), samples, samples, torch.device("cpu"),
        np.random.default_rng(0))
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]


PHASING = {"width": 32, "layers": 2, "heads": 2, "tokens": 48, "cycles": 2, "grid": 16}


@pytest.fixture(scope="module")
def phasing_split():
    return phasing_pack(PHASING["tokens"])


def _truth_batch(split):
    batch = phasing_batch(split, torch.arange(len(split["formula"])), PHASING["tokens"], "cpu")
    obs = simulate_observation(batch["hkl"], batch["mult"], batch["f"], batch["centric"], batch["lattice"],
                               torch.Generator().manual_seed(0), realistic=False)
    choices, mask = choice_table(batch["spacegroup"].tolist())
    sg = batch["spacegroup"].long()
    weight = batch["mult"] * (batch["f"] ** 2).sum(-1) * obs["valid"]
    return batch, obs, choices[sg], mask[sg], weight


def test_allowed_origins_and_hand_score_one_and_others_do_not(phasing_split):
    batch, _, choices, mask, weight = _truth_batch(phasing_split)
    phi = torch.atan2(batch["f"][..., 1], batch["f"][..., 0])
    for row in range(len(batch["hkl"])):
        k = int(mask[row].sum()) - 1  # the last allowed choice: an inverted, shifted description
        sign, shift = choices[row, k, 0], choices[row, k, 1:]
        moved = sign * phi[row] + 2 * math.pi * batch["hkl"][row].float() @ shift
        u = torch.stack([torch.cos(moved), torch.sin(moved)], -1)[None]
        score = phase_agreement(u, batch["f"][row:row + 1], batch["hkl"][row:row + 1], weight[row:row + 1],
                                choices[row:row + 1], mask[row:row + 1])
        assert float(score) == pytest.approx(1.0, abs=1e-4)
    # NaCl with its origin on Cl (a shift by ½ ½ ½ is allowed) but a quarter-cell shift is not
    shifted = phi[0] + 2 * math.pi * batch["hkl"][0].float() @ torch.tensor([0.25, 0.0, 0.0])
    u = torch.stack([torch.cos(shifted), torch.sin(shifted)], -1)[None]
    assert float(phase_agreement(u, batch["f"][:1], batch["hkl"][:1], weight[:1], choices[:1], mask[:1])) < 0.5


def test_physics_step_keeps_true_phases(phasing_split):
    batch, obs, choices, mask, weight = _truth_batch(phasing_split)
    net = build("phasing", PHASING)
    true = batch["f"] / batch["f"].norm(dim=-1, keepdim=True).clamp_min(1e-9)
    geometry = net._geometry(batch["hkl"].long(), batch["spacegroup"].long(), obs["valid"])
    recycled = net._physics(obs["features"][..., :1] * true, obs["valid"], *geometry)
    assert torch.all(phase_agreement(recycled[..., :2], batch["f"], batch["hkl"], weight, choices, mask) > 0.95)


def test_phasing_output_is_unit_phases_and_ignores_padding(phasing_split):
    batch, obs, *_ = _truth_batch(phasing_split)
    net = build("phasing", PHASING).eval()
    with torch.no_grad():
        u = net(batch["hkl"], obs["features"], batch["spacegroup"], obs["valid"])
        padded = {k: torch.cat([v, torch.zeros_like(v[:, :5])], 1) for k, v in
                  (("hkl", batch["hkl"]), ("features", obs["features"]), ("valid", obs["valid"]))}
        again = net(padded["hkl"], padded["features"], batch["spacegroup"], padded["valid"])
    torch.testing.assert_close(u.norm(dim=-1)[obs["valid"]], torch.ones(int(obs["valid"].sum())))
    torch.testing.assert_close(again[:, :-5][obs["valid"]], u[obs["valid"]], atol=1e-4, rtol=1e-4)


def test_tiny_phasing_run_lowers_the_loss_and_lists_its_training_structures(tmp_path, phasing_split):
    torch.manual_seed(0)
    data = tmp_path / "pack.pt"
    torch.save({"samples": 8, "train": phasing_split, "val": phasing_split,
                "test": phasing_pack(PHASING["tokens"])}, data)
    args = parse_args(["--data", str(data), "--model", "phasing", "--out", str(tmp_path / "run"),
                       "--config", json.dumps(PHASING), "--batch", "4", "--epochs", "120", "--lr", "1e-3", "--warmup", "0",
                       "--val", "4", "--val-every", "20", "--realistic", "0"])
    run_phasing(args, load_pack(data, PHASING["tokens"]), torch.device("cpu"))
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log]
    assert len(losses) == 120 and np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])
    assert "val_cc_zero_phases" in log[0] and (tmp_path / "run" / "best.safetensors").is_file()
    with gzip.open(tmp_path / "run" / "best.train-index.csv.gz", "rt") as handle:
        listed = sorted((r["formula"], int(r["spacegroup"])) for r in csv.DictReader(handle))
    assert listed == sorted(zip(phasing_split["formula"], phasing_split["spacegroup"].tolist()))
