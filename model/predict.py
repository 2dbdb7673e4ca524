"""The inference API: a measured or simulated pattern + composition + indexed cell → CMED grids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Lattice

from model.density import Density
from model.errors import InputError
from model.nets import predict_grids
from model.nets.inputs import (
    composition_vector,
    q_grid_input,
    seed_grid_input,
    system_code,
)
from model.pattern import Pattern
from model.weights import BUNDLED, load_weights


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def network_inputs(kind: str, pattern: Pattern, composition: np.ndarray, fractions_known: bool,
                   lattice: tuple[float, ...], crystal_system: str) -> dict[str, torch.Tensor]:
    """One crystal's inputs (batch of 1) for a network kind, from a Pattern with a wavelength."""
    q = pattern.q
    comp = torch.as_tensor(composition, dtype=torch.float32)[None]
    if kind == "seed":
        return {"pattern": seed_grid_input(q, pattern.intensity)[None], "composition": comp}
    return {"pattern_q": q_grid_input(q, pattern.intensity)[None], "composition": comp,
            "composition_known": torch.tensor([float(fractions_known)]),
            "lattice": torch.tensor([lattice], dtype=torch.float32),
            "system": torch.tensor([system_code(crystal_system)])}


@dataclass
class Predictor:
    """A loaded network: ``Predictor.load()`` for the bundled default ("ours")."""

    net: torch.nn.Module
    card: dict
    torch_device: torch.device

    @classmethod
    def load(cls, path: str | Path | None = None, device: str | None = None) -> Predictor:
        """Weights file (``.safetensors`` with its ``.card.json``); None → bundled "ours"."""
        torch_device = torch.device(device) if device else default_device()
        net, card = load_weights(path or BUNDLED / "ours.safetensors", torch_device)
        return cls(net, card, torch_device)

    @property
    def version(self) -> str:
        return f"{self.card['kind']}-{self.card['sha256'][:12]}"

    @property
    def device(self) -> str:
        return device_name(self.torch_device)

    def predict(self, pattern: Pattern, composition: dict[str, float],
                lattice: tuple[float, float, float, float, float, float], crystal_system: str,
                samples: int = 1, n: int = 32, seed: int | None = None,
                fractions_known: bool = True) -> list[Density]:
        """``samples`` latent draws of the CMED (e/Å³) on an n³ grid of the given cell.

        composition: element → fraction or count; with fractions_known=False only the element set
        is used. lattice: a, b, c (Å), α, β, γ (degrees) of the conventional cell.
        """
        source = pattern.provenance.path or None
        if len(lattice) != 6 or not all(np.isfinite(lattice)) or min(lattice[:3]) <= 0:
            raise InputError(source, f"lattice {lattice!r} is not six finite numbers a, b, c > 0, α, β, γ")
        try:
            matrix = Lattice.from_parameters(*lattice).matrix
        except ValueError as exc:
            raise InputError(source, f"lattice {lattice!r} is not a cell ({exc})") from None
        if not (4 <= n <= 256) or samples < 1:
            raise InputError(source, f"grid {n} must be 4–256 and samples ≥ 1")
        comp = composition_vector(composition, source)
        if not fractions_known:
            comp = (comp > 0).astype(np.float32) / np.count_nonzero(comp)
        inputs = network_inputs(self.card["kind"], pattern, comp, fractions_known, tuple(lattice),
                                crystal_system)
        inputs = {k: v.to(self.torch_device).expand(samples, *v.shape[1:]) for k, v in inputs.items()}
        with torch.random.fork_rng(devices=[self.torch_device] if self.torch_device.type == "cuda" else []):
            if seed is not None:
                torch.manual_seed(seed)
            grids = predict_grids(self.net, inputs, n, sample=True).float().cpu().numpy()
        return [Density(g, matrix, kind="network") for g in grids]
