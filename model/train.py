"""Train a density network: ``python -m model.train --data DIR --model {phasing,ours,seed} --out RUN``.

``phasing`` (model.nets.phasing) trains on the packed reflection families of DIR
(model.data.pack; DIR may also be the packed ``.pt`` file alone): each step draws crystals, makes
what a powder pattern would tell of them on the training device (model.nets.phasing.simulate_observation)
and scores the predicted phases against the truth at the best allowed origin and hand, weighted by
m·|E|². Validation: the same score weighted by m·|F|² on fixed simulated validation crystals,
which is the map correlation of the predicted phases with true amplitudes at the data's
resolution. Run for ``--minutes`` (checkpoint every ``--checkpoint-minutes``, ``--resume``).

DIR is a data set built by ``python -m model.data build`` (shards of CMEDs and reflections);
patterns are made on the fly from the reflections (``model.nets.synth``). Each step queries
``--points`` random voxels per crystal. Loss: L1 + L2 between predicted and true density (both in
the network's ``density_scale`` units) plus the seed's KL term; for "ours" the
loss is the minimum over the equivalent descriptions of the truth (origin shifts, inversion,
holohedry), for "seed" the truth as stored, as in the paper. Adam with cosine warm restarts.
RUN gets ``checkpoint.pt`` every few minutes (``--resume`` continues from it), ``log.jsonl``,
``best.safetensors`` + card whenever the validation score improves, and
``best.train-index.csv.gz``: the (formula, space group) of every training structure.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from model.data.dataset import CMEDDataset, collate
from model.data.pack import load_pack
from model.files import atomic_write
from model.metrics import CRYSTAL_SYSTEMS, best_equivalent_ssim, equivalent_index_maps
from model.nets import build, predict_grids
from model.nets.phasing import (
    E2_CAP,
    choice_table,
    phase_agreement,
    simulate_observation,
)
from model.nets.synth import ours_patterns, seed_patterns
from model.weights import save_weights, train_index_path

GRID = 32


def partial_composition(composition: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Compositions as a user may know them: fractions (half the rows) or the element set only,
    and in 30 % of multi-element rows one element dropped. → (fractions (B, 119), known flag (B,))."""
    out, known = composition.clone(), torch.ones(composition.shape[0])
    for i, row in enumerate(out):
        present = torch.nonzero(row > 0).flatten()
        if present.numel() > 1 and rng.random() < 0.3:
            row[present[rng.integers(present.numel())]] = 0
        if rng.random() < 0.5:
            row.copy_((row > 0).float())
            known[i] = 0
        row /= row.sum()
    return out, known


def training_inputs(kind: str, batch: dict[str, torch.Tensor], rng: np.random.Generator,
                    augment: bool, realistic: float) -> dict[str, torch.Tensor]:
    composition = batch["composition"].float()
    if kind == "seed":
        generator = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
        return {"pattern": seed_patterns(batch, augment, generator), "composition": composition}
    lattice = batch["lattice"].float()
    known = torch.ones(composition.shape[0])
    if augment:  # indexing error and partly known chemistry, as at solve time
        lattice = torch.cat([lattice[:, :3] * (1 + 0.003 * torch.from_numpy(
            rng.standard_normal((lattice.shape[0], 3))).float()), lattice[:, 3:]], 1)
        composition, known = partial_composition(composition, rng)
    return {"pattern_q": ours_patterns(batch, realistic, rng), "composition": composition,
            "composition_known": known, "lattice": lattice, "system": batch["crystal_system"].long()}


def density_loss(pred: torch.Tensor, truth: torch.Tensor, systems: torch.Tensor, voxels: torch.Tensor,
                 invariant: bool) -> torch.Tensor:
    """(B,) L1 + L2 of pred (B, P) against truth (B, n³) at voxels (B, P); with invariant, the
    minimum over the truth's equivalent descriptions (metrics.equivalent_index_maps)."""
    losses = torch.empty(pred.shape[0], device=pred.device)
    for code in systems.unique().tolist():
        rows = torch.nonzero(systems == code).flatten()
        if invariant:
            maps = equivalent_index_maps(CRYSTAL_SYSTEMS[code], round(truth.shape[1] ** (1 / 3))).to(pred.device)
        else:
            maps = torch.arange(truth.shape[1], device=pred.device)[None]
        idx = maps[:, voxels[rows]].permute(1, 0, 2)  # (b, E, P)
        target = torch.take_along_dim(truth[rows][:, None, :], idx, dim=2)
        diff = pred[rows][:, None, :] - target
        losses[rows] = (diff.abs().mean(-1) + (diff ** 2).mean(-1)).amin(1)
    return losses


def choose_device(name: str | None) -> torch.device:
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def validate(kind: str, net: torch.nn.Module, batches: list[tuple[dict, dict]], device) -> float:
    """Mean best-equivalent SSIM (25³) of the mean prediction on fixed validation inputs."""
    scores = []
    for batch, inputs in batches:
        grids = predict_grids(net, {k: v.to(device) for k, v in inputs.items()}, GRID, sample=False)
        for grid, truth, code in zip(grids.float().cpu(), batch["cmed"].float(), batch["crystal_system"]):
            scores.append(best_equivalent_ssim(grid.numpy(), truth.reshape(GRID, GRID, GRID).numpy(),
                                               CRYSTAL_SYSTEMS[int(code)])[0])
    net.train()
    return float(np.mean(scores))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, type=Path, help="data set folder (manifest.csv, shards/)")
    p.add_argument("--model", choices=("phasing", "ours", "seed"), default="ours")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--config", type=json.loads, default={},
                   help='network config as JSON, e.g. \'{"width": 128}\' (default: full size)')
    p.add_argument("--device", help="cuda, cuda:1 or cpu (default: CUDA when present)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--minutes", type=float, default=None, help="stop after this much training time")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--points", type=int, default=1000, help="query voxels per crystal per step")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--restart-epochs", type=int, default=10, help="cosine warm-restart period")
    p.add_argument("--warmup", type=int, default=300, help="phasing: steps of linear learning-rate warm-up")
    p.add_argument("--kl-weight", type=float, default=0.05)
    p.add_argument("--realistic", type=float, default=0.75,
                   help="fraction of 'ours' training patterns with random lab conditions")
    p.add_argument("--val", type=int, default=32, help="validation crystals")
    p.add_argument("--val-every", type=int, default=200, help="steps between validations")
    p.add_argument("--checkpoint-minutes", type=float, default=5.0)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (the machine is shared)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from RUN/checkpoint.pt")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = choose_device(args.device)
    if args.model == "phasing":
        return run_phasing(args, load_pack(args.data, build("phasing", args.config).config["tokens"]), device)
    train_set, val_set = CMEDDataset(args.data, "train"), CMEDDataset(args.data, "val")
    return run(args, train_set, val_set, device, rng)


def write_train_index(path: Path, pairs) -> int:
    """(formula, space group) of the training structures, sorted and unique, as CSV.gz; → count."""
    rows = sorted({(str(formula), int(sg)) for formula, sg in pairs})
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["formula", "spacegroup"])
    writer.writerows(rows)
    with atomic_write(path, "wb") as handle:
        handle.write(gzip.compress(text.getvalue().encode(), mtime=0))
    return len(rows)


PACK_KEYS = ("hkl", "mult", "f", "centric", "lattice", "spacegroup")


def phasing_batch(split: dict, index: torch.Tensor, tokens: int, device) -> dict[str, torch.Tensor]:
    out = {k: split[k][index].to(device) for k in PACK_KEYS}
    for k in ("hkl", "mult", "f", "centric"):
        out[k] = out[k][:, :tokens]
    out["mult"], out["f"] = out["mult"].float(), out["f"].float()
    return out


def _phasing_step(net, batch: dict, generator: torch.Generator, realistic: bool, choices, mask,
                  weight_kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-crystal agreement (B,), valid mask) for a batch; weights m·|E|² ("e") or m·|F|² ("f").
    ``net`` None scores the reference of every phase 0 (a centrosymmetric guess with heavy
    atoms at the origin, which the network must beat)."""
    obs = simulate_observation(batch["hkl"], batch["mult"], batch["f"], batch["centric"], batch["lattice"],
                               generator, realistic)
    # the families beyond the last observed one of any crystal cost time and change nothing
    length = int(torch.nonzero(obs["valid"].any(0)).max()) + 1 if bool(obs["valid"].any()) else 1
    batch = {k: v[:, :length] if v.ndim > 1 and k != "lattice" else v for k, v in batch.items()}
    obs = {k: v[:, :length] for k, v in obs.items()}
    if net is None:
        u = torch.zeros_like(batch["f"])
        u[..., 0] = 1
    else:
        u = net(batch["hkl"], obs["features"], batch["spacegroup"], obs["valid"])
    if weight_kind == "e":
        weight = batch["mult"] * obs["e2_true"].clamp(max=E2_CAP)
    else:
        weight = batch["mult"] * (batch["f"] ** 2).sum(-1) * obs["valid"]
    sg = batch["spacegroup"].long()
    return phase_agreement(u, batch["f"], batch["hkl"], weight, choices[sg], mask[sg]), obs["valid"]


def run_phasing(args, pack: dict, device: torch.device) -> int:
    """The training loop of the phasing network on packed data; returns 0."""
    args.out.mkdir(parents=True, exist_ok=True)
    net = build("phasing", args.config).to(device)
    tokens = net.config["tokens"]
    train, val = pack["train"], pack["val"]
    if len(train["formula"]) == 0:
        raise SystemExit(f"error: {args.data}: no training crystals")
    index_path = train_index_path(args.out / "best.safetensors")
    indexed = write_train_index(index_path, zip(train["formula"], train["spacegroup"].tolist()))
    choices, mask = choice_table(train["spacegroup"].tolist() + val["spacegroup"].tolist(), device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.01)
    state = {"step": 0, "seconds": 0.0, "best_cc": -1.0, "samples": 0}
    checkpoint = args.out / "checkpoint.pt"
    if args.resume and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location=device, weights_only=True)
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state = saved["state"]
    n_val = min(args.val, len(val["formula"]))
    val_batches = [phasing_batch(val, torch.arange(i, min(i + args.batch, n_val)), tokens, device)
                   for i in range(0, n_val, args.batch)]
    warmup = max(args.warmup, 1)
    generator = torch.Generator(device).manual_seed(args.seed * 1_000_003 + state["step"])
    last_checkpoint = time.monotonic()
    started = time.monotonic() - state["seconds"]
    net.train()
    with open(args.out / "log.jsonl", "a", encoding="utf-8") as log:
        while state["step"] < args.epochs * max(1, len(train["formula"]) // args.batch):
            for group in optimizer.param_groups:
                group["lr"] = args.lr * min(1.0, (state["step"] + 1) / warmup)
            index = torch.randint(len(train["formula"]), (args.batch,), generator=generator, device=device).cpu()
            batch = phasing_batch(train, index, tokens, device)
            realistic = bool(torch.rand(1, generator=generator, device=device) < args.realistic)
            agreement, _ = _phasing_step(net, batch, generator, realistic, choices, mask, "e")
            loss = (1 - agreement).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            state["step"] += 1
            state["samples"] += args.batch
            state["seconds"] = time.monotonic() - started
            record = {"step": state["step"], "loss": loss.item(), "samples": state["samples"],
                      "seconds": state["seconds"], "lr": optimizer.param_groups[0]["lr"]}
            if val_batches and state["step"] == 1:
                record["val_cc_zero_phases"] = validate_phasing(None, val_batches, choices, mask, device)
            if val_batches and (state["step"] % args.val_every == 0 or state["step"] == 1):
                record["val_cc"] = validate_phasing(net, val_batches, choices, mask, device)
                if record["val_cc"] > state["best_cc"]:
                    state["best_cc"] = record["val_cc"]
                    save_weights(args.out / "best.safetensors", net, {
                        "data": str(args.data), "step": state["step"], "samples_seen": state["samples"],
                        "val_phase_cc": record["val_cc"], "train_seconds": state["seconds"],
                        "device": str(device), "threads": torch.get_num_threads(),
                        "train_index": index_path.name, "train_structures": indexed})
                reference = (f" (every phase 0: {record['val_cc_zero_phases']:.4f})"
                             if "val_cc_zero_phases" in record else "")
                print(f"step {state['step']}: loss {loss.item():.4f} val cc {record['val_cc']:.4f}{reference} "
                      f"(best {state['best_cc']:.4f}) {state['samples'] / max(state['seconds'], 1e-9):.1f} "
                      "samples/s", file=sys.stderr, flush=True)
            out_of_time, last_checkpoint = _record_step(log, record, args, checkpoint, net, optimizer, None, state,
                                                        last_checkpoint)
            if out_of_time:
                break
    _save_checkpoint(checkpoint, net, optimizer, None, state)
    return 0


@torch.no_grad()
def validate_phasing(net, batches: list[dict], choices, mask, device) -> float:
    """Mean map correlation (predicted phases, true amplitudes, best allowed origin) on fixed
    validation crystals with fixed simulated realistic observations."""
    if net is not None:
        net.eval()
    generator = torch.Generator(device).manual_seed(12345)
    scores = [_phasing_step(net, batch, generator, True, choices, mask, "f")[0] for batch in batches]
    if net is not None:
        net.train()
    return float(torch.cat(scores).mean())


def run(args, train_set, val_set, device: torch.device, rng: np.random.Generator) -> int:
    """The training loop over given datasets; returns 0. Separate from main() for tests."""
    args.out.mkdir(parents=True, exist_ok=True)
    if hasattr(train_set, "rows"):  # a built data set (tests pass plain lists of samples)
        write_train_index(train_index_path(args.out / "best.safetensors"),
                          ((r["formula"], r["spacegroup"]) for r in train_set.rows))
    net = build(args.model, args.config).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    steps_per_epoch = max(1, len(train_set) // args.batch)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=args.restart_epochs * steps_per_epoch, eta_min=args.lr * 0.01)
    state = {"step": 0, "epoch": 0, "seconds": 0.0, "best_ssim": -1.0}
    checkpoint = args.out / "checkpoint.pt"
    if args.resume and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location=device, weights_only=True)
        net.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = saved["state"]
        rng = np.random.default_rng([args.seed, state["step"]])
    loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch, shuffle=True, drop_last=True,
                                         collate_fn=collate, num_workers=args.workers)
    val_rng = np.random.default_rng(12345)
    val_batches = []
    for start in range(0, min(args.val, len(val_set)), args.batch):
        batch = collate([val_set[i] for i in range(start, min(start + args.batch, args.val, len(val_set)))])
        val_batches.append((batch, training_inputs(args.model, batch, val_rng, augment=False,
                                                   realistic=args.realistic)))
    amp = device.type == "cuda"
    last_checkpoint = time.monotonic()
    started = time.monotonic() - state["seconds"]
    with open(args.out / "log.jsonl", "a", encoding="utf-8") as log:
        net.train()
        out_of_time = False
        for epoch in range(state["epoch"], args.epochs):
            bar = tqdm(loader, desc=f"epoch {epoch + 1}/{args.epochs}", file=sys.stderr, leave=False)
            for batch in bar:
                inputs = {k: v.to(device) for k, v in training_inputs(args.model, batch, rng, True,
                                                                       args.realistic).items()}
                b = batch["cmed"].shape[0]
                voxels = torch.randint(0, GRID ** 3, (b, args.points), device=device)
                points = torch.stack(torch.unravel_index(voxels, (GRID,) * 3), -1).float() / GRID
                truth = batch["cmed"].to(device).float().reshape(b, -1)
                truth = truth / net.density_scale(inputs)[:, None]
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    cond, kl = net.encode(inputs, sample=True)
                    pred = net.decode(cond, inputs, points).float()
                recon = density_loss(pred, truth, inputs.get("system", batch["crystal_system"]).to(device),
                                     voxels, invariant=args.model == "ours").mean()
                loss = recon + args.kl_weight * kl.float()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
                optimizer.step()
                scheduler.step()
                state["step"] += 1
                bar.set_postfix(loss=f"{recon.item():.4f}", kl=f"{kl.item():.3f}")
                record = {"step": state["step"], "epoch": epoch, "loss": recon.item(), "kl": kl.item(),
                          "lr": scheduler.get_last_lr()[0], "seconds": time.monotonic() - started}
                if state["step"] % args.val_every == 0 and val_batches:
                    record["val_ssim"] = validate(args.model, net, val_batches, device)
                    if record["val_ssim"] > state["best_ssim"]:
                        state["best_ssim"] = record["val_ssim"]
                        save_weights(args.out / "best.safetensors", net, {
                            "data": str(args.data), "step": state["step"], "epoch": epoch,
                            "val_ssim_mean": record["val_ssim"], "train_seconds": record["seconds"],
                            "device": str(device)})
                    tqdm.write(f"step {state['step']}: val SSIM {record['val_ssim']:.4f} "
                               f"(best {state['best_ssim']:.4f})", file=sys.stderr)
                state["seconds"] = record["seconds"]
                out_of_time, last_checkpoint = _record_step(log, record, args, checkpoint, net, optimizer, scheduler,
                                                            state, last_checkpoint)
                if out_of_time:
                    break
            if out_of_time:
                break
            state["epoch"] = epoch + 1
            _save_checkpoint(checkpoint, net, optimizer, scheduler, state)
    return 0


def _record_step(log, record: dict, args, checkpoint: Path, net, optimizer, scheduler, state: dict,
                 last_checkpoint: float) -> tuple[bool, float]:
    """Log a step; checkpoint when one is due or the time is up. → (out of time, last checkpoint time)."""
    log.write(json.dumps(record) + "\n")
    log.flush()
    out_of_time = args.minutes is not None and state["seconds"] > 60 * args.minutes
    if out_of_time or time.monotonic() - last_checkpoint > 60 * args.checkpoint_minutes:
        _save_checkpoint(checkpoint, net, optimizer, scheduler, state)
        last_checkpoint = time.monotonic()
    return out_of_time, last_checkpoint


def _save_checkpoint(path: Path, net, optimizer, scheduler, state: dict) -> None:
    saved = {"model": net.state_dict(), "optimizer": optimizer.state_dict(), "state": state}
    if scheduler is not None:
        saved["scheduler"] = scheduler.state_dict()
    with atomic_write(path, "wb") as handle:
        torch.save(saved, handle)


if __name__ == "__main__":
    sys.exit(main())
