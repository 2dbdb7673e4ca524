"""The inference API: a measured or simulated pattern + composition + indexed cell → CMED grids.

The ``phasing`` kind also needs the space group: it extracts the intensities of the cell's
reflection families from the pattern (overlapping lines share their cluster's intensity), predicts
their phases and returns the Fourier synthesis at the data's resolution (``phased_density``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Element, Lattice

from model import extraction
from model.density import Density
from model.errors import InputError
from model.nets import predict_grids, reciprocal
from model.nets.inputs import (
    N_ELEMENTS,
    composition_vector,
    q_grid_input,
    seed_grid_input,
    system_code,
)
from model.nets.phasing import token_features
from model.pattern import Pattern
from model.preprocess import background, find_peaks
from model.scattering import form_factor_coeffs, form_factors_torch
from model.weights import BUNDLED, load_weights

# The absolute scale of a phased map assumes this volume per atom (Å³; inorganic solids: 10–25):
# the pattern alone does not tell how many atoms the cell holds.
VOLUME_PER_ATOM_A3 = 16.0


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
                fractions_known: bool = True, space_group: int | None = None) -> list[Density]:
        """``samples`` latent draws of the CMED (e/Å³) on an n³ grid of the given cell.

        composition: element → fraction or count; with fractions_known=False only the element set
        is used. lattice: a, b, c (Å), α, β, γ (degrees) of the conventional cell. space_group:
        the number the extinctions allow, in its standard setting (needed by the ``phasing`` kind,
        which is deterministic: its ``samples`` maps are one map).
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
        if self.card["kind"] == "phasing":
            if space_group is None or not 1 <= int(space_group) <= 230:
                raise InputError(source, f"the phasing network needs a space group 1–230, got {space_group!r}")
            grid = phased_density(self.net, pattern, tuple(lattice), int(space_group), comp, n, self.torch_device)
            return [Density(grid, matrix) for _ in range(samples)]
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


def extracted_families(pattern: Pattern, lattice: tuple[float, ...], space_group: int, limit: int
                       ) -> dict[str, np.ndarray]:
    """The cell's reflection families (model.nets.reciprocal.families, first ``limit`` by angle)
    inside the measured range, with the pattern's intensity per member: each overlap cluster's
    background-subtracted integrated intensity (model.extraction.clusters, constant peak width from the
    fitted peaks) shared out over its families by multiplicity × Lorentz-polarisation."""
    background_counts = background(pattern)
    signal = pattern.intensity - background_counts
    peaks = find_peaks(pattern, background_counts=background_counts)
    fwhm = float(np.median([p.fwhm for p in peaks])) if peaks else 5 * pattern.step
    cell = Lattice.from_parameters(*lattice)
    clusters = extraction.clusters(pattern, signal, cell, space_group, 0.0, [0.0, fwhm])
    if len(clusters.hkl) == 0:
        raise InputError(pattern.provenance.path or None, "no reflection of this cell lies in the measured range")
    share = np.bincount(clusters.group, weights=clusters.weight, minlength=len(clusters.observed))
    per_member = clusters.observed[clusters.group] / np.maximum(share[clusters.group], 1e-12)
    found = {tuple(h): (i, g) for h, i, g in zip(clusters.hkl.astype(int).tolist(), per_member, clusters.group)}
    hkl, mult, d = reciprocal.families(cell.matrix, space_group, float(clusters.d.min()) - 1e-6, None)
    inside = np.array([tuple(h) in found for h in hkl.tolist()], dtype=bool)
    hkl, mult, d = hkl[inside][:limit], mult[inside][:limit], d[inside][:limit]
    intensity = np.array([max(found[tuple(h)][0], 0.0) for h in hkl.tolist()])
    _, cluster = np.unique([found[tuple(h)][1] for h in hkl.tolist()], return_inverse=True)
    return {"hkl": hkl, "mult": mult, "d": d, "intensity": intensity, "cluster": cluster,
            "centric": reciprocal.centric(hkl, space_group)}


@torch.no_grad()
def predicted_phases(net: torch.nn.Module, families: dict[str, np.ndarray], space_group: int,
                     device: torch.device) -> np.ndarray:
    """(R,) unit complex numbers: the network's phase of each extracted family."""
    def tensor(key, dtype):
        return torch.as_tensor(np.asarray(families[key]), dtype=dtype, device=device)[None]

    valid = torch.ones(1, len(families["hkl"]), dtype=torch.bool, device=device)
    mult = tensor("mult", torch.float32)
    features = token_features(tensor("d", torch.float32), mult, tensor("centric", torch.bool),
                              tensor("intensity", torch.float32), tensor("cluster", torch.long), valid)
    net.eval()
    u = net(tensor("hkl", torch.long), features, torch.tensor([space_group], device=device), valid)[0].cpu().numpy()
    return u[:, 0] + 1j * u[:, 1]


def phased_density(net: torch.nn.Module, pattern: Pattern, lattice: tuple[float, ...], space_group: int,
                   composition: np.ndarray, n: int, device: torch.device) -> np.ndarray:
    """(n, n, n) e/Å³: Fourier synthesis of the extracted amplitudes with the network's phases.

    Absolute scale (Wilson): the amplitudes are scaled so that Σ m|F|² matches N Σ f² of the
    composition with N = V / VOLUME_PER_ATOM_A3 atoms, and F(000) = N Z̄.
    """
    families = extracted_families(pattern, lattice, space_group, net.config["tokens"])
    phases = predicted_phases(net, families, space_group, device)
    volume = Lattice.from_parameters(*lattice).volume
    atoms = volume / VOLUME_PER_ATOM_A3
    present = np.nonzero(composition)[0]
    coeffs = torch.from_numpy(form_factor_coeffs([Element.from_Z(int(z)).symbol for z in present]))
    f = form_factors_torch(torch.from_numpy(families["d"].astype(float)), coeffs).numpy()  # (R, E)
    mean_f2 = (f ** 2) @ composition[present]
    mult, intensity = families["mult"], families["intensity"]
    scale = np.sqrt(atoms * np.sum(mult * mean_f2) / max(float(np.sum(mult * intensity)), 1e-12))
    amplitude = scale * np.sqrt(intensity)
    f000 = atoms * float(composition @ np.arange(N_ELEMENTS))
    return reciprocal.synthesis(families["hkl"], amplitude * phases, space_group, (n, n, n), volume, f000)
