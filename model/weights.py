"""Network weights on disk: safetensors (no code execution on load) + a JSON model card.

``NAME.safetensors`` holds the tensors; ``NAME.card.json`` says what they are: network kind and
config, the sha256 of the weights file, the data and training budget, and measured metrics.
Loading checks the card, the hash and the tensor names and shapes before any weight is used, so a
corrupt, truncated or foreign file is refused with an InputError.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from model.errors import InputError
from model.files import atomic_write
from model.nets import NETWORKS, build

BUNDLED = Path(__file__).resolve().parents[1] / "resources" / "weights"
CARD_SUFFIX = ".card.json"
TRAIN_INDEX_SUFFIX = ".train-index.csv.gz"


def card_path(weights_path: str | Path) -> Path:
    path = Path(weights_path)
    return path.with_name(path.name.removesuffix(".safetensors") + CARD_SUFFIX)


def train_index_path(weights_path: str | Path) -> Path:
    """Where the (formula, space group) of the training structures of these weights are listed."""
    path = Path(weights_path)
    return path.with_name(path.name.removesuffix(".safetensors") + TRAIN_INDEX_SUFFIX)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_weights(path: str | Path, net: torch.nn.Module, card: dict) -> dict:
    """Write the weights and their card (kind, config and sha256 filled in); returns the card."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_write(path, "wb") as handle:
        handle.write(save(state))
    card = {**card, "kind": net.kind, "config": net.config, "sha256": sha256_of(path),
            "weights": path.name}
    with atomic_write(card_path(path), "w", encoding="utf-8") as handle:
        json.dump(card, handle, indent=2)
    return card


def read_card(weights_path: str | Path) -> dict:
    path = card_path(weights_path)
    if not path.is_file():
        raise InputError(weights_path, f"no model card {path.name} beside the weights")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"model card is not valid JSON ({exc})") from None
    if not isinstance(card, dict) or not {"kind", "config", "sha256"} <= card.keys():
        raise InputError(path, "model card lacks kind, config or sha256")
    if card["kind"] not in NETWORKS:
        raise InputError(path, f"model card names an unknown network {card['kind']!r}")
    return card


def load_weights(weights_path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """(network in eval mode on device, card) after checking card, sha256, names and shapes."""
    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise InputError(weights_path, "no such weights file")
    card = read_card(weights_path)
    if sha256_of(weights_path) != card["sha256"]:
        raise InputError(weights_path, "sha256 differs from the model card: the file is corrupt or "
                                       "not the one the card describes")
    try:
        net = build(card["kind"], card["config"])
    except (TypeError, ValueError) as exc:
        raise InputError(card_path(weights_path), f"model card config does not build a network ({exc})") from None
    try:
        state = load_file(weights_path)
    except (SafetensorError, OSError) as exc:
        raise InputError(weights_path, f"not a readable safetensors file ({exc})") from None
    expected = net.state_dict()
    if state.keys() != expected.keys() or any(state[k].shape != expected[k].shape for k in state):
        raise InputError(weights_path, f"tensors do not match a {card['kind']} network with this config")
    net.load_state_dict(state)
    return net.to(device).eval(), card


def bundle(source: str | Path, name: str, updates: dict, directory: Path = BUNDLED) -> Path:
    """Copy verified weights to DIRECTORY/NAME.safetensors with their card extended by ``updates``
    (measured metrics, notes) and their training index (NAME.train-index.csv.gz, when the run
    wrote one); the copy is verified again. Returns the new weights path."""
    _, card = load_weights(source)
    target = Path(directory) / f"{name}.safetensors"
    with atomic_write(target, "wb") as handle:
        handle.write(Path(source).read_bytes())
    index = train_index_path(source)
    if index.is_file():
        with atomic_write(train_index_path(target), "wb") as handle:
            handle.write(index.read_bytes())
        updates = {**updates, "train_index": train_index_path(target).name}
    with atomic_write(card_path(target), "w", encoding="utf-8") as handle:
        json.dump({**card, **updates, "weights": target.name}, handle, indent=2)
    load_weights(target)
    return target


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m model.weights",
                                description="Bundle trained weights with their measured metrics.")
    p.add_argument("source", type=Path, help="trained .safetensors (with its .card.json)")
    p.add_argument("--name", required=True, choices=sorted(NETWORKS), help="bundled name")
    p.add_argument("--eval", type=Path, action="append", default=[],
                   help="model.evaluate JSON output(s) to record in the card")
    p.add_argument("--note", default="", help="what these weights are, in words")
    args = p.parse_args(argv)
    metrics = {}
    for path in args.eval:
        result = json.loads(path.read_text(encoding="utf-8"))
        metrics[result["setting"]] = result["per_system"]
    target = bundle(args.source, args.name, {"metrics": metrics, "note": args.note})
    print(target, sha256_of(target))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
