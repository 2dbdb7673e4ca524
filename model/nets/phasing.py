"""Learned phasing in the indexed cell (after PhAI, Larsen et al., Science 2024): a transformer
reads one token per reflection family of the cell and space group and predicts its phase; the
density is the Fourier synthesis of the observed amplitudes with those phases, at the data's
resolution.

A token carries what a powder pattern gives for its family: h, k, l (learned embeddings), the
normalised amplitude |E| of the intensity extracted where lines overlap (the cluster's intensity
shared out by multiplicity, as Le Bail extraction does), the size of its overlap cluster and its
share of it, 1/d, the resolution relative to the data's limit, the multiplicity and the centric
flag; the space group is a learned embedding added to every token. The cell itself is not learned:
it enters only through 1/d and the overlaps.

The network recycles its phases through physics (``cycles`` passes of the same transformer):
between passes, the E-map of the current phases is synthesised on a grid with the space group's
symmetry, made positive and peaky (a learned soft version of charge flipping's step), and
transformed back; each token then also reads the phase and strength this map gives it, which
carries the triplet relations of direct methods (Sayre's equation) that a token cannot see alone.

The phases of a structure are defined up to the origins and the hand its space group allows
(model.nets.reciprocal.origin_choices); the loss is the best over those descriptions.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import nn

from model.nets.inputs import reciprocal_metric
from model.simulate import bragg_theta_torch

N_FEATURES = 8
RECYCLED = 3  # per-token features from the physics step: cos, sin of its phase, relative strength
WILSON_SHELLS = 6  # equal-count resolution shells of the |E| normalisation
E2_CAP = 30.0  # |E|² beyond this is read as this (a few very strong low-order lines)


class PhasingNet(nn.Module):
    kind = "phasing"

    def __init__(self, width: int = 64, layers: int = 4, heads: int = 4, tokens: int = 160, h_max: int = 40,
                 cycles: int = 2, grid: int = 24):
        super().__init__()
        self.config = {"width": width, "layers": layers, "heads": heads, "tokens": tokens, "h_max": h_max,
                       "cycles": cycles, "grid": grid}
        self.h_max, self.cycles, self.grid = h_max, cycles, grid
        self.index = nn.ModuleList(nn.Embedding(2 * h_max + 1, width) for _ in range(3))
        self.spacegroup = nn.Embedding(231, width)
        self.features = nn.Linear(N_FEATURES + RECYCLED, width)
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 2))
        self.sharpen = nn.Parameter(torch.tensor([2.0, 1.0]))  # steepness, threshold (map σ) of the positivity step
        rotations, translations, present = _operation_tables()
        self.register_buffer("rotations", rotations, persistent=False)
        self.register_buffer("translations", translations, persistent=False)
        self.register_buffer("present", present, persistent=False)

    def forward(self, hkl: torch.Tensor, features: torch.Tensor, spacegroup: torch.Tensor,
                valid: torch.Tensor) -> torch.Tensor:
        """hkl (B, T, 3) int, features (B, T, N_FEATURES), spacegroup (B,) int, valid (B, T) bool
        → (B, T, 2) unit vectors (cos φ, sin φ)."""
        index = hkl.long().clamp(-self.h_max, self.h_max) + self.h_max
        base = self.spacegroup(spacegroup.long())[:, None, :]
        for axis, table in enumerate(self.index):
            base = base + table(index[..., axis])
        recycled = features.new_zeros(*features.shape[:2], RECYCLED)
        geometry = self._geometry(hkl.long(), spacegroup.long(), valid) if self.cycles > 1 else None
        for cycle in range(self.cycles):
            x = base + self.features(torch.cat([features, recycled], -1))
            u = self.out(self.encoder(x, src_key_padding_mask=~valid)).float()
            u = u / u.norm(dim=-1, keepdim=True).clamp_min(1e-6)
            if cycle < self.cycles - 1:
                recycled = self._physics(features[..., :1] * u, valid, *geometry)
        return u

    def _geometry(self, hkl: torch.Tensor, spacegroup: torch.Tensor, valid: torch.Tensor) -> tuple:
        """Where each token's symmetry-equivalent members and Friedel mates fall on the grid, with
        their phase factors exp(−2πi h·t): (flat index (B, 2TN), cos, sin (B, T, N), kept (B, T, 2N),
        each token's own index (B, T), tokens inside the grid (B, T))."""
        n = self.grid
        used = int(self.present[spacegroup].sum(1).max())
        rotations = self.rotations[spacegroup, :used]  # (B, N, 3, 3)
        translations, present = self.translations[spacegroup, :used], self.present[spacegroup, :used]
        members = torch.einsum("bti,bnij->btnj", hkl.float(), rotations).round().long()  # (B, T, N, 3)
        angle = -2 * math.pi * torch.einsum("bti,bni->btn", hkl.float(), translations)
        keep = valid[:, :, None] & present[:, None, :] & (members.abs() < n // 2).all(-1)
        members = torch.cat([members, -members], 2)  # Friedel mates: F(−h) = F(h)*
        strides = torch.tensor([n * n, n, 1], device=hkl.device)
        flat = ((members % n) * strides).sum(-1).reshape(hkl.shape[0], -1)
        own = ((hkl % n) * strides).sum(-1)
        inside = valid & (hkl.abs() < n // 2).all(-1)
        return flat, torch.cos(angle), torch.sin(angle), torch.cat([keep, keep], 2).float(), own, inside

    def _physics(self, e: torch.Tensor, valid: torch.Tensor, flat, cos, sin, keep, own, inside) -> torch.Tensor:
        """(B, T, RECYCLED) from the E-map of amplitudes × phases e (B, T, 2) (see _geometry):
        synthesis with every member, soft positivity, and the transform read at each token."""
        b, n = e.shape[0], self.grid
        re = e[..., :1] * cos - e[..., 1:] * sin  # F(h R) = F(h) exp(−2πi h·t)
        im = e[..., :1] * sin + e[..., 1:] * cos
        re, im = torch.cat([re, re], 2) * keep, torch.cat([im, -im], 2) * keep
        grid_re = e.new_zeros(b, n ** 3).scatter_add(1, flat, re.reshape(b, -1))
        grid_im = e.new_zeros(b, n ** 3).scatter_add(1, flat, im.reshape(b, -1))
        count = e.new_zeros(b, n ** 3).scatter_add(1, flat, keep.reshape(b, -1)).clamp_min(1)
        spectrum = torch.complex(grid_re / count, grid_im / count).reshape(b, n, n, n)
        density = torch.fft.fftn(spectrum, dim=(1, 2, 3)).real  # ρ(x) = Σ F(h) exp(−2πi h·x)
        sigma = density.flatten(1).std(1).clamp_min(1e-6)[:, None, None, None]
        steep, threshold = self.sharpen
        density = density * torch.sigmoid(steep * (density / sigma - threshold))
        back = torch.fft.ifftn(density, dim=(1, 2, 3)).reshape(b, -1)  # F(h) = Σ ρ(x) exp(+2πi h·x) / n³
        value = torch.take_along_dim(back, own, 1)
        strength = value.abs()
        rms = (strength.square() * valid).sum(1, keepdim=True) / valid.sum(1, keepdim=True).clamp_min(1)
        relative = strength / rms.sqrt().clamp_min(1e-12)
        unit = value / strength.clamp_min(1e-12)
        return torch.stack([unit.real, unit.imag, relative], -1) * inside[..., None].float()


@functools.cache
def _operation_tables() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Operations of every space group's standard setting, one per rotation (a centring
    translation leaves the phase of every reflection it allows unchanged), padded: rotations
    (231, N, 3, 3), translations (231, N, 3), present (231, N) bool (row 0 unused)."""
    from model.nets.reciprocal import space_group_ops

    groups = []
    for sg in range(1, 231):
        ops = space_group_ops(sg)
        _, first = np.unique(ops.rotations.reshape(len(ops.rotations), -1), axis=0, return_index=True)
        first = np.sort(first)
        groups.append(type(ops)(ops.rotations[first], ops.translations[first], sg, ops.symbol))
    n = max(len(g.rotations) for g in groups)
    rotations, translations = torch.zeros(231, n, 3, 3), torch.zeros(231, n, 3)
    present = torch.zeros(231, n, dtype=torch.bool)
    rotations[0, 0] = torch.eye(3)
    present[0, 0] = True
    for sg, group in enumerate(groups, start=1):
        k = len(group.rotations)
        rotations[sg, :k] = torch.from_numpy(group.rotations.astype(np.float32))
        translations[sg, :k] = torch.from_numpy(group.translations.astype(np.float32))
        present[sg, :k] = True
    return rotations, translations, present


def d_spacing(hkl: torch.Tensor, lattice: torch.Tensor) -> torch.Tensor:
    """(B, T, 3) hkl, (B, 6) a, b, c Å, α, β, γ ° → (B, T) d in Å (inf for 000 padding)."""
    h = hkl.float()
    inv_d2 = torch.einsum("bti,bij,btj->bt", h, reciprocal_metric(lattice.float()), h)
    return 1.0 / inv_d2.clamp_min(0).sqrt()


def _per_cluster(values: torch.Tensor, cluster: torch.Tensor) -> torch.Tensor:
    """Sums of (B, T) values over each token's cluster (cluster ids (B, T) in [0, T)), per token."""
    sums = torch.zeros_like(values).scatter_add_(1, cluster, values)
    return torch.take_along_dim(sums, cluster, 1)


def normalised_e2(intensity: torch.Tensor, mult: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """|E|² (B, T): per-member intensities over their multiplicity-weighted mean in WILSON_SHELLS
    equal-count shells of the valid tokens (tokens sorted by decreasing d)."""
    rank = torch.cumsum(valid.long(), 1) - 1
    count = valid.sum(1, keepdim=True).clamp_min(1)
    shell = torch.where(valid, (WILSON_SHELLS * rank) // count, 0).clamp(0, WILSON_SHELLS - 1)
    weight = mult * valid
    total = torch.zeros(intensity.shape[0], WILSON_SHELLS, device=intensity.device)
    norm = torch.zeros_like(total)
    total.scatter_add_(1, shell, weight * intensity)
    norm.scatter_add_(1, shell, weight)
    mean = torch.take_along_dim(total / norm.clamp_min(1e-12), shell, 1)
    return torch.where(valid, intensity / mean.clamp_min(1e-12), 0.0)


def token_features(d: torch.Tensor, mult: torch.Tensor, centric: torch.Tensor, member_intensity: torch.Tensor,
                   cluster: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(B, T, N_FEATURES) token features from what a pattern gives. member_intensity (B, T): the
    extracted intensity per family member (the cluster's total over its multiplicity sum);
    cluster (B, T): overlap-cluster id of each token (any ids in [0, T), one per cluster)."""
    e2 = normalised_e2(member_intensity, mult, valid).clamp(max=E2_CAP)
    ones = valid.float()
    size = _per_cluster(ones, cluster)
    share = mult * ones / _per_cluster(mult * ones, cluster).clamp_min(1e-12)
    d_min = torch.where(valid, d, torch.inf).amin(1, keepdim=True)
    features = torch.stack([e2.sqrt(), e2 / 10, d_min / d, 1 / d, torch.log(mult.clamp_min(1)) / 4,
                            centric.float(), torch.log(size.clamp_min(1)), share], -1)
    return features * ones[..., None]


def simulate_observation(hkl: torch.Tensor, mult: torch.Tensor, f: torch.Tensor, centric: torch.Tensor,
                         lattice: torch.Tensor, generator: torch.Generator, realistic: bool = True) -> dict[str, torch.Tensor]:
    """What a powder pattern tells of each family, drawn per crystal on the tensors' device.

    A random wavelength (Cu Kα, Mo Kα or synchrotron), low-angle limit, resolution d_min
    (0.8–1.7 Å), line width, B_iso and counting noise; families closer in 2θ than the line width
    become one cluster whose intensity is shared out by multiplicity. With ``realistic`` False:
    d ≥ 1 Å, no overlap beyond exact coincidence, no noise. Returns ``features``, ``valid``,
    ``d`` and ``e2_true`` (|E|² of the exact amplitudes, for the loss weights).
    """
    b, device = hkl.shape[0], hkl.device

    def uniform(low, high):
        return low + (high - low) * torch.rand(b, 1, generator=generator, device=device)

    d = d_spacing(hkl, lattice)
    present = mult > 0
    f2 = (f.float() ** 2).sum(-1)
    if realistic:
        kind = torch.rand(b, 1, generator=generator, device=device)
        lab = kind < 0.7
        wavelength = torch.where(kind < 0.5, 1.5406, torch.where(lab, 0.7093, uniform(0.4, 1.0)))
        fwhm = torch.where(lab, uniform(0.04, 0.15), uniform(0.005, 0.03))  # degrees 2θ
        low_angle = uniform(3.0, 10.0)  # first measured 2θ, degrees
        d_min = torch.where(torch.rand(b, 1, generator=generator, device=device) < 0.3,
                            uniform(0.8, 1.0), uniform(1.0, 1.7))
        biso = uniform(0.0, 1.5)
    else:
        wavelength, fwhm, low_angle = torch.full((b, 1), 1.5406, device=device), torch.zeros(b, 1, device=device), 0.0
        d_min, biso = torch.ones(b, 1, device=device), torch.zeros(b, 1, device=device)
    sin_theta = wavelength / (2 * d)
    two_theta = torch.rad2deg(2 * bragg_theta_torch(torch.maximum(d, wavelength / 2), wavelength))
    valid = present & (d >= d_min) & (sin_theta < 1) & (two_theta >= low_angle)
    # clusters: a new one where the gap to the previous token exceeds the line width (or 1e-4°)
    gap = torch.diff(two_theta, dim=1, prepend=torch.full((b, 1), -1.0, device=device))
    starts = (gap > fwhm.clamp_min(1e-4)) | ~valid | ~torch.roll(valid, 1, 1)
    starts[:, 0] = True
    cluster = torch.cumsum(starts.long(), 1) - 1
    member = f2 * torch.exp(-biso * 0.5 / d.clamp_min(0.1) ** 2)  # |F|² e^(−2B s²), s = 1/(2d)
    weight = mult * valid
    total = _per_cluster(weight * member, cluster)
    if realistic:
        level = torch.where(valid, total, 0.0).sum(1, keepdim=True) / valid.sum(1, keepdim=True).clamp_min(1)
        noise = torch.randn(total.shape, generator=generator, device=device)
        total = (total * (1 + uniform(0.0, 0.08) * noise) + uniform(0.0, 0.02) * level *
                 torch.randn(total.shape, generator=generator, device=device)).clamp_min(0)
    member_intensity = total / _per_cluster(weight, cluster).clamp_min(1e-12)
    features = token_features(d, mult, centric, member_intensity, cluster, valid)
    return {"features": features, "valid": valid, "d": d, "e2_true": normalised_e2(f2, mult, valid)}


def choice_table(spacegroups: list[int], device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(231, K, 4) origin/hand choices (σ, s) per space group number, padded, and (231, K) their mask."""
    from model.nets.reciprocal import origin_choices

    tables = {sg: torch.as_tensor(origin_choices(sg), dtype=torch.float32) for sg in sorted(set(spacegroups))}
    k = max(len(t) for t in tables.values())
    choices, mask = torch.zeros(231, k, 4), torch.zeros(231, k, dtype=torch.bool)
    choices[:, :, 0] = 1.0
    for sg, table in tables.items():
        choices[sg, : len(table)] = table
        mask[sg, : len(table)] = True
    return choices.to(device), mask.to(device)


def phase_agreement(u: torch.Tensor, f: torch.Tensor, hkl: torch.Tensor, weight: torch.Tensor,
                    choices: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B,) best over the allowed descriptions of Σ w cos(φ_pred − φ_true) / Σ w.

    u (B, T, 2) predicted unit vectors, f (B, T, 2) true F, weight (B, T) (0 off the valid tokens),
    choices (B, K, 4) and mask (B, K) from ``choice_table`` indexed by each crystal's space group.
    With w = m|F|² this is the correlation of the map with predicted phases and true amplitudes
    against the true map at that resolution (Parseval), at the best allowed origin.
    """
    phi = torch.atan2(f[..., 1].float(), f[..., 0].float())  # (B, T)
    shift = 2 * math.pi * torch.einsum("bti,bki->bkt", hkl.float(), choices[..., 1:])
    target = choices[..., :1] * phi[:, None, :] + shift  # (B, K, T)
    cos = u[:, None, :, 0] * torch.cos(target) + u[:, None, :, 1] * torch.sin(target)
    score = (cos * weight[:, None, :]).sum(-1) / weight.sum(-1, keepdim=True).clamp_min(1e-12)
    return torch.where(mask, score, -torch.inf).amax(1)
