"""The density networks, built from a kind and a config: the seed re-implementation, ours, and
learned phasing in the indexed cell (model.nets.phasing)."""

from __future__ import annotations

import torch
from torch import nn

from model.nets.ours import OursNet
from model.nets.phasing import PhasingNet
from model.nets.seed import SeedNet

NETWORKS: dict[str, type[nn.Module]] = {"seed": SeedNet, "ours": OursNet, "phasing": PhasingNet}


def build(kind: str, config: dict | None = None) -> nn.Module:
    if kind not in NETWORKS:
        raise ValueError(f"unknown network {kind!r}; one of {', '.join(NETWORKS)}")
    return NETWORKS[kind](**(config or {}))


def grid_points(n: int, device=None) -> torch.Tensor:
    """(n³, 3) fractional coordinates (i/n, j/n, k/n) in C order, matching a flattened CMED grid."""
    r = torch.arange(n, device=device, dtype=torch.float32) / n
    return torch.cartesian_prod(r, r, r)


@torch.no_grad()
def predict_grids(net: nn.Module, inputs: dict[str, torch.Tensor], n: int, sample: bool,
                  chunk: int = 8192) -> torch.Tensor:
    """(B, n, n, n) densities in e/Å³ (network output × its density_scale), in eval mode."""
    net.eval()
    cond, _ = net.encode(inputs, sample)
    points = grid_points(n, cond.device)
    parts = [net.decode(cond, inputs, points[i:i + chunk].expand(cond.shape[0], -1, -1))
             for i in range(0, points.shape[0], chunk)]
    scale = net.density_scale(inputs)[:, None]
    return (torch.cat(parts, dim=1) * scale).reshape(-1, n, n, n)
