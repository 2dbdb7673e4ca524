"""Network inputs made on the fly from stored reflections (training) — patterns never stored.

A batch (model.data.collate) holds per crystal: composition (119,), lattice (6,), crystal_system,
and padded reflections refl_d (Å), refl_f2 (|F|², e²), refl_mult, refl_hkl with refl_mask. The seed sees
its paper setting (Mo Kα sticks in 1024 bins over 2θ 0–180°, shift ±3 bins, noise 1e-3); ours
sees a profile at a random wavelength with random lab conditions, resampled on the Q grid.
"""

from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Lattice

from model.instrument import Instrument, q_to_two_theta
from model.nets.inputs import (
    Q_GRID,
    SEED_TWO_THETA,
    SEED_WAVELENGTH_A,
    normalise_measured,
)
from model.pattern import ANODES, Wavelength
from model.scattering import Reflections
from model.simulate import (
    Sample,
    march_dollase,
    params_torch,
    profile_torch,
    random_lab_params,
)

STICK_SAMPLE = Sample(background=(0.0,), counts=None)
WAVELENGTHS = [w for name, w in ANODES.items() if not name.endswith("1")]


def stick_instrument(wavelength: Wavelength) -> Instrument:
    """Sharp Kα1 peaks one seed bin wide: the binned stick pattern of the paper."""
    return Instrument(wavelength.monochromatic(), u=0.0, v=0.0, w=float(SEED_TWO_THETA[1] - SEED_TWO_THETA[0]) ** 2,
                      x=0.0, y=0.0)


def _weights(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """multiplicity·|F|², 0 for padding."""
    return batch["refl_mult"].double() * batch["refl_f2"].double() * batch["refl_mask"]


def seed_patterns(batch: dict[str, torch.Tensor], augment: bool,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, 1, 1024) Mo Kα stick patterns, max 1; with augment, shifted ±3 bins and noised (σ 1e-3)."""
    b = batch["refl_d"].shape[0]
    mo = ANODES["MoKa1"]
    params = params_torch([stick_instrument(mo)] * b, [STICK_SAMPLE] * b, dtype=torch.float64)
    y = profile_torch(batch["refl_d"].double(), _weights(batch), SEED_TWO_THETA.double(),
                      torch.full((b,), SEED_WAVELENGTH_A, dtype=torch.float64), params).float()
    if augment:
        shifts = torch.randint(-3, 4, (b,), generator=generator)
        y = torch.stack([_shift(row, int(s)) for row, s in zip(y, shifts)])
        y = torch.relu(y + 1e-3 * torch.randn(y.shape, generator=generator))
    return y[:, None, :]


def _shift(row: torch.Tensor, s: int) -> torch.Tensor:
    """Roll by s bins, filling the vacated end with zeros (the seed's ShiftXRD)."""
    out = torch.roll(row, s)
    if s > 0:
        out[:s] = 0
    elif s < 0:
        out[s:] = 0
    return out


def ours_patterns(batch: dict[str, torch.Tensor], realistic: float, rng: np.random.Generator) -> torch.Tensor:
    """(B, 2, G) Q-grid inputs: random anode and 2θ range; random lab conditions (profile, Kα2,
    zero shift, displacement, background, Poisson noise, preferred orientation) for a fraction
    ``realistic`` of the rows, sharp clean peaks for the rest."""
    rows = []
    for i in range(batch["refl_d"].shape[0]):
        wavelength = WAVELENGTHS[rng.integers(len(WAVELENGTHS))]
        instrument, sample = (random_lab_params(rng, wavelength) if rng.random() < realistic
                              else (stick_instrument(wavelength), STICK_SAMPLE))
        start, stop = rng.uniform(3.0, 15.0), rng.uniform(60.0, 150.0)
        two_theta = torch.from_numpy(q_to_two_theta(Q_GRID.double().numpy(), wavelength.ka1))
        measured = (two_theta >= start) & (two_theta <= stop)
        keep = batch["refl_mask"][i]
        d, weight = batch["refl_d"][i, keep].double(), _weights(batch)[i, keep]
        if sample.po_ratio != 1.0:
            refl = Reflections(d.numpy(), batch["refl_hkl"][i, keep].numpy(),
                               batch["refl_mult"][i, keep].numpy(), batch["refl_f2"][i, keep].numpy(),
                               Lattice.from_parameters(*batch["lattice"][i].tolist()).matrix)
            weight = weight * torch.from_numpy(march_dollase(refl, sample.po_ratio, sample.po_direction))
        generator = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
        y = profile_torch(d[None], weight[None], two_theta[measured],
                          torch.tensor([wavelength.ka1], dtype=torch.float64),
                          params_torch([instrument], [sample], dtype=torch.float64), generator)[0]
        values = torch.zeros(Q_GRID.numel(), dtype=torch.float64)
        values[measured] = y
        rows.append(torch.stack([normalise_measured(values, measured.double()), measured.double()]))
    return torch.stack(rows).float()
